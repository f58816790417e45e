package simulator

import (
	"context"
	"fmt"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The simulator reads and writes the OpenShift and OLM kinds through their Go types
// (github.com/openshift/api, github.com/operator-framework/api) — the types the bootstrap
// reads them with and the real controllers write them with — so a field misnamed on
// either side is a compile error rather than a test that passes against its own
// misreading. The dynamic client and its informers stay (the simulator starts watches as
// CRDs appear); objects cross between the two forms here, with apimachinery's
// DefaultUnstructuredConverter. Kinds without a Go type in go.mod (Argo CD, KServe,
// OpenDataHub, Gateway API, Grafana, cert-manager, cloud-credential) stay unstructured.

// as decodes a live object into its Go type T. Fields T does not know are ignored, as
// the typed clients ignore them.
func as[T any](u *unstructured.Unstructured) (*T, error) {
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		return nil, fmt.Errorf("reading %s %s as %T: %w", u.GetKind(), keyOf(u), out, err)
	}
	return out, nil
}

// getAs is get through T: nil when the object (or its CRD) does not exist.
func getAs[T any](ctx context.Context, s *Simulator, gvr schema.GroupVersionResource, ns, name string) (*T, error) {
	u, err := s.get(ctx, gvr, ns, name)
	if err != nil || u == nil {
		return nil, err
	}
	return as[T](u)
}

// listAs is list through T.
func listAs[T any](ctx context.Context, s *Simulator, gvr schema.GroupVersionResource, ns string) ([]*T, error) {
	items, err := s.list(ctx, gvr, ns)
	if err != nil {
		return nil, err
	}
	out := make([]*T, 0, len(items))
	for i := range items {
		t, err := as[T](&items[i])
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// toUnstructured encodes a typed object for the dynamic client, without its status (a
// create ignores status on kinds with a status subresource, so sending none is the honest
// request).
func toUnstructured(obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", obj, err)
	}
	delete(m, "status")
	return &unstructured.Unstructured{Object: m}, nil
}

// createAs is create through T: the object is built as a Go value, and what the API
// server returns (or the object that already existed) is read back into T.
func createAs[T any, PT interface {
	*T
	runtime.Object
}](ctx context.Context, s *Simulator, gvr schema.GroupVersionResource, manager string, obj PT) (*T, error) {
	u, err := toUnstructured(obj)
	if err != nil {
		return nil, err
	}
	out, err := s.create(ctx, gvr, manager, u)
	if err != nil || out == nil {
		return nil, err
	}
	return as[T](out)
}

// updateStatusAs is update on the status subresource through T: mutate changes the typed
// object and reports whether anything changed; only the status it leaves is written back,
// in the shape T's JSON tags give it (what the real controller's typed UpdateStatus sends).
func updateStatusAs[T any](ctx context.Context, s *Simulator, manager string, gvr schema.GroupVersionResource, ns, name string,
	mutate func(*T) (bool, error)) error {
	return s.update(ctx, manager, gvr, ns, name, true, func(u *unstructured.Unstructured) (bool, error) {
		obj, err := as[T](u)
		if err != nil {
			return false, err
		}
		changed, err := mutate(obj)
		if err != nil || !changed {
			return false, err
		}
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return false, fmt.Errorf("encoding the status of %s %s: %w", gvr.Resource, keyOf(u), err)
		}
		u.Object["status"] = m["status"]
		return true, nil
	})
}

// stamp is the time a controller writes into a status: now, to the second, in UTC (what
// metav1.Time serialises anyway).
func stamp() metav1.Time { return metav1.NewTime(time.Now().UTC().Truncate(time.Second)) }

// stampPtr is stamp for the *metav1.Time fields of the OLM types.
func stampPtr() *metav1.Time {
	t := stamp()
	return &t
}

// setTypedCond puts want in place of the condition of the same type in list, or appends
// it, and reports whether the list changed. view gives a condition's type, status,
// reason and message; an equal one is left alone. When only reason or message change,
// keepSince carries the old lastTransitionTime over, as library-go's
// v1helpers.SetStatusCondition and apimachinery's meta.SetStatusCondition do.
func setTypedCond[C any](list []C, want C, view func(C) cond, keepSince func(old C, want *C)) ([]C, bool) {
	i := slices.IndexFunc(list, func(old C) bool { return view(old).Type == view(want).Type })
	switch {
	case i < 0:
		return append(list, want), true
	case view(list[i]) == view(want):
		return list, false
	}
	if view(list[i]).Status == view(want).Status {
		keepSince(list[i], &want)
	}
	list[i] = want
	return list, true
}
