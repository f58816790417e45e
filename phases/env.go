// Package phases builds the bootstrap's phase graph from a cluster file. Each phase lives
// in its own folder; this package holds what they share (Env) and the graph itself.
package phases

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go/logging"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/kube"
)

// KubeconfigFile is the side file (next to the state, 0600) holding the cluster's admin
// kubeconfig, so any later run, on any machine with the state, can reach the cluster.
const KubeconfigFile = "auth/kubeconfig"

// Timeouts bound each wait. They are generous for real clusters; Scale shrinks or
// stretches them all (the test bed uses small values).
type Timeouts struct {
	OperatorInstall time.Duration
	ArgoCD          time.Duration
	RootApp         time.Duration
	Rollout         time.Duration
	Cluster         time.Duration
	Finalizers      time.Duration
}

// DefaultTimeouts are sized after openshift-install's own (40m for install-complete).
var DefaultTimeouts = Timeouts{
	OperatorInstall: 20 * time.Minute,
	ArgoCD:          10 * time.Minute,
	RootApp:         30 * time.Minute,
	// A kube-apiserver revision "can take 20 minutes or more to roll out … to all
	// nodes" (openshift-docs modules/external-auth-configuring.adoc,
	// https://github.com/openshift/openshift-docs/pull/93779): twice that.
	Rollout:    40 * time.Minute,
	Cluster:    90 * time.Minute,
	Finalizers: 5 * time.Minute,
}

// Scale multiplies every timeout.
func (t Timeouts) Scale(f float64) Timeouts {
	m := func(d time.Duration) time.Duration { return time.Duration(float64(d) * f) }
	return Timeouts{m(t.OperatorInstall), m(t.ArgoCD), m(t.RootApp), m(t.Rollout), m(t.Cluster), m(t.Finalizers)}
}

// Env is what phases share: the cluster file, where to work, clients and clocks.
type Env struct {
	Cluster *configs.Cluster
	// WorkDir is a local folder for the installer's asset directory and scratch files.
	WorkDir  string
	Timeouts Timeouts
	// Counter counts mutating API requests across all phases.
	Counter *kube.Counter
	// StripFinalizers lets destroy remove finalizers that are stuck past the timeout.
	StripFinalizers bool
	// Revoke lets destroy revoke certificates at the ACME server.
	Revoke bool
	// AWSConfig, when set, replaces the SDK's default configuration loading (tests).
	AWSConfig func(ctx context.Context) (aws.Config, error)
	// AWSLogger receives what the AWS SDK logs (IMDS fallbacks, retries); the command
	// sends it to the debug log. Nil: the SDK's default, stderr.
	AWSLogger logging.Logger

	mu      sync.Mutex
	clients map[bool]*kube.Clients
	awsCfg  *aws.Config
}

// AWS returns the AWS SDK configuration for the cluster's region: the SDK's default chain
// (environment, shared config, SSO, instance role) and AWS_ENDPOINT_URL when set.
func (e *Env) AWS(ctx context.Context) (aws.Config, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.awsCfg != nil {
		return *e.awsCfg, nil
	}
	var cfg aws.Config
	var err error
	if e.AWSConfig != nil {
		cfg, err = e.AWSConfig(ctx)
	} else {
		opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(e.Cluster.Spec.Platform.AWS.Region)}
		if e.AWSLogger != nil {
			opts = append(opts, awsconfig.WithLogger(e.AWSLogger))
		}
		cfg, err = awsconfig.LoadDefaultConfig(ctx, opts...)
	}
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading AWS configuration (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY): %w", err)
	}
	e.awsCfg = &cfg
	return cfg, nil
}

// RESTConfig loads the cluster's kubeconfig: the one named in platform.existing, or the
// one the cluster phase saved next to the state. A *installer.BlockedError when there is
// none yet.
func (e *Env) RESTConfig(ctx context.Context, s *installer.Scope) (*rest.Config, error) {
	if ex := e.Cluster.Spec.Platform.Existing; ex != nil {
		return kube.LoadConfig(ex.Kubeconfig, ex.Context)
	}
	b, err := s.GetFile(ctx, KubeconfigFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, installer.Blocked("the cluster is not installed yet (no kubeconfig)")
	}
	if err != nil {
		return nil, fmt.Errorf("reading the saved kubeconfig: %w", err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(b)
	if err != nil {
		return nil, fmt.Errorf("the saved kubeconfig is invalid: %w", err)
	}
	return cfg, nil
}

// Kube returns the cluster's clients: read-only during a plan, counting otherwise.
func (e *Env) Kube(ctx context.Context, s *installer.Scope) (*kube.Clients, error) {
	ro := s.ReadOnly()
	e.mu.Lock()
	if c, ok := e.clients[ro]; ok {
		e.mu.Unlock()
		return c, nil
	}
	e.mu.Unlock()
	cfg, err := e.RESTConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	c, err := kube.Connect(cfg, kube.Options{Counter: e.Counter, ReadOnly: ro, UserAgent: "rhoai-bootstrap/" + s.Name()})
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.clients == nil {
		e.clients = map[bool]*kube.Clients{}
	}
	e.clients[ro] = c
	return c, nil
}

// KubeForDestroy returns the cluster's clients for a teardown, or gone=true when there is
// no cluster to talk to any more (destroyed by an earlier, interrupted destroy): what the
// phase made went with it.
func (e *Env) KubeForDestroy(ctx context.Context, s *installer.Scope) (c *kube.Clients, gone bool, err error) {
	c, err = e.Kube(ctx, s)
	var blocked *installer.BlockedError
	if errors.As(err, &blocked) {
		s.Progress("the cluster is gone: nothing left to remove")
		return nil, true, nil
	}
	return c, false, err
}

// ResetKube drops cached clients, after the kubeconfig changed (new CA bundle).
func (e *Env) ResetKube() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.clients = nil
}

// InstallerDir is openshift-install's asset folder for this cluster.
func (e *Env) InstallerDir() string { return filepath.Join(e.WorkDir, "installer") }

// EnsureDir creates a private folder.
func EnsureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	return nil
}
