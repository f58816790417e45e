package kube

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A check whose request fails because the deadline is upon it (the rate limiter's "would
// exceed context deadline") ends the wait as a timeout, so the caller can report what was
// still awaited; an error earlier on is returned as it is.
func TestWaitTimesOutWhenTheDeadlineFailsTheCheck(t *testing.T) {
	old := PollInterval
	PollInterval = 20 * time.Millisecond
	t.Cleanup(func() { PollInterval = old })
	start := time.Now()
	timeout := 200 * time.Millisecond
	err := Wait(context.Background(), nil, "the thing", timeout, func(context.Context) (bool, string, error) {
		if time.Since(start) > timeout-PollInterval/2 {
			return false, "", errors.New("client rate limiter Wait returned an error: rate: Wait(n=1) would exceed context deadline")
		}
		return false, "still pending", nil
	})
	var te *TimeoutError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, "still pending", te.Last)

	boom := errors.New("forbidden")
	err = Wait(context.Background(), nil, "the thing", time.Second, func(context.Context) (bool, string, error) {
		return false, "", boom
	})
	assert.ErrorIs(t, err, boom)
}

func co(conds ...configv1.ClusterOperatorStatusCondition) *configv1.ClusterOperator {
	return &configv1.ClusterOperator{Status: configv1.ClusterOperatorStatus{Conditions: conds}}
}

func cond(typ, status string, at time.Time) configv1.ClusterOperatorStatusCondition {
	return configv1.ClusterOperatorStatusCondition{Type: configv1.ClusterStatusConditionType(typ), Status: configv1.ConditionStatus(status),
		LastTransitionTime: metav1.NewTime(at.UTC().Truncate(time.Second))}
}

func TestRolledOut(t *testing.T) {
	since := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	before, after := since.Add(-time.Hour), since.Add(30*time.Second)
	for _, tc := range []struct {
		name   string
		co     *configv1.ClusterOperator
		done   bool
		status string
	}{
		{"settled before the change: no reaction yet", co(cond("Available", "True", before), cond("Progressing", "False", before)), false, ""},
		{"rolling out", co(cond("Available", "True", before), cond("Progressing", "True", after)), false, "Progressing: "},
		{"rolled out after the change", co(cond("Available", "True", before), cond("Progressing", "False", after)), true, ""},
		{"rolled out but unavailable", co(cond("Available", "False", after), cond("Progressing", "False", after)), false, "not Available"},
		{"no conditions", co(), false, "not Available"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done, status := RolledOut(tc.co, since)
			assert.Equal(t, tc.done, done)
			assert.Equal(t, tc.status, status)
		})
	}
}

// The API server restarting (connection refused while a kube-apiserver rollout replaces
// it) does not end a wait: it looks again.
func TestWaitKeepsWaitingThroughTransientErrors(t *testing.T) {
	old := PollInterval
	PollInterval = 20 * time.Millisecond
	t.Cleanup(func() { PollInterval = old })
	calls := 0
	refused := &url.Error{Op: "Get", URL: "https://api.example:6443/apis", Err: &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}}
	err := Wait(context.Background(), nil, "the thing", 5*time.Second, func(context.Context) (bool, string, error) {
		calls++
		if calls < 3 {
			return false, "", refused
		}
		return true, "", nil
	})
	require.NoError(t, err)
	assert.Equal(t, 3, calls)
}
