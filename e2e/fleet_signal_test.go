//go:build e2e

package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/fakeinstall"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/harness"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

// TestFleetSignals stops a two-cluster install while both clusters are past
// install-config (each has started `cluster` or a later phase), then runs the same command
// again, which must finish both: no cluster created twice, one ACME order per cluster.
//
//   - SIGTERM (what a CI runner or `kill` sends; Ctrl-C is SIGINT, the same path): the
//     process exits 4 (interrupted), every cluster's state file is saved (0600) and its
//     lock released.
//   - SIGKILL: no chance to save or unlock; the state file is whatever was last written
//     atomically, the lock file still names the dead process, and neither may stop the
//     resume (a local lock is flock(2), which the kernel drops with its holder).
//
// The two cases share the beds of TestFleetInstall's layout (fleetBeds), one after the
// other, each with its own state folders and fake installer registry; the first ends by
// destroying its clusters so the second starts from empty API servers.
func TestFleetSignals(t *testing.T) {
	t.Parallel()
	a, b := fleetBeds(t)
	fleetFile := writeFleetCluster(t, a, b, "")
	clusters := []string{"rhoai-local", fleetName}

	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		name := map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGKILL: "SIGKILL"}[sig]
		t.Run(name, func(t *testing.T) {
			states := filepath.Join(a.WorkDir, "states-"+name)
			registry := filepath.Join(a.WorkDir, "fake-aws-"+name)
			env := a.Env("FAKE_OPENSHIFT_INSTALL_REGISTRY=" + registry)
			flags := append([]string{"-f", a.Config(), "-f", fleetFile}, a.Flags(states)...)
			args := append([]string{"install", "--max-parallel-clusters", "2"}, flags...)

			if sig == syscall.SIGTERM { // nothing installed yet: a plan of both, changing nothing
				out := planFleet(t, a, env, flags)
				for _, c := range clusters {
					assert.Regexp(t, `(?m)^\[`+c+`\] ~ \S+ install-config +would-change`, out, "%s's plan", c)
					assert.Regexp(t, `(?m)^\[`+c+`\] – \S+ cluster +blocked `, out, "%s's plan", c)
				}
			}
			res, at := signalFleet(t, a, env, sig, args...)
			t.Logf("%s at %v; exited %d in %s\nstderr:\n%s", name, at, res.Code, res.Duration.Round(100*time.Millisecond), res.Stderr)
			if sig == syscall.SIGTERM {
				require.Equal(t, ExitInterrupted, res.Code, "a fleet stopped by SIGTERM exits as interrupted")
				for _, c := range clusters {
					assert.Equal(t, "interrupted", clusterSummary(t, res, c).Summary.Outcome, "%s: %s", c, failures(res, c))
					assert.Regexp(t, `(?m)^  `+c+` +interrupted +exit 4  log `, res.Stderr)
				}
			} else {
				assert.Equal(t, -1, res.Code, "killed by a signal, no exit code")
			}
			for _, c := range clusters {
				dir := filepath.Join(states, c)
				st, err := os.Stat(filepath.Join(dir, "state.json"))
				require.NoError(t, err, "%s's state file survives the %s", c, name)
				assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "%s's state file", c)
				if sig == syscall.SIGTERM { // a kill -9 may land between a temp file and its rename
					leftovers, err := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
					require.NoError(t, err)
					assert.Empty(t, leftovers, "%s: a temp file of an atomic write left behind", c)
				}
				// The lock, taken as the binary takes it: free, whoever it names.
				store := &installer.LocalStore{Dir: dir}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				unlock, err := store.Lock(ctx, installer.CurrentHolder("e2e lock check"))
				cancel()
				require.NoError(t, err, "%s's lock is free after the %s", c, name)
				require.NoError(t, unlock.Unlock())
			}

			since := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 22*time.Minute)
			res = a.Run(ctx, env, args...)
			cancel()
			t.Logf("resume exited %d in %s", res.Code, res.Duration.Round(100*time.Millisecond))
			requireSuccess(t, res)
			for _, c := range clusters {
				assert.Equal(t, "done", clusterSummary(t, res, c).Summary.Outcome, c)
				assert.Equal(t, 1, ledgerOrders(t, filepath.Join(states, c)), "one ACME order for %s", c)
			}
			t.Logf("resume took %s after the %s", time.Since(since).Round(100*time.Millisecond), name)
			if sig == syscall.SIGKILL { // both converged: every phase of both plans done
				since := time.Now()
				out := planFleet(t, a, env, flags)
				for _, c := range clusters {
					n := len(clusterSummary(t, res, c).Summary.Phases)
					assert.Len(t, regexp.MustCompile(`(?m)^\[`+c+`\] ✔ \S+ [a-z-]+ +done`).FindAllString(out, -1), n, "%s's plan: its %d phases done", c, n)
					assert.NotRegexp(t, `(?m)^\[`+c+`\] [~–✗] `, out, "%s's plan", c)
				}
				assert.Zero(t, mutatingAuditEvents(t, a, since), "plan wrote to rhoai-local's API server")
				assert.Zero(t, mutatingAuditEvents(t, b, since), "plan wrote to %s's API server", fleetName)
			}

			recs, err := fakeinstall.Registry{Dir: registry}.Clusters()
			require.NoError(t, err)
			alive := 0
			for _, rec := range recs {
				assert.LessOrEqual(t, rec.CreateClusterInvocations, 1, "create cluster started %d times for %s", rec.CreateClusterInvocations, rec.InfraID)
				if !rec.Destroyed && rec.Started("infrastructure") {
					alive++
				}
			}
			assert.Equal(t, 2, alive, "one live cluster per file; any other was destroyed before being recreated")
			left, err := harness.BootstrapLeft(registry)
			require.NoError(t, err)
			assert.Empty(t, left, "bootstrap resources left after the %s", name)

			if sig == syscall.SIGTERM { // empty API servers for the next case
				ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
				defer cancel()
				res = a.Run(ctx, env, append([]string{"destroy", "--yes", "--max-parallel-clusters", "2"}, flags...)...)
				t.Logf("fleet destroy exited %d in %s", res.Code, res.Duration.Round(100*time.Millisecond))
				requireSuccess(t, res)
				assertNothingOfOurs(t, a)
				assertNothingOfOurs(t, b)
			}
		})
	}
}

