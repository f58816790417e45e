package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

// PollInterval is how often a wait looks again when it cannot watch (nothing to watch, a
// kind not served yet, a watch refused) or the API server is briefly unreachable. Tests on
// the bed shorten it (--poll-interval).
var PollInterval = 2 * time.Second

// FallbackInterval is how often a wait whose watches are all established looks again
// anyway: a safety net for a watch that silently stalls, not the way changes are seen.
var FallbackInterval = 30 * time.Second

// minSpacing bounds how often a burst of watch events re-runs a check (Argo CD rewrites
// its Applications' status many times a second while syncing): an isolated change is
// seen at once, a burst costs at most four checks a second.
const minSpacing = 250 * time.Millisecond

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

// Watch names objects whose changes re-run a wait's check at once: one kind, in one
// namespace ("" for cluster-scoped kinds or all namespaces), one name or ("") all.
type Watch struct {
	GVK       schema.GroupVersionKind
	Namespace string
	Name      string
}

// Wait polls check every PollInterval until done, the timeout, or ctx ends: for what has
// no API object to watch (a process). It emits a waiting event like openshift-install's
// "waiting up to 10m0s (until 10:32) for …", and again whenever the status changes, so
// people and CI logs see what is happening now.
func Wait(ctx context.Context, s *installer.Scope, what string, timeout time.Duration, check CheckFunc) error {
	return waitLoop(ctx, s, what, timeout, nil, nil, check)
}

// WaitWatching is Wait for API objects: it watches what check reads (an informer per
// Watch, filtered by name where one is given) and runs check again as soon as one of them
// changes, instead of up to a poll interval later. Polling stays as the fallback: every
// PollInterval while a watch is not established (its kind not served yet: it is tried
// again at each look), every FallbackInterval once all are. wake lists moments check must
// run at although nothing changes (a grace period ending).
func (c *Clients) WaitWatching(ctx context.Context, s *installer.Scope, what string, timeout time.Duration, watches []Watch, check CheckFunc, wake ...time.Time) error {
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	changed := make(chan struct{}, 1)
	signal := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { signal() },
		UpdateFunc: func(any, any) { signal() },
		DeleteFunc: func(any) { signal() },
	}
	pending := slices.Clone(watches)
	var synced []cache.InformerSynced
	// start starts the informers of the watches whose kind is served now.
	start := func() {
		var later []Watch
		for _, w := range pending {
			inf, err := c.informer(w)
			if err == nil {
				_, err = inf.AddEventHandler(h)
			}
			if err != nil {
				// Not served yet (its CRD comes with the operator being waited for):
				// the poll sees it meanwhile.
				if s != nil {
					s.Debugf("not watching %s yet (%v): looking every %s", w.GVK.Kind, err, PollInterval)
				}
				later = append(later, w)
				continue
			}
			go inf.RunWithContext(wctx)
			synced = append(synced, inf.HasSynced)
		}
		pending = later
	}
	watching := func() bool {
		if len(pending) > 0 {
			start()
		}
		if len(pending) > 0 {
			return false
		}
		for _, f := range synced {
			if !f() {
				return false
			}
		}
		return true
	}
	start()
	return waitLoop(ctx, s, what, timeout, changed, watching, check, wake...)
}

// informer lists and watches the metadata of the objects w names: the watch is a trigger
// for the check, which reads what it needs itself, so only metadata is kept (an Argo CD
// CRD or a CSV is hundreds of kilobytes; its metadata, a few hundred bytes).
//
// It asks the mapper as it is, never resetting it: a reset rediscovers every API group
// (megabytes of allocations on a cluster with a hundred CRDs), and a wait looks for its
// unserved kinds at every poll. The check's own reads reset it when they miss a kind.
func (c *Clients) informer(w Watch) (cache.SharedIndexInformer, error) {
	m, err := c.Mapper.RESTMapping(w.GVK.GroupKind(), w.GVK.Version)
	if err != nil {
		return nil, err
	}
	var ri metadata.ResourceInterface = c.Metadata.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ri = c.Metadata.Resource(m.Resource).Namespace(w.Namespace)
	}
	opts := func(o *metav1.ListOptions) {
		if w.Name != "" {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", w.Name).String()
		}
	}
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			opts(&o)
			return ri.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			opts(&o)
			return ri.Watch(ctx, o)
		},
	}
	return cache.NewSharedIndexInformer(lw, &metav1.PartialObjectMetadata{}, 0, cache.Indexers{}), nil
}

