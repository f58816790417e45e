package fakeinstall_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/fakeinstall"
)

// binary is the fake, built once for all tests.
var binary string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "fake-openshift-install-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating a temporary folder:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "openshift-install")
	build := exec.Command("go", "build", "-o", binary, "github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/cmd/openshift-install")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the fake openshift-install: %v\n%s", err, out)
		return 1
	}
	defer stopBed()
	return m.Run()
}

// result is what one run of the fake produced.
type result struct {
	code           int
	stdout, stderr string
}

// cleanEnv is the test process environment without anything that steers
// the fake or points at a cluster.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "FAKE_OPENSHIFT_INSTALL_") || strings.HasPrefix(kv, "KUBECONFIG=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// command prepares a run of the fake with env added to a clean environment.
func command(env []string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	cmd := exec.Command(binary, args...)
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return cmd, &stdout, &stderr
}

// run runs the fake to completion.
func run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd, stdout, stderr := command(env, args...)
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("running %v: %v", args, err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// start starts the fake in the background; the cleanup kills it by PID if
// the test did not wait for it.
func start(t *testing.T, env []string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd, _, stderr := command(env, args...)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
	})
	return cmd, stderr
}

// workspace is one assets folder and its registry.
type workspace struct {
	dir, registry string
}

func newWorkspace(t *testing.T) workspace {
	base := t.TempDir()
	w := workspace{dir: filepath.Join(base, "install"), registry: filepath.Join(base, "registry")}
	require.NoError(t, os.MkdirAll(w.dir, 0o755))
	return w
}

func (w workspace) path(p ...string) string { return filepath.Join(append([]string{w.dir}, p...)...) }

func (w workspace) reg() fakeinstall.Registry { return fakeinstall.Registry{Dir: w.registry} }

// env is the environment for the fake: this registry, a short stage delay,
// plus extra settings.
func (w workspace) env(extra ...string) []string {
	return append([]string{
		"FAKE_OPENSHIFT_INSTALL_REGISTRY=" + w.registry,
		"FAKE_OPENSHIFT_INSTALL_STAGE_DELAY=40ms",
	}, extra...)
}

// installConfig is a valid AWS install-config as a generic document, for
// tests to edit.
func installConfig(name string) map[string]any {
	zones := []any{"us-west-2a", "us-west-2b", "us-west-2c"}
	return map[string]any{
		"apiVersion": "v1",
		"metadata":   map[string]any{"name": name},
		"baseDomain": "example.com",
		"controlPlane": map[string]any{
			"name": "master", "replicas": 3,
			"platform": map[string]any{"aws": map[string]any{"type": "m6i.2xlarge", "zones": zones}},
		},
		"compute": []any{map[string]any{
			"name": "worker", "replicas": 5,
			"platform": map[string]any{"aws": map[string]any{"type": "m6i.4xlarge", "zones": zones}},
		}},
		"networking": map[string]any{"networkType": "OVNKubernetes"},
		"platform":   map[string]any{"aws": map[string]any{"region": "us-west-2"}},
		"pullSecret": `{"auths":{"registry.example.com":{"auth":"dXNlcjpwYXNz"}}}`,
		"sshKey":     "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINlVO2yCSI1aDEZnTw9+jGB18/oEpheO0CD7CCXD83aG test@example.com",
	}
}

func (w workspace) writeInstallConfig(t *testing.T, cfg map[string]any) {
	t.Helper()
	data, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(w.path("install-config.yaml"), data, 0o600))
}

// manifests writes an install-config named name and runs create manifests,
// returning the infraID.
func (w workspace) manifests(t *testing.T, name string, env []string) string {
	t.Helper()
	w.writeInstallConfig(t, installConfig(name))
	res := run(t, env, "create", "manifests", "--dir", w.dir)
	require.Equal(t, 0, res.code, "create manifests: %s", res.stderr)
	id, err := fakeinstall.InfraIDFromState(w.dir)
	require.NoError(t, err)
	return id
}

