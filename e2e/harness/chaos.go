package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/fakeinstall"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/certificates"
)

// ChaosOptions tune Chaos.
type ChaosOptions struct {
	Kills int
	Seed  int64
	// Step widens the kill window per kill: the i-th run is killed at a uniform moment in
	// [0, 0.5 s + i × Step], so early kills land in the first phases and later ones
	// further on (default 750 ms).
	Step time.Duration
}

// ChaosResult is what a chaos run did.
type ChaosResult struct {
	Kills, Completed int
	// Where counts the phase each killed run was last heard from.
	Where map[string]int
}

// Chaos runs `install` over and over with kill -9 at seeded random moments until Kills
// runs were killed (never later than the last run that finished took, so a converged
// run is killed mid-check). It does not run the final, converging install: callers do,
// and check it with CreatesPerCluster and LedgerOrders.
func (r *Rehearsal) Chaos(ctx context.Context, state string, o ChaosOptions) (ChaosResult, error) {
	if o.Step <= 0 {
		o.Step = 750 * time.Millisecond
	}
	rng := rand.New(rand.NewSource(o.Seed))
	env := r.Env()
	args := append([]string{"install", "-f", r.Config(), "-o", "json"}, r.Flags(state)...)
	res := ChaosResult{Where: map[string]int{}}
	last := time.Hour
	for attempt := 0; res.Kills < o.Kills && attempt < o.Kills*4; attempt++ {
		window := min(500*time.Millisecond+time.Duration(res.Kills)*o.Step, last)
		after := time.Duration(rng.Int63n(int64(window)))
		logPath := filepath.Join(r.WorkDir, "run-"+strconv.Itoa(attempt)+".log")
		log, err := os.Create(logPath)
		if err != nil {
			return res, err
		}
		cmd := r.Command(ctx, env, args...)
		cmd.Stdout, cmd.Stderr = log, log
		start := time.Now()
		if err := cmd.Start(); err != nil {
			log.Close()
			return res, err
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
			res.Completed++
			last = time.Since(start)
		case <-time.After(after):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
			res.Kills++
			res.Where[lastPhase(logPath)]++
		}
		log.Close()
	}
	if res.Kills < o.Kills {
		return res, fmt.Errorf("only %d of %d runs could be killed in %d attempts", res.Kills, o.Kills, o.Kills*4)
	}
	return res, nil
}

// lastPhase names the phase of the last event a killed run printed ("start" if none).
func lastPhase(path string) string {
	b, _ := os.ReadFile(path)
	phase := "start"
	for _, line := range strings.Split(string(b), "\n") {
		var e Event
		if json.Unmarshal([]byte(line), &e) == nil && e.Phase != "" {
			phase = e.Phase
		}
	}
	return phase
}

// CreatesPerCluster counts the `create cluster` invocations per infra ID in a fake
// installer registry (Rehearsal.Registry).
func CreatesPerCluster(registry string) (map[string]int, error) {
	invs, err := fakeinstall.Registry{Dir: registry}.Invocations()
	if err != nil {
		return nil, err
	}
	n := map[string]int{}
	for _, inv := range invs {
		if inv.Command() == "create cluster" {
			n[inv.InfraID]++
		}
	}
	return n, nil
}

// BootstrapLeft lists, per infra ID, the bootstrap resources (instance, SSH rule,
// ignition bucket) a live cluster of the fake installer's registry still has: after a
// converged install there must be none (only create cluster removes them by itself; a
// resumed installation must run destroy bootstrap).
func BootstrapLeft(registry string) (map[string][]string, error) {
	clusters, err := fakeinstall.Registry{Dir: registry}.Clusters()
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, c := range clusters {
		if left := c.BootstrapLeft(); len(left) > 0 {
			out[c.InfraID] = left
		}
	}
	return out, nil
}

// LedgerOrders counts the certificate orders in a local state's ledger.
func LedgerOrders(state string) (int, error) {
	b, err := os.ReadFile(filepath.Join(state, "state.json"))
	if err != nil {
		return 0, err
	}
	return LedgerOrdersIn(b)
}

// LedgerOrdersIn counts the certificate orders in a state document, wherever it was
// read from (a local folder, S3). It reads the ledger through the certificates phase's
// record type, as the binary does.
func LedgerOrdersIn(stateJSON []byte) (int, error) {
	st, err := installer.DecodeState(stateJSON, "state.json")
	if err != nil {
		return 0, err
	}
	rec, err := installer.RecordIn[certificates.Record](st)
	if err != nil {
		return 0, err
	}
	return len(rec.Ledger), nil
}
