//go:build e2e

package manifests_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// The kube-apiserver and etcd that e2e/testbin/build.sh builds. RHOAI_TESTBIN_K8S
// overrides the folder.
const testbinK8s = "v1.37.2"

// crdSource is a folder of a Go module whose CRD manifests a real cluster serves.
type crdSource struct {
	module, dir string
	keep        func(name string) bool // nil keeps every *.yaml
}

// defaultFeatureSet keeps openshift/api manifests that a default cluster serves:
// unsuffixed files and -Default variants (not TechPreview, DevPreview, OKD...).
func defaultFeatureSet(name string) bool {
	base, ok := strings.CutSuffix(name, ".crd.yaml")
	if !ok {
		return false
	}
	if strings.HasSuffix(base, "-Default") {
		return true
	}
	return !strings.Contains(base[strings.LastIndex(base, "_")+1:], "-")
}

const openshiftAPI = "github.com/openshift/api@v0.0.0-20260610192510-1b2a074e0bd6"

// CertManagerModule is cert-manager at the version the cert-manager Operator for Red Hat
// OpenShift runs; e2e/testbin/build.sh builds the policy judge from the same version.
const CertManagerModule = "github.com/cert-manager/cert-manager@v1.20.3"

// crdSources are the CRDs served as Go modules, read from the module cache.
var crdSources = []crdSource{
	{module: "github.com/operator-framework/api@v0.45.0", dir: "crds"},
	{module: openshiftAPI, dir: "config/v1/zz_generated.crd-manifests", keep: defaultFeatureSet},
	{module: openshiftAPI, dir: "operator/v1/zz_generated.crd-manifests", keep: defaultFeatureSet},
	{module: openshiftAPI, dir: "console/v1/zz_generated.crd-manifests", keep: defaultFeatureSet},
	{module: openshiftAPI, dir: "machine/v1beta1/zz_generated.crd-manifests", keep: defaultFeatureSet},
	{module: "github.com/openshift/cluster-autoscaler-operator@v0.0.1-0.20260608074635-5c8643284941", dir: "install",
		keep: func(n string) bool { return strings.HasSuffix(n, ".crd.yaml") }},
	{module: "github.com/argoproj/argo-cd/v3@v3.5.7", dir: "manifests/crds"},
	{module: "github.com/NVIDIA/gpu-operator@v0.0.0-20250917190837-d73a0086a6ba", dir: "config/crd/bases"},
	// OpenShift 4.19 and 4.20 serve Gateway API v1.2.1 (the standard channel), which
	// MaaS needs at v1.2 or newer (models-as-a-service docs/content/install/prerequisites.md).
	{module: "sigs.k8s.io/gateway-api@v1.2.1", dir: "config/crd/standard"},
	// ResourceFlavor, ClusterQueue, LocalQueue: the Red Hat build of Kueue serves
	// upstream Kueue's kueue.x-k8s.io/v1beta1 API.
	{module: "sigs.k8s.io/kueue@v0.17.0", dir: "config/components/crd/bases",
		keep: func(n string) bool {
			return slices.Contains([]string{"kueue.x-k8s.io_resourceflavors.yaml", "kueue.x-k8s.io_clusterqueues.yaml", "kueue.x-k8s.io_localqueues.yaml"}, n)
		}},
	// Certificate, ClusterIssuer (and the rest of cert-manager's kinds) at the version the
	// cert-manager Operator for Red Hat OpenShift ships (openshift/cert-manager-operator
	// Makefile CERT_MANAGER_VERSION); deploy/crds holds the controller-gen output.
	{module: CertManagerModule, dir: "deploy/crds"},
	// ServiceMonitor and PodMonitor, which user-workload monitoring reads.
	{module: "github.com/prometheus-operator/prometheus-operator@v0.85.0", dir: "example/prometheus-operator-crd",
		keep: func(n string) bool {
			return n == "monitoring.coreos.com_servicemonitors.yaml" || n == "monitoring.coreos.com_podmonitors.yaml"
		}},
}

