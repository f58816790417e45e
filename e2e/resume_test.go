//go:build e2e

package e2e_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/fakeinstall"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/harness"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
)

// createsPerCluster counts `create cluster` invocations per infra ID.
func createsPerCluster(t *testing.T, registry string) map[string]int {
	t.Helper()
	n, err := harness.CreatesPerCluster(registry)
	require.NoError(t, err)
	return n
}

func envInt(name string, def int64) int64 {
	if v, err := strconv.ParseInt(os.Getenv(name), 10, 64); err == nil {
		return v
	}
	return def
}

// TestKillAndResume kills `install` with SIGKILL at seeded random moments, then checks that
// one more run converges, that no cluster was ever created twice, that nothing is
// duplicated, and that the certificates were ordered once.
// RHOAI_E2E_SEED and RHOAI_E2E_KILLS (default 20) replay or change a run.
func TestKillAndResume(t *testing.T) {
	t.Parallel() // each test borrows a bed of its own from the pool
	seed := envInt("RHOAI_E2E_SEED", time.Now().UnixNano())
	kills := int(envInt("RHOAI_E2E_KILLS", 20))
	t.Logf("seed %d (replay with RHOAI_E2E_SEED=%d), %d kills", seed, seed, kills)
	r := rehearsal(t, testbed.BedOverlay)
	state := filepath.Join(r.WorkDir, "state")
	env := r.Env()
	step := time.Duration(envInt("RHOAI_E2E_KILL_STEP_MS", 750)) * time.Millisecond
	chaos, err := r.Chaos(context.Background(), state, harness.ChaosOptions{Kills: kills, Seed: seed, Step: step})
	t.Logf("where the kills landed (phase last heard from): %v", chaos.Where)
	t.Logf("%d kills, %d runs finished before their kill moment", chaos.Kills, chaos.Completed)
	require.NoError(t, err)
	killed, completed := chaos.Kills, chaos.Completed

	res := install(t, r, state, env)
	if res.Code != 0 {
		dumpClusterState(t, r, state)
	}
	requireSuccess(t, res)

	for infraID, n := range createsPerCluster(t, r.Registry()) {
		assert.LessOrEqual(t, n, 1, "create cluster started %d times for %s", n, infraID)
	}
	// Exactly one cluster is alive; any other was destroyed (a recreate after a kill
	// during infrastructure).
	clusters, err := fakeinstall.Registry{Dir: r.Registry()}.Clusters()
	require.NoError(t, err)
	alive := 0
	for _, c := range clusters {
		if !c.Destroyed && c.Started("infrastructure") {
			alive++
		}
	}
	assert.Equal(t, 1, alive, "one live cluster")
	// No duplicate GPU MachineSets: exactly the pools' MachineSets of the live infra ID.
	ms, err := dyn(t, r).Resource(msGVR).Namespace("openshift-machine-api").List(context.Background(), metav1.ListOptions{LabelSelector: "rhoai-bootstrap.io/gpu-pool"})
	require.NoError(t, err)
	assert.Len(t, ms.Items, 5, "local.yaml: t4-shared and l40-shared in 2 zones each, l40s-private in 1")
	orders := ledgerOrders(t, state)
	assert.Equal(t, 1, orders, "one ACME order across all kills")
	left, err := harness.BootstrapLeft(r.Registry())
	require.NoError(t, err)
	assert.Empty(t, left, "bootstrap resources left after the kills")
	t.Logf("chaos: %d kills, %d resumed, 0 duplicates, %d ACME orders", killed, killed+completed, orders)

	since := time.Now()
	res = install(t, r, state, env)
	requireSuccess(t, res)
	assert.Zero(t, res.Summary().Summary.Mutating)
	assert.Zero(t, mutatingAuditEvents(t, r, since))
}

