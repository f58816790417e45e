package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/crds"
)

// CRDSet names a group of CustomResourceDefinitions that appear together on a
// real cluster: with the cluster itself, or when an operator is installed.
type CRDSet string

const (
	// CRDSetOpenShift is what a fresh OpenShift cluster serves: OLM
	// (Subscription, InstallPlan, CSV, OperatorGroup, CatalogSource, ...),
	// config.openshift.io, operator.openshift.io, console.openshift.io,
	// machine.openshift.io, the cluster autoscaler's ClusterAutoscaler /
	// MachineAutoscaler, and stand-ins for the aggregated APIs of
	// openshift-apiserver that the GitOps payload uses (ImageStream, Template,
	// Group) and for the cloud-credential operator's CredentialsRequest (the
	// payload's config-certificates asks it for cert-manager's Route53 credentials).
	CRDSetOpenShift CRDSet = "openshift"
	// CRDSetOpenShiftAI is what the OpenShift AI operator (rhods-operator 3.4)
	// brings: the Open Data Hub v3.4.0 kinds (DataScienceCluster v2,
	// DSCInitialization, HardwareProfile, Auth, the component kinds), KServe's
	// (InferenceService, ServingRuntime, ClusterServingRuntime) and
	// Models-as-a-Service's, read from the shared CRD folder (SharedCRDDir).
	CRDSetOpenShiftAI CRDSet = "openshift-ai"
	// CRDSetNVIDIA is the NVIDIA GPU operator's ClusterPolicy and
	// NVIDIADriver.
	CRDSetNVIDIA CRDSet = "nvidia"
	// CRDSetArgoCD is what the OpenShift GitOps operator brings: Argo CD's
	// Application and AppProject (from the Argo CD release the bed runs), and
	// the operator's ArgoCD. ApplicationSet is left out: nothing here uses
	// it, and its 1.4 MB schema cost the API server ~3 s of CPU at every
	// operator install (a payload that starts using it fails loudly: Argo CD
	// cannot apply a kind the bed does not serve).
	CRDSetArgoCD CRDSet = "argocd"
	// CRDSetKuadrant is Red Hat Connectivity Link's (Kuadrant's) kinds.
	CRDSetKuadrant CRDSet = "kuadrant"
	// CRDSetNFD and CRDSetLeaderWorkerSet are the Node Feature Discovery and
	// LeaderWorkerSet operators' kinds.
	// No real CRD of theirs can be had here (their repositories are not served
	// as modules): minimal stand-ins with the real group, version, kind and
	// scope, shared with the payload's dry-run test (manifests/testdata/crds).
	CRDSetNFD             CRDSet = "nfd"
	CRDSetLeaderWorkerSet CRDSet = "leader-worker-set"
	// CRDSetCertManager is cert-manager's Certificate, CertificateRequest and
	// ClusterIssuer, which the cert-manager Operator for Red Hat OpenShift brings
	// when the payload subscribes to it (the real bundle brings Issuer, Order and
	// Challenge too; nothing on the bed uses them, and each CRD costs every bed start).
	CRDSetCertManager CRDSet = "cert-manager"
	// CRDSetKueue is upstream Kueue's ResourceFlavor, ClusterQueue and LocalQueue,
	// which the Red Hat build of Kueue serves.
	CRDSetKueue CRDSet = "kueue"
	// CRDSetGrafana is the community Grafana operator's kinds (stand-ins, see CRDSetNFD).
	CRDSetGrafana CRDSet = "grafana"
)

// DefaultCRDSets are installed by Start unless Options.CRDSets says otherwise:
// only what the cluster itself serves. Operators' kinds appear when the
// simulated OLM installs the operator (CRDSetsOf), as on a real cluster, so
// Argo CD's sync ordering meets kinds that do not exist yet.
var DefaultCRDSets = []CRDSet{CRDSetOpenShift}