// SharedCRDsEnv overrides where the real Open Data Hub / OpenShift AI, KServe, MaaS and
// Kuadrant CRDs are read from (default: ../shared/crds next to the repository).
const SharedCRDsEnv = "RHOAI_SHARED_CRDS"

// sharedCRDs are the files of the shared CRD folder the payload is checked against,
// by subfolder (nil: every file). odh-v3.4.0 matches the stable-3.4 channel the
// OpenShift AI Subscription names; KServe is limited to the kinds the payload uses
// (its CRDs are 2-3 MB each and the API server pays for every one).
var sharedCRDs = map[string][]string{
	"odh-v3.4.0": nil,
	"kserve": {
		"serving.kserve.io_inferenceservices.yaml",
		"serving.kserve.io_llminferenceservices.yaml",
		"serving.kserve.io_servingruntimes.yaml",
	},
	"maas":     nil,
	"kuadrant": nil,
}

// sharedCRDDir finds the shared CRD folder, failing with what to do when it is missing.
func sharedCRDDir(t *testing.T) string {
	dir := os.Getenv(SharedCRDsEnv)
	if dir == "" {
		// The package folder is manifests/; the repository root is its parent.
		dir = filepath.Join("..", "..", "shared", "crds")
	}
	abs, err := filepath.Abs(dir)
	require.NoError(t, err)
	for sub := range sharedCRDs {
		if st, err := os.Stat(filepath.Join(abs, sub)); err != nil || !st.IsDir() {
			t.Fatalf("the real CRDs are missing: %s has no %s/ folder. Put the shared CRD folder (odh-v3.4.0, kserve, maas, kuadrant) "+
				"next to the repository as ../shared/crds, or set %s to its path", abs, sub, SharedCRDsEnv)
		}
	}
	return abs
}

// TestDryRunPayload starts a real kube-apiserver, installs the real CRDs (and minimal
// ones for kinds no module serves), then server-side applies every object of every
// environment with dryRun=All and strict field validation: what a cluster would
// refuse, this refuses.
func TestDryRunPayload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cfg := startAPIServer(ctx, t)

	start := time.Now()
	n := installCRDs(ctx, t, cfg)
	t.Logf("%d CRDs installed and established in %s", n, time.Since(start).Round(time.Millisecond))

	checkPayload(ctx, t, cfg)
}

