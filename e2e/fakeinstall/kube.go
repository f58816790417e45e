package fakeinstall

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// FieldManager is the server-side apply field manager of what the fake
// applies to the bed.
const FieldManager = "openshift-install"

// cvoFieldManager writes ClusterVersion status, as the CVO would.
const cvoFieldManager = "cluster-version-operator"

// closedPortURL returns an https URL on 127.0.0.1 where nothing listens:
// the API server of a cluster whose control plane is not up yet. The port is
// taken from the kernel and released, so connecting is refused.
func closedPortURL() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("picking a closed port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("releasing %s: %w", addr, err)
	}
	return "https://" + addr, nil
}

// adminKubeconfig lays out auth/kubeconfig like the installer: one cluster
// named after the cluster, user "admin", context "admin", current.
func adminKubeconfig(clusterName string, cluster *clientcmdapi.Cluster, user *clientcmdapi.AuthInfo) ([]byte, error) {
	kc := clientcmdapi.NewConfig()
	kc.Clusters[clusterName] = cluster
	kc.AuthInfos["admin"] = user
	kc.Contexts["admin"] = &clientcmdapi.Context{Cluster: clusterName, AuthInfo: "admin"}
	kc.CurrentContext = "admin"
	data, err := clientcmd.Write(*kc)
	if err != nil {
		return nil, fmt.Errorf("encoding the admin kubeconfig: %w", err)
	}
	return data, nil
}

// selfSignedAdmin returns a cluster entry for server and an admin user with
// a client certificate (CN system:admin, O system:masters) from a fresh CA,
// as the installer generates them at ignition time.
func selfSignedAdmin(server string, now time.Time) (*clientcmdapi.Cluster, *clientcmdapi.AuthInfo, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating the admin CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{OrganizationalUnit: []string{"openshift"}, CommonName: "admin-kubeconfig-signer"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("signing the admin CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing the admin CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating the admin key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{Organization: []string{"system:masters"}, CommonName: "system:admin"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("signing the admin certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the admin key: %w", err)
	}
	cluster := &clientcmdapi.Cluster{
		Server:                   server,
		CertificateAuthorityData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
	}
	user := &clientcmdapi.AuthInfo{
		ClientCertificateData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		ClientKeyData:         pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
	return cluster, user, nil
}

// bedAdmin returns the cluster and user of the current context of the
// kubeconfig at path (file references made absolute by clientcmd).
func bedAdmin(path string) (*clientcmdapi.Cluster, *clientcmdapi.AuthInfo, error) {
	kc, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("loading %s: %w", path, err)
	}
	ctxName := kc.CurrentContext
	if ctxName == "" && len(kc.Contexts) == 1 {
		for name := range kc.Contexts {
			ctxName = name
		}
	}
	c, ok := kc.Contexts[ctxName]
	if !ok {
		return nil, nil, fmt.Errorf("%s has no current context", path)
	}
	cluster, ok := kc.Clusters[c.Cluster]
	if !ok {
		return nil, nil, fmt.Errorf("%s: context %q names cluster %q, which is missing", path, ctxName, c.Cluster)
	}
	user, ok := kc.AuthInfos[c.AuthInfo]
	if !ok {
		return nil, nil, fmt.Errorf("%s: context %q names user %q, which is missing", path, ctxName, c.AuthInfo)
	}
	return cluster, user, nil
}

// kubeClient talks to the bed the way the installer's bootstrap does.
type kubeClient struct {
	disco  discovery.DiscoveryInterface
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
	// namespaces already known to exist.
	namespaces map[string]bool
}

func newKubeClient(kubeconfig string) (*kubeClient, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	cfg.Timeout = 30 * time.Second
	cfg.QPS, cfg.Burst = 50, 100
	cfg.UserAgent = "openshift-install (fake)"
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating a discovery client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(rest.CopyConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("creating a dynamic client: %w", err)
	}
	return &kubeClient{
		disco:      disco,
		dyn:        dyn,
		mapper:     restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disco)),
		namespaces: map[string]bool{},
	}, nil
}

