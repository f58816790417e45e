package testbed

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"text/template"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

//go:embed seed.yaml
var seedTemplate string

// fieldManager is the server-side apply field manager of everything the bed
// writes, so tests can tell the bed's fields from the bootstrap's.
const fieldManager = "rhoai-testbed"

// seedClusterOperators are the ClusterOperators seeded as Available.
var seedClusterOperators = []string{"authentication", "ingress", "kube-apiserver"}

// seed applies the singletons of a fresh OpenShift cluster (seed.yaml),
// then each object's status through the status subresource.
func (b *Bed) seed(ctx context.Context) error {
	password := make([]byte, 18)
	if _, err := rand.Read(password); err != nil {
		return err
	}
	b.kubeadminPassword = hex.EncodeToString(password)
	hash, err := bcrypt.GenerateFromPassword([]byte(b.kubeadminPassword), bcrypt.MinCost)
	if err != nil {
		return fmt.Errorf("hashing the kubeadmin password: %w", err)
	}
	suffix := make([]byte, 3)
	if _, err := rand.Read(suffix); err != nil {
		return err
	}
	b.infraID = b.opts.ClusterName + "-" + hex.EncodeToString(suffix)[:5]
	vh := make([]byte, 8)
	if _, err := rand.Read(vh); err != nil {
		return err
	}
	data := map[string]any{
		"ClusterName":      b.opts.ClusterName,
		"BaseDomain":       b.opts.BaseDomain,
		"Region":           b.opts.Region,
		"InfraID":          b.infraID,
		"ClusterID":        uuid.NewString(),
		"Version":          b.opts.OpenShiftVersion,
		"VersionHash":      hex.EncodeToString(vh),
		"KubeadminHash":    string(hash),
		"Now":              time.Now().UTC().Format(time.RFC3339),
		"ClusterOperators": seedClusterOperators,
		// kube-system/aws-creds, as the installer leaves them for the cloud-credential operator.
		"AWSAccessKeyID":     awsAccessKeyID,
		"AWSSecretAccessKey": awsSecretAccessKey,
	}
	tmpl, err := template.New("seed.yaml").Option("missingkey=error").Parse(seedTemplate)
	if err != nil {
		return fmt.Errorf("parsing seed.yaml: %w", err)
	}
	var rendered bytes.Buffer
	if err := tmpl.Execute(&rendered, data); err != nil {
		return fmt.Errorf("rendering seed.yaml: %w", err)
	}

	dyn, err := dynamic.NewForConfig(b.config)
	if err != nil {
		return fmt.Errorf("creating a dynamic client: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(b.config)
	if err != nil {
		return fmt.Errorf("creating a discovery client: %w", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))

	dec := utilyaml.NewYAMLOrJSONDecoder(&rendered, 4096)
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("decoding seed.yaml: %w", err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		if err := applyWithStatus(ctx, dyn, mapper, obj); err != nil {
			return err
		}
	}
}

// applyWithStatus applies obj server-side, then its status (if any) through
// the status subresource, where the API server accepts it.
func applyWithStatus(ctx context.Context, dyn dynamic.Interface, mapper *restmapper.DeferredDiscoveryRESTMapper, obj *unstructured.Unstructured) error {
	gvk := obj.GroupVersionKind()
	mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("mapping %s: %w", gvk, err)
	}
	var client dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
	if ns := obj.GetNamespace(); ns != "" {
		client = dyn.Resource(mapping.Resource).Namespace(ns)
	}
	status, hasStatus, _ := unstructured.NestedMap(obj.Object, "status")
	unstructured.RemoveNestedField(obj.Object, "status")
	opts := metav1.ApplyOptions{FieldManager: fieldManager, Force: true}
	if _, err := client.Apply(ctx, obj.GetName(), obj, opts); err != nil {
		return fmt.Errorf("applying %s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	if !hasStatus {
		return nil
	}
	statusObj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": obj.GetAPIVersion(),
		"kind":       obj.GetKind(),
		"metadata":   map[string]any{"name": obj.GetName(), "namespace": obj.GetNamespace()},
		"status":     status,
	}}
	if obj.GetNamespace() == "" {
		unstructured.RemoveNestedField(statusObj.Object, "metadata", "namespace")
	}
	if _, err := client.ApplyStatus(ctx, obj.GetName(), statusObj, opts); err != nil {
		return fmt.Errorf("applying the status of %s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	return nil
}