// checkPayload dry-runs every environment of the payload and the broken fixtures
// against the API server behind cfg, which must already serve the payload's kinds.
// It takes only a *rest.Config so that the shared test bed can run it too.
func checkPayload(ctx context.Context, t *testing.T, cfg *rest.Config) {
	d := newDryRunner(t, cfg)
	fsys := payloadFS(t)
	envs := map[string]rendered{}
	for _, o := range overlays {
		envs[o] = renderEnv(t, fsys, o)
	}
	envs["every optional component"] = renderEnv(t, fsys, allOptionalOverlay(t, fsys))

	for _, name := range sortedKeys(envs) {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			count, rejected, lost := d.env(ctx, t, envs[name])
			t.Logf("%d objects dry-run: %d rejected, %d with pruned fields (%s)", count, rejected, lost, time.Since(start).Round(time.Millisecond))
		})
	}
	// OpenShift AI 3.5 and later: the same API server, its OpenShift AI CRDs replaced
	// by those of opendatahub-operator main (the KServe and MaaS CRDs are main already).
	t.Run("release-3.5 on the odh-main CRDs", func(t *testing.T) {
		applyCRDs(ctx, t, cfg, sharedFolderCRDs(t, "odh-main"))
		r := map[string]rendered{}
		for _, env := range []string{"dev", "prod"} {
			r[env] = renderEnv(t, fsys, release35Overlay(t, fsys, env))
		}
		// An updated CRD is Established already; wait until the API server serves
		// the new DataScienceCluster schema (aigateway) before judging the payload.
		dsc := ofKind(r["dev"].children["instance-openshift-ai"], "DataScienceCluster")
		require.Len(t, dsc, 1)
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			return d.apply(ctx, t, dsc[0], "") == nil, nil
		})
		require.NoError(t, err, "the API server never served the odh-main DataScienceCluster schema: %v", d.apply(ctx, t, dsc[0], ""))
		for _, env := range []string{"dev", "prod"} {
			t.Run(env, func(t *testing.T) {
				start := time.Now()
				count, rejected, lost := d.env(ctx, t, r[env])
				t.Logf("%d objects dry-run: %d rejected, %d with pruned fields (%s)", count, rejected, lost, time.Since(start).Round(time.Millisecond))
			})
		}
	})
	t.Run("example-machineautoscalers", func(t *testing.T) {
		for _, o := range render(t, fsys, "components/configs/autoscaling/example-machineautoscalers") {
			assert.NoError(t, d.apply(ctx, t, o, ""), "%s/%s", kindOf(o), nameOf(o))
		}
	})
	t.Run("pruned fixtures are caught", func(t *testing.T) {
		files, err := filepath.Glob(filepath.Join("testdata", "pruned", "*.yaml"))
		require.NoError(t, err)
		require.NotEmpty(t, files)
		for _, f := range files {
			for _, o := range decodeFile(t, f) {
				err := d.apply(ctx, t, o, "")
				assert.ErrorIs(t, err, errPruned, "%s: a field the server drops went unnoticed", f)
				t.Logf("%s: %v", filepath.Base(f), err)
			}
		}
	})
	t.Run("broken fixtures are rejected", func(t *testing.T) {
		files, err := filepath.Glob(filepath.Join("testdata", "broken", "*.yaml"))
		require.NoError(t, err)
		require.NotEmpty(t, files)
		for _, f := range files {
			for _, o := range decodeFile(t, f) {
				err := d.apply(ctx, t, o, "")
				if assert.Error(t, err, "%s was accepted", f) {
					// Schema violations are 422 Invalid; unknown fields fail server-side
					// apply's typed patch with "field not declared in schema".
					assert.True(t, apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) ||
						strings.Contains(err.Error(), "field not declared in schema"),
						"%s: rejected for the wrong reason (%s): %v", f, apierrors.ReasonForError(err), err)
					t.Logf("%s: %s: %v", filepath.Base(f), apierrors.ReasonForError(err), err)
				}
			}
		}
	})
}

// allOptionalOverlay writes a throw-away overlay: dev plus every optional component.
func allOptionalOverlay(t *testing.T, fsys filesys.FileSystem) string {
	dir := "clusters/overlays/every-optional"
	kfile := path.Join(fsRoot, "clusters/overlays/dev/kustomization.yaml")
	data, err := fsys.ReadFile(kfile)
	require.NoError(t, err)
	entries, err := fsys.ReadDir(path.Join(fsRoot, "components/argocd/optional"))
	require.NoError(t, err)
	var extra []string
	for _, e := range entries {
		if e != "operators-extra" && e != "release-3.5" { // dev has the first; the second needs other CRDs
			extra = append(extra, "  - ../../../components/argocd/optional/"+e)
		}
	}
	sort.Strings(extra)
	out := strings.Replace(string(data), "components:\n", "components:\n"+strings.Join(extra, "\n")+"\n", 1)
	require.NotEqual(t, string(data), out)
	require.NoError(t, fsys.WriteFile(path.Join(fsRoot, dir, "kustomization.yaml"), []byte(out)))
	src, err := fsys.ReadFile(path.Join(fsRoot, "clusters/overlays/dev/source.yaml"))
	require.NoError(t, err)
	require.NoError(t, fsys.WriteFile(path.Join(fsRoot, dir, "source.yaml"), src))
	return dir
}

