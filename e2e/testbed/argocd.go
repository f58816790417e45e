package testbed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"k8s.io/client-go/tools/clientcmd"
)

// DefaultArgoCDVersion is the Argo CD that e2e/testbin/build.sh builds (ARGOCD_VERSION).
const DefaultArgoCDVersion = "v3.6.1"

// ArgoCD is a real Argo CD — application controller and repo-server, Argo CD's own binary
// built from its module — running against the bed's API server for one ArgoCD instance, as
// the argocd-operator's Deployments and StatefulSet would run it in the instance's
// namespace. Redis is an in-process miniredis (Argo CD's own tests use it as their Redis):
// Argo CD uses Redis only as a cache, so an in-process one is faithful and costs no extra
// process or package.
type ArgoCD struct {
	Namespace string

	dir         string
	redis       *miniredis.Miniredis
	repo, ctrl  *proc
	metricsURL  string
	stopOnce    sync.Once
	stopErr     error
	unregister  func()
	controlUser string
}

// ArgoCDOptions are what the operator would put into the Pods' command lines.
type ArgoCDOptions struct {
	// Namespace and Name are the ArgoCD instance's.
	Namespace, Name string
	// PersistResourceHealth is argocd-cmd-params-cm controller.resource.health.persist.
	PersistResourceHealth bool
	// ReconciliationTimeout is argocd-cm timeout.reconciliation (ARGOCD_RECONCILIATION_TIMEOUT);
	// zero keeps Argo CD's default (120 s).
	ReconciliationTimeout time.Duration
}

// ControllerServiceAccount is the service account argocd-operator gives an instance's
// application controller (<name>-argocd-application-controller, see its
// controllers/argocd/service_account.go): the bed's controller authenticates as it, so
// the RBAC the operator and the bootstrap grant it is what it gets.
func ControllerServiceAccount(name string) string { return name + "-argocd-application-controller" }

// StartArgoCD starts Redis, the repo-server and the application controller for an ArgoCD
// instance and returns once both answer their health checks. The command lines follow
// argocd-operator's (controllers/argocd/util.go getArgoApplicationControllerCommand,
// controllers/argocd/repo_server.go getArgoRepoCommand); what differs is only what a Pod
// gives for free: the API server address (a kubeconfig instead of the in-cluster one), the
// ports (free ones on 127.0.0.1) and plain gRPC between controller and repo-server
// (the operator's TLS between them is cluster plumbing the bed does not reproduce).
func (b *Bed) StartArgoCD(ctx context.Context, o ArgoCDOptions) (*ArgoCD, error) {
	if b.paths.ArgoCD == "" {
		return nil, errors.New("starting Argo CD: the bed has no Argo CD binaries (e2e/testbin/build.sh)")
	}
	dir, err := os.MkdirTemp(b.workDir, "argocd-"+o.Namespace+"-")
	if err != nil {
		return nil, fmt.Errorf("starting Argo CD: %w", err)
	}
	a := &ArgoCD{Namespace: o.Namespace, dir: dir}
	ok := false
	defer func() {
		if !ok {
			_ = a.Stop()
		}
	}()
	if a.redis, err = miniredis.Run(); err != nil {
		return nil, fmt.Errorf("starting Redis for Argo CD: %w", err)
	}

	sa := ControllerServiceAccount(o.Name)
	a.controlUser = "system:serviceaccount:" + o.Namespace + ":" + sa
	kubeconfig := filepath.Join(dir, "kubeconfig")
	cfg, err := b.UserConfig(a.controlUser, "system:serviceaccounts", "system:serviceaccounts:"+o.Namespace, "system:authenticated")
	if err != nil {
		return nil, err
	}
	if err := writeKubeconfig(kubeconfig, b.opts.ClusterName, cfg); err != nil {
		return nil, err
	}
	if err := setKubeconfigNamespace(kubeconfig, o.Namespace); err != nil {
		return nil, err
	}

	bin := filepath.Join(b.paths.ArgoCD, "argocd")
	for _, sub := range []string{"tmp", "home", "tls", "ssh", "gnupg"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("starting Argo CD: %w", err)
		}
	}
	env := append(b.childEnv(),
		"HOME="+filepath.Join(dir, "home"),
		"TMPDIR="+filepath.Join(dir, "tmp"),
		// The repo-server runs git and kustomize; kustomize is the one build.sh built.
		"PATH="+b.paths.ArgoCD+string(os.PathListSeparator)+os.Getenv("PATH"),
		"ARGOCD_TLS_DATA_PATH="+filepath.Join(dir, "tls"),
		"ARGOCD_SSH_DATA_PATH="+filepath.Join(dir, "ssh"),
		"ARGOCD_GNUPGHOME="+filepath.Join(dir, "gnupg"),
		// The operator enables GnuPG only for instances that verify commits (spec.repo);
		// without keys it is only a gpg-agent the bed would have to reap.
		"ARGOCD_GPG_ENABLED=false",
		"KUBECONFIG="+kubeconfig,
		// The in-cluster destination (https://kubernetes.default.svc) is the Pod's service
		// account on a cluster; outside a Pod Argo CD's own switch for that
		// (pkg/apis/application/v1alpha1/cluster_constants.go, used by its local
		// development setup) takes KUBECONFIG instead: the same identity here.
		"ARGOCD_FAKE_IN_CLUSTER=true",
	)
	if o.ReconciliationTimeout > 0 {
		env = append(env, "ARGOCD_RECONCILIATION_TIMEOUT="+o.ReconciliationTimeout.String())
	}
	// /debug/pprof on the metrics ports, so the CPU the bed's Argo CD uses can be profiled
	// (go tool pprof http://127.0.0.1:<metrics port>/debug/pprof/profile). Argo CD serves it
	// only while the file this names holds "true" (util/profile/profile.go; on a cluster,
	// argocd-cmd-params-cm's profiler.enabled mounted as that file).
	profiler := filepath.Join(dir, "profiler.enabled")
	if err := os.WriteFile(profiler, []byte("true"), 0o600); err != nil {
		return nil, fmt.Errorf("starting Argo CD: %w", err)
	}
	env = append(env, "ARGOCD_ENABLE_PROFILER_FILE_PATH="+profiler)

	err = retryOnPortClash(func() error {
		// A process of an attempt that lost a port race is stopped before the next one.
		for _, p := range []*proc{a.ctrl, a.repo} {
			if p != nil {
				_ = p.stop()
			}
		}
		a.ctrl, a.repo = nil, nil
		ports, err := freePorts(3)
		if err != nil {
			return err
		}
		repoAddr := "127.0.0.1:" + strconv.Itoa(ports[0])
		repo, err := startNamed(dir, "argocd-repo-server", env, bin,
			"--redis", a.redis.Addr(),
			"--loglevel", "info", "--logformat", "text",
			"--address", "127.0.0.1", "--port", strconv.Itoa(ports[0]),
			"--metrics-address", "127.0.0.1", "--metrics-port", strconv.Itoa(ports[1]),
			"--disable-tls", "--client-ca-path", "")
		if err != nil {
			return err
		}
		a.repo = repo
		client := &http.Client{Timeout: 2 * time.Second}
		if err := repo.waitReady(ctx, 2*time.Minute, httpOK(client, "http://127.0.0.1:"+strconv.Itoa(ports[1])+"/healthz")); err != nil {
			return err
		}
		args := []string{
			"--kubeconfig", kubeconfig, "--namespace", o.Namespace,
			"--operation-processors", "10", "--redis", a.redis.Addr(),
			"--repo-server", repoAddr, "--repo-server-plaintext",
			"--status-processors", "20", "--kubectl-parallelism-limit", "10",
			"--loglevel", "info", "--logformat", "text",
			"--metrics-port", strconv.Itoa(ports[2]),
		}
		if o.PersistResourceHealth {
			args = append(args, "--persist-resource-health")
		}
		ctrl, err := startNamed(dir, "argocd-application-controller", env, bin, args...)
		if err != nil {
			return err
		}
		a.ctrl = ctrl
		a.metricsURL = "http://127.0.0.1:" + strconv.Itoa(ports[2]) + "/metrics"
		return ctrl.waitReady(ctx, 2*time.Minute, httpOK(client, "http://127.0.0.1:"+strconv.Itoa(ports[2])+"/healthz"))
	})
	if err != nil {
		return nil, fmt.Errorf("starting Argo CD in %s: %w", o.Namespace, err)
	}
	b.mu.Lock()
	b.argocds = append(b.argocds, a)
	b.mu.Unlock()
	a.unregister = func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for i, x := range b.argocds {
			if x == a {
				b.argocds = append(b.argocds[:i], b.argocds[i+1:]...)
				break
			}
		}
	}
	ok = true
	return a, nil
}

