package simulator

import (
	"context"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
)

const mgrMachineSet = "machineset-controller"

// syncMachineSet is machine-api's MachineSet controller: it creates or deletes Machines to
// match spec.replicas at once (status.replicas counts them), and each new Machine turns
// Running after the MachineSet latency (readyReplicas/availableReplicas count those). There
// is no garbage collector in the bed, so it also deletes the Machines of a deleted MachineSet.
func (s *Simulator) syncMachineSet(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	ms, err := s.get(ctx, gvrMachineSet, ns, name)
	if err != nil {
		return 0, err
	}
	all, err := s.list(ctx, gvrMachine, ns)
	if err != nil {
		return 0, err
	}
	var machines []unstructured.Unstructured
	for _, m := range all {
		if slices.ContainsFunc(m.GetOwnerReferences(), func(o metav1.OwnerReference) bool {
			return o.Kind == "MachineSet" && o.Name == name && (ms == nil || o.UID == ms.GetUID())
		}) && m.GetDeletionTimestamp() == nil {
			machines = append(machines, m)
		}
	}
	if ms == nil || ms.GetDeletionTimestamp() != nil {
		return 0, s.deleteMachines(ctx, machines)
	}

	desired, ok, _ := unstructured.NestedInt64(ms.Object, "spec", "replicas")
	if !ok {
		desired = 1
	}
	for int64(len(machines)) < desired {
		m, err := s.createMachine(ctx, ms)
		if err != nil {
			return 0, err
		}
		machines = append(machines, *m)
	}
	if extra := int64(len(machines)) - desired; extra > 0 {
		// Newest first (the "Newest" policy; "Random" is no more precise here), "Oldest" honoured.
		slices.SortFunc(machines, func(a, b unstructured.Unstructured) int {
			return b.GetCreationTimestamp().Compare(a.GetCreationTimestamp().Time)
		})
		if nestedStr(ms, "spec", "deletePolicy") == "Oldest" {
			slices.Reverse(machines)
		}
		if err := s.deleteMachines(ctx, machines[:extra]); err != nil {
			return 0, err
		}
		machines = machines[extra:]
	}

	var running int64
	var next time.Duration
	for _, m := range machines {
		if nestedStr(&m, "status", "phase") == "Running" {
			running++
			continue
		}
		clock := "machine/" + string(m.GetUID())
		if wait := s.after(clock, s.lat().MachineSet); wait > 0 {
			if next == 0 || wait < next {
				next = wait
			}
			if err := s.setMachinePhase(ctx, &m, "Provisioning"); err != nil {
				return 0, err
			}
			continue
		}
		if err := s.setMachinePhase(ctx, &m, "Running"); err != nil {
			return 0, err
		}
		s.done(clock)
		running++
	}

	selector := ""
	if sel, ok, _ := unstructured.NestedMap(ms.Object, "spec", "selector"); ok {
		var ls metav1.LabelSelector
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(sel, &ls); err == nil {
			selector = metav1.FormatLabelSelector(&ls)
		}
	}
	count := int64(len(machines))
	changed := false
	err = s.update(ctx, mgrMachineSet, gvrMachineSet, ns, name, true, func(u *unstructured.Unstructured) (bool, error) {
		old, _, _ := unstructured.NestedMap(u.Object, "status")
		st := map[string]any{}
		for k, v := range old {
			st[k] = v
		}
		st["replicas"], st["fullyLabeledReplicas"] = count, count
		st["readyReplicas"], st["availableReplicas"] = running, running
		st["observedGeneration"] = u.GetGeneration()
		if selector != "" {
			st["labelSelector"] = selector
		}
		if semanticEqual(old, st) {
			return false, nil
		}
		u.Object["status"] = st
		changed = true
		return true, nil
	})
	if err == nil && changed && running == desired {
		s.logf("machine-api: machineset %s has %d/%d replicas ready", key, running, desired)
	}
	return next, err
}

func (s *Simulator) createMachine(ctx context.Context, ms *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	labels, _, _ := unstructured.NestedStringMap(ms.Object, "spec", "template", "metadata", "labels")
	annotations, _, _ := unstructured.NestedStringMap(ms.Object, "spec", "template", "metadata", "annotations")
	spec, _, _ := unstructured.NestedMap(ms.Object, "spec", "template", "spec")
	m := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "machine.openshift.io/v1beta1", "kind": "Machine"}}
	m.SetGenerateName(ms.GetName() + "-")
	m.SetNamespace(ms.GetNamespace())
	m.SetLabels(labels)
	m.SetAnnotations(annotations)
	m.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "machine.openshift.io/v1beta1", Kind: "MachineSet",
		Name: ms.GetName(), UID: ms.GetUID(), Controller: new(true), BlockOwnerDeletion: new(true)}})
	if spec != nil {
		m.Object["spec"] = spec
	}
	out, err := s.res(gvrMachine, ms.GetNamespace()).Create(ctx, m, metav1.CreateOptions{FieldManager: mgrMachineSet, FieldValidation: "Strict"})
	if err != nil {
		return nil, fmt.Errorf("create machine for machineset %s/%s: %w", ms.GetNamespace(), ms.GetName(), err)
	}
	return out, nil
}

func (s *Simulator) setMachinePhase(ctx context.Context, m *unstructured.Unstructured, phase string) error {
	return s.update(ctx, mgrMachineSet, gvrMachine, m.GetNamespace(), m.GetName(), true, func(u *unstructured.Unstructured) (bool, error) {
		if nestedStr(u, "status", "phase") == phase {
			return false, nil
		}
		if err := unstructured.SetNestedField(u.Object, phase, "status", "phase"); err != nil {
			return false, err
		}
		return true, unstructured.SetNestedField(u.Object, now(), "status", "lastUpdated")
	})
}

func (s *Simulator) deleteMachines(ctx context.Context, machines []unstructured.Unstructured) error {
	for _, m := range machines {
		err := s.res(gvrMachine, m.GetNamespace()).Delete(ctx, m.GetName(), metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete machine %s/%s: %w", m.GetNamespace(), m.GetName(), err)
		}
		s.done("machine/" + string(m.GetUID()))
	}
	return nil
}