// startAPIServer runs etcd and kube-apiserver through envtest and stops them when the
// test ends, pass or fail.
func startAPIServer(ctx context.Context, t *testing.T) *rest.Config {
	t.Helper()
	dir := os.Getenv("RHOAI_TESTBIN_K8S")
	if dir == "" {
		home, err := os.UserHomeDir()
		require.NoError(t, err)
		dir = filepath.Join(home, ".cache", "rhoai-bootstrap", "testbin", testbinK8s)
	}
	// The binaries may still be building (e2e/testbin/build.sh, ~10 min cold).
	err := wait.PollUntilContextTimeout(ctx, 5*time.Second, 9*time.Minute, true, func(context.Context) (bool, error) {
		for _, b := range []string{"etcd", "kube-apiserver", "kubectl"} {
			if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
				return false, nil
			}
		}
		return true, nil
	})
	require.NoError(t, err, "kube-apiserver/etcd not found in %s: run e2e/testbin/build.sh", dir)

	env := &envtest.Environment{
		BinaryAssetsDirectory:    dir,
		ControlPlaneStartTimeout: 90 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	start := time.Now()
	cfg, err := env.Start()
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping the API server: %v", err)
		}
	})
	require.NoError(t, err, "starting kube-apiserver and etcd")
	t.Logf("kube-apiserver %s started in %s", testbinK8s, time.Since(start).Round(time.Millisecond))
	return cfg
}

// installCRDs applies every CRD the payload needs, server-side (several exceed the
// client-side apply annotation limit), and waits until they are Established.
func installCRDs(ctx context.Context, t *testing.T, cfg *rest.Config) int {
	t.Helper()
	var objs []*unstructured.Unstructured
	dirs := moduleDirs(ctx, t)
	for _, s := range crdSources {
		root := filepath.Join(dirs[s.module], filepath.FromSlash(s.dir))
		entries, err := os.ReadDir(root)
		require.NoError(t, err, s.module)
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") || (s.keep != nil && !s.keep(e.Name())) {
				continue
			}
			objs = append(objs, crdsIn(t, filepath.Join(root, e.Name()))...)
		}
	}
	shared := sharedCRDDir(t)
	for _, sub := range sortedKeys(sharedCRDs) {
		files := sharedCRDs[sub]
		if files == nil {
			entries, err := os.ReadDir(filepath.Join(shared, sub))
			require.NoError(t, err)
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".yaml") {
					files = append(files, e.Name())
				}
			}
		}
		for _, f := range files {
			objs = append(objs, crdsIn(t, filepath.Join(shared, sub, f))...)
		}
	}
	local, err := filepath.Glob(filepath.Join("testdata", "crds", "*.yaml"))
	require.NoError(t, err)
	for _, f := range local {
		objs = append(objs, crdsIn(t, f)...)
	}
	applyCRDs(ctx, t, cfg, objs)
	return len(objs)
}

// sharedFolderCRDs reads every CRD of one folder of the shared CRDs.
func sharedFolderCRDs(t *testing.T, sub string) []*unstructured.Unstructured {
	dir := filepath.Join(sharedCRDDir(t), sub)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var objs []*unstructured.Unstructured
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".yaml") {
			objs = append(objs, crdsIn(t, filepath.Join(dir, e.Name()))...)
		}
	}
	require.NotEmpty(t, objs, dir)
	return objs
}

