package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

// Objects are built as Go values (apply configurations from client-go and
// openshift/client-go, or openshift/api and operator-framework/api types) and read back
// into them, so a misspelt field is a compile error on our side and on the simulator's.
// They still travel through the one recording Apply (apply.go, inventory.go): the
// inventory and the read-only diff compare field by field, which they do on the JSON form
// the API server sees.

// applyConfiguration is what every generated apply configuration implements
// (k8s.io/client-go/applyconfigurations/internal and openshift/client-go: the marker
// method IsApplyConfiguration).
type applyConfiguration interface{ IsApplyConfiguration() }

// FromApply turns an apply configuration into the object Apply and Diff take. Its JSON is
// the very body the typed clients send with a server-side apply (they marshal the apply
// configuration too), and it carries only the fields that were set: unset fields are nil
// pointers, omitted, so no zero value becomes a field we own or a difference we write.
func FromApply(ac applyConfiguration) (*unstructured.Unstructured, error) {
	b, err := json.Marshal(ac)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", ac, err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("decoding %T: %w", ac, err)
	}
	return u, nil
}

// MustApply is FromApply for apply configurations built from constants and validated
// input, where an encoding error is a programming error.
func MustApply(ac applyConfiguration) *unstructured.Unstructured {
	u, err := FromApply(ac)
	if err != nil {
		panic(err)
	}
	return u
}

// FromObject turns a typed object of a kind that has no apply configurations here
// (operator-framework/api's OLM kinds) into the object Apply and Diff take. Its status
// is dropped (Apply never writes status) and so is every field left at its zero value
// whose JSON tag says omitempty; a struct-valued field that encodes as {} compares equal
// to an absent one (Subset), so it neither shows as a difference nor causes a write.
func FromObject(obj runtime.Object) (*unstructured.Unstructured, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", obj, err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("decoding %T: %w", obj, err)
	}
	delete(u.Object, "status")
	return u, nil
}

// Into decodes an object read through the dynamic client into its Go type. Fields the
// type does not know are ignored, as the typed clients ignore them.
func Into[T any](u *unstructured.Unstructured, out *T) error {
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		return fmt.Errorf("reading %s as %T: %w", Describe(u), out, err)
	}
	return nil
}

// GetAs fetches an object of a kind served by a CRD with Go types but no clientset here
// (OLM's Subscription, ClusterServiceVersion, OperatorGroup) into its Go type. It
// returns nil (no error) when the object does not exist or its kind is not served.
func GetAs[T any](ctx context.Context, c *Clients, gvk schema.GroupVersionKind, namespace, name string) (*T, error) {
	u, err := c.Get(ctx, gvk, namespace, name)
	if err != nil || u == nil {
		return nil, err
	}
	out := new(T)
	if err := Into(u, out); err != nil {
		return nil, err
	}
	return out, nil
}

// ListAs lists objects of a kind with Go types but no clientset here (OLM's) in
// namespace ("" for all) into their Go type, sorted by namespace and name.
func ListAs[T any, PT interface {
	*T
	Object
}](ctx context.Context, c *Clients, gvk schema.GroupVersionKind, namespace string, opts metav1.ListOptions) ([]PT, error) {
	ri, err := c.Resource(gvk, namespace)
	if err != nil {
		return nil, err
	}
	list, err := ri.List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("listing %s in %s: %w", gvk.Kind, nonEmpty(namespace, "all namespaces"), err)
	}
	out := make([]PT, 0, len(list.Items))
	for i := range list.Items {
		t := PT(new(T))
		if err := Into(&list.Items[i], (*T)(t)); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return Describe(out[i]) < Describe(out[j]) })
	return out, nil
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// TypedListEdit is a ListEdit whose entries are read as T (configv1.IdentityProvider,
// configv1.APIServerNamedServingCert).
type TypedListEdit[T any] struct {
	GVK             schema.GroupVersionKind
	Namespace, Name string
	Path            []string
	Key             string
	// Edit gets the live entries as T and returns the wanted ones.
	Edit        func(live []T) []T
	BeforeWrite func() error
}

// EditTypedList is EditList with entries read and built as T. An entry Edit returns
// unchanged (equal, as T, to a live entry with the same key) is written back exactly as
// it was read, fields T does not know included: entries that are not ours are never
// rewritten through our Go types, so no newer field of someone else's entry is lost and
// no zero value appears in it.
func EditTypedList[T any](ctx context.Context, c *Clients, s *installer.Scope, le TypedListEdit[T]) (bool, error) {
	var editErr error
	changed, err := c.EditList(ctx, s, ListEdit{
		GVK: le.GVK, Namespace: le.Namespace, Name: le.Name, Path: le.Path, Key: le.Key, BeforeWrite: le.BeforeWrite,
		Edit: func(live []any) []any {
			out, err := editTyped(live, le.Key, le.Edit)
			if err != nil {
				editErr = fmt.Errorf("%s: %w", JoinFieldPath(le.Path), err)
				return live
			}
			return out
		},
	})
	if editErr != nil {
		return false, fmt.Errorf("%s %s: %w", le.GVK.Kind, Ref(le.Namespace, le.Name), editErr)
	}
	return changed, err
}

// editTyped runs edit on live read as T and returns the wanted list in JSON form, live
// entries that edit left as they were kept byte for byte (see EditTypedList).
func editTyped[T any](live []any, key string, edit func([]T) []T) ([]any, error) {
	// read is what each entry was, typed apart from what edit gets: edit may change its
	// entries in place.
	read, typed := make([]T, len(live)), make([]T, len(live))
	byKey := map[string]int{}
	for i, raw := range live {
		m, _ := raw.(map[string]any)
		for _, into := range []*T{&read[i], &typed[i]} {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(runtime.DeepCopyJSON(m), into); err != nil {
				return nil, fmt.Errorf("reading entry %d: %w", i, err)
			}
		}
		if k, ok := entryKey(raw, key); ok {
			byKey[k] = i
		}
	}
	var out []any
	for _, e := range edit(typed) {
		m, err := toJSONMap(e)
		if err != nil {
			return nil, err
		}
		if k, ok := entryKey(m, key); ok {
			if i, seen := byKey[k]; seen && reflect.DeepEqual(read[i], e) {
				out = append(out, live[i])
				continue
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// toJSONMap is a Go value's JSON form as a map (numbers as int64 where whole, as the API
// machinery decodes them).
func toJSONMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", v, err)
	}
	var m map[string]any
	if err := utiljson.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decoding %T: %w", v, err)
	}
	return m, nil
}
