// Package simulator plays the controllers a real OpenShift cluster runs — OLM, the OpenShift
// GitOps operator, the Argo CD application controller, the ingress, kube-apiserver and
// authentication operators and machine-api — against the bare kube-apiserver of the local test
// bed. The bed has the CRDs but no controllers, so without this package nothing would ever
// write a status and every wait in the bootstrap would be untested.
//
// Each controller is a small informer-triggered work loop that reads live objects, waits its
// configurable latency, and writes status in the shapes the real controllers use (status
// subresource where the CRD has one, strict field validation so a wrong shape fails loudly).
// Informers for custom resources start when their CRD appears, so the simulator can run
// before the bed has installed everything.
//
// Typical use in the test bed:
//
//	sim, err := simulator.New(cfg, simulator.Options{InstallCRDs: bed.InstallCRDs, RenderApp: render})
//	go sim.Run(ctx)             // until ctx is cancelled
//	sim.FailApp("rhoai", "...") // change behaviour while the bootstrap runs
package simulator

import (
	"context"
	"errors"
	"fmt"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
)

// DefaultLatency is used for every latency left zero: long enough that a watcher sees the
// intermediate states, short enough that the e2e stays fast.
const DefaultLatency = 300 * time.Millisecond

// Latencies is how long each simulated controller takes for its slow step.
type Latencies struct {
	// OperatorInstall is Subscription → CSV Succeeded: half of it before the InstallPlan, the
	// rest spread over the CSV phases Pending → InstallReady → Installing → Succeeded.
	OperatorInstall time.Duration
	// ArgoCDReady is ArgoCD created → phase Available.
	ArgoCDReady time.Duration
	// AppSync is how long one Application sync takes (per app, so app-of-apps adds up).
	AppSync time.Duration
	// IngressRollout, APIServerRollout and OAuthRollout are how long the ClusterOperator
	// stays Progressing=True after its config changed.
	IngressRollout, APIServerRollout, OAuthRollout time.Duration
	// MachineSet is how long new Machines take to become Running (nodes joining).
	MachineSet time.Duration
}

func (l Latencies) withDefaults() Latencies {
	for _, d := range []*time.Duration{&l.OperatorInstall, &l.ArgoCDReady, &l.AppSync,
		&l.IngressRollout, &l.APIServerRollout, &l.OAuthRollout, &l.MachineSet} {
		if *d <= 0 {
			*d = DefaultLatency
		}
	}
	return l
}

// Options configure a Simulator. Zero values are usable.
type Options struct {
	// Latencies; zero fields get DefaultLatency (use 1ns for "immediately").
	Latencies Latencies
	// FailApps maps an Application name to a message; such an app's sync fails with that
	// message and its health goes Degraded.
	FailApps map[string]string
	// InstallCRDs is called when an InstallPlan executes, to make that operator's CRDs appear
	// (the real InstallPlan creates the bundle's CRDs before the CSV can succeed). The test bed
	// provides it; e.g. the GitOps operator brings Argo CD's CRDs. Nil installs nothing.
	InstallCRDs func(ctx context.Context, pkg string) error
	// RenderApp renders an Application source into objects, as Argo CD's repo-server would.
	// Nil means apps have no children.
	RenderApp func(ctx context.Context, repoURL, revision, path string) ([]*unstructured.Unstructured, error)
	// Log receives one line per notable transition; nil discards.
	Log func(format string, args ...any)
}

// Simulator runs the simulated controllers against one API server.
type Simulator struct {
	dyn     dynamic.Interface
	typed   kubernetes.Interface
	watches []*watcher

	subs, csvs, gitops, argocds, apps, clusterOps, ingress, apiserver, oauth, machineSets *loop

	mu        sync.Mutex
	opts      Options
	stuck     map[string]bool
	deadlines map[string]time.Time
	appStates map[string]*appState
	warned    map[string]bool
	runCtx    context.Context
	// argoDisabled is the GitOps operator's last seen DISABLE_DEFAULT_ARGOCD_INSTANCE.
	argoDisabled bool
	// pkgServer serves OLM's PackageManifests while Run runs (packageserver.go).
	pkgServer *packageServer
}