// applyCRDs applies CRDs server-side and waits until every one is Established.
func applyCRDs(ctx context.Context, t *testing.T, cfg *rest.Config, objs []*unstructured.Unstructured) {
	t.Helper()
	seen := map[string]bool{}
	dyn, err := dynamic.NewForConfig(cfg)
	require.NoError(t, err)
	client := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	for _, o := range objs {
		require.False(t, seen[o.GetName()], "CRD %s is defined twice", o.GetName())
		seen[o.GetName()] = true
		_, err := client.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: "payload-dryrun-test", Force: true})
		require.NoError(t, err, "applying CRD %s", o.GetName())
	}
	var pending []string
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := client.List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil //nolint:nilerr // transient; the timeout reports it
		}
		ok := map[string]bool{}
		for _, item := range l.Items {
			conds, _, _ := unstructured.NestedSlice(item.Object, "status", "conditions")
			for _, c := range conds {
				if m, _ := c.(map[string]any); m["type"] == "Established" && m["status"] == "True" {
					ok[item.GetName()] = true
				}
			}
		}
		pending = pending[:0]
		for name := range seen {
			if !ok[name] {
				pending = append(pending, name)
			}
		}
		return len(pending) == 0, nil
	})
	require.NoError(t, err, "CRDs not established: %v", pending)
}

func crdsIn(t *testing.T, file string) []*unstructured.Unstructured {
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	return decodeCRDs(t, file, data)
}

// decodeCRDs returns the CustomResourceDefinitions of a multi-document YAML file.
func decodeCRDs(t *testing.T, file string, data []byte) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, m := range decodeAll(t, file, data) {
		if m["kind"] != "CustomResourceDefinition" {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		unstructured.RemoveNestedField(u.Object, "status")
		unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
		out = append(out, u)
	}
	return out
}

func decodeFile(t *testing.T, file string) []obj {
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	return decodeAll(t, file, data)
}

func decodeAll(t *testing.T, file string, data []byte) []obj {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []obj
	for {
		var m obj
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err, file)
		if m != nil {
			out = append(out, m)
		}
	}
}

// moduleDirs finds each CRD module in the Go module cache (downloading it through the
// module proxy if needed). It runs outside any module, so go.mod is never touched.
func moduleDirs(ctx context.Context, t *testing.T) map[string]string {
	want := map[string]bool{}
	for _, s := range crdSources {
		want[s.module] = true
	}
	args := append([]string{"mod", "download", "-json"}, sortedKeys(want)...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GO111MODULE=on")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	dirs := map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var info struct{ Path, Version, Dir, Error string }
		if err := dec.Decode(&info); errors.Is(err, io.EOF) {
			break
		} else {
			require.NoError(t, err)
		}
		require.Empty(t, info.Error, "go mod download %s@%s", info.Path, info.Version)
		dirs[info.Path+"@"+info.Version] = info.Dir
	}
	for m := range want {
		require.NotEmpty(t, dirs[m], "go mod download %s: %v: %s", m, runErr, stderr.String())
	}
	return dirs
}

// dryRunner applies objects with dryRun=All through server-side apply.
type dryRunner struct {
	dyn    dynamic.Interface
	kube   kubernetes.Interface
	mapper meta.RESTMapper
}

