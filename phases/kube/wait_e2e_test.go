//go:build e2e

package kube_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/kube"
)

var coGVR = schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "clusteroperators"}

// operator creates (or replaces the status of) a ClusterOperator with Available=True and
// Progressing at the given status, last changed at changed: what an operator's status
// controller writes.
func operator(t *testing.T, dyn dynamic.Interface, name, progressing string, changed time.Time) {
	t.Helper()
	ctx := context.Background()
	ri := dyn.Resource(coGVR)
	co, err := ri.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		co = &unstructured.Unstructured{Object: map[string]any{"apiVersion": "config.openshift.io/v1", "kind": "ClusterOperator", "metadata": map[string]any{"name": name}, "spec": map[string]any{}}}
		co, err = ri.Create(ctx, co, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	at := changed.UTC().Format(time.RFC3339)
	require.NoError(t, unstructured.SetNestedSlice(co.Object, []any{
		map[string]any{"type": "Available", "status": "True", "lastTransitionTime": at, "reason": "AsExpected"},
		map[string]any{"type": "Progressing", "status": progressing, "lastTransitionTime": at, "reason": "AsExpected"},
	}, "status", "conditions"))
	_, err = ri.UpdateStatus(ctx, co, metav1.UpdateOptions{})
	require.NoError(t, err)
}

// slowPolls makes every poll slow, so only a watch can end a wait quickly.
func slowPolls(t *testing.T) {
	oldPoll, oldFallback := kube.PollInterval, kube.FallbackInterval
	kube.PollInterval, kube.FallbackInterval = 15*time.Second, 15*time.Second
	t.Cleanup(func() { kube.PollInterval, kube.FallbackInterval = oldPoll, oldFallback })
}

// A rollout that ends while WaitRollout waits is seen when it ends (the ClusterOperator
// is watched), not at the next poll.
func TestWaitRolloutSeesTheRolloutAtOnce(t *testing.T) {
	slowPolls(t)
	w := newWorld(t)
	since := time.Now()
	operator(t, w.dyn, "ingress-watch", "True", since)
	end := make(chan time.Time, 1)
	go func() {
		time.Sleep(time.Second)
		operator(t, w.dyn, "ingress-watch", "False", time.Now().Add(time.Second))
		end <- time.Now()
	}()
	require.NoError(t, w.c.WaitRollout(context.Background(), nil, "ingress-watch", since, time.Minute, 0))
	seen := time.Now()
	ended := <-end
	t.Logf("rollout ended → wait returned: %s", seen.Sub(ended))
	assert.Less(t, seen.Sub(ended), 3*time.Second, "seen through the watch, not the 15 s poll")
}

// The grace counts from the wait's start: a second operator waited on after a first one
// (the API server after the router) still gets its whole grace to react to a change
// made before the first wait.
func TestWaitRolloutGraceCountsFromTheWaitsStart(t *testing.T) {
	w := newWorld(t)
	operator(t, w.dyn, "kube-apiserver-grace", "False", time.Now().Add(-time.Hour))
	since := time.Now().Add(-30 * time.Second) // the first wait took 30 s
	start := time.Now()
	require.NoError(t, w.c.WaitRollout(context.Background(), nil, "kube-apiserver-grace", since, time.Minute, 3*time.Second))
	took := time.Since(start)
	t.Logf("no reaction: the wait ended after %s", took)
	assert.GreaterOrEqual(t, took, 3*time.Second-100*time.Millisecond, "the whole grace was given")
	assert.Less(t, took, 10*time.Second, "and ended at the grace's end (a wake-up), not at a poll")
}
