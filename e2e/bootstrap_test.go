//go:build e2e

// End-to-end tests of rhoai-bootstrap on the local test bed: the real binary, the fake
// openshift-install, a real kube-apiserver with the simulator playing the controllers,
// Pebble for ACME and moto for AWS.
package e2e_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/harness"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/rootapp"
)

var (
	appsGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}
	msGVR   = schema.GroupVersionResource{Group: "machine.openshift.io", Version: "v1beta1", Resource: "machinesets"}
)

// rehearsal starts a rehearsal for one test on a bed of the package's pool, and gives
// the bed back, rewound to how it started, at the end. A bed is started only when none
// is free and fewer than -parallel run. overlay is what the root application syncs:
// testbed.DevOverlay for the tests of the hand-off itself, testbed.BedOverlay (two child
// applications, seconds instead of minutes of syncing) for the others.
func rehearsal(t *testing.T, overlay string) *harness.Rehearsal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	r, err := pool.Start(ctx, harness.Options{WorkDir: t.TempDir(), Overlay: overlay})
	require.NoError(t, err)
	t.Logf("bed + simulator ready in %s", time.Since(start).Round(100*time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			// The applications as Argo CD reports them, in the root-app phase's words.
			if d, err := dynamic.NewForConfig(r.Bed.Config()); err == nil {
				if apps, err := d.Resource(appsGVR).Namespace("openshift-gitops").List(context.Background(), metav1.ListOptions{}); err == nil {
					for _, a := range apps.Items {
						if why := rootapp.Why(&a); why != "" {
							t.Logf("application %s", why)
						}
					}
				}
			}
			logs := []string{r.SimulatorLog()}
			if argo := r.ArgoCD(); argo != nil {
				logs = append(logs, argo.Logs()...)
			}
			for _, l := range logs {
				if b, err := os.ReadFile(l); err == nil {
					lines := strings.Split(strings.TrimSpace(string(b)), "\n")
					t.Logf("%s (last %d lines):\n%s", filepath.Base(l), min(len(lines), 60), strings.Join(lines[max(0, len(lines)-60):], "\n"))
				}
			}
		}
		require.NoError(t, r.Stop(), "giving the bed back")
	})
	return r
}

var pool *harness.Pool

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "rhoai-e2e-bin-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	root, err := testbed.ModuleRoot()
	if err != nil {
		panic(err)
	}
	if err := harness.Build(context.Background(), root, dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// As many beds as tests run at once (-parallel).
	beds := runtime.GOMAXPROCS(0)
	if f := flag.Lookup("test.parallel"); f != nil {
		if n, err := strconv.Atoi(f.Value.String()); err == nil {
			beds = n
		}
	}
	pool = harness.NewPool(beds, dir, nil)
	code := m.Run()
	pids := pool.PIDs()
	pool.Report(os.Stdout)
	if err := pool.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the test beds:", err)
		code = max(code, 1)
	}
	for _, pid := range pids {
		if testbed.Alive(pid) {
			fmt.Fprintf(os.Stderr, "test bed process %d survived\n", pid)
			code = max(code, 1)
		}
	}
	return code
}

func dyn(t *testing.T, r *harness.Rehearsal) dynamic.Interface {
	d, err := dynamic.NewForConfig(r.Bed.Config())
	require.NoError(t, err)
	return d
}

func install(t *testing.T, r *harness.Rehearsal, state string, env []string, extra ...string) harness.Result {
	t.Helper()
	// The hand-off of the dev overlay takes minutes on a loaded machine
	// (harness.HandOffTimeoutFactor gives it 18).
	ctx, cancel := context.WithTimeout(context.Background(), 22*time.Minute)
	defer cancel()
	args := append([]string{"install", "-f", r.Config()}, r.Flags(state)...)
	res := r.Run(ctx, env, append(args, extra...)...)
	t.Logf("install exited %d in %s", res.Code, res.Duration.Round(100*time.Millisecond))
	return res
}

func requireSuccess(t *testing.T, res harness.Result) {
	t.Helper()
	if res.Code != 0 {
		var lines []string
		for _, e := range res.Events {
			if e.Type == "phase-failed" || e.Type == "run-finished" {
				lines = append(lines, fmt.Sprintf("%s %s: %s", e.Type, e.Phase, e.Error))
			}
		}
		t.Fatalf("exit %d\n%s\nstderr: %s", res.Code, strings.Join(lines, "\n"), res.Stderr)
	}
}

// mutatingAuditEvents counts create/update/patch/delete requests rhoai-bootstrap sent,
// from the API server's audit log.
func mutatingAuditEvents(t *testing.T, r *harness.Rehearsal, since time.Time) int {
	evs, err := r.Bed.AuditEvents()
	require.NoError(t, err)
	n := 0
	for _, e := range evs {
		if !strings.HasPrefix(e.UserAgent, "rhoai-bootstrap") || e.StageTimestamp.Before(since) {
			continue
		}
		switch e.Verb {
		case "create", "update", "patch", "delete", "deletecollection":
			n++
		}
	}
	return n
}