// packageCRDs maps an OLM package to the CRD sets its bundle brings.
var packageCRDs = map[string][]CRDSet{
	"openshift-gitops-operator":       {CRDSetArgoCD},
	"rhods-operator":                  {CRDSetOpenShiftAI},
	"gpu-operator-certified":          {CRDSetNVIDIA},
	"nfd":                             {CRDSetNFD},
	"kueue-operator":                  {CRDSetKueue},
	"leader-worker-set":               {CRDSetLeaderWorkerSet},
	"rhcl-operator":                   {CRDSetKuadrant},
	"openshift-cert-manager-operator": {CRDSetCertManager},
	"grafana-operator":                {CRDSetGrafana},
}

// CRDSetsOf returns the CRD sets the OLM package pkg brings (none for a
// package whose kinds nothing on the bed uses).
func CRDSetsOf(pkg string) []CRDSet { return packageCRDs[pkg] }

// Module versions the CRDs are read from. They are looked up in the Go module
// cache (downloaded through the module proxy when missing), never copied into
// the repository.
const (
	operatorFrameworkAPI      = "github.com/operator-framework/api@v0.45.0"
	openshiftAPI              = "github.com/openshift/api@v0.0.0-20260610192510-1b2a074e0bd6"
	clusterAutoscalerOperator = "github.com/openshift/cluster-autoscaler-operator@v0.0.1-0.20260608074635-5c8643284941"
	argoCD                    = "github.com/argoproj/argo-cd/v3@" + DefaultArgoCDVersion
	gpuOperator               = "github.com/NVIDIA/gpu-operator@v0.0.0-20250917190837-d73a0086a6ba"
	pebbleModule              = "github.com/letsencrypt/pebble/v2@" + DefaultPebbleVersion
	// CertManagerModule is cert-manager as the cert-manager Operator for Red Hat OpenShift
	// ships it; e2e/testbin/build.sh builds cmjudge from the same version.
	CertManagerModule  = "github.com/cert-manager/cert-manager@" + DefaultCertManagerVersion
	gatewayAPI         = "sigs.k8s.io/gateway-api@v1.2.1"
	prometheusOperator = "github.com/prometheus-operator/prometheus-operator@v0.85.0"
	kueueModule        = "sigs.k8s.io/kueue@v0.17.0"
)

// crdSource is a folder whose CRD files belong to a set: in a module (module
// set), in the shared CRD folder (shared set, see SharedCRDDir) or in this
// repository (repo set, relative to its root).
type crdSource struct {
	module, shared, repo string
	dir                  string
	// keep selects files; nil keeps every *.yaml file.
	keep func(name string) bool
}

func only(names ...string) func(string) bool {
	return func(name string) bool { return slices.Contains(names, name) }
}

// payloadStandIns are the payload dry-run test's stand-in CRDs (see CRDSetNFD).
const payloadStandIns = "manifests/testdata/crds"