func (w workspace) record(t *testing.T, infraID string) *fakeinstall.Cluster {
	t.Helper()
	c, err := w.reg().Cluster(infraID)
	require.NoError(t, err)
	require.NotNil(t, c, "no registry record for %s", infraID)
	return c
}

// waitForStage polls the registry until infraID's record shows stage in
// progress.
func (w workspace) waitForStage(t *testing.T, infraID, stage string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		c, err := w.reg().Cluster(infraID)
		return err == nil && c != nil && c.InProgress == stage, nil
	})
	require.NoError(t, err, "stage %s never started for %s", stage, infraID)
}

// testBed is a kube-apiserver + etcd from envtest serving the kinds the
// fake applies: MachineSet and Machine, ClusterVersion, Infrastructure and
// Ingress (openshift/api), ClusterAutoscaler and MachineAutoscaler
// (cluster-autoscaler-operator), all read from the Go module cache.
type testBed struct {
	control    *envtest.Environment
	kubeconfig string
	dyn        dynamic.Interface
	dir        string
}

var (
	bedOnce sync.Once
	bed     *testBed
	bedErr  error
)

var errNoBinaries = errors.New("the kube-apiserver/etcd binaries are not built")

const (
	openshiftAPIModule = "github.com/openshift/api@v0.0.0-20260610192510-1b2a074e0bd6"
	autoscalerModule   = "github.com/openshift/cluster-autoscaler-operator@v0.0.1-0.20260608074635-5c8643284941"
)

// requireBed starts the shared bed on first use. Missing binaries fail the
// test unless RHOAI_E2E_ALLOW_SKIP=1.
func requireBed(t *testing.T) *testBed {
	t.Helper()
	bedOnce.Do(func() {
		began := time.Now()
		bed, bedErr = startBed()
		t.Logf("started the API server (envtest) in %v", time.Since(began).Round(time.Millisecond))
	})
	if bedErr != nil {
		if errors.Is(bedErr, errNoBinaries) && os.Getenv("RHOAI_E2E_ALLOW_SKIP") == "1" {
			t.Skipf("skipping (RHOAI_E2E_ALLOW_SKIP=1): %v", bedErr)
		}
		t.Fatalf("starting the API server: %v", bedErr)
	}
	return bed
}

func startBed() (*testBed, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return nil, err
	}
	assets := filepath.Join(home, ".cache", "rhoai-bootstrap", "testbin", "v1.37.2")
	for _, b := range []string{"etcd", "kube-apiserver", "kubectl"} {
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			return nil, fmt.Errorf("%w (build them with e2e/testbin/build.sh): %v", errNoBinaries, err)
		}
	}
	api, err := moduleDir(openshiftAPIModule)
	if err != nil {
		return nil, err
	}
	cao, err := moduleDir(autoscalerModule)
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDInstallOptions: envtest.CRDInstallOptions{
			Paths: []string{
				filepath.Join(api, "machine/v1beta1/zz_generated.crd-manifests/0000_10_machine-api_01_machinesets-Default.crd.yaml"),
				filepath.Join(api, "machine/v1beta1/zz_generated.crd-manifests/0000_10_machine-api_01_machines-Default.crd.yaml"),
				filepath.Join(api, "config/v1/zz_generated.crd-manifests/0000_00_cluster-version-operator_01_clusterversions-Default.crd.yaml"),
				filepath.Join(api, "config/v1/zz_generated.crd-manifests/0000_10_config-operator_01_infrastructures-Default.crd.yaml"),
				filepath.Join(api, "config/v1/zz_generated.crd-manifests/0000_10_config-operator_01_ingresses.crd.yaml"),
				filepath.Join(cao, "install/01_clusterautoscaler.crd.yaml"),
				filepath.Join(cao, "install/02_machineautoscaler.crd.yaml"),
			},
			ErrorIfPathMissing: true,
		},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("starting envtest: %w", err)
	}
	b := &testBed{control: env}
	fail := func(err error) (*testBed, error) {
		_ = env.Stop()
		if b.dir != "" {
			os.RemoveAll(b.dir)
		}
		return nil, err
	}
	if b.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		return fail(err)
	}
	user, err := env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fail(fmt.Errorf("adding the admin user: %w", err))
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return fail(fmt.Errorf("rendering the admin kubeconfig: %w", err))
	}
	if b.dir, err = os.MkdirTemp("", "fake-install-bed-"); err != nil {
		return fail(err)
	}
	b.kubeconfig = filepath.Join(b.dir, "kubeconfig")
	if err := os.WriteFile(b.kubeconfig, kc, 0o600); err != nil {
		return fail(err)
	}
	// The seeded ClusterVersion of a fresh cluster, as the real bed has it.
	cv := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "config.openshift.io/v1", "kind": "ClusterVersion",
		"metadata": map[string]any{"name": "version"},
		"spec":     map[string]any{"clusterID": uuid.NewString(), "channel": "stable-4.20"},
	}}
	if _, err := b.dyn.Resource(clusterVersionGVR).Create(context.Background(), cv, metav1.CreateOptions{}); err != nil {
		return fail(fmt.Errorf("creating ClusterVersion version: %w", err))
	}
	return b, nil
}

