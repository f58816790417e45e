package kube

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

// PollInterval is how often waits look again. Tests on the bed shorten it.
var PollInterval = 2 * time.Second

// CheckFunc observes something once: done, a short status for people, or an error that
// ends the wait (return a nil error to keep waiting on transient problems).
type CheckFunc func(ctx context.Context) (done bool, status string, err error)

// TimeoutError says what was waited on and its last status.
type TimeoutError struct {
	What    string
	Timeout time.Duration
	Last    string
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("timed out after %s waiting for %s (last seen: %s); run the same command again to keep waiting, or look at that object", e.Timeout, e.What, e.Last)
}

// Wait polls check until done, the timeout, or ctx ends. It emits a waiting event like
// openshift-install's "waiting up to 10m0s (until 10:32) for …", and again whenever the
// status changes, so people and CI logs see what is happening now.
func Wait(ctx context.Context, s *installer.Scope, what string, timeout time.Duration, check CheckFunc) error {
	until := time.Now().Add(timeout)
	last := ""
	first := true
	err := wait.PollUntilContextTimeout(ctx, PollInterval, timeout, true, func(ctx context.Context) (bool, error) {
		done, status, err := check(ctx)
		if err != nil {
			if ctx.Err() != nil || time.Until(until) < PollInterval {
				// A request that fails as the deadline closes in failed because of it
				// (client-go's rate limiter refuses what it cannot finish in time): that is
				// the timeout, whose report says what was still awaited.
				return false, nil
			}
			return false, err
		}
		if done {
			return true, nil
		}
		if first || status != last {
			if s != nil {
				on := what
				if status != "" {
					on += ": " + status
				}
				s.Waiting(on, until)
			}
			first, last = false, status
		}
		return false, nil
	})
	if err != nil && ctx.Err() == nil && wait.Interrupted(err) {
		return &TimeoutError{What: what, Timeout: timeout, Last: last}
	}
	if err != nil {
		return fmt.Errorf("waiting for %s: %w", what, err)
	}
	return nil
}

// Condition returns a status condition's status, reason and message ("" when absent).
func Condition(u *unstructured.Unstructured, condType string) (status, reason, message string) {
	if u == nil {
		return "", "", ""
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok || m["type"] != condType {
			continue
		}
		s, _ := m["status"].(string)
		r, _ := m["reason"].(string)
		msg, _ := m["message"].(string)
		return s, r, msg
	}
	return "", "", ""
}

// ObservedCurrent reports whether status.observedGeneration (when the object has one)
// has caught up with metadata.generation: a condition is only trusted when it describes
// the current spec.
func ObservedCurrent(u *unstructured.Unstructured) bool {
	og, found, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	return !found || og >= u.GetGeneration()
}

var coGVK = GVK("config.openshift.io/v1", "ClusterOperator")

// conditionSince returns a condition's status and whether it last changed at or after t
// (condition times have one-second resolution).
func conditionSince(u *unstructured.Unstructured, condType string, t time.Time) (string, bool) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok || m["type"] != condType {
			continue
		}
		st, _ := m["status"].(string)
		ts, _ := m["lastTransitionTime"].(string)
		lt, err := time.Parse(time.RFC3339, ts)
		return st, err == nil && !lt.Before(t.Truncate(time.Second))
	}
	return "", false
}

// WaitRollout waits for a ClusterOperator to roll out a change made at `since`: its
// Progressing condition must have moved since then and be False again, with Available
// True. An operator that shows no reaction within grace is taken to have found nothing to
// roll out (some changes need none), as long as it is Available and not Progressing. The
// grace is at most a quarter of the timeout; a grace of 0 or less means none: only a
// rollout actually observed ends the wait (RolledOut).
func (c *Clients) WaitRollout(ctx context.Context, s *installer.Scope, operator string, since time.Time, timeout, grace time.Duration) error {
	grace = min(grace, timeout/4)
	return Wait(ctx, s, "ClusterOperator "+operator+" to roll out the change", timeout, func(ctx context.Context) (bool, string, error) {
		co, err := c.Get(ctx, coGVK, "", operator)
		if err != nil || co == nil {
			return false, "not found", err
		}
		done, status := RolledOut(co, since)
		if !done && status == "" {
			if grace > 0 && time.Since(since) > grace {
				return true, "", nil
			}
			status = "waiting for the operator to notice the change"
		}
		return done, status, nil
	})
}

// RolledOut reports whether a ClusterOperator shows a rollout of a change made at since
// as finished: Progressing moved (its lastTransitionTime) at or after since and is False
// again, and Available is True. A rollout that finished while nobody looked counts too:
// the transition back to Progressing=False is itself after since. Otherwise status says
// what is seen now ("" when the operator shows no reaction yet).
//
// This is how OpenShift's operators report a rollout: library-go's workload controller
// (pkg/operator/apiserver/controller/workload/workload.go) sets <Name>DeploymentProgressing
// True with reason NewGeneration while its deployment's observed generation lags, then
// PodsUpdating, then False/AsExpected; the status controller
// (pkg/operator/status/status_controller.go) unions those into the ClusterOperator's
// Progressing condition, e.g. the authentication operator's
// "OAuthServerDeployment_NewGeneration" after oauth/cluster changes.
func RolledOut(co *unstructured.Unstructured, since time.Time) (bool, string) {
	prog, moved := conditionSince(co, "Progressing", since)
	avail, _, _ := Condition(co, "Available")
	_, _, msg := Condition(co, "Progressing")
	switch {
	case prog == "True":
		return false, "Progressing: " + msg
	case avail != "True":
		return false, "not Available"
	case moved:
		return true, ""
	}
	return false, ""
}
