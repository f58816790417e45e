package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

// Resource returns the dynamic client for an object's kind (namespaced when it is).
func (c *Clients) Resource(gvk schema.GroupVersionKind, namespace string) (dynamic.ResourceInterface, error) {
	m, err := c.mapping(gvk)
	if err != nil {
		return nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return c.Dynamic.Resource(m.Resource).Namespace(namespace), nil
	}
	return c.Dynamic.Resource(m.Resource), nil
}

// mapping finds the resource of a kind, looking again when it is not known: CRDs may
// have appeared since the mapper last looked.
func (c *Clients) mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	m, err := c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		c.Mapper.Reset()
		m, err = c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("the cluster does not serve %s: %w", gvk, err)
	}
	return m, nil
}

// Get fetches an object; nil (no error) when it does not exist or its kind is not served.
func (c *Clients) Get(ctx context.Context, gvk schema.GroupVersionKind, namespace, name string) (*unstructured.Unstructured, error) {
	ri, err := c.Resource(gvk, namespace)
	if err != nil {
		if meta.IsNoMatchError(errors.Unwrap(err)) {
			return nil, nil
		}
		return nil, err
	}
	u, err := ri.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("getting %s %s: %w", gvk.Kind, Ref(namespace, name), err)
	}
	return u, nil
}

// Ref renders namespace/name, or name for cluster-scoped objects.
func Ref(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// Object is an API object, unstructured or typed (typed ones read through the dynamic
// client and decoded keep their apiVersion and kind).
type Object interface {
	metav1.Object
	GetObjectKind() schema.ObjectKind
}

// Describe names an object for messages: "Subscription openshift-gitops-operator/openshift-gitops-operator".
func Describe(o Object) string {
	return o.GetObjectKind().GroupVersionKind().Kind + " " + Ref(o.GetNamespace(), o.GetName())
}

// Diff compares desired objects with the cluster using reads only, and lists what Apply
// would change. An object differs when any field we set has another value live.
func (c *Clients) Diff(ctx context.Context, desired []*unstructured.Unstructured) ([]installer.Change, error) {
	var changes []installer.Change
	for _, d := range desired {
		live, err := c.Get(ctx, d.GroupVersionKind(), d.GetNamespace(), d.GetName())
		if err != nil {
			return nil, err
		}
		if live == nil {
			changes = append(changes, installer.Change{Action: installer.Create, Target: Describe(d)})
			continue
		}
		if path, ok := Subset(d.Object, live.Object, ""); !ok {
			changes = append(changes, installer.Change{Action: installer.Update, Target: Describe(d), Detail: path + " differs"})
		}
	}
	return changes, nil
}

// Subset reports whether every field set in want has the same value in have (maps are
// compared key by key, lists element by element with the same length). It returns the
// first differing path. Server-set fields (metadata.uid, status...) are ignored because
// desired objects do not set them.
func Subset(want, have any, path string) (string, bool) {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			// An empty map we set is the same as an absent field live (servers drop "{}").
			if len(w) == 0 && have == nil {
				return "", true
			}
			return path, false
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if p, ok := Subset(w[k], h[k], path+"."+k); !ok {
				return p, false
			}
		}
		return "", true
	case []any:
		h, ok := have.([]any)
		if !ok && len(w) == 0 && have == nil {
			return "", true
		}
		if !ok || len(h) != len(w) {
			return path, false
		}
		for i := range w {
			if p, ok := Subset(w[i], h[i], fmt.Sprintf("%s[%d]", path, i)); !ok {
				return p, false
			}
		}
		return "", true
	case nil:
		return "", have == nil
	default:
		if reflect.DeepEqual(normalize(w), normalize(have)) {
			return "", true
		}
		return path, false
	}
}

// normalize makes numbers comparable across int64/float64 (JSON decoding differences).
func normalize(v any) any {
	switch n := v.(type) {
	case int:
		return float64(n)
	case int32:
		return float64(n)
	case int64:
		return float64(n)
	case json.Number:
		f, _ := n.Float64()
		return f
	}
	return v
}

