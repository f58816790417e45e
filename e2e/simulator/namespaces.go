package simulator

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// finalizeNamespaces plays the namespace controller, which the bed (no
// kube-controller-manager) lacks: a terminating namespace's content is deleted, and once
// nothing is left its "kubernetes" finalizer is removed, so the namespace goes away and
// can be created again — as on a real cluster.
func (s *Simulator) finalizeNamespaces(ctx context.Context) {
	nss, err := s.typed.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	var terminating []corev1.Namespace
	for _, ns := range nss.Items {
		if ns.DeletionTimestamp != nil {
			terminating = append(terminating, ns)
		}
	}
	if len(terminating) == 0 {
		return
	}
	lists, _ := s.typed.Discovery().ServerPreferredNamespacedResources()
	var gvrs []schema.GroupVersionResource
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !has(r.Verbs, "list") || !has(r.Verbs, "delete") || r.Name == "events" {
				continue
			}
			gvrs = append(gvrs, gv.WithResource(r.Name))
		}
	}
	for _, ns := range terminating {
		left := 0
		for _, gvr := range gvrs {
			items, err := s.list(ctx, gvr, ns.Name)
			if err != nil {
				continue
			}
			for _, it := range items {
				left++
				if it.GetDeletionTimestamp() == nil {
					bg := metav1.DeletePropagationBackground
					err := s.res(gvr, ns.Name).Delete(ctx, it.GetName(), metav1.DeleteOptions{PropagationPolicy: &bg})
					if err != nil && !apierrors.IsNotFound(err) {
						s.logf("namespaces: deleting %s %s/%s: %v", gvr.Resource, ns.Name, it.GetName(), err)
					}
				}
			}
		}
		if left > 0 {
			continue
		}
		ns.Spec.Finalizers = nil
		if _, err := s.typed.CoreV1().Namespaces().Finalize(ctx, &ns, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
			s.logf("namespaces: finalizing %s: %v", ns.Name, err)
			continue
		}
		s.logf("namespaces: %s finalized", ns.Name)
	}
}

func has(l []string, v string) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}