// TestInstallerFailuresRecover injects each installer failure once and checks the path
// taken: exit 4 and 5 destroy and recreate within the run (exit 5 keeping the failed
// attempt's folder with its log bundle); exit 6 fails the run and the next run waits for
// install-complete; exit 8 stops the run as interrupted and the next run resumes — from a
// create cluster interrupted while bootstrapping through wait-for bootstrap-complete and
// destroy bootstrap. No bootstrap resource is left; each case ends with destroy, which must
// leave nothing of ours.
func TestInstallerFailuresRecover(t *testing.T) {
	t.Parallel() // each test borrows a bed of its own from the pool
	r := rehearsal(t, testbed.BedOverlay)
	cases := []struct {
		stage        string
		firstExit    int
		wantClusters int // infra IDs created in all
	}{
		{"infrastructure", 0, 2},
		{"bootstrap", 0, 2},
		{"install", 1, 1},
		{"interrupted", 4, 1},
		{"interrupted-bootstrap", 4, 1},
	}
	for _, tc := range cases {
		t.Run(tc.stage, func(t *testing.T) {
			state := filepath.Join(r.WorkDir, "state-"+tc.stage)
			registry := filepath.Join(r.WorkDir, "fake-aws-"+tc.stage)
			env := r.Env("FAKE_OPENSHIFT_INSTALL_FAIL="+tc.stage, "FAKE_OPENSHIFT_INSTALL_FAIL_ONCE=1", "FAKE_OPENSHIFT_INSTALL_REGISTRY="+registry)
			res := install(t, r, state, env)
			if res.Code != tc.firstExit {
				requireSuccess(t, res) // prints the failed phases
			}
			require.Equal(t, tc.firstExit, res.Code, "first run; stderr: %s", res.Stderr)
			if tc.firstExit != 0 {
				res = install(t, r, state, env)
				requireSuccess(t, res)
			}
			creates := createsPerCluster(t, registry)
			assert.Len(t, creates, tc.wantClusters)
			for id, n := range creates {
				assert.Equal(t, 1, n, "create cluster for %s", id)
			}
			invs, err := fakeinstall.Registry{Dir: registry}.Invocations()
			require.NoError(t, err)
			if tc.stage == "install" || tc.stage == "interrupted" {
				assert.Equal(t, "wait-for install-complete", invs[len(invs)-1].Command())
			}
			if tc.stage == "interrupted-bootstrap" {
				var cmds []string
				for _, inv := range invs[len(invs)-3:] {
					cmds = append(cmds, inv.Command())
				}
				assert.Equal(t, []string{"wait-for bootstrap-complete", "destroy bootstrap", "wait-for install-complete"}, cmds)
			}
			left, err := harness.BootstrapLeft(registry)
			require.NoError(t, err)
			assert.Empty(t, left, "bootstrap resources left")
			if tc.stage == "bootstrap" {
				assertFailedAttemptKept(t, r, state, env)
			}
			destroy(t, r, state, env, 0)
			assertNothingOfOurs(t, r)
		})
	}
}

func destroy(t *testing.T, r *harness.Rehearsal, state string, env []string, want int, extra ...string) harness.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res := r.Run(ctx, env, append(append([]string{"destroy", "--yes", "-f", r.Config()}, r.Flags(state)...), extra...)...)
	t.Logf("destroy exited %d in %s", res.Code, res.Duration.Round(100*time.Millisecond))
	if res.Code != want {
		for _, e := range res.Events {
			if e.Error != "" {
				t.Logf("%s %s: %s", e.Type, e.Phase, e.Error)
			}
		}
	}
	require.Equal(t, want, res.Code, "destroy; stderr: %s", res.Stderr)
	return res
}

// dumpClusterState logs what a failed resume found: the fake installer's clusters, the
// MachineSets on the bed, and the phases in the state, so a CI failure can be read.
func dumpClusterState(t *testing.T, r *harness.Rehearsal, state string) {
	t.Helper()
	clusters, err := r.RegistryClusters()
	if err != nil {
		t.Logf("fake installer registry: %v", err)
	}
	for _, c := range clusters {
		t.Logf("fake cluster %s: stage %q, in progress %q, destroyed %v, %d create(s), %d object(s) applied, last failure %+v",
			c.InfraID, c.Stage, c.InProgress, c.Destroyed, c.CreateClusterInvocations, len(c.Applied), c.LastFailure)
	}
	ms, err := dyn(t, r).Resource(msGVR).Namespace("openshift-machine-api").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Logf("MachineSets: %v", err)
	} else {
		for _, m := range ms.Items {
			t.Logf("MachineSet %s: labels %v, deleting %v", m.GetName(), m.GetLabels(), m.GetDeletionTimestamp() != nil)
		}
	}
	if b, err := os.ReadFile(filepath.Join(state, "state.json")); err == nil {
		t.Logf("state.json:\n%s", b)
	}
	logs, _ := filepath.Glob(filepath.Join(r.WorkDir, "run-*.log"))
	for _, l := range logs {
		if b, err := os.ReadFile(l); err == nil && strings.Contains(string(b), `"phase":"cluster"`) {
			t.Logf("%s:\n%s", filepath.Base(l), b)
		}
	}
}

// assertFailedAttemptKept checks that the bootstrap failure's asset folder was moved aside,
// private, with the installer's log bundle, and that status names the bundle.
func assertFailedAttemptKept(t *testing.T, r *harness.Rehearsal, state string, env []string) {
	t.Helper()
	folders, err := filepath.Glob(filepath.Join(state, "installer-failed-*"))
	require.NoError(t, err)
	require.Len(t, folders, 1)
	st, err := os.Stat(folders[0])
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), st.Mode().Perm())
	bundles, err := filepath.Glob(filepath.Join(folders[0], "log-bundle-*.tar.gz"))
	require.NoError(t, err)
	require.Len(t, bundles, 1, "the log bundle survives the destroy-and-recreate")
	assert.FileExists(t, filepath.Join(folders[0], ".openshift_install.log"))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := r.Command(ctx, env, append([]string{"status", "-f", r.Config()}, r.Flags(state)...)...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), bundles[0], "status names the bundle")
}