// serverVersion is one /version call, the installer's API probe.
func (k *kubeClient) serverVersion() (string, error) {
	v, err := k.disco.ServerVersion()
	if err != nil {
		return "", err
	}
	return v.GitVersion, nil
}

// waitForAPI polls /version until it answers or timeout passes.
func (k *kubeClient) waitForAPI(ctx context.Context, timeout time.Duration) (string, error) {
	var version string
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		version, lastErr = k.serverVersion()
		return lastErr == nil, nil
	})
	if err != nil && lastErr != nil {
		return "", lastErr
	}
	return version, err
}

// mapping returns the REST mapping of gvk, or nil if the bed does not serve it.
func (k *kubeClient) mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	m, err := k.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking up %s: %w", gvk, err)
	}
	return m, nil
}

var namespaceGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}

// ensureNamespace creates ns if it is missing: a real cluster has every
// namespace the installer's manifests live in.
func (k *kubeClient) ensureNamespace(ctx context.Context, ns string) error {
	if k.namespaces[ns] {
		return nil
	}
	_, err := k.dyn.Resource(namespaceGVR).Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns},
		}}
		_, err = k.dyn.Resource(namespaceGVR).Create(ctx, obj, metav1.CreateOptions{FieldManager: FieldManager})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("ensuring namespace %s: %w", ns, err)
	}
	k.namespaces[ns] = true
	return nil
}

// applyFiles applies, server-side, every object in files whose kind the bed
// serves, in file-name order, as the bootstrap node's cluster-bootstrap does
// with the manifests baked into the bootstrap ignition. Kinds the bed does
// not serve are skipped and logged at debug level. config.openshift.io
// objects also get their status applied (the installer renders it; on a
// real cluster an operator publishes it).
func (k *kubeClient) applyFiles(ctx context.Context, files []assetFile, log *logger) ([]ObjectRef, error) {
	sorted := slices.Clone(files)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Filename < sorted[j].Filename })
	var refs []ObjectRef
	for _, f := range sorted {
		switch strings.ToLower(filepath.Ext(f.Filename)) {
		case ".yaml", ".yml", ".json":
		default:
			log.Debugf("Skipping %s: not a manifest", f.Filename)
			continue
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(f.Data), 4096)
		for {
			obj := map[string]any{}
			err := dec.Decode(&obj)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return refs, fmt.Errorf("decoding %s: %w", f.Filename, err)
			}
			if len(obj) == 0 {
				continue
			}
			ref, err := k.applyObject(ctx, &unstructured.Unstructured{Object: obj}, f.Filename, log)
			if err != nil {
				return refs, err
			}
			if ref != nil {
				refs = append(refs, *ref)
			}
		}
	}
	return refs, nil
}

func (k *kubeClient) applyObject(ctx context.Context, u *unstructured.Unstructured, file string, log *logger) (*ObjectRef, error) {
	gvk := u.GroupVersionKind()
	if gvk.Kind == "" || u.GetName() == "" {
		return nil, fmt.Errorf("%s: an object without kind or metadata.name", file)
	}
	m, err := k.mapping(gvk)
	if err != nil {
		return nil, err
	}
	if m == nil {
		log.Debugf("Skipping %s %q from %s: the API server does not serve %s", gvk.Kind, u.GetName(), file, gvk.GroupVersion())
		return nil, nil
	}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	ns := ""
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ns = u.GetNamespace()
		if ns == "" {
			ns = metav1.NamespaceDefault
			u.SetNamespace(ns)
		}
		if err := k.ensureNamespace(ctx, ns); err != nil {
			return nil, err
		}
	} else {
		u.SetNamespace("")
	}
	res := k.dyn.Resource(m.Resource).Namespace(ns)
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	if _, err := res.Apply(ctx, u.GetName(), u, opts); err != nil {
		return nil, fmt.Errorf("applying %s %s from %s: %w", gvk.Kind, qualified(ns, u.GetName()), file, err)
	}
	if status, ok := u.Object["status"].(map[string]any); ok && len(status) > 0 && gvk.Group == "config.openshift.io" {
		if _, err := res.ApplyStatus(ctx, u.GetName(), u, opts); err != nil {
			return nil, fmt.Errorf("applying the status of %s %s from %s: %w", gvk.Kind, qualified(ns, u.GetName()), file, err)
		}
	}
	log.Debugf("Applied %s %s from %s", gvk.Kind, qualified(ns, u.GetName()), file)
	return &ObjectRef{
		Group: m.Resource.Group, Version: m.Resource.Version, Resource: m.Resource.Resource,
		Kind: gvk.Kind, Namespace: ns, Name: u.GetName(),
	}, nil
}