var crdSources = map[CRDSet][]crdSource{
	CRDSetOpenShift: {
		{module: operatorFrameworkAPI, dir: "crds"},
		{module: openshiftAPI, dir: "config/v1/zz_generated.crd-manifests", keep: defaultFeatureSet},
		{module: openshiftAPI, dir: "operator/v1/zz_generated.crd-manifests", keep: defaultFeatureSet},
		{module: openshiftAPI, dir: "console/v1/zz_generated.crd-manifests", keep: defaultFeatureSet},
		{module: openshiftAPI, dir: "machine/v1beta1/zz_generated.crd-manifests", keep: defaultFeatureSet},
		{module: clusterAutoscalerOperator, dir: "install", keep: func(name string) bool { return strings.HasSuffix(name, ".crd.yaml") }},
		{repo: ".", dir: payloadStandIns, keep: only("imagestream.yaml", "template.yaml", "group.yaml", "credentialsrequest.yaml")},
		// OpenShift 4.19+ serves Gateway API v1.2.1 and cluster monitoring's ServiceMonitor /
		// PodMonitor (the sources the payload's dry-run test uses).
		{module: gatewayAPI, dir: "config/crd/standard"},
		{module: prometheusOperator, dir: "example/prometheus-operator-crd",
			keep: only("monitoring.coreos.com_servicemonitors.yaml", "monitoring.coreos.com_podmonitors.yaml")},
	},
	CRDSetOpenShiftAI: {
		{shared: ".", dir: "odh-v3.4.0"},
		// KServe is limited to the kinds the payload uses, as in its dry-run test: each CRD
		// is 2-3 MB and establishing them costs the bed's API server tens of seconds on the
		// loaded 2-core machine at every rehearsal's operator install (a payload that starts
		// using another kind fails loudly: Argo CD cannot apply a kind the bed does not serve).
		{shared: ".", dir: "kserve", keep: only("serving.kserve.io_inferenceservices.yaml",
			"serving.kserve.io_servingruntimes.yaml", "serving.kserve.io_llminferenceservices.yaml")},
		{shared: ".", dir: "maas"},
	},
	CRDSetNVIDIA: {
		{module: gpuOperator, dir: "config/crd/bases"},
	},
	CRDSetCertManager: {
		{module: CertManagerModule, dir: "deploy/crds", keep: func(name string) bool {
			return slices.Contains([]string{"cert-manager.io_certificates.yaml", "cert-manager.io_certificaterequests.yaml", "cert-manager.io_clusterissuers.yaml"}, name)
		}},
	},
	CRDSetArgoCD: {
		{module: argoCD, dir: "manifests/crds", keep: func(name string) bool { return name != "applicationset-crd.yaml" }},
	},
	CRDSetKuadrant: {{shared: ".", dir: "kuadrant"}},
	CRDSetNFD:      {{repo: ".", dir: payloadStandIns, keep: only("nfd.yaml")}},
	// The Red Hat build of Kueue serves upstream Kueue's kueue.x-k8s.io API.
	CRDSetKueue: {{module: kueueModule, dir: "config/components/crd/bases", keep: only("kueue.x-k8s.io_resourceflavors.yaml",
		"kueue.x-k8s.io_clusterqueues.yaml", "kueue.x-k8s.io_localqueues.yaml")}},
	CRDSetGrafana:         {{repo: ".", dir: payloadStandIns, keep: only("grafana.yaml")}},
	CRDSetLeaderWorkerSet: {{repo: ".", dir: payloadStandIns, keep: only("leaderworkersetoperator.yaml")}},
}

// embeddedCRDs are the sets' CRDs that we write ourselves (e2e/crds).
var embeddedCRDs = map[CRDSet][]string{
	CRDSetArgoCD: crds.GitOps,
}

// SharedCRDDir is the folder of real upstream CRDs no module serves (Open Data
// Hub / OpenShift AI, KServe, MaaS, Kuadrant; provenance in its README):
// $RHOAI_SHARED_CRDS, else ../shared/crds next to this repository's root.
// It is a test prerequisite, never copied into the repository.
func SharedCRDDir() (string, error) {
	if d := os.Getenv("RHOAI_SHARED_CRDS"); d != "" {
		return d, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "..", "shared", "crds"), nil
}