// New prepares a Simulator; nothing talks to the API server until Run.
func New(cfg *rest.Config, opts Options) (*Simulator, error) {
	cfg = rest.CopyConfig(cfg)
	// The simulator writes status for many objects in bursts; the client-side default of
	// 5 QPS would make it look slow for reasons no real cluster has.
	cfg.QPS, cfg.Burst = 200, 400
	s := &Simulator{
		stuck:     map[string]bool{},
		deadlines: map[string]time.Time{},
		appStates: map[string]*appState{},
		warned:    map[string]bool{},
	}
	// API warnings (e.g. about Argo CD's unqualified finalizer name, on every app update)
	// go to Log once each instead of to klog on every request.
	cfg.WarningHandler = warningLogger{s}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("simulator: dynamic client: %w", err)
	}
	s.dyn = dyn
	if s.typed, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("simulator: client: %w", err)
	}
	s.setOptions(opts)

	s.subs = newLoop("olm-subscriptions", 2, s.syncSubscription)
	s.csvs = newLoop("olm-csvs", 1, s.syncCSVs)
	s.gitops = newLoop("gitops-operator", 1, s.syncGitOpsOperator)
	s.argocds = newLoop("argocd-operator", 1, s.syncArgoCD)
	s.apps = newLoop("argocd-application-controller", 4, s.syncApp)
	s.clusterOps = newLoop("clusteroperators", 1, s.syncClusterOperator)
	s.ingress = newLoop("ingress-operator", 1, s.syncIngressController)
	s.apiserver = newLoop("kube-apiserver-operator", 1, s.kubeAPIServerRollout().sync)
	s.oauth = newLoop("authentication-operator", 1, s.authenticationRollout().sync)
	s.machineSets = newLoop("machineset-controller", 2, s.syncMachineSet)
	s.registerWatches()
	return s, nil
}

// Run starts the controllers and blocks until ctx is done. It returns nil on cancellation.
func (s *Simulator) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.runCtx != nil {
		s.mu.Unlock()
		return errors.New("simulator: Run called twice")
	}
	s.runCtx = ctx
	s.mu.Unlock()

	var wg sync.WaitGroup
	for _, l := range s.loops() {
		wg.Go(func() { l.run(ctx, s.logf) })
	}
	for _, w := range s.watches {
		if w.crd == "" {
			w.start(ctx, s.dyn)
		}
	}
	for _, name := range []string{coIngress, coKubeAPIServer, coAuthentication} {
		s.clusterOps.add(name)
	}
	wg.Go(func() { wait.UntilWithContext(ctx, s.finalizeNamespaces, 500*time.Millisecond) })
	if ps, err := s.startPackageServer(ctx); err != nil {
		s.logf("olm: no package server, PackageManifests are not served: %v", err)
	} else {
		s.mu.Lock()
		s.pkgServer = ps
		s.mu.Unlock()
		defer ps.stop()
	}
	<-ctx.Done()
	for _, w := range s.watches {
		w.stop()
	}
	wg.Wait()
	return nil
}

func (s *Simulator) loops() []*loop {
	return []*loop{s.subs, s.csvs, s.gitops, s.argocds, s.apps, s.clusterOps, s.ingress, s.apiserver, s.oauth, s.machineSets}
}

// SetOptions replaces all options at run time (latencies, failures, hooks).
func (s *Simulator) SetOptions(opts Options) {
	s.setOptions(opts)
	s.apps.add(allKey)
}

func (s *Simulator) setOptions(opts Options) {
	opts.Latencies = opts.Latencies.withDefaults()
	fail := make(map[string]string, len(opts.FailApps))
	for k, v := range opts.FailApps {
		fail[k] = v
	}
	opts.FailApps = fail
	s.mu.Lock()
	s.opts = opts
	s.mu.Unlock()
}

// SetLatencies changes the latencies at run time; work already waiting keeps its deadline.
func (s *Simulator) SetLatencies(l Latencies) {
	s.mu.Lock()
	s.opts.Latencies = l.withDefaults()
	s.mu.Unlock()
}

// FailApp makes the Application name fail its sync with msg (Degraded); an empty msg heals it.
// Either way the app syncs again after AppSync.
func (s *Simulator) FailApp(name, msg string) {
	s.mu.Lock()
	if msg == "" {
		delete(s.opts.FailApps, name)
	} else {
		s.opts.FailApps[name] = msg
	}
	s.mu.Unlock()
	s.apps.add(allKey)
}

// StuckFinalizers makes the named Applications keep their resources finalizer when deleted,
// as an Argo CD that cannot delete their resources would, so destroy's stuck-finalizer report
// can be tested.
func (s *Simulator) StuckFinalizers(names ...string) {
	s.mu.Lock()
	for _, n := range names {
		s.stuck[n] = true
	}
	s.mu.Unlock()
}

// ReleaseFinalizers undoes StuckFinalizers; pending deletions then complete.
func (s *Simulator) ReleaseFinalizers(names ...string) {
	s.mu.Lock()
	for _, n := range names {
		delete(s.stuck, n)
	}
	s.mu.Unlock()
	s.apps.add(allKey)
}

