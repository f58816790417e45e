//go:build e2e

package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/fakeinstall"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/harness"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
)

// fleetName is the second cluster of TestFleetInstall, beside local.yaml's rhoai-local.
const fleetName = "rhoai-fleet"

// TestFleetInstall runs two clusters in one install process, one of them with an
// installer that fails its install stage once (exit 6): the other finishes, the run exits
// with the failed one's code and its state is resumable; the next run finishes the failed
// one alone (the healthy one's converged re-run sends no mutating request); no cluster
// was created twice and each cluster placed one ACME order.
//
// The bed: AWS settings and the ACME CA's roots are the process's environment, so both
// clusters share one AWS (the pooled bed's moto behind its proxy: one hosted zone,
// bed.example.com, holding both clusters' records, as a dev and a prod cluster of one
// base domain do), one Pebble and one fake installer registry (one AWS account). Each
// cluster has its own API server, simulator and Argo CD: a second bed, started for this
// test and seeded as rhoai-fleet. The fake openshift-install learns its bed from
// FAKE_OPENSHIFT_INSTALL_KUBECONFIG and its injected failure from
// FAKE_OPENSHIFT_INSTALL_FAIL, both environment: rhoai-fleet's file names a wrapper
// script as its installer (spec.openshift.installer, as a user names a different
// installer per cluster) that sets them for that cluster alone.
func TestFleetInstall(t *testing.T) {
	t.Parallel()
	a, b := fleetBeds(t)
	env := a.Env()
	fleetFile := writeFleetCluster(t, a, b, "FAKE_OPENSHIFT_INSTALL_FAIL=install FAKE_OPENSHIFT_INSTALL_FAIL_ONCE=1")
	states := filepath.Join(a.WorkDir, "states")
	args := append([]string{"install", "-f", a.Config(), "-f", fleetFile, "--max-parallel-clusters", "2"}, a.Flags(states)...)
	run := func() harness.Result {
		ctx, cancel := context.WithTimeout(context.Background(), 22*time.Minute)
		defer cancel()
		res := a.Run(ctx, env, args...)
		t.Logf("fleet install exited %d in %s\nstderr:\n%s", res.Code, res.Duration.Round(100*time.Millisecond), res.Stderr)
		return res
	}

	res := run()
	local, fleet := clusterSummary(t, res, "rhoai-local"), clusterSummary(t, res, fleetName)
	assert.Equal(t, "done", local.Summary.Outcome, "the healthy cluster finishes: %s", failures(res, "rhoai-local"))
	assert.Equal(t, "failed", fleet.Summary.Outcome)
	assert.Equal(t, []string{"cluster"}, fleet.Summary.Failed)
	require.Equal(t, 1, res.Code, "the run's exit code is the failed cluster's")
	assert.Regexp(t, `(?m)^  rhoai-local +ok +exit 0  log `+filepath.Join(states, "rhoai-local", "rhoai-bootstrap.log")+`$`, res.Stderr)
	assert.Regexp(t, `(?m)^  `+fleetName+` +failed +exit 1  log `+filepath.Join(states, fleetName, "rhoai-bootstrap.log")+`$`, res.Stderr)
	for _, e := range res.Events {
		require.Contains(t, []string{"rhoai-local", fleetName}, e.Cluster, "every event names its cluster: %+v", e)
	}
	assert.FileExists(t, filepath.Join(states, fleetName, "state.json"), "the failed cluster's state is kept for the resume")

	since := time.Now()
	res = run()
	requireSuccess(t, res)
	local, fleet = clusterSummary(t, res, "rhoai-local"), clusterSummary(t, res, fleetName)
	assert.Equal(t, "done", fleet.Summary.Outcome)
	assert.Zero(t, local.Summary.Mutating, "the converged cluster's re-run changes nothing")
	assert.Zero(t, mutatingAuditEvents(t, a, since), "no write reached the converged cluster's API server")
	assert.Positive(t, fleet.Summary.Mutating, "the failed cluster resumed")

	creates := createsPerCluster(t, a.Registry())
	assert.Len(t, creates, 2, "one installed cluster each")
	for id, n := range creates {
		assert.Equal(t, 1, n, "create cluster started %d times for %s", n, id)
	}
	invs, err := fakeinstall.Registry{Dir: a.Registry()}.Invocations()
	require.NoError(t, err)
	require.NotEmpty(t, invs)
	assert.Equal(t, "wait-for install-complete", invs[len(invs)-1].Command(), "the failed cluster resumed by waiting, not by a second create")
	assert.Equal(t, 1, ledgerOrders(t, filepath.Join(states, "rhoai-local")), "one ACME order for rhoai-local")
	assert.Equal(t, 1, ledgerOrders(t, filepath.Join(states, fleetName)), "one ACME order for "+fleetName)

	// status and destroy of the fleet: each cluster's own state, both torn down.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := a.Command(ctx, env, append([]string{"status", "-f", a.Config(), "-f", fleetFile}, a.Flags(states)...)...).Output()
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^\[rhoai-local\] cluster +done `, string(out))
	assert.Regexp(t, `(?m)^\[`+fleetName+`\] cluster +done +2 `, string(out), "the failed cluster's second attempt")
	ctx, cancel = context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	res = a.Run(ctx, env, append([]string{"destroy", "--yes", "-f", a.Config(), "-f", fleetFile, "--max-parallel-clusters", "2"}, a.Flags(states)...)...)
	t.Logf("fleet destroy exited %d in %s", res.Code, res.Duration.Round(100*time.Millisecond))
	requireSuccess(t, res)
	clusterSummary(t, res, "rhoai-local")
	clusterSummary(t, res, fleetName)
	assertNothingOfOurs(t, a)
	assertNothingOfOurs(t, b)
	clusters, err := a.RegistryClusters()
	require.NoError(t, err)
	for _, c := range clusters {
		assert.True(t, c.Destroyed, "cluster %s destroyed", c.InfraID)
	}
}

// fleetBeds are a fleet test's two beds: a, borrowed from the pool, runs local.yaml's
// rhoai-local; b, started for the test and seeded as rhoai-fleet, runs the second cluster
// (writeFleetCluster). Both on the bed's small overlay.
func fleetBeds(t *testing.T) (a, b *harness.Rehearsal) {
	t.Helper()
	a = rehearsal(t, testbed.BedOverlay)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	b, err := harness.Start(ctx, harness.Options{WorkDir: filepath.Join(t.TempDir(), "b"), BinDir: a.BinDir, Overlay: testbed.BedOverlay, ClusterName: fleetName})
	cancel()
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, b.Stop()) })
	return a, b
}

// writeFleetCluster writes the second cluster's file: local.yaml renamed, on bed b's API
// server (through its installer wrapper) and Git server, everything else local.yaml's.
// fail is the fake installer's failure injection for that cluster alone (environment
// assignments, or "" for none).
func writeFleetCluster(t *testing.T, a, b *harness.Rehearsal, fail string) string {
	t.Helper()
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "openshift-install")
	script := fmt.Sprintf("#!/bin/sh\n# %s's installer: the fake on bed b (failure injected: %q).\n"+
		"export FAKE_OPENSHIFT_INSTALL_KUBECONFIG=%q %s\nexec %q \"$@\"\n",
		fleetName, fail, b.Bed.Kubeconfig(), fail, filepath.Join(a.BinDir, "openshift-install"))
	require.NoError(t, os.WriteFile(wrapper, []byte(script), 0o755))
	src, err := os.ReadFile(a.Config())
	require.NoError(t, err)
	examples := filepath.Dir(a.Config())
	y := strings.NewReplacer(
		"name: rhoai-local", "name: "+fleetName,
		"${RHOAI_BED_OPENSHIFT_INSTALL}", wrapper,
		"${RHOAI_BED_GIT_URL}", b.Bed.GitURL(),
		"local/pull-secret.json", filepath.Join(examples, "local", "pull-secret.json"),
		"local/id_ed25519.pub", filepath.Join(examples, "local", "id_ed25519.pub"),
	).Replace(string(src))
	require.NotEqual(t, string(src), y)
	file := filepath.Join(dir, fleetName+".yaml")
	require.NoError(t, os.WriteFile(file, []byte(y), 0o600))
	return file
}

// clusterSummary is the run-finished event of one cluster of a fleet's run.
func clusterSummary(t *testing.T, res harness.Result, cluster string) *harness.Event {
	t.Helper()
	for i := len(res.Events) - 1; i >= 0; i-- {
		if e := &res.Events[i]; e.Type == "run-finished" && e.Cluster == cluster && e.Summary != nil {
			return e
		}
	}
	t.Fatalf("no run-finished event for %s; stderr: %s", cluster, res.Stderr)
	return nil
}

// failures lists one cluster's failed phases with their errors.
func failures(res harness.Result, cluster string) string {
	var lines []string
	for _, e := range res.Events {
		if e.Cluster == cluster && (e.Type == "phase-failed" || (e.Type == "run-finished" && e.Error != "")) {
			lines = append(lines, fmt.Sprintf("%s %s: %s", e.Type, e.Phase, e.Error))
		}
	}
	return strings.Join(lines, "\n")
}
