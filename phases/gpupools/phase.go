package gpupools

import (
	"context"
	"fmt"
	"sort"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/kube"
)

// Name of the phase.
const Name = "gpu-pools"

// initialManager creates GPU MachineSets with their initial replicas. Our main field
// manager never sets spec.replicas, so after creation the autoscaler owns it and no
// later apply of ours changes or removes it.
const initialManager = "rhoai-bootstrap-initial"

var (
	msGVK = machinev1beta1.GroupVersion.WithKind("MachineSet")
	maGVK = kube.GVK("autoscaling.openshift.io/v1beta1", "MachineAutoscaler")
	caGVK = kube.GVK("autoscaling.openshift.io/v1", "ClusterAutoscaler")
)

type phase struct{ env *phases.Env }

// New returns the gpu-pools phase: the declared GPU pools reconciled on the live cluster
// (add, change, remove), for clusters installed with them and for existing clusters alike.
func New(env *phases.Env) installer.Phase { return &phase{env: env} }

func (p *phase) Name() string { return Name }

// DependsOn: it talks to the cluster's API server, which exists (and whose kubeconfig
// we have) only once the cluster phase is done.
func (p *phase) DependsOn() []string { return []string{"cluster"} }

type plan struct {
	set     *Set
	changes []installer.Change
	// stale are our objects for pools no longer declared.
	stale []kube.Object
	// missing are MachineSets to create (with initial replicas).
	missing sets.Set[string]
	// createCA is set when no ClusterAutoscaler exists yet.
	createCA bool
	// adoptCA is a ClusterAutoscaler made by someone else (or by the installer from the
	// day-1 manifests) that the inventory does not hold yet: taken as it is, never
	// updated, never deleted.
	adoptCA *unstructured.Unstructured
}

func (p *phase) plan(ctx context.Context, s *installer.Scope, c *kube.Clients) (*plan, error) {
	list, err := c.OpenShift.Machine.MachineSets(MachineAPINS).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing MachineSets in %s: %w", MachineAPINS, err)
	}
	var workers []*machinev1beta1.MachineSet
	var ours []kube.Object
	for i := range list.Items {
		ms := &list.Items[i]
		// Items of a typed list carry no apiVersion/kind; the inventory needs them.
		ms.SetGroupVersionKind(msGVK)
		if ms.Labels[PoolLabel] != "" {
			ours = append(ours, ms)
			continue
		}
		if ms.Spec.Template.Labels["machine.openshift.io/cluster-api-machine-role"] == "worker" {
			workers = append(workers, ms)
		}
	}
	sort.Slice(workers, func(i, j int) bool { return workers[i].Name < workers[j].Name })
	if len(p.env.Cluster.Spec.GPUPools) > 0 && len(workers) == 0 {
		return nil, fmt.Errorf("no worker MachineSet in %s to clone GPU pools from", MachineAPINS)
	}
	set, err := Build(p.env.Cluster, workers)
	if err != nil {
		return nil, err
	}
	pl := &plan{set: set, missing: sets.New[string]()}
	desired := append(append([]*unstructured.Unstructured{}, set.MachineSets...), set.MachineAutoscalers...)
	if pl.changes, err = c.Diff(ctx, desired); err != nil {
		return nil, err
	}
	// The ClusterAutoscaler is created when absent and never updated: once the root app
	// syncs, the GitOps payload (components/configs/autoscaling) owns it, and two owners
	// of one object would undo each other's changes forever.
	if len(p.env.Cluster.Spec.GPUPools) > 0 {
		ca, err := c.Get(ctx, caGVK, "", "default")
		if err != nil {
			return nil, err
		}
		if ca == nil {
			pl.createCA = true
			pl.changes = append(pl.changes, installer.Change{Action: installer.Create, Target: kube.Describe(set.ClusterAutoscaler)})
		} else if _, ok := s.Tracked(kube.EntryID(caGVK, "", ca.GetName())); !ok {
			pl.adoptCA = ca
			pl.changes = append(pl.changes, installer.Change{Action: installer.Adopt, Target: kube.Describe(ca), Detail: adoptCANote})
		}
	}
	for _, ch := range pl.changes {
		for _, ms := range set.MachineSets {
			if ch.Action == installer.Create && ch.Target == kube.Describe(ms) {
				pl.missing.Insert(ms.GetName())
			}
		}
	}
	want := sets.New[string]()
	for _, o := range set.Objects() {
		want.Insert(o.GetKind() + "/" + o.GetName())
	}
	mri, err := c.Resource(maGVK, MachineAPINS)
	if err != nil {
		return nil, err
	}
	mas, err := mri.List(ctx, metav1.ListOptions{LabelSelector: labels.Set{ManagedByLabel: ManagedBy}.String()})
	if err != nil {
		return nil, fmt.Errorf("listing MachineAutoscalers: %w", err)
	}
	for i := range mas.Items {
		ours = append(ours, &mas.Items[i])
	}
	for _, o := range ours {
		if !want.Has(o.GetObjectKind().GroupVersionKind().Kind + "/" + o.GetName()) {
			pl.stale = append(pl.stale, o)
			pl.changes = append(pl.changes, installer.Change{Action: installer.Delete, Target: kube.Describe(o), Detail: "pool " + o.GetLabels()[PoolLabel] + " is no longer declared"})
		}
	}
	return pl, nil
}

