package testbed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/cpulog"
)

// auditPolicy records one Metadata event per mutating request (at
// ResponseComplete), so tests can count writes per user and user agent. The
// API server's own bookkeeping (lease renewals every few seconds) is left
// out.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    users: ["system:apiserver"]
  - level: Metadata
    verbs: [create, update, patch, delete, deletecollection]
  - level: None
`

// AdminUser is the identity of the admin kubeconfig the bed writes, the same
// name that an OpenShift installer's auth/kubeconfig authenticates as.
const AdminUser = "system:admin"

// kube is the envtest control plane (etcd + kube-apiserver).
type kube struct {
	env      *envtest.Environment
	pidFiles []string
}

// startKube starts etcd and kube-apiserver with envtest. envtest starts the
// processes itself and keeps their handles private, so each binary is
// wrapped in a tiny shell script that records its PID (the script execs the
// binary, so the PID stays the same) and, through setpriv, asks the kernel
// for SIGKILL when the parent dies — what Pdeathsig does for the bed's other
// children.
//
// With from set, etcd starts on a copy of that data folder (a CRD snapshot) as a
// new one-member cluster. startKube may be called again after stopKube.
func (b *Bed) startKube(ctx context.Context, from string) error {
	binDir := filepath.Join(b.workDir, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", binDir, err)
	}
	if b.kube == nil {
		b.kube = &kube{}
	}
	k := b.kube
	shim := func(name string) (string, error) {
		pidFile := filepath.Join(b.workDir, name+".pids")
		if !slices.Contains(k.pidFiles, pidFile) {
			k.pidFiles = append(k.pidFiles, pidFile)
		}
		return writeShim(binDir, name, filepath.Join(b.paths.Kubernetes, name), pidFile, GoRuntimeEnv...)
	}
	etcdPath, err := shim("etcd")
	if err != nil {
		return err
	}
	apiPath, err := shim("kube-apiserver")
	if err != nil {
		return err
	}

	policy := filepath.Join(b.workDir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o644); err != nil {
		return fmt.Errorf("writing the audit policy: %w", err)
	}
	b.auditLog = filepath.Join(b.workDir, "audit.log")

	etcdLog, err := appendTo(filepath.Join(b.workDir, "etcd.log"))
	if err != nil {
		return fmt.Errorf("creating the etcd log: %w", err)
	}
	b.closers = append(b.closers, etcdLog.Close)
	apiLog, err := appendTo(filepath.Join(b.workDir, "kube-apiserver.log"))
	if err != nil {
		return fmt.Errorf("creating the kube-apiserver log: %w", err)
	}
	b.closers = append(b.closers, apiLog.Close)

	api := &envtest.APIServer{
		Path:    apiPath,
		CertDir: filepath.Join(b.workDir, "kube-apiserver"),
		Out:     apiLog,
		Err:     apiLog,
	}
	api.Configure().
		Set("audit-policy-file", policy).
		Set("audit-log-path", b.auditLog).
		Set("audit-log-format", "json").
		// Reset rewinds etcd to the revision the bed started at: keep every revision.
		Set("etcd-compaction-interval", "0").
		// Creating one of KServe's 2–3 MB CRDs (OLM installing OpenShift AI) took longer than
		// the default 60 s when three beds and Argo CDs shared the 2-core machine at load 30:
		// the API server answered 504 and the simulated InstallPlan failed. A real control
		// plane has dedicated nodes; the bed allows such a request 3 minutes.
		Set("request-timeout", "3m").
		// Responses travel over loopback only, where gzip buys nothing: compressing large
		// lists and watch events took 3–4 % of a bed API server's CPU (pprof during the
		// dev overlay's hand-off: compress/flate), and its clients (Argo CD, the
		// simulator, the bootstrap) spent more inflating them. A transport detail: every
		// response's content is the same.
		Append("feature-gates", "APIResponseCompression=false")
	etcd := &envtest.Etcd{
		Path:    etcdPath,
		DataDir: filepath.Join(b.workDir, "etcd"),
		Out:     etcdLog,
		Err:     etcdLog,
	}
	if from != "" {
		if err := copyDir(from, etcd.DataDir); err != nil {
			return fmt.Errorf("copying the CRD snapshot: %w", err)
		}
		// The snapshot's member was advertised on other ports: start it as a new
		// one-member cluster with the same data.
		etcd.Configure().Set("force-new-cluster", "true")
	}
	for _, d := range []string{api.CertDir, etcd.DataDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
	}
	if err := ConfigureFrontProxy(api, api.CertDir); err != nil {
		return err
	}
	k.env = &envtest.Environment{
		BinaryAssetsDirectory:    b.paths.Kubernetes,
		ControlPlane:             envtest.ControlPlane{APIServer: api, Etcd: etcd},
		ControlPlaneStartTimeout: 90 * time.Second,
		ControlPlaneStopTimeout:  controlPlaneStopGrace,
	}
	// envtest logs through controller-runtime's logger, which complains with a stack
	// trace when nobody set it; the bed's own log and the process logs say enough.
	ctrllog.SetLogger(logr.Discard())
	cfg, err := k.env.Start()
	if err != nil {
		// envtest may have started etcd before the API server failed.
		_ = k.env.Stop()
		k.env = nil
		return fmt.Errorf("starting kube-apiserver and etcd (logs in %s): %w", b.workDir, err)
	}
	b.config = cfg

	admin, err := b.UserConfig(AdminUser, "system:masters")
	if err != nil {
		return err
	}
	b.kubeconfig = filepath.Join(b.workDir, "kubeconfig")
	if err := writeKubeconfig(b.kubeconfig, b.opts.ClusterName, admin); err != nil {
		return err
	}
	return nil
}

// stopKube stops etcd and kube-apiserver, leaving etcd's data in place.
func (b *Bed) stopKube() error {
	if b.kube == nil {
		return nil
	}
	return b.kube.stopEnv()
}

// stopEnv stops etcd and kube-apiserver through envtest, once, after logging the CPU
// they used (cpulog).
func (k *kube) stopEnv() error {
	if k.env == nil {
		return nil
	}
	k.logCPU()
	err := k.env.Stop()
	k.env = nil
	return err
}

func appendTo(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
}

// stop stops the control plane through envtest, then kills whatever a PID
// file names that is still a live child of ours (a failed start-up retry).
func (k *kube) stop() error {
	err := k.stopEnv()
	for _, pid := range k.pids() {
		if ourChild(pid) {
			p, ferr := os.FindProcess(pid)
			if ferr == nil {
				_ = p.Kill()
			}
		}
	}
	return err
}

// logCPU logs the CPU used so far by the live etcd and kube-apiserver (cpulog).
func (k *kube) logCPU() {
	for _, f := range k.pidFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(line); err == nil && ourChild(pid) {
				cpulog.Live(strings.TrimSuffix(filepath.Base(f), ".pids"), pid)
			}
		}
	}
}

// pids returns every PID the shims recorded: etcd and kube-apiserver, and
// any earlier attempt envtest made when a start failed and it retried.
func (k *kube) pids() []int {
	var pids []int
	for _, f := range k.pidFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(line); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// writeShim writes an executable script named name that appends its PID to
// pidFile (except for the --help probes envtest runs to discover flags) and
// execs target under setpriv's parent-death signal, with env (KEY=VALUE) added to
// its environment. Without setpriv the shim still records the PID; the process
// then outlives a SIGKILLed parent (Stop still ends it).
func writeShim(dir, name, target, pidFile string, env ...string) (string, error) {
	execLine := "exec " + shellQuote(target) + ` "$@"`
	if setpriv, err := exec.LookPath("setpriv"); err == nil {
		execLine = "exec " + shellQuote(setpriv) + " --pdeathsig KILL -- " + shellQuote(target) + ` "$@"`
	}
	script := "#!/bin/sh\n" +
		`[ "$1" = --help ] || echo $$ >> ` + shellQuote(pidFile) + "\n"
	for _, kv := range env {
		script += "export " + shellQuote(kv) + "\n"
	}
	script += execLine + "\n"
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		return "", fmt.Errorf("writing the %s shim: %w", name, err)
	}
	return path, nil
}

// writeKubeconfig writes a self-contained kubeconfig (certificates inline)
// for cfg, laid out like an installer's auth/kubeconfig.
func writeKubeconfig(path, clusterName string, cfg *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters[clusterName] = &clientcmdapi.Cluster{
		Server:                   cfg.Host,
		CertificateAuthorityData: cfg.CAData,
	}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData,
		ClientKeyData:         cfg.KeyData,
	}
	kc.Contexts["admin"] = &clientcmdapi.Context{Cluster: clusterName, AuthInfo: "admin"}
	kc.CurrentContext = "admin"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return nil
}

// WriteKubeconfig writes a self-contained kubeconfig for cfg at path, for programs that
// take one (cmjudge).
func WriteKubeconfig(path string, cfg *rest.Config) error {
	return writeKubeconfig(path, "bed", cfg)
}