func stopBed() {
	if bed == nil {
		return
	}
	if err := bed.control.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
	os.RemoveAll(bed.dir)
}

// moduleDir finds a module in the module cache (downloading it through the
// proxy if needed), outside any module so go.mod and go.sum stay untouched.
func moduleDir(mod string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", mod)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GO111MODULE=on")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w", mod, err)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		return "", fmt.Errorf("parsing go mod download %s: %w", mod, err)
	}
	if info.Dir == "" {
		return "", fmt.Errorf("go mod download %s: %s", mod, info.Error)
	}
	return info.Dir, nil
}

var (
	clusterVersionGVR    = schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "clusterversions"}
	infrastructureGVR    = schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "infrastructures"}
	machineSetGVR        = schema.GroupVersionResource{Group: "machine.openshift.io", Version: "v1beta1", Resource: "machinesets"}
	machineGVR           = schema.GroupVersionResource{Group: "machine.openshift.io", Version: "v1beta1", Resource: "machines"}
	machineAutoscalerGVR = schema.GroupVersionResource{Group: "autoscaling.openshift.io", Version: "v1beta1", Resource: "machineautoscalers"}
	clusterAutoscalerGVR = schema.GroupVersionResource{Group: "autoscaling.openshift.io", Version: "v1", Resource: "clusterautoscalers"}
)

// env is the environment for a run against the bed.
func (b *testBed) env(w workspace, extra ...string) []string {
	return w.env(append([]string{"FAKE_OPENSHIFT_INSTALL_KUBECONFIG=" + b.kubeconfig}, extra...)...)
}

// machineSets lists the bed's MachineSets of infraID.
func (b *testBed) machineSets(t *testing.T, infraID string) []unstructured.Unstructured {
	t.Helper()
	list, err := b.dyn.Resource(machineSetGVR).Namespace("openshift-machine-api").List(context.Background(),
		metav1.ListOptions{LabelSelector: "machine.openshift.io/cluster-api-cluster=" + infraID})
	require.NoError(t, err)
	return list.Items
}

// condition returns the status of ClusterVersion's condition typ.
func (b *testBed) cvCondition(t *testing.T, typ string) string {
	t.Helper()
	cv, err := b.dyn.Resource(clusterVersionGVR).Get(context.Background(), "version", metav1.GetOptions{})
	require.NoError(t, err)
	conds, _, _ := unstructured.NestedSlice(cv.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			s, _ := m["status"].(string)
			return s
		}
	}
	return ""
}

func (b *testBed) exists(t *testing.T, gvr schema.GroupVersionResource, ns, name string) bool {
	t.Helper()
	_, err := b.dyn.Resource(gvr).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false
	}
	require.NoError(t, err)
	return true
}