func newDryRunner(t *testing.T, cfg *rest.Config) *dryRunner {
	dyn, err := dynamic.NewForConfig(cfg)
	require.NoError(t, err)
	kube, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	require.NoError(t, err)
	return &dryRunner{dyn: dyn, kube: kube, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

func gvkOf(o obj) schema.GroupVersionKind {
	gv, _ := schema.ParseGroupVersion(str(o, "apiVersion"))
	return gv.WithKind(kindOf(o))
}

// mapping resolves an object's resource and scope.
func (d *dryRunner) mapping(o obj) (*meta.RESTMapping, error) {
	gvk := gvkOf(o)
	m, err := d.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("the API server does not serve %s: %w", gvk, err)
	}
	return m, nil
}

// apply server-side applies o with dryRun=All and strict field validation. defaultNS
// is used for namespaced objects that name none (as Argo CD uses the destination).
func (d *dryRunner) apply(ctx context.Context, t *testing.T, o obj, defaultNS string) error {
	m, err := d.mapping(o)
	if err != nil {
		return err
	}
	// A JSON round trip gives a copy with JSON number types (kustomize yields ints).
	raw, err := json.Marshal(o)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(raw); err != nil {
		return err
	}
	var ri dynamic.ResourceInterface = d.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := u.GetNamespace()
		if ns == "" {
			ns = defaultNS
		}
		if ns == "" {
			return fmt.Errorf("namespaced %s/%s names no namespace and has no default", u.GetKind(), u.GetName())
		}
		d.ensureNamespace(ctx, t, ns)
		u.SetNamespace(ns)
		ri = d.dyn.Resource(m.Resource).Namespace(ns)
	} else if u.GetNamespace() != "" {
		return fmt.Errorf("cluster-scoped %s/%s sets a namespace", u.GetKind(), u.GetName())
	}
	data, err := json.Marshal(u.Object)
	if err != nil {
		return err
	}
	force := true
	got, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{
		FieldManager:    "payload-dryrun-test",
		Force:           &force,
		DryRun:          []string{metav1.DryRunAll},
		FieldValidation: metav1.FieldValidationStrict,
	})
	if err != nil {
		return err
	}
	// Strict validation rejects unknown fields, but not everything a schema drops:
	// the object the server would store must still hold every field we sent.
	if lost := pruned(u.Object, got.Object, ""); len(lost) > 0 {
		return fmt.Errorf("%w: %s", errPruned, strings.Join(lost, ", "))
	}
	return nil
}

// ensureNamespace creates a namespace for real: a dry-run create of a namespace does not
// make it exist for the objects that follow.
func (d *dryRunner) ensureNamespace(ctx context.Context, t *testing.T, name string) {
	_, err := d.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err, "creating namespace %s", name)
	}
}

// env dry-runs one environment: the root overlay's objects, then every child
// application's objects in its destination namespace, checking that the child's
// AppProject allows each kind.
func (d *dryRunner) env(ctx context.Context, t *testing.T, r rendered) (count, rejected, prunedObjs int) {
	judge := func(err error, id string) bool {
		switch {
		case err == nil:
			return true
		case errors.Is(err, errPruned):
			prunedObjs++
		default:
			rejected++
		}
		assert.NoError(t, err, id)
		return false
	}
	for _, o := range r.root {
		count++
		judge(d.apply(ctx, t, o, ""), fmt.Sprintf("root: %s/%s", kindOf(o), nameOf(o)))
	}
	projects := map[string]obj{}
	for _, p := range ofKind(r.root, "AppProject") {
		projects[nameOf(p)] = p
	}
	for _, name := range sortedKeys(r.children) {
		app := r.apps[name]
		proj := projects[str(app, "spec", "project")]
		require.NotNil(t, proj, name)
		dest := str(app, "spec", "destination", "namespace")
		for _, o := range r.children[name] {
			count++
			id := fmt.Sprintf("%s: %s/%s", name, kindOf(o), nameOf(o))
			if !judge(d.apply(ctx, t, o, dest), id) {
				continue
			}
			m, err := d.mapping(o)
			require.NoError(t, err)
			field := "namespaceResourceWhitelist"
			if m.Scope.Name() == meta.RESTScopeNameRoot {
				field = "clusterResourceWhitelist"
			}
			assert.True(t, allowed(list(proj, "spec", field), gvkOf(o).GroupKind()),
				"%s: AppProject %s does not allow %s in %s", id, nameOf(proj), gvkOf(o).GroupKind(), field)
		}
	}
	return count, rejected, prunedObjs
}

// allowed reports whether an AppProject whitelist admits a kind ("*" matches any).
func allowed(whitelist []any, gk schema.GroupKind) bool {
	for _, e := range whitelist {
		m, _ := e.(map[string]any)
		g, _ := m["group"].(string)
		k, _ := m["kind"].(string)
		if (g == "*" || g == gk.Group) && (k == "*" || k == gk.Kind) {
			return true
		}
	}
	return false
}
