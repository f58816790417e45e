//go:build e2e

package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/harness"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/simulator"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/oauth"
)

// killWhen runs install with -o json and kills it (SIGKILL) at the first event for which
// when returns true. It reports whether the kill happened.
func killWhen(t *testing.T, r *harness.Rehearsal, env []string, args []string, when func(harness.Event) bool) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := r.Command(ctx, env, append(args, "-o", "json")...)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	killed := false
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1024*1024), 4*1024*1024)
	for sc.Scan() {
		var e harness.Event
		if json.Unmarshal(sc.Bytes(), &e) == nil && !killed && when(e) {
			require.NoError(t, cmd.Process.Kill())
			killed = true
		}
	}
	_ = cmd.Wait()
	return killed
}

// kubeadminExists reports whether kube-system/kubeadmin is still there.
func kubeadminExists(t *testing.T, r *harness.Rehearsal) bool {
	t.Helper()
	_, err := dyn(t, r).Resource(gvr("", "v1", "secrets")).Namespace("kube-system").Get(context.Background(), "kubeadmin", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false
	}
	require.NoError(t, err)
	return true
}

// authProgressing reports whether ClusterOperator authentication is Progressing=True.
func authProgressing(t *testing.T, r *harness.Rehearsal) bool {
	co, err := dyn(t, r).Resource(gvr("config.openshift.io", "v1", "clusteroperators")).Get(context.Background(), "authentication", metav1.GetOptions{})
	if err != nil {
		return false
	}
	conds, _, _ := unstructured.NestedSlice(co.Object, "status", "conditions")
	for _, c := range conds {
		m := c.(map[string]any)
		if m["type"] == "Progressing" {
			return m["status"] == "True"
		}
	}
	return false
}

// TestKubeadminStaysUntilOAuthRolloutObserved kills install while the oauth phase waits for
// the authentication operator to roll out the Google login, then resumes: with a timeout
// shorter than the rest of the rollout the run fails and kubeadmin stays; the next run
// waits for the rollout to be observed and only then removes kubeadmin.
func TestKubeadminStaysUntilOAuthRolloutObserved(t *testing.T) {
	t.Parallel() // each test borrows a bed of its own from the pool
	r := rehearsal(t, testbed.BedOverlay)
	const rollout = 30 * time.Second
	r.Sim.SetLatencies(simulator.Latencies{OAuthRollout: rollout})
	state := filepath.Join(r.WorkDir, "state")
	env := r.Env()
	args := append([]string{"install", "-f", r.Config()}, r.Flags(state)...)

	// 1. Killed while waiting for the rollout.
	killed := killWhen(t, r, env, args, func(e harness.Event) bool {
		return e.Phase == oauth.Name && e.Type == "waiting" && strings.Contains(e.Message, "ClusterOperator authentication")
	})
	require.True(t, killed, "the oauth phase waited for the authentication operator")
	killedAt := time.Now()
	require.True(t, kubeadminExists(t, r), "kubeadmin is not removed before the rollout")
	st, err := installer.NewLocalStore(state)
	require.NoError(t, err)
	saved, err := st.Load(context.Background())
	require.NoError(t, err)
	rec, err := installer.RecordIn[oauth.Record](saved)
	require.NoError(t, err)
	assert.NotNil(t, rec.Rollout, "the pending rollout is in the state")

	// 2. Resumed with a rollout timeout (20m × 0.005 = 6 s) shorter than what is left of it.
	res := install(t, r, state, env, "--only", "oauth", "--timeout-factor", "0.005")
	require.Less(t, time.Since(killedAt), rollout, "the second run ended before the rollout could finish")
	assert.Equal(t, 1, res.Code, "the rollout wait timed out")
	assert.True(t, kubeadminExists(t, r), "kubeadmin stays: the rollout was not observed")
	failed := false
	for _, e := range res.Events {
		if e.Type == "phase-failed" && e.Phase == oauth.Name && strings.Contains(e.Error, "kubeadmin stays") {
			failed = true
		}
	}
	assert.True(t, failed, "the failure says why kubeadmin stays")

	// 3. Resumed with time enough: kubeadmin goes, and only after the operator finished.
	var earlyRemoval atomic.Bool
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			// Read the operator first: if kubeadmin is gone while it still rolls out,
			// kubeadmin was removed early.
			progressing := authProgressing(t, r)
			if progressing && !kubeadminExists(t, r) {
				earlyRemoval.Store(true)
			}
		}
	}()
	res = install(t, r, state, env, "--only", "oauth")
	close(stop)
	<-done
	requireSuccess(t, res)
	assert.False(t, kubeadminExists(t, r), "kubeadmin removed once the rollout was observed")
	assert.False(t, earlyRemoval.Load(), "kubeadmin was never gone while the operator was still rolling out")
	saved, err = st.Load(context.Background())
	require.NoError(t, err)
	rec, err = installer.RecordIn[oauth.Record](saved)
	require.NoError(t, err)
	assert.Nil(t, rec.Rollout, "the rollout is no longer pending")
	assert.NotNil(t, rec.LoginRolledOut)
	assert.True(t, rec.KubeadminRemoved)
}