// Apply server-side-applies the objects that differ from the cluster, in a safe order
// (CRDs, then namespaces, then the rest), under our field manager. Objects that already
// match are not sent at all, so a converged run makes no request that changes anything.
// Each object is recorded in the phase's inventory before it is written (created, adopted
// or modified, decided from the read before the write; see inventory.go), and each change
// is reported on the scope.
func (c *Clients) Apply(ctx context.Context, s *installer.Scope, objs ...*unstructured.Unstructured) error {
	for _, o := range sortForApply(objs) {
		live, err := c.Get(ctx, o.GroupVersionKind(), o.GetNamespace(), o.GetName())
		if err != nil {
			return err
		}
		write, err := c.recordApply(ctx, s, o, live)
		if err != nil {
			return err
		}
		if !write {
			continue
		}
		u, err := c.applyOne(ctx, o)
		if err != nil {
			return err
		}
		action := installer.Update
		if live == nil {
			action = installer.Create
			if err := settleCreate(ctx, s, u); err != nil {
				return err
			}
		}
		s.Changed(installer.Change{Action: action, Target: Describe(o)})
	}
	return nil
}

// applyOne server-side-applies one object with force (we own the fields we set).
func (c *Clients) applyOne(ctx context.Context, o *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	ri, err := c.Resource(o.GroupVersionKind(), o.GetNamespace())
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(o.Object)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", Describe(o), err)
	}
	force := true
	u, err := ri.Patch(recorded(ctx), o.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: FieldManager, Force: &force})
	if err != nil {
		return nil, fmt.Errorf("applying %s: %w", Describe(o), err)
	}
	return u, nil
}

func rank(o *unstructured.Unstructured) int {
	switch o.GetKind() {
	case "CustomResourceDefinition":
		return 0
	case "Namespace":
		return 1
	}
	return 2
}

func sortForApply(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := append([]*unstructured.Unstructured(nil), objs...)
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	return out
}

// Delete deletes an object if it exists; it reports whether a delete was sent. It is for
// what the bootstrap removes that is no object of its inventory (kubeadmin, what an
// operator we installed made); objects of the inventory go with DestroyEntry.
func (c *Clients) Delete(ctx context.Context, gvk schema.GroupVersionKind, namespace, name string, propagation metav1.DeletionPropagation) (bool, error) {
	return c.deleteUID(ctx, gvk, namespace, name, "", propagation)
}

// deleteUID deletes an object if it exists and, when uid is set, only if it is that very
// object (a delete precondition: the API server refuses it for any other).
func (c *Clients) deleteUID(ctx context.Context, gvk schema.GroupVersionKind, namespace, name, uid string, propagation metav1.DeletionPropagation) (bool, error) {
	live, err := c.Get(ctx, gvk, namespace, name)
	if err != nil || live == nil {
		return false, err
	}
	if live.GetDeletionTimestamp() != nil {
		return false, nil
	}
	ri, err := c.Resource(gvk, namespace)
	if err != nil {
		return false, err
	}
	opts := metav1.DeleteOptions{PropagationPolicy: &propagation}
	if uid != "" {
		u := types.UID(uid)
		opts.Preconditions = &metav1.Preconditions{UID: &u}
	}
	err = ri.Delete(recorded(ctx), name, opts)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if apierrors.IsConflict(err) && uid != "" {
		return false, fmt.Errorf("not deleting %s %s: it is no longer the object we created (uid %s): %w", gvk.Kind, Ref(namespace, name), uid, err)
	}
	if err != nil {
		return false, fmt.Errorf("deleting %s %s: %w", gvk.Kind, Ref(namespace, name), err)
	}
	return true, nil
}

// Obj builds an unstructured object.
func Obj(apiVersion, kind, namespace, name string, fields map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind}}
	for k, v := range fields {
		u.Object[k] = v
	}
	u.SetName(name)
	if namespace != "" {
		u.SetNamespace(namespace)
	}
	return u
}

// FromJSONish converts typed Go values (structs, typed maps) into the plain
// map[string]any form unstructured objects and Subset need.
func FromJSONish(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// GVK parses "group/version" + kind.
func GVK(apiVersion, kind string) schema.GroupVersionKind {
	return schema.FromAPIVersionAndKind(apiVersion, kind)
}

// IsNotServed reports whether err says a kind is not served (its CRD missing).
func IsNotServed(err error) bool {
	return err != nil && (meta.IsNoMatchError(err) || strings.Contains(err.Error(), "does not serve"))
}
