package simulator

import (
	"context"
	"fmt"
	"slices"
	"time"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	ms, err := getAs[machinev1beta1.MachineSet](ctx, s, gvrMachineSet, ns, name)
	if err != nil {
		return 0, err
	}
	all, err := listAs[machinev1beta1.Machine](ctx, s, gvrMachine, ns)
	if err != nil {
		return 0, err
	}
	var machines []*machinev1beta1.Machine
	for _, m := range all {
		if slices.ContainsFunc(m.OwnerReferences, func(o metav1.OwnerReference) bool {
			return o.Kind == "MachineSet" && o.Name == name && (ms == nil || o.UID == ms.UID)
		}) && m.DeletionTimestamp == nil {
			machines = append(machines, m)
		}
	}
	if ms == nil || ms.DeletionTimestamp != nil {
		return 0, s.deleteMachines(ctx, machines)
	}

	desired := int32(1)
	if ms.Spec.Replicas != nil {
		desired = *ms.Spec.Replicas
	}
	for int32(len(machines)) < desired {
		m, err := s.createMachine(ctx, ms)
		if err != nil {
			return 0, err
		}
		machines = append(machines, m)
	}
	if extra := int32(len(machines)) - desired; extra > 0 {
		// Newest first (the "Newest" policy; "Random" is no more precise here), "Oldest" honoured.
		slices.SortFunc(machines, func(a, b *machinev1beta1.Machine) int {
			return b.CreationTimestamp.Compare(a.CreationTimestamp.Time)
		})
		if ms.Spec.DeletePolicy == string(machinev1beta1.OldestMachineSetDeletePolicy) {
			slices.Reverse(machines)
		}
		if err := s.deleteMachines(ctx, machines[:extra]); err != nil {
			return 0, err
		}
		machines = machines[extra:]
	}

	var running int32
	var next time.Duration
	for _, m := range machines {
		if m.Status.Phase != nil && *m.Status.Phase == machinev1beta1.PhaseRunning {
			running++
			continue
		}
		clock := "machine/" + string(m.UID)
		if wait := s.after(clock, s.lat().MachineSet); wait > 0 {
			if next == 0 || wait < next {
				next = wait
			}
			if err := s.setMachinePhase(ctx, m, machinev1beta1.PhaseProvisioning); err != nil {
				return 0, err
			}
			continue
		}
		if err := s.setMachinePhase(ctx, m, machinev1beta1.PhaseRunning); err != nil {
			return 0, err
		}
		s.done(clock)
		running++
	}

	selector := ""
	if sel := ms.Spec.Selector; len(sel.MatchLabels) > 0 || len(sel.MatchExpressions) > 0 {
		selector = metav1.FormatLabelSelector(&sel)
	}
	count := int32(len(machines))
	changed := false
	err = updateStatusAs(ctx, s, mgrMachineSet, gvrMachineSet, ns, name, func(live *machinev1beta1.MachineSet) (bool, error) {
		st := &live.Status
		before := st.DeepCopy()
		st.Replicas, st.FullyLabeledReplicas = count, count
		st.ReadyReplicas, st.AvailableReplicas = running, running
		st.ObservedGeneration = live.Generation
		if selector != "" {
			st.LabelSelector = selector
		}
		changed = !semanticEqual(before, st)
		return changed, nil
	})
	if err == nil && changed && running == desired {
		s.logf("machine-api: machineset %s has %d/%d replicas ready", key, running, desired)
	}
	return next, err
}

// createMachine makes one Machine of a MachineSet from its template, as the MachineSet
// controller does (machine-api-operator pkg/controller/machineset/controller.go,
// createMachine: generateName "<set>-", the template's labels, annotations and spec, and a
// controller reference to the set).
func (s *Simulator) createMachine(ctx context.Context, ms *machinev1beta1.MachineSet) (*machinev1beta1.Machine, error) {
	tmpl := ms.Spec.Template
	m := &machinev1beta1.Machine{
		TypeMeta: metav1.TypeMeta{APIVersion: machinev1beta1.GroupVersion.String(), Kind: "Machine"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: ms.Name + "-", Namespace: ms.Namespace,
			Labels: tmpl.ObjectMeta.Labels, Annotations: tmpl.ObjectMeta.Annotations,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: machinev1beta1.GroupVersion.String(), Kind: "MachineSet",
				Name: ms.Name, UID: ms.UID, Controller: new(true), BlockOwnerDeletion: new(true)}}},
		Spec: tmpl.Spec,
	}
	u, err := toUnstructured(m)
	if err != nil {
		return nil, err
	}
	out, err := s.res(gvrMachine, ms.Namespace).Create(ctx, u, metav1.CreateOptions{FieldManager: mgrMachineSet, FieldValidation: "Strict"})
	if err != nil {
		return nil, fmt.Errorf("create machine for machineset %s/%s: %w", ms.Namespace, ms.Name, err)
	}
	return as[machinev1beta1.Machine](out)
}

func (s *Simulator) setMachinePhase(ctx context.Context, m *machinev1beta1.Machine, phase string) error {
	return updateStatusAs(ctx, s, mgrMachineSet, gvrMachine, m.Namespace, m.Name, func(live *machinev1beta1.Machine) (bool, error) {
		if live.Status.Phase != nil && *live.Status.Phase == phase {
			return false, nil
		}
		live.Status.Phase, live.Status.LastUpdated = &phase, stampPtr()
		return true, nil
	})
}

func (s *Simulator) deleteMachines(ctx context.Context, machines []*machinev1beta1.Machine) error {
	for _, m := range machines {
		err := s.res(gvrMachine, m.Namespace).Delete(ctx, m.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete machine %s/%s: %w", m.Namespace, m.Name, err)
		}
		s.done("machine/" + string(m.UID))
	}
	return nil
}