func (p *phase) Check(ctx context.Context, s *installer.Scope) (installer.Status, error) {
	c, err := p.env.Kube(ctx, s)
	if err != nil {
		return installer.Status{}, err
	}
	pl, err := p.plan(ctx, s, c)
	if err != nil {
		return installer.Status{}, err
	}
	if len(pl.changes) == 0 {
		return installer.Done(installer.Plural(len(p.env.Cluster.Spec.GPUPools), "GPU pool") + ", " + installer.Plural(len(pl.set.MachineSets), "MachineSet")), nil
	}
	return installer.Pending(installer.Plural(len(pl.changes), "change"), pl.changes...), nil
}

func (p *phase) Apply(ctx context.Context, s *installer.Scope) error {
	c, err := p.env.Kube(ctx, s)
	if err != nil {
		return err
	}
	pl, err := p.plan(ctx, s, c)
	if err != nil {
		return err
	}
	// Stale objects first: a MachineAutoscaler before its MachineSet.
	isMA := func(o kube.Object) bool { return o.GetObjectKind().GroupVersionKind().Kind == "MachineAutoscaler" }
	sort.SliceStable(pl.stale, func(i, j int) bool { return isMA(pl.stale[i]) && !isMA(pl.stale[j]) })
	for _, o := range pl.stale {
		if err := p.removeStale(ctx, s, c, o); err != nil {
			return err
		}
	}
	for _, ms := range pl.set.MachineSets {
		if !pl.missing.Has(ms.GetName()) {
			continue
		}
		first := ms.DeepCopy()
		if err := kube.SetNested(first, pl.set.Replicas[ms.GetName()], "spec", "replicas"); err != nil {
			return err
		}
		if _, err := c.Create(ctx, s, first, initialManager); err != nil {
			return err
		}
		s.Changed(installer.Change{Action: installer.Create, Target: kube.Describe(ms), Detail: fmt.Sprintf("replicas %d, then the autoscaler's", pl.set.Replicas[ms.GetName()])})
	}
	if pl.createCA {
		if _, err := c.Create(ctx, s, pl.set.ClusterAutoscaler, initialManager); err != nil {
			return err
		}
		s.Changed(installer.Change{Action: installer.Create, Target: kube.Describe(pl.set.ClusterAutoscaler)})
	}
	if pl.adoptCA != nil {
		if err := c.Adopt(ctx, s, pl.adoptCA, adoptCANote); err != nil {
			return err
		}
	}
	return c.Apply(ctx, s, append(append([]*unstructured.Unstructured{}, pl.set.MachineSets...), pl.set.MachineAutoscalers...)...)
}

// adoptCANote says why an existing ClusterAutoscaler is left alone.
const adoptCANote = "a ClusterAutoscaler existed already: kept as it is (never updated, never deleted by destroy)"

// removeStale deletes an object of a pool that is no longer declared: through its
// inventory entry when we created it, as it is when the installer made it from our day-1
// manifests (our label, no entry); an adopted one stays.
func (p *phase) removeStale(ctx context.Context, s *installer.Scope, c *kube.Clients, o kube.Object) error {
	gvk := o.GetObjectKind().GroupVersionKind()
	e, ok := s.Tracked(kube.EntryID(gvk, o.GetNamespace(), o.GetName()))
	switch {
	case ok && e.Action == installer.Adopted:
		s.Progress("kept %s: it existed before the bootstrap", kube.Describe(o))
		return nil
	case ok:
		if err := c.DestroyEntry(ctx, s, e, p.env.Timeouts.Finalizers, p.env.StripFinalizers); err != nil {
			return err
		}
	default:
		if _, err := c.Delete(ctx, gvk, o.GetNamespace(), o.GetName(), metav1.DeletePropagationBackground); err != nil {
			return err
		}
		s.Changed(installer.Change{Action: installer.Delete, Target: kube.Describe(o)})
	}
	return nil
}

// Destroy undoes what the inventory records: the GPU MachineSets and MachineAutoscalers
// and the ClusterAutoscaler we created are deleted; an adopted ClusterAutoscaler stays.
// Objects openshift-install created from the day-1 manifests are the cluster's and go
// with it.
func (p *phase) Destroy(ctx context.Context, s *installer.Scope) error {
	c, gone, err := p.env.KubeForDestroy(ctx, s)
	if err != nil || gone {
		return err
	}
	return c.DestroyInventory(ctx, s, p.env.Timeouts.Finalizers, p.env.StripFinalizers)
}