// waitLoop runs check at once, then whenever changed fires (at most every minSpacing), at
// each wake time, and as a fallback every PollInterval — or FallbackInterval while
// watching reports all its watches established.
func waitLoop(ctx context.Context, s *installer.Scope, what string, timeout time.Duration, changed <-chan struct{}, watching func() bool, check CheckFunc, wake ...time.Time) error {
	start := time.Now()
	until := start.Add(timeout)
	ctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	last := ""
	first := true
	var lastCheck time.Time
	for {
		lastCheck = time.Now()
		done, status, err := check(ctx)
		switch {
		case err != nil && (ctx.Err() != nil || time.Until(until) < PollInterval):
			// A request that fails as the deadline closes in failed because of it
			// (client-go's rate limiter refuses what it cannot finish in time): that is
			// the timeout, whose report says what was still awaited.
			err, status = nil, last
		case err != nil && transient(err):
			// The API server restarting (a kube-apiserver rollout runs while other
			// phases wait) or overloaded: keep waiting, look again soon.
			status, err = "API server not answering ("+err.Error()+"); trying again", nil
		}
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if done {
			return nil
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
		next := PollInterval
		if watching != nil && watching() && !strings.HasPrefix(status, "API server not answering") {
			next = FallbackInterval
		}
		now := time.Now()
		for _, w := range wake {
			if w.After(now) && w.Sub(now) < next {
				next = w.Sub(now)
			}
		}
		timer := time.NewTimer(next)
		select {
		case <-ctx.Done():
			timer.Stop()
			if ctx.Err() == context.DeadlineExceeded && parentAlive(ctx, until) {
				return &TimeoutError{What: what, Timeout: timeout, Last: last}
			}
			return fmt.Errorf("waiting for %s: %w", what, context.Cause(ctx))
		case <-changed:
			timer.Stop()
			if d := minSpacing - time.Since(lastCheck); d > 0 {
				if !sleep(ctx, d) {
					continue // the deadline: the next round reports it
				}
			}
		case <-timer.C:
		}
	}
}

// parentAlive tells a timeout of the wait (our own deadline) from the caller's context
// ending: only the first is a TimeoutError.
func parentAlive(ctx context.Context, until time.Time) bool {
	d, ok := ctx.Deadline()
	return ok && !d.Before(until)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// transient tells whether a request failed in a way that passes by itself: the API
// server closing connections while it restarts, overloaded, or briefly unavailable.
func transient(err error) bool {
	return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsServiceUnavailable(err) || utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) ||
		utilnet.IsProbableEOF(err) || errors.Is(err, io.ErrUnexpectedEOF)
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

var coGVK = configv1.GroupVersion.WithKind("ClusterOperator")

// WaitRollout waits for a ClusterOperator to roll out a change made at `since`: its
// Progressing condition must have moved since then and be False again, with Available
// True. An operator that shows no reaction within grace is taken to have found nothing to
// roll out (some changes need none), as long as it is Available and not Progressing. The
// grace counts from the start of this wait, not from since: a wait that follows another
// (the API server's after the router's) or resumes a killed run gets the whole grace. It
// is at most a quarter of the timeout; a grace of 0 or less means none: only a rollout
// actually observed ends the wait (RolledOut). The ClusterOperator is watched, so its
// rollout is seen when it ends, not at the next poll.
func (c *Clients) WaitRollout(ctx context.Context, s *installer.Scope, operator string, since time.Time, timeout, grace time.Duration) error {
	grace = min(grace, timeout/4)
	graceEnds := time.Now().Add(grace)
	var wake []time.Time
	if grace > 0 {
		wake = append(wake, graceEnds)
	}
	return c.WaitWatching(ctx, s, "ClusterOperator "+operator+" to roll out the change", timeout, []Watch{{GVK: coGVK, Name: operator}}, func(ctx context.Context) (bool, string, error) {
		co, err := GetAs[configv1.ClusterOperator](ctx, c, coGVK, "", operator)
		if err != nil || co == nil {
			return false, "not found", err
		}
		done, status := RolledOut(co, since)
		if !done && status == "" {
			if grace > 0 && !time.Now().Before(graceEnds) {
				return true, "", nil
			}
			status = "waiting for the operator to notice the change"
		}
		return done, status, nil
	}, wake...)
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
func RolledOut(co *configv1.ClusterOperator, since time.Time) (bool, string) {
	prog := OperatorCondition(co, configv1.OperatorProgressing)
	// condition times have one-second resolution
	moved := prog != nil && !prog.LastTransitionTime.Time.Before(since.Truncate(time.Second))
	switch {
	case prog != nil && prog.Status == configv1.ConditionTrue:
		return false, "Progressing: " + prog.Message
	case !available(co):
		return false, "not Available"
	case moved:
		return true, ""
	}
	return false, ""
}

func available(co *configv1.ClusterOperator) bool {
	c := OperatorCondition(co, configv1.OperatorAvailable)
	return c != nil && c.Status == configv1.ConditionTrue
}