// defaultFeatureSet keeps the openshift/api manifests a default cluster
// serves: unsuffixed files and "-Default" variants, not TechPreviewNoUpgrade,
// DevPreviewNoUpgrade, CustomNoUpgrade, OKD or Hypershift ones.
func defaultFeatureSet(name string) bool {
	base := strings.TrimSuffix(name, ".crd.yaml")
	if base == name {
		return false
	}
	if strings.HasSuffix(base, "-Default") {
		return true
	}
	// "0000_10_config-operator_01_oauths": the part after the last "_"
	// carries the feature-set suffix when there is one.
	last := base[strings.LastIndex(base, "_")+1:]
	return !strings.Contains(last, "-")
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// InstallCRDs creates the CRDs of set (updating those that exist) and waits until all are
// Established. It is idempotent, so a simulated operator can call it whenever its
// Subscription succeeds.
func InstallCRDs(ctx context.Context, cfg *rest.Config, set CRDSet) error {
	objs, err := LoadCRDs(ctx, set)
	if err != nil {
		return err
	}
	return applyCRDs(ctx, cfg, objs)
}

// applyCRDs installs CRDs the way OLM's InstallPlan does
// (operator-framework/operator-lifecycle-manager pkg/controller/operators/catalog/step.go
// NewCRDV1Step): create, and on AlreadyExists update the live object with the new
// definition; then wait for the API (Established). Plain create and update, not
// server-side apply: the KServe CRDs are 2–3 MB each, and server-side apply's field
// tracking of such an object took the loaded bed's API server past its 60 s request
// timeout (a create of the same CRD took a third of the time).
func applyCRDs(ctx context.Context, cfg *rest.Config, objs []*unstructured.Unstructured) error {
	cfg = rest.CopyConfig(cfg)
	// Upstream CRDs use formats the API server does not know ("hostname",
	// "int32", ...); its warnings about them are noise here.
	cfg.WarningHandler = rest.NoWarnings{}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating a dynamic client: %w", err)
	}
	client := dyn.Resource(crdGVR)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, obj := range objs {
		g.Go(func() error {
			// A create the loaded API server timed out on (504 after its 60 s request
			// timeout; seen in CI for KServe's multi-MB CRDs) is tried again, as OLM
			// retries a plan's failing step within its retry window
			// (catalog/operator.go transitionInstallPlanState); the first attempt may
			// have gone through, which the retry's AlreadyExists → update covers.
			err := retry.OnError(crdRetry, transientAPIError, func() error {
				_, err := client.Create(gctx, obj, metav1.CreateOptions{FieldManager: fieldManager})
				if apierrors.IsAlreadyExists(err) {
					err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
						live, err := client.Get(gctx, obj.GetName(), metav1.GetOptions{})
						if err != nil {
							return err
						}
						upd := obj.DeepCopy()
						upd.SetResourceVersion(live.GetResourceVersion())
						_, err = client.Update(gctx, upd, metav1.UpdateOptions{FieldManager: fieldManager})
						return err
					})
				}
				return err
			})
			if err != nil {
				return fmt.Errorf("installing CRD %s: %w", obj.GetName(), err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return waitEstablished(ctx, client, objs)
}

// crdRetry bounds the retries of one CRD's install: 4 more attempts, 2 s apart and
// growing, each of which may itself take the API server's whole request timeout.
var crdRetry = wait.Backoff{Steps: 5, Duration: 2 * time.Second, Factor: 2, Jitter: 0.1}

// transientAPIError reports whether err is the API server being slow or briefly away
// rather than refusing the object.
func transientAPIError(err error) bool {
	return apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err)
}

// waitEstablished waits until every CRD in objs has Established=True. Each poll reads
// only the CRDs still pending, by name: listing the whole collection every 200 ms
// re-encoded (API server) and decoded (this process) every CRD the bed serves — ~150 of
// them, the multi-MB KServe ones among them, once OpenShift AI is installed — and was a
// fifth of a bed-overlay test binary's own CPU (pprof of TestRemoteStateAcrossRunners).
// OLM reads the same condition from its CRD informer.
func waitEstablished(ctx context.Context, client dynamic.ResourceInterface, objs []*unstructured.Unstructured) error {
	pending := make([]string, 0, len(objs))
	for _, obj := range objs {
		pending = append(pending, obj.GetName())
	}
	// OLM waits for the API without a deadline (StepStatusWaitingForAPI); the multi-MB
	// KServe CRDs took 20–50 s to become Established on the loaded 2-core machine.
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		still := pending[:0]
		for _, name := range pending {
			crd, err := client.Get(ctx, name, metav1.GetOptions{})
			if err != nil || !established(crd) {
				// A failed read is transient (or the CRD not there yet); the timeout reports it.
				still = append(still, name)
			}
		}
		pending = still
		return len(pending) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for CRDs to be Established (still pending: %s): %w", strings.Join(pending, ", "), err)
	}
	return nil
}

// established reports whether a CRD's Established condition is True.
func established(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// LoadCRDs reads the CRDs of set from the Go module cache and the embedded
// e2e/crds files, sorted by name. It fails if two files define the same CRD,
// so a feature-set filter that lets a second variant through is noticed.
func LoadCRDs(ctx context.Context, set CRDSet) ([]*unstructured.Unstructured, error) {
	if cached, ok := loadedCRDs.Load(set); ok {
		var out []*unstructured.Unstructured
		for _, o := range cached.([]*unstructured.Unstructured) {
			out = append(out, o.DeepCopy())
		}
		return out, nil
	}
	objs, err := loadCRDs(ctx, set)
	if err != nil {
		return nil, err
	}
	loadedCRDs.Store(set, objs)
	return LoadCRDs(ctx, set)
}

// loadedCRDs keeps each set's parsed CRDs for the life of the process: parsing the
// Argo CD set's YAML took a second of CPU each time a simulated OLM installed it, time a
// real operator install does not spend.
var loadedCRDs sync.Map // CRDSet -> []*unstructured.Unstructured

func loadCRDs(ctx context.Context, set CRDSet) ([]*unstructured.Unstructured, error) {
	files, err := crdFiles(ctx, set)
	if err != nil {
		return nil, err
	}
	byName := map[string]string{} // CRD name -> file, to catch duplicates
	var out []*unstructured.Unstructured
	for _, f := range files {
		objs, err := decodeCRDs(f.data)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f.name, err)
		}
		for _, obj := range objs {
			if prev, dup := byName[obj.GetName()]; dup {
				return nil, fmt.Errorf("CRD %s is defined in both %s and %s", obj.GetName(), prev, f.name)
			}
			byName[obj.GetName()] = f.name
			out = append(out, obj)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("CRD set %q has no CRDs", set)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out, nil
}

// crdFile is one file a CRD set is read from.
type crdFile struct {
	name string
	data []byte
}

// crdFiles reads the files of set, unparsed: LoadCRDs decodes them, and the
// CRD snapshot's cache key is their hash.
func crdFiles(ctx context.Context, set CRDSet) ([]crdFile, error) {
	sources, known := crdSources[set]
	if !known {
		if _, ok := embeddedCRDs[set]; !ok {
			return nil, fmt.Errorf("unknown CRD set %q", set)
		}
	}
	var modules []string
	for _, s := range sources {
		if s.module != "" {
			modules = append(modules, s.module)
		}
	}
	dirs, err := moduleDirs(ctx, modules...)
	if err != nil {
		return nil, err
	}
	var out []crdFile
	for _, s := range sources {
		var base string
		switch {
		case s.module != "":
			base = dirs[s.module]
		case s.shared != "":
			if base, err = SharedCRDDir(); err != nil {
				return nil, err
			}
		default:
			if base, err = ModuleRoot(); err != nil {
				return nil, err
			}
		}
		dir := filepath.Join(base, filepath.FromSlash(s.dir))
		entries, err := os.ReadDir(dir)
		if err != nil {
			if s.shared != "" {
				return nil, fmt.Errorf("reading the shared CRDs (a test prerequisite: set RHOAI_SHARED_CRDS to the shared/crds folder): %w", err)
			}
			return nil, fmt.Errorf("listing CRDs of set %s: %w", set, err)
		}
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || !strings.HasSuffix(name, ".yaml") || (s.keep != nil && !s.keep(name)) {
				continue
			}
			file := filepath.Join(dir, name)
			data, err := os.ReadFile(file)
			if err != nil {
				return nil, fmt.Errorf("reading CRD file: %w", err)
			}
			out = append(out, crdFile{name: file, data: data})
		}
	}
	for _, name := range embeddedCRDs[set] {
		data, err := fs.ReadFile(crds.FS(), name)
		if err != nil {
			return nil, fmt.Errorf("reading embedded CRD %s: %w", name, err)
		}
		out = append(out, crdFile{name: path.Join("e2e/crds", name), data: data})
	}
	return out, nil
}

// decodeCRDs returns the CustomResourceDefinitions in a (multi-document)
// YAML file, skipping other kinds (RBAC, kustomizations) that share folders
// with them. Status is dropped: the API server owns it.
func decodeCRDs(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if m == nil || m["kind"] != "CustomResourceDefinition" {
			continue
		}
		obj := &unstructured.Unstructured{Object: m}
		unstructured.RemoveNestedField(obj.Object, "status")
		unstructured.RemoveNestedField(obj.Object, "metadata", "creationTimestamp")
		out = append(out, obj)
	}
}

