package testbed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
)

// bed is the one test bed the package's tests share.
var bed *testbed.Bed

// helperEnv makes the test binary, re-executed by a test, start a bed, print
// its PIDs and wait to be killed (see TestSIGKILLedParentTakesChildrenDown).
const helperEnv = "RHOAI_TESTBED_HELPER"

func TestMain(m *testing.M) {
	// envtest logs through controller-runtime; without a logger it complains.
	ctrllog.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if os.Getenv(helperEnv) == "1" {
		os.Exit(helper())
	}
	// A cold build of the binaries takes about 10 minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	b, err := testbed.Start(ctx, testbed.Options{Log: os.Stderr, ShortLivedValidity: 160 * time.Hour})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the test bed:", err)
		os.Exit(1)
	}
	bed = b
	pids := bed.PIDs()
	code := m.Run()
	if err := bed.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the test bed:", err)
		code = 1
	}
	for _, pid := range pids {
		if testbed.Alive(pid) {
			fmt.Fprintf(os.Stderr, "process %d of the shared bed survived Stop\n", pid)
			code = 1
		}
	}
	os.Exit(code)
}

// helper starts a bare bed, prints its PIDs as one JSON line and blocks. Its
// parent test SIGKILLs it; Stop is never reached on that path.
func helper() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	b, err := testbed.Start(ctx, testbed.Options{CRDSets: []testbed.CRDSet{}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	defer b.Stop()
	out, _ := json.Marshal(map[string]any{"pids": b.PIDs(), "workDir": b.WorkDir()})
	fmt.Println(string(out))
	<-ctx.Done()
	return 0
}

// envFromBed sets the bed's environment for the test (restored after it)
// and drops AWS variables that would override it.
func envFromBed(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	for _, kv := range bed.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}