func qualified(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

var clusterVersionGVK = schema.GroupVersionKind{Group: "config.openshift.io", Version: "v1", Kind: "ClusterVersion"}

// setClusterVersionStatus writes status on ClusterVersion "version" (made
// if missing, with spec.clusterID) through the status subresource, as the
// cluster-version operator would. It returns false if the bed does not serve
// ClusterVersion.
func (k *kubeClient) setClusterVersionStatus(ctx context.Context, clusterID, channel string, status configv1.ClusterVersionStatus) (bool, error) {
	m, err := k.mapping(clusterVersionGVK)
	if err != nil || m == nil {
		return false, err
	}
	res := k.dyn.Resource(m.Resource)
	cv, err := res.Get(ctx, "version", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		obj := &configv1.ClusterVersion{
			TypeMeta:   metav1.TypeMeta{APIVersion: configv1.GroupVersion.String(), Kind: clusterVersionGVK.Kind},
			ObjectMeta: metav1.ObjectMeta{Name: "version"},
			Spec:       configv1.ClusterVersionSpec{ClusterID: configv1.ClusterID(clusterID), Channel: channel},
		}
		var u *unstructured.Unstructured
		if u, err = objectOnly(obj); err == nil {
			cv, err = res.Create(ctx, u, metav1.CreateOptions{FieldManager: FieldManager})
		}
	}
	if err != nil {
		return true, fmt.Errorf("getting ClusterVersion version: %w", err)
	}
	status.ObservedGeneration = cv.GetGeneration()
	st, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&status)
	if err != nil {
		return true, fmt.Errorf("encoding the status of ClusterVersion version: %w", err)
	}
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(clusterVersionGVK)
	obj.SetName("version")
	obj.Object["status"] = st
	if _, err := res.ApplyStatus(ctx, "version", obj, metav1.ApplyOptions{FieldManager: cvoFieldManager, Force: true}); err != nil {
		return true, fmt.Errorf("updating the status of ClusterVersion version: %w", err)
	}
	return true, nil
}

// objectOnly encodes a typed object for the dynamic client without its status,
// which a create on a kind with a status subresource ignores.
func objectOnly(obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", obj, err)
	}
	delete(m, "status")
	return &unstructured.Unstructured{Object: m}, nil
}

// Kinds that `destroy cluster` removes from the bed: what dies with the
// cluster's machines. Other applied objects (config singletons, secrets)
// stay, because the bed outlives the fake cluster.
var (
	machineSetGVK        = schema.GroupVersionKind{Group: "machine.openshift.io", Version: "v1beta1", Kind: "MachineSet"}
	machineGVK           = schema.GroupVersionKind{Group: "machine.openshift.io", Version: "v1beta1", Kind: "Machine"}
	machineAutoscalerGVK = schema.GroupVersionKind{Group: "autoscaling.openshift.io", Version: "v1beta1", Kind: "MachineAutoscaler"}
	destroyGroups        = []string{"machine.openshift.io", "autoscaling.openshift.io"}
)