// startNamed starts a process whose argv[0] is name: Argo CD's one binary picks the
// component it runs from the name it is called by (cmd/main.go, ARGOCD_BINARY_NAME).
func startNamed(dir, name string, env []string, bin string, args ...string) (*proc, error) {
	return startProcess(dir, name, append(env, "ARGOCD_BINARY_NAME="+name), bin, args...)
}

func setKubeconfigNamespace(path, namespace string) error {
	kc, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return fmt.Errorf("reading kubeconfig %s: %w", path, err)
	}
	for _, c := range kc.Contexts {
		c.Namespace = namespace
	}
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return nil
}

// User is the API server user the application controller authenticates as.
func (a *ArgoCD) User() string { return a.controlUser }

// Logs are the log files of the repo-server and the application controller.
func (a *ArgoCD) Logs() []string {
	var out []string
	for _, p := range []*proc{a.repo, a.ctrl} {
		if p != nil {
			out = append(out, p.logPath)
		}
	}
	return out
}

// PIDs are the processes of this Argo CD.
func (a *ArgoCD) PIDs() []int {
	var out []int
	for _, p := range []*proc{a.repo, a.ctrl} {
		if p != nil {
			out = append(out, p.cmd.Process.Pid)
		}
	}
	return out
}

// Metric sums the samples of one counter or gauge of the application controller's
// Prometheus metrics (e.g. argocd_app_sync_total), whose labels contain every
// label="value" pair in match.
func (a *ArgoCD) Metric(ctx context.Context, name string, match ...string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.metricsURL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("reading Argo CD's metrics: %w", err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1024*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		labels := ""
		if i, j := strings.IndexByte(line, '{'), strings.LastIndexByte(line, '}'); i >= 0 && j > i {
			labels = line[i+1 : j]
		}
		matched := true
		for _, m := range match {
			if !strings.Contains(labels, m) {
				matched = false
			}
		}
		if !matched {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("reading metric %s: %w", line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

// Stop stops the controller, then the repo-server and Redis. Safe to call more than once.
func (a *ArgoCD) Stop() error {
	a.stopOnce.Do(func() {
		var errs []error
		for _, p := range []*proc{a.ctrl, a.repo} {
			if p != nil {
				errs = append(errs, p.stop())
			}
		}
		if a.redis != nil {
			a.redis.Close()
		}
		if a.unregister != nil {
			a.unregister()
		}
		a.stopErr = errors.Join(errs...)
	})
	return a.stopErr
}