// planFleet runs `plan` of the fleet's files in text and checks what every fleet
// command prints: each line prefixed by its cluster, both clusters' plans, one summary
// line per cluster on stderr, exit 0. It returns stdout.
func planFleet(t *testing.T, r *harness.Rehearsal, env, flags []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := r.Command(ctx, env, append([]string{"plan"}, flags...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := stdout.String()
	t.Logf("fleet plan: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	require.NoError(t, err, "plan of two clusters exits 0")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		assert.Regexp(t, `^\[(rhoai-local|`+fleetName+`)\]( |$)`, line, "every line of a fleet's plan names its cluster")
	}
	for _, c := range []string{"rhoai-local", fleetName} {
		assert.Regexp(t, `(?m)^\[`+c+`\] \S+ \S+ preflight `, out, "%s's plan", c)
		assert.Regexp(t, `(?m)^  `+c+` +ok +exit 0  log `, stderr.String())
	}
	assert.Contains(t, stderr.String(), "plan of 2 clusters:")
	return out
}

// ExitInterrupted is cmd/rhoai-bootstrap's exit code for a run stopped by Ctrl-C or
// SIGTERM (main.ExitInterrupted; a main package cannot be imported).
const ExitInterrupted = 4

// signalFleet runs rhoai-bootstrap with -o json and sends it sig once every cluster of
// the run has started a phase after install-config — the moment both clusters are
// mid-run with state written, as TestKillAndResume's kills land by time but here chosen
// by the events. It returns the run (Code -1 when the signal killed it) and the phase
// each cluster last started when the signal was sent. The run failing to reach that
// moment fails the test.
func signalFleet(t *testing.T, r *harness.Rehearsal, env []string, sig syscall.Signal, args ...string) (harness.Result, map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := r.Command(ctx, env, append(args, "-o", "json")...)
	var stderr strings.Builder
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, &stderr
	// A killed process's children (the installers it ran) may hold its stdout open; stop
	// copying their output this long after the process itself ended.
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	require.NoError(t, cmd.Start())
	waited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		pw.Close()
		waited <- err
	}()

	res := harness.Result{}
	at := map[string]string{}
	beyond := map[string]bool{}
	sent := false
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 1024*1024), 4*1024*1024)
	for sc.Scan() {
		var e harness.Event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		res.Events = append(res.Events, e)
		if sent || e.Type != string(installer.PhaseStarted) {
			continue
		}
		at[e.Cluster] = e.Phase
		if e.Phase != "preflight" && e.Phase != "install-config" {
			beyond[e.Cluster] = true
		}
		if len(beyond) == 2 {
			require.NoError(t, cmd.Process.Signal(sig))
			sent = true
		}
	}
	_, _ = io.Copy(io.Discard, pr)
	err := <-waited
	res.Duration = time.Since(start)
	res.Stderr = stderr.String()
	res.Code = cmd.ProcessState.ExitCode()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) && !errors.Is(err, exec.ErrWaitDelay) {
		t.Fatalf("running %v: %v", args, err)
	}
	require.True(t, sent, "the run ended (exit %d) before both clusters were past install-config; stderr:\n%s", res.Code, res.Stderr)
	if sig == syscall.SIGKILL {
		ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
		require.True(t, ok)
		require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "killed by SIGKILL: %v", cmd.ProcessState)
	}
	return res, at
}
