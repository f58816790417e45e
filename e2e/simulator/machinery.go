package simulator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// allKey asks a loop whose sync understands it to enqueue every object it owns.
const allKey = "*"

// loop is one controller's work queue: informer events add keys, sync reconciles one key and
// may ask to be called again after a delay (that is how latencies are simulated, so no worker
// ever sleeps).
type loop struct {
	name    string
	workers int
	queue   workqueue.TypedRateLimitingInterface[string]
	sync    func(ctx context.Context, key string) (time.Duration, error)
}

func newLoop(name string, workers int, sync func(context.Context, string) (time.Duration, error)) *loop {
	rl := workqueue.NewTypedItemExponentialFailureRateLimiter[string](50*time.Millisecond, 5*time.Second)
	return &loop{name: name, workers: workers, sync: sync,
		queue: workqueue.NewTypedRateLimitingQueue(rl)}
}

func (l *loop) add(key string) { l.queue.Add(key) }

func (l *loop) run(ctx context.Context, logf func(string, ...any)) {
	var wg sync.WaitGroup
	for range l.workers {
		wg.Go(func() {
			for l.next(ctx, logf) {
			}
		})
	}
	<-ctx.Done()
	l.queue.ShutDown()
	wg.Wait()
}

func (l *loop) next(ctx context.Context, logf func(string, ...any)) bool {
	key, quit := l.queue.Get()
	if quit {
		return false
	}
	defer l.queue.Done(key)
	after, err := l.sync(ctx, key)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			logf("%s: %s: %v (retrying)", l.name, key, err)
			l.queue.AddRateLimited(key)
		}
	case after > 0:
		l.queue.Forget(key)
		l.queue.AddAfter(key, after)
	default:
		l.queue.Forget(key)
	}
	return true
}

// watcher is one informer. Informers for custom resources start only once their CRD is
// Established and stop when it is deleted, because the bed installs CRDs as operators
// "install" (and destroy removes them) — a reflector on a missing resource only spins.
type watcher struct {
	gvr     schema.GroupVersionResource
	crd     string // "<plural>.<group>", empty for built-in resources
	ns      string // empty for all namespaces
	handler cache.ResourceEventHandler

	mu     sync.Mutex
	cancel context.CancelFunc
}

func (w *watcher) start(ctx context.Context, dyn dynamic.Interface) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cancel != nil {
		return
	}
	wctx, cancel := context.WithCancel(ctx)
	w.cancel = cancel
	inf := dynamicinformer.NewFilteredDynamicInformer(dyn, w.gvr, w.ns, 0, cache.Indexers{}, nil).Informer()
	if _, err := inf.AddEventHandler(w.handler); err != nil {
		cancel()
		w.cancel = nil
		return
	}
	go inf.RunWithContext(wctx)
}

func (w *watcher) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cancel != nil {
		w.cancel()
		w.cancel = nil
	}
}

// on builds an event handler calling fn with the object of every add, update and delete.
func on(fn func(u *unstructured.Unstructured)) cache.ResourceEventHandler {
	call := func(o any) {
		if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
			o = d.Obj
		}
		if u, ok := o.(*unstructured.Unstructured); ok {
			fn(u)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    call,
		UpdateFunc: func(_, o any) { call(o) },
		DeleteFunc: call,
	}
}

// enqueueAll puts every object of gvr in ns ("" for all namespaces) on l: what a loop's
// allKey means ("look at all of them again"). Objects listed before an error are queued.
func (s *Simulator) enqueueAll(ctx context.Context, l *loop, gvr schema.GroupVersionResource, ns string) error {
	items, err := s.list(ctx, gvr, ns)
	for _, it := range items {
		l.add(keyOf(&it))
	}
	return err
}

func keyOf(u *unstructured.Unstructured) string {
	if u.GetNamespace() == "" {
		return u.GetName()
	}
	return u.GetNamespace() + "/" + u.GetName()
}

func (s *Simulator) watch(gvr schema.GroupVersionResource, ns string, fn func(u *unstructured.Unstructured)) {
	crd := ""
	if gvr.Group != "" && gvr != gvrCRD && !strings.HasSuffix(gvr.Group, ".k8s.io") {
		crd = gvr.Resource + "." + gvr.Group
	}
	s.watches = append(s.watches, &watcher{gvr: gvr, crd: crd, ns: ns, handler: on(fn)})
}

// crdChanged starts or stops the informers that depend on a CRD and pokes the loops that
// were waiting for it.
func (s *Simulator) crdChanged(crd *unstructured.Unstructured, deleted bool) {
	s.mu.Lock()
	ctx := s.runCtx
	s.mu.Unlock()
	// A terminating CRD still serves its objects, and controllers must keep running to
	// release their finalizers (or the CRD never goes), so only a deleted one stops watches.
	gone := deleted
	for _, w := range s.watches {
		if w.crd != crd.GetName() {
			continue
		}
		if gone {
			w.stop()
		} else if crdServes(crd, w.gvr.Version) {
			w.start(ctx, s.dyn)
		}
	}
	if gone {
		return
	}
	switch crd.GetName() {
	case crdName(gvrClusterOperator):
		for _, name := range []string{coIngress, coKubeAPIServer, coAuthentication} {
			s.clusterOps.add(name)
		}
	case crdName(gvrArgoCD), crdName(gvrAppProject):
		s.gitops.add(gitopsNS)
	}
}

