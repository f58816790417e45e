// Package kube holds what every phase that talks to the cluster shares: clients built from
// a kubeconfig with a counting (or read-only) transport, server-side apply under our own
// field manager, a read-only diff for Check and plan, and readiness waits that report what
// they are waiting on.
package kube

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"

	configv1client "github.com/openshift/client-go/config/clientset/versioned/typed/config/v1"
	machinev1beta1client "github.com/openshift/client-go/machine/clientset/versioned/typed/machine/v1beta1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	rbacv1client "k8s.io/client-go/kubernetes/typed/rbac/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// FieldManager owns every field the bootstrap sets with server-side apply.
const FieldManager = "rhoai-bootstrap"

// Counter counts the requests sent to the API server: mutating ones (POST, PUT, PATCH,
// DELETE), so a converged re-run can prove it changed nothing, and reads and watches, so
// the cost of waiting can be measured.
type Counter struct{ n, reads, watches atomic.Int64 }

// Count returns the number of mutating requests so far.
func (c *Counter) Count() int64 {
	if c == nil {
		return 0
	}
	return c.n.Load()
}

// Reads returns the number of GET requests so far, watches excluded.
func (c *Counter) Reads() int64 {
	if c == nil {
		return 0
	}
	return c.reads.Load()
}

// Watches returns the number of watch requests so far (each a long-lived GET).
func (c *Counter) Watches() int64 {
	if c == nil {
		return 0
	}
	return c.watches.Load()
}

// ErrReadOnly is returned for a mutating request made during a plan.
type ErrReadOnly struct{ Method, URL string }

func (e *ErrReadOnly) Error() string {
	return fmt.Sprintf("refused %s %s: plans are read-only (this is a bug in a phase's Check)", e.Method, e.URL)
}

type guardTransport struct {
	next     http.RoundTripper
	counter  *Counter
	readOnly bool
}

func mutating(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// ErrUnrecorded is returned for a mutating request that did not come through this
// package's helpers (Apply, Create, EditList, Delete…), which record every change in the
// phase's inventory: a phase that wrote around them would leave destroy blind.
type ErrUnrecorded struct{ Method, URL string }

func (e *ErrUnrecorded) Error() string {
	return fmt.Sprintf("refused %s %s: changes go through phases/kube's helpers, which record them in the inventory (this is a bug in a phase)", e.Method, e.URL)
}

// recordedKey marks a request context as coming from a helper that records its change.
type recordedKey struct{}

// recorded returns ctx marked as coming from a recording helper.
func recorded(ctx context.Context) context.Context {
	return context.WithValue(ctx, recordedKey{}, true)
}

func (t *guardTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if mutating(r.Method) {
		if t.readOnly {
			return nil, &ErrReadOnly{Method: r.Method, URL: r.URL.Path}
		}
		if r.Context().Value(recordedKey{}) == nil {
			return nil, &ErrUnrecorded{Method: r.Method, URL: r.URL.Path}
		}
		if t.counter != nil {
			t.counter.n.Add(1)
		}
	} else if t.counter != nil {
		if w := r.URL.Query().Get("watch"); w == "true" || w == "1" {
			t.counter.watches.Add(1)
		} else {
			t.counter.reads.Add(1)
		}
	}
	return t.next.RoundTrip(r)
}

// Clients are the API clients of one cluster.
type Clients struct {
	Config  *rest.Config
	Dynamic dynamic.Interface
	// Core and RBAC are typed clients of the only built-in API groups read through typed
	// objects (Secrets; ClusterRoleBindings). They are built per group, not through
	// k8s.io/client-go/kubernetes, whose clientset links the client and the apply
	// configurations of all ~60 built-in group versions: 102 packages and 0.8 MB of the
	// stripped binary that every start, `--help` included, maps (guarded by
	// cmd/rhoai-bootstrap's TestStartupLinksNoHeavyPackages).
	Core corev1client.CoreV1Interface
	RBAC rbacv1client.RbacV1Interface
	// Discovery answers the API server's version (and feeds Mapper, through a cache).
	Discovery discovery.DiscoveryInterface
	// Metadata lists and watches objects' metadata only (waits' triggers).
	Metadata metadata.Interface
	Mapper   meta.ResettableRESTMapper
	// OpenShift are the typed clients of OpenShift's own API groups, for reads: writes go
	// through Apply, Create and EditList, which record them in the inventory first.
	OpenShift OpenShift
}

// OpenShift holds typed clients of github.com/openshift/client-go: only the API group
// versions read here (a whole versioned clientset links every version of its group).
type OpenShift struct {
	Config  configv1client.ConfigV1Interface             // config.openshift.io/v1: OAuth, APIServer, ClusterOperator, ClusterVersion
	Machine machinev1beta1client.MachineV1beta1Interface // machine.openshift.io/v1beta1: MachineSet
}

// Options tune Connect.
type Options struct {
	Context  string
	Counter  *Counter
	ReadOnly bool
	// UserAgent identifies us in the API server's audit log.
	UserAgent string
}

// LoadConfig reads a kubeconfig file.
func LoadConfig(kubeconfig, context string) (*rest.Config, error) {
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %s: %w", kubeconfig, err)
	}
	return cfg, nil
}

// Connect builds clients for a rest.Config, wrapping its transport so mutating requests
// are counted, or refused when ReadOnly.
func Connect(cfg *rest.Config, o Options) (*Clients, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 50, 100
	// API warnings (deprecations, finalizer naming advice) would be printed by klog to
	// stderr, through the TUI; they are not actionable for people running the bootstrap.
	cfg.WarningHandler = rest.NoWarnings{}
	cfg.UserAgent = o.UserAgent
	if cfg.UserAgent == "" {
		cfg.UserAgent = "rhoai-bootstrap"
	}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return &guardTransport{next: rt, counter: o.Counter, readOnly: o.ReadOnly}
	})
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building dynamic client: %w", err)
	}
	core, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building the core API client: %w", err)
	}
	rbac, err := rbacv1client.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building the rbac.authorization.k8s.io client: %w", err)
	}
	md, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building metadata client: %w", err)
	}
	var osc OpenShift
	if osc.Config, err = configv1client.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("building the config.openshift.io client: %w", err)
	}
	if osc.Machine, err = machinev1beta1client.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("building the machine.openshift.io client: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building discovery client: %w", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	return &Clients{Config: cfg, Dynamic: dyn, Core: core, RBAC: rbac, Discovery: dc, Metadata: md, Mapper: mapper, OpenShift: osc}, nil
}