// moduleDirCache remembers module folders for the life of the process, so a
// simulator installing a set mid-test does not pay for `go mod download`.
var moduleDirCache sync.Map // "path@version" -> dir

// moduleDirs returns the module cache folder of each "path@version", with
// one `go mod download -json` for those not yet known. It runs outside any
// module so it never touches the repository's go.mod or go.sum.
func moduleDirs(ctx context.Context, modules ...string) (map[string]string, error) {
	dirs := map[string]string{}
	var missing []string
	for _, m := range modules {
		if d, ok := moduleDirCache.Load(m); ok {
			dirs[m] = d.(string)
		} else if !slices.Contains(missing, m) {
			missing = append(missing, m)
		}
	}
	// Modules needing a newer Go than the project's are downloaded by that toolchain
	// (the go command fetches it once, as e2e/testbin/build.sh does for Argo CD's build).
	byToolchain := map[string][]string{}
	for _, m := range missing {
		byToolchain[moduleToolchain[m]] = append(byToolchain[moduleToolchain[m]], m)
	}
	for toolchain, mods := range byToolchain {
		if err := downloadModules(ctx, toolchain, mods, dirs); err != nil {
			return nil, err
		}
	}
	return dirs, nil
}

// moduleToolchain names the Go toolchain that may download a module whose go.mod
// requires more than the project's Go (Argo CD v3.6: go 1.27.0).
var moduleToolchain = map[string]string{argoCD: envOr("ARGOCD_GOTOOLCHAIN", "go1.27.3")}

// downloadModules runs one `go mod download -json` for missing (with toolchain, when
// set) and records each module's folder in dirs and the process-wide cache.
func downloadModules(ctx context.Context, toolchain string, missing []string, dirs map[string]string) error {
	cmd := exec.CommandContext(ctx, "go", append([]string{"mod", "download", "-json"}, missing...)...)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GO111MODULE=on")
	if toolchain != "" {
		cmd.Env = append(cmd.Env, "GOTOOLCHAIN="+toolchain)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	// go mod download prints one JSON object per module, with Error set for
	// the ones it could not fetch; it exits non-zero if any failed.
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var info struct {
			Path, Version, Dir, Error string
		}
		if err := dec.Decode(&info); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("reading go mod download output: %w", err)
		}
		key := info.Path + "@" + info.Version
		if info.Error != "" || info.Dir == "" {
			return fmt.Errorf("go mod download %s: %s", key, info.Error)
		}
		moduleDirCache.Store(key, info.Dir)
		dirs[key] = info.Dir
	}
	for _, m := range missing {
		if _, ok := dirs[m]; !ok {
			return fmt.Errorf("go mod download %s: %v: %s", m, runErr, stderr.String())
		}
	}
	return nil
}