// crdHandler feeds crdChanged, keeping deletes apart from updates.
func (s *Simulator) crdHandler() cache.ResourceEventHandler {
	call := func(o any, deleted bool) {
		if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
			o = d.Obj
		}
		if u, ok := o.(*unstructured.Unstructured); ok {
			s.crdChanged(u, deleted)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { call(o, false) },
		UpdateFunc: func(_, o any) { call(o, false) },
		DeleteFunc: func(o any) { call(o, true) },
	}
}

func crdName(gvr schema.GroupVersionResource) string { return gvr.Resource + "." + gvr.Group }

// cond is one status condition in the common {type,status,reason,message} shape.
type cond struct{ Type, Status, Reason, Message string }

// setConds upserts conditions into the list at path, keeping lastTransitionTime while a
// condition's status is unchanged (as library-go does), and reports whether anything changed.
func setConds(obj map[string]any, path []string, conds ...cond) bool {
	list, _, _ := unstructured.NestedSlice(obj, path...)
	changed := false
	for _, c := range conds {
		want := map[string]any{"type": c.Type, "status": c.Status, "lastTransitionTime": now()}
		if c.Reason != "" {
			want["reason"] = c.Reason
		}
		if c.Message != "" {
			want["message"] = c.Message
		}
		found := false
		for i, item := range list {
			old, ok := item.(map[string]any)
			if !ok || old["type"] != c.Type {
				continue
			}
			found = true
			if old["status"] == c.Status && str(old["reason"]) == c.Reason && str(old["message"]) == c.Message {
				break
			}
			if old["status"] == c.Status && old["lastTransitionTime"] != nil {
				want["lastTransitionTime"] = old["lastTransitionTime"]
			}
			list[i] = want
			changed = true
			break
		}
		if !found {
			list = append(list, want)
			changed = true
		}
	}
	if changed {
		_ = unstructured.SetNestedSlice(obj, list, path...)
	}
	return changed
}

// condStatus returns the status of condition typ in the list at path, or "".
func condStatus(obj map[string]any, typ string, path ...string) string {
	list, _, _ := unstructured.NestedSlice(obj, path...)
	for _, item := range list {
		if m, ok := item.(map[string]any); ok && m["type"] == typ {
			return str(m["status"])
		}
	}
	return ""
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func nestedStr(u *unstructured.Unstructured, path ...string) string {
	v, _, _ := unstructured.NestedString(u.Object, path...)
	return v
}

func now() string { return time.Now().UTC().Format(time.RFC3339) }

// fingerprint is a stable short hash of a JSON value; nil and empty maps/lists hash to "" so
// "never set" and "set to nothing" are the same configuration.
func fingerprint(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case map[string]any:
		if len(t) == 0 {
			return ""
		}
	case []any:
		if len(t) == 0 {
			return ""
		}
	}
	b, err := json.Marshal(v) // map keys are sorted, so equal values hash equal
	if err != nil {
		return "unhashable"
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// jsonValue normalises a value built in Go (ints, typed slices) to what the API returns
// (int64, []any), so comparisons against live objects are meaningful.
func jsonValue(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if err := utiljson.Unmarshal(b, &out); err != nil {
		return v
	}
	return out
}

// timeKeys are status fields that change on every write; semanticEqual ignores them so a
// controller does not rewrite a status that only differs in when it was computed.
var timeKeys = map[string]bool{"lastTransitionTime": true, "lastUpdateTime": true, "lastUpdated": true,
	"reconciledAt": true, "observedAt": true, "startedAt": true, "finishedAt": true,
	"deployedAt": true, "deployStartedAt": true, "lastHeartbeatTime": true, "lastProbeTime": true}

func withoutTimes(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			if !timeKeys[k] {
				out[k] = withoutTimes(val)
			}
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, val := range t {
			out[i] = withoutTimes(val)
		}
		return out
	}
	return v
}

func semanticEqual(a, b any) bool {
	return equality.Semantic.DeepEqual(withoutTimes(jsonValue(a)), withoutTimes(jsonValue(b)))
}

// metaConds is the condition list a controller writes when it sets exactly conds, in
// metav1.Condition's shape (type, status, reason, message, observedGeneration,
// lastTransitionTime: what CRDs generated from that type require, Gateway API's among
// them). Each keeps the lastTransitionTime it had in old while its status is unchanged, as
// apimachinery's meta.SetStatusCondition does.
func metaConds(old []any, generation int64, conds ...cond) []any {
	out := make([]any, 0, len(conds))
	for _, c := range conds {
		want := map[string]any{"type": c.Type, "status": c.Status, "reason": c.Reason, "message": c.Message,
			"observedGeneration": generation, "lastTransitionTime": now()}
		for _, item := range old {
			if m, ok := item.(map[string]any); ok && m["type"] == c.Type && m["status"] == c.Status && m["lastTransitionTime"] != nil {
				want["lastTransitionTime"] = m["lastTransitionTime"]
			}
		}
		out = append(out, want)
	}
	return out
}
