package testbed

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ControllerManagerUser is the identity the bed's kube-controller-manager uses.
const ControllerManagerUser = "system:kube-controller-manager"

// controllerManagerControllers are the kube-controller-manager controllers the bed runs:
// the ones that need no node and whose absence a real cluster never shows. The garbage
// collector finishes foreground deletions (Argo CD deletes with
// propagationPolicy=Foreground, gitops-engine pkg/sync/sync_context.go getDeleteOptions;
// the API server then adds the foregroundDeletion finalizer that only the collector
// removes) and deletes what owner references leave behind; the namespace controller
// empties and finalizes terminating namespaces; the workload controllers turn Jobs,
// StatefulSets and Deployments into Pods and read their status back. What needs a node —
// the scheduler and the kubelet, which bind Pods and report them running — is the
// simulator's (e2e/simulator/kubelet.go).
var controllerManagerControllers = []string{"garbagecollector", "namespace", "job", "statefulset", "deployment", "replicaset"}

// startControllerManager starts kube-controller-manager against the bed's API server and
// waits until it answers /healthz. It authenticates as ControllerManagerUser in
// system:masters and uses that identity for every controller
// (--use-service-account-credentials=false: the bed has no token controller, and
// envtest's API server runs without the ServiceAccount admission plugin).
func (b *Bed) startControllerManager(ctx context.Context) error {
	cfg, err := b.UserConfig(ControllerManagerUser, "system:masters")
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(b.workDir, "kube-controller-manager.kubeconfig")
	if err := writeKubeconfig(kubeconfig, b.opts.ClusterName, cfg); err != nil {
		return err
	}
	bin := filepath.Join(b.paths.Kubernetes, "kube-controller-manager")
	return retryOnPortClash(func() error {
		port, err := freePort()
		if err != nil {
			return err
		}
		p, err := startProcess(b.workDir, "kube-controller-manager", b.childEnv(), bin,
			"--kubeconfig", kubeconfig,
			"--authentication-kubeconfig", kubeconfig,
			"--authorization-kubeconfig", kubeconfig,
			"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(port),
			"--cert-dir", filepath.Join(b.workDir, "kube-controller-manager"),
			"--controllers", strings.Join(controllerManagerControllers, ","),
			"--leader-elect=false",
			"--use-service-account-credentials=false",
			// Raised from the upstream 20/30 (OpenShift's operator sets such rates through
			// extendedArguments): at 20 QPS the garbage collector's first discovery and list of
			// ~200 resources, repeated at every rewind, would crawl.
			"--kube-api-qps", "150", "--kube-api-burst", "300",
			"--v", "1")
		if err != nil {
			return err
		}
		// Its serving certificate is self-signed (--cert-dir): only whether it answers counts.
		client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a local health probe
		}}
		if err := p.waitReady(ctx, 2*time.Minute, httpOK(client, "https://127.0.0.1:"+strconv.Itoa(port)+"/healthz")); err != nil {
			_ = p.stop()
			return err
		}
		b.mu.Lock()
		b.kcm = p
		b.mu.Unlock()
		return nil
	})
}

// stopControllerManager stops kube-controller-manager, if it runs.
func (b *Bed) stopControllerManager() error {
	b.mu.Lock()
	p := b.kcm
	b.kcm = nil
	b.mu.Unlock()
	if p == nil {
		return nil
	}
	if err := p.stop(); err != nil {
		return fmt.Errorf("stopping kube-controller-manager: %w", err)
	}
	return nil
}