func (s *Simulator) options() Options {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts
}

type warningLogger struct{ s *Simulator }

// HandleWarningHeader implements rest.WarningHandler.
func (w warningLogger) HandleWarningHeader(_ int, _ string, text string) {
	s := w.s
	s.mu.Lock()
	seen := s.warned[text]
	s.warned[text] = true
	s.mu.Unlock()
	if !seen {
		s.logf("api warning: %s", text)
	}
}

// failure is the injected sync failure of the Application name, if any.
func (s *Simulator) failure(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts.FailApps[name]
}

func (s *Simulator) lat() Latencies { return s.options().Latencies }

func (s *Simulator) logf(format string, args ...any) {
	if l := s.options().Log; l != nil {
		l(format, args...)
	}
}

// after reports how long is left of the simulated work named key, starting a clock of length
// d the first time key is seen. Keys carry UIDs and generations, so new work gets a new clock.
func (s *Simulator) after(key string, d time.Duration) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	end, ok := s.deadlines[key]
	if !ok {
		end = time.Now().Add(d)
		s.deadlines[key] = end
	}
	return max(0, time.Until(end))
}

// done forgets the clock of key once its work has completed.
func (s *Simulator) done(key string) {
	s.mu.Lock()
	delete(s.deadlines, key)
	s.mu.Unlock()
}

// res is the dynamic client for gvr, namespaced when ns is set.
func (s *Simulator) res(gvr schema.GroupVersionResource, ns string) dynamic.ResourceInterface {
	if ns == "" {
		return s.dyn.Resource(gvr)
	}
	return s.dyn.Resource(gvr).Namespace(ns)
}

// get returns the live object, or nil when it (or its CRD) does not exist.
func (s *Simulator) get(ctx context.Context, gvr schema.GroupVersionResource, ns, name string) (*unstructured.Unstructured, error) {
	u, err := s.res(gvr, ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %s/%s: %w", gvr.Resource, ns, name, err)
	}
	return u, nil
}

// list returns live objects; a missing CRD reads as an empty list.
func (s *Simulator) list(ctx context.Context, gvr schema.GroupVersionResource, ns string) ([]unstructured.Unstructured, error) {
	l, err := s.res(gvr, ns).List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s in %q: %w", gvr.Resource, ns, err)
	}
	return l.Items, nil
}

// create creates obj unless it already exists (other parties may own it by now).
func (s *Simulator) create(ctx context.Context, gvr schema.GroupVersionResource, manager string, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	out, err := s.res(gvr, obj.GetNamespace()).Create(ctx, obj, metav1.CreateOptions{FieldManager: manager, FieldValidation: "Strict"})
	if apierrors.IsAlreadyExists(err) {
		return s.get(ctx, gvr, obj.GetNamespace(), obj.GetName())
	}
	if err != nil {
		return nil, fmt.Errorf("create %s %s/%s: %w", gvr.Resource, obj.GetNamespace(), obj.GetName(), err)
	}
	return out, nil
}

// update re-reads the object, lets mutate change it and writes it back (to the status
// subresource when status is set) only when mutate reports a change; conflicts are retried.
// A vanished object is not an error: its controller has nothing left to do.
func (s *Simulator) update(ctx context.Context, manager string, gvr schema.GroupVersionResource, ns, name string, status bool,
	mutate func(*unstructured.Unstructured) (bool, error)) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		obj, err := s.res(gvr, ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		changed, err := mutate(obj)
		if err != nil || !changed {
			return err
		}
		opts := metav1.UpdateOptions{FieldManager: manager, FieldValidation: "Strict"}
		if status {
			_, err = s.res(gvr, ns).UpdateStatus(ctx, obj, opts)
		} else {
			_, err = s.res(gvr, ns).Update(ctx, obj, opts)
		}
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("update %s %s/%s: %w", gvr.Resource, ns, name, err)
	}
	return nil
}

// crdReady tells whether the CRD name is Established and serves version.
func (s *Simulator) crdReady(ctx context.Context, name, version string) (bool, error) {
	crd, err := s.get(ctx, gvrCRD, "", name)
	if err != nil || crd == nil {
		return false, err
	}
	return crdServes(crd, version), nil
}

func crdServes(crd *unstructured.Unstructured, version string) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	established := false
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
			established = true
		}
	}
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	for _, v := range versions {
		if m, ok := v.(map[string]any); ok && m["name"] == version && m["served"] == true {
			return established
		}
	}
	return false
}