// deleteCluster deletes from the bed what the cluster's destruction takes
// with it: the machine-API and autoscaling objects applied for infraID,
// every MachineSet and Machine labelled with infraID (also those made after
// install), and MachineAutoscalers that target those MachineSets. It waits
// until they are gone and names the ones that are stuck.
func (k *kubeClient) deleteCluster(ctx context.Context, infraID string, applied []ObjectRef, log *logger) error {
	targets := map[ObjectRef]bool{}
	for _, ref := range applied {
		if slices.Contains(destroyGroups, ref.Group) {
			targets[ref] = true
		}
	}
	machineSets := map[string]bool{} // namespace/name
	for _, gvk := range []schema.GroupVersionKind{machineSetGVK, machineGVK} {
		m, err := k.mapping(gvk)
		if err != nil {
			return err
		}
		if m == nil {
			continue
		}
		list, err := k.dyn.Resource(m.Resource).List(ctx, metav1.ListOptions{LabelSelector: labelCluster + "=" + infraID})
		if err != nil {
			return fmt.Errorf("listing %s of %s: %w", m.Resource.Resource, infraID, err)
		}
		for _, item := range list.Items {
			targets[refOf(m, &item)] = true
		}
	}
	for ref := range targets {
		if ref.Kind == "MachineSet" {
			machineSets[qualified(ref.Namespace, ref.Name)] = true
		}
	}
	if m, err := k.mapping(machineAutoscalerGVK); err != nil {
		return err
	} else if m != nil {
		list, err := k.dyn.Resource(m.Resource).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("listing machineautoscalers: %w", err)
		}
		for _, item := range list.Items {
			kind, _, _ := unstructured.NestedString(item.Object, "spec", "scaleTargetRef", "kind")
			name, _, _ := unstructured.NestedString(item.Object, "spec", "scaleTargetRef", "name")
			if kind == "MachineSet" && machineSets[qualified(item.GetNamespace(), name)] {
				targets[refOf(m, &item)] = true
			}
		}
	}

	refs := make([]ObjectRef, 0, len(targets))
	for ref := range targets {
		refs = append(refs, ref)
	}
	sort.Slice(refs, func(i, j int) bool {
		return qualified(refs[i].Namespace, refs[i].Kind+"/"+refs[i].Name) < qualified(refs[j].Namespace, refs[j].Kind+"/"+refs[j].Name)
	})
	background := metav1.DeletePropagationBackground
	for _, ref := range refs {
		err := k.resource(ref).Delete(ctx, ref.Name, metav1.DeleteOptions{PropagationPolicy: &background})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("deleting %s %s: %w", ref.Kind, qualified(ref.Namespace, ref.Name), err)
		}
		log.entry(levelInfo, "Deleted", strings.ToLower(ref.Kind), qualified(ref.Namespace, ref.Name))
	}

	var stuck []string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		stuck = stuck[:0]
		for _, ref := range refs {
			obj, err := k.resource(ref).Get(ctx, ref.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return false, fmt.Errorf("checking %s %s: %w", ref.Kind, qualified(ref.Namespace, ref.Name), err)
			}
			stuck = append(stuck, fmt.Sprintf("%s %s (finalizers %v)", ref.Kind, qualified(ref.Namespace, ref.Name), obj.GetFinalizers()))
		}
		return len(stuck) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the cluster's objects to go (still there: %s): %w", strings.Join(stuck, ", "), err)
	}
	return nil
}

func (k *kubeClient) resource(ref ObjectRef) dynamic.ResourceInterface {
	gvr := schema.GroupVersionResource{Group: ref.Group, Version: ref.Version, Resource: ref.Resource}
	return k.dyn.Resource(gvr).Namespace(ref.Namespace)
}

func refOf(m *meta.RESTMapping, u *unstructured.Unstructured) ObjectRef {
	return ObjectRef{
		Group: m.Resource.Group, Version: m.Resource.Version, Resource: m.Resource.Resource,
		Kind: m.GroupVersionKind.Kind, Namespace: u.GetNamespace(), Name: u.GetName(),
	}
}