func TestFreshInstallThenConvergedRerun(t *testing.T) {
	t.Parallel() // each test borrows a bed of its own from the pool
	r := rehearsal(t, testbed.DevOverlay)
	state := filepath.Join(r.WorkDir, "state")
	env := r.Env()
	res := install(t, r, state, env)
	requireSuccess(t, res)
	sum := res.Summary().Summary
	for phase, o := range sum.Phases {
		assert.Equal(t, "done", o, phase)
	}
	t.Logf("fresh install: %s, %d mutating requests", res.Duration.Round(100*time.Millisecond), sum.Mutating)
	// Closing lines say what this run did, in words.
	closing := map[string]string{}
	for _, e := range res.Events {
		if e.Type == "phase-done" {
			closing[e.Phase] = e.Message
		}
	}
	assert.Equal(t, "Google login, 1 admin", closing["oauth"])
	assert.Regexp(t, `^issued certificate [0-9a-f]+, valid until \d{4}-\d\d-\d\d; renewal window opens in \d+ days$`, closing["certificates"])

	ctx := context.Background()
	d := dyn(t, r)
	root, err := d.Resource(appsGVR).Namespace("openshift-gitops").Get(ctx, "rhoai-root", metav1.GetOptions{})
	require.NoError(t, err)
	h, _, _ := unstructured.NestedString(root.Object, "status", "health", "status")
	assert.Equal(t, "Healthy", h)
	apps, err := d.Resource(appsGVR).Namespace("openshift-gitops").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	var names []string
	for _, a := range apps.Items {
		names = append(names, a.GetName())
		sy, _, _ := unstructured.NestedString(a.Object, "status", "sync", "status")
		h, _, _ := unstructured.NestedString(a.Object, "status", "health", "status")
		// Every child, config-certificates included (the simulated cert-manager issued the
		// MaaS gateway's certificate through Pebble) and config-maas (the dev overlay scales
		// the private-pool models to 0 replicas, it does not stop them).
		assert.Equal(t, "Synced/Healthy", sy+"/"+h, a.GetName())
		assert.NotEmpty(t, a.Object["status"].(map[string]any)["reconciledAt"], "%s reconciled by the real Argo CD", a.GetName())
	}
	assert.ElementsMatch(t, devOverlayApps, names, "the dev overlay's applications")
	assertCertManagerIssuedOnce(t, r)
	ho, err := r.HandOff(ctx)
	require.NoError(t, err, "the real Argo CD ran the hand-off")
	// The figure the README records: root Application created → the last child's last
	// sync or health transition.
	t.Logf("hand-off: %s (Argo CD's clocks and argocd_app_sync_total)", ho)

	// status shows every phase done.
	out, err := r.Command(ctx, env, append([]string{"status", "-f", r.Config(), "-o", "json"}, r.Flags(state)...)...).Output()
	require.NoError(t, err)
	var st struct {
		Phases map[string]struct{ Outcome string } `json:"phases"`
	}
	require.NoError(t, json.Unmarshal(out, &st))
	require.Len(t, st.Phases, 9)
	for name, p := range st.Phases {
		if name != "root-app" {
			assert.Equal(t, "done", p.Outcome, name)
		}
	}
	b, err := os.ReadFile(filepath.Join(state, "state.json"))
	require.NoError(t, err)
	assert.NotContains(t, string(b), "rehearsal-client-secret-value", "the state never holds a secret")
	assert.NotContains(t, string(b), "PRIVATE KEY")
	fi, err := os.Stat(filepath.Join(state, "state.json"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	logb, err := os.ReadFile(filepath.Join(state, "rhoai-bootstrap.log"))
	require.NoError(t, err)
	assert.NotContains(t, string(logb), "rehearsal-client-secret-value", "the debug log never holds a secret")

	leaf := assertCertificateFromPebble(t, r, state)

	// Converged re-run: zero mutating requests, by our own count and by the audit log, and
	// no certificate order, by the bootstrap or by cert-manager.
	since := time.Now()
	res = install(t, r, state, env)
	requireSuccess(t, res)
	assert.Equal(t, 1, ledgerOrders(t, state), "a re-run orders no certificate")
	assertCertManagerIssuedOnce(t, r)
	again, _ := servedCertificate(t, r)
	assert.Equal(t, leaf.SerialNumber, again.SerialNumber)
	assert.Zero(t, res.Summary().Summary.Mutating, "a converged re-run changes nothing")
	assert.Zero(t, mutatingAuditEvents(t, r, since), "the API server saw no write from us")
	t.Logf("converged re-run: %s, %d mutating requests (audit log: %d)", res.Duration.Round(100*time.Millisecond), res.Summary().Summary.Mutating, mutatingAuditEvents(t, r, since))
}
