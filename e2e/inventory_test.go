//go:build e2e

package e2e_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/harness"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/kube"
)

// snapshotKinds are the kinds whose objects the bootstrap may create, adopt or change.
var snapshotKinds = []schema.GroupVersionResource{
	gvr("", "v1", "namespaces"),
	gvr("", "v1", "secrets"),
	gvr("operators.coreos.com", "v1alpha1", "subscriptions"),
	gvr("operators.coreos.com", "v1", "operatorgroups"),
	gvr("operators.coreos.com", "v1alpha1", "clusterserviceversions"),
	gvr("argoproj.io", "v1beta1", "argocds"),
	gvr("argoproj.io", "v1alpha1", "applications"),
	gvr("config.openshift.io", "v1", "oauths"),
	gvr("config.openshift.io", "v1", "apiservers"),
	gvr("operator.openshift.io", "v1", "ingresscontrollers"),
	gvr("autoscaling.openshift.io", "v1", "clusterautoscalers"),
	gvr("autoscaling.openshift.io", "v1beta1", "machineautoscalers"),
	gvr("machine.openshift.io", "v1beta1", "machinesets"),
	gvr("rbac.authorization.k8s.io", "v1", "clusterrolebindings"),
}

// snapshot is what a person would call an object's configuration: spec (or a Secret's
// type and data), labels and annotations, keyed by kind/namespace/name and uid.
type snapshot map[string]snapshotted

type snapshotted struct {
	uid   string
	state any
	// ours: one of our field managers wrote fields of it.
	ours bool
}

func takeSnapshot(t *testing.T, d dynamic.Interface) snapshot {
	t.Helper()
	out := snapshot{}
	for _, g := range snapshotKinds {
		list, err := d.Resource(g).List(context.Background(), metav1.ListOptions{})
		if apierrors.IsNotFound(err) {
			continue // not served (yet): no object of it to keep
		}
		require.NoError(t, err, g.Resource)
		for _, o := range list.Items {
			ours := false
			for _, mf := range o.GetManagedFields() {
				ours = ours || strings.HasPrefix(mf.Manager, kube.FieldManager)
			}
			out[g.Resource+" "+kube.Ref(o.GetNamespace(), o.GetName())] = snapshotted{uid: string(o.GetUID()), state: configuration(&o), ours: ours}
		}
	}
	return out
}

// configuration is the part of an object the bootstrap must leave as it was. Empty maps
// and lists count as absent, as the API server's own defaulting and omitempty make them.
func configuration(o *unstructured.Unstructured) any {
	c := map[string]any{"labels": o.GetLabels(), "annotations": o.GetAnnotations()}
	for _, f := range []string{"spec", "data", "type"} {
		if v, ok := o.Object[f]; ok {
			c[f] = v
		}
	}
	return prune(c)
}

func prune(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			if p := prune(e); p != nil {
				out[k] = p
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case map[string]string:
		if len(x) == 0 {
			return nil
		}
		out := map[string]any{}
		for k, e := range x {
			out[k] = e
		}
		return out
	case []any:
		if len(x) == 0 {
			return nil
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = prune(e)
		}
		return out
	}
	return v
}

// assertAsBefore checks that every object of before still exists, is the same object
// (uid) and has the same configuration; except names the bootstrap removes by design.
func assertAsBefore(t *testing.T, before, after snapshot, except ...string) {
	t.Helper()
	for key, b := range before {
		if contains(except, key) {
			continue
		}
		a, ok := after[key]
		if !assert.True(t, ok, "%s existed before the bootstrap and is gone", key) {
			continue
		}
		assert.Equal(t, b.uid, a.uid, "%s is not the same object", key)
		bj, _ := json.Marshal(b.state)
		aj, _ := json.Marshal(a.state)
		assert.JSONEq(t, string(bj), string(aj), "%s changed", key)
	}
}

func contains(l []string, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}

// existingConfig writes the rehearsal's cluster file with platform.existing; edits are
// old, new pairs replaced in it (each must occur).
func existingConfig(t *testing.T, r *harness.Rehearsal, edits ...string) string {
	t.Helper()
	b, err := os.ReadFile(r.Config())
	require.NoError(t, err)
	doc := strings.Replace(string(b), "      zones: [us-east-1a, us-east-1b]\n", "      zones: [us-east-1a, us-east-1b]\n    existing:\n      kubeconfig: ${KUBECONFIG}\n", 1)
	for i := 0; i+1 < len(edits); i += 2 {
		require.Contains(t, doc, edits[i])
		doc = strings.Replace(doc, edits[i], edits[i+1], 1)
	}
	f := filepath.Join(r.WorkDir, "existing.yaml")
	require.NoError(t, os.WriteFile(f, []byte(doc), 0o600))
	return f
}

func createYAML(t *testing.T, d dynamic.Interface, doc string) *unstructured.Unstructured {
	t.Helper()
	objs, err := kube.DecodeYAML([]byte(doc))
	require.NoError(t, err)
	o := objs[0]
	g := gvr(o.GroupVersionKind().Group, o.GroupVersionKind().Version, strings.ToLower(o.GetKind())+"s")
	ri := d.Resource(g).Namespace(o.GetNamespace())
	if o.GetNamespace() == "" {
		u, err := d.Resource(g).Create(context.Background(), o, metav1.CreateOptions{FieldManager: "console"})
		require.NoError(t, err)
		return u
	}
	u, err := ri.Create(context.Background(), o, metav1.CreateOptions{FieldManager: "console"})
	require.NoError(t, err)
	return u
}

// The OpenShift GitOps operator as the console installs it: a namespace, an OperatorGroup
// with a generated name, and a Subscription on the channel the person picked (one the
// simulated 4.20 catalog offers, as the console only lists those).
const consoleGitOps = `apiVersion: v1
kind: Namespace
metadata:
  name: openshift-gitops-operator
  labels: {openshift.io/cluster-monitoring: "true"}
---
apiVersion: operators.coreos.com/v1
kind: OperatorGroup
metadata:
  generateName: openshift-gitops-operator-
  namespace: openshift-gitops-operator
spec:
  upgradeStrategy: Default
---
apiVersion: operators.coreos.com/v1alpha1
kind: Subscription
metadata:
  name: openshift-gitops-operator
  namespace: openshift-gitops-operator
  labels: {operators.coreos.com/openshift-gitops-operator.openshift-gitops-operator: ""}
spec:
  channel: gitops-1.19
  installPlanApproval: Automatic
  name: openshift-gitops-operator
  source: redhat-operators
  sourceNamespace: openshift-marketplace
`

// gitopsNamespace is the namespace the GitOps operator makes for its default Argo CD
// instance. Its documented uninstall (delete the Argo CD instances, then the operator:
// https://docs.openshift.com/gitops/latest/removing_gitops/uninstalling-openshift-gitops.html)
// leaves the namespace, and so does destroy.
const gitopsNamespace = "namespaces openshift-gitops"

// existingRun is one install and destroy with platform.existing on a cluster that setup
// prepares first: every object that existed before must be as it was after destroy, and
// everything the bootstrap made must be gone. check runs between install and destroy with
// plan's adopt changes (target → detail) and the inventory ("phase Kind ns/name" → action).
func existingRun(t *testing.T, setup func(t *testing.T, r *harness.Rehearsal, d dynamic.Interface),
	check func(t *testing.T, planned map[string]string, inv map[string]installer.InventoryAction), edits ...string) {
	t.Helper()
	r := rehearsal(t, testbed.BedOverlay)
	ctx := context.Background()
	d := dyn(t, r)
	cfgFile := existingConfig(t, r, edits...)
	state := filepath.Join(r.WorkDir, "state")
	env := r.Env("RHOAI_BED_OPENSHIFT_INSTALL=/nonexistent/openshift-install")
	flags := r.Flags(state)

	workers, err := kube.DecodeYAML([]byte(existingWorker))
	require.NoError(t, err)
	_, err = d.Resource(msGVR).Namespace("openshift-machine-api").Create(ctx, workers[0], metav1.CreateOptions{})
	require.NoError(t, err)
	setup(t, r, d)
	before := takeSnapshot(t, d)

	planned := map[string]string{}
	for _, e := range planEvents(t, r, env, cfgFile, flags) {
		for _, c := range e.Changes {
			if c.Action == installer.Adopt {
				planned[c.Target] = c.Detail
			}
		}
	}
	res := r.Run(ctx, env, append([]string{"install", "-f", cfgFile}, flags...)...)
	requireSuccess(t, res)
	check(t, planned, inventoryOf(t, r, env, cfgFile, flags))

	res = r.Run(ctx, env, append([]string{"destroy", "--yes", "-f", cfgFile}, flags...)...)
	require.Equal(t, 0, res.Code, res.Stderr)
	after := takeSnapshot(t, d)
	// kubeadmin is removed by design (spec.oauth.removeKubeadmin) and cannot come back.
	assertAsBefore(t, before, after, "secrets kube-system/kubeadmin")
	// What the bootstrap wrote and did not find is gone. (The simulated controllers make
	// objects of their own, such as OLM's namespace: not ours to remove.)
	for key, a := range after {
		if _, existed := before[key]; !existed && a.ours && key != gitopsNamespace {
			t.Errorf("%s was made by the bootstrap during install and is still there after destroy", key)
		}
	}
}

// TestExistingClusterAdoptsConsoleGitOps: the OpenShift GitOps operator was installed from
// the console (an OperatorGroup with a generated name, a Subscription on another channel
// than the file's). install adopts it — no second OperatorGroup, the Subscription left on
// its channel and plan saying so — and destroy leaves it installed, as it was. The file's
// channel (gitops-1.16) is one this cluster's catalog does not offer: it is not applied to
// the adopted Subscription, so the channel check must not fail the phase over it.
func TestExistingClusterAdoptsConsoleGitOps(t *testing.T) {
	t.Parallel() // each test borrows a bed of its own from the pool
	var d dynamic.Interface
	existingRun(t, func(t *testing.T, r *harness.Rehearsal, dy dynamic.Interface) {
		d = dy
		for _, doc := range strings.Split(consoleGitOps, "---\n") {
			createYAML(t, d, doc)
		}
		argoGVR := gvr("argoproj.io", "v1beta1", "argocds")
		require.NoError(t, wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
			a, err := d.Resource(argoGVR).Namespace("openshift-gitops").Get(ctx, "openshift-gitops", metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			ph, _, _ := unstructured.NestedString(a.Object, "status", "phase")
			return ph == "Available", nil
		}), "the console-installed operator runs Argo CD")
	}, func(t *testing.T, planned map[string]string, inv map[string]installer.InventoryAction) {
		ctx := context.Background()
		sub := "Subscription openshift-gitops-operator/openshift-gitops-operator"
		assert.Contains(t, planned[sub], "channel gitops-1.19", "plan says what it adopts")
		assert.Contains(t, planned[sub], "spec.gitops.operatorChannel gitops-1.16 is not applied")
		ogs, err := d.Resource(gvr("operators.coreos.com", "v1", "operatorgroups")).Namespace("openshift-gitops-operator").List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		require.Len(t, ogs.Items, 1, "no second OperatorGroup (OLM fails the operator with two)")
		live, err := d.Resource(gvr("operators.coreos.com", "v1alpha1", "subscriptions")).Namespace("openshift-gitops-operator").Get(ctx, "openshift-gitops-operator", metav1.GetOptions{})
		require.NoError(t, err)
		ch, _, _ := unstructured.NestedString(live.Object, "spec", "channel")
		assert.Equal(t, "gitops-1.19", ch, "the Subscription is left on its channel")
		assert.Equal(t, installer.Adopted, inv["gitops-operator "+sub])
		assert.Equal(t, installer.Adopted, inv["gitops-operator OperatorGroup openshift-gitops-operator/"+ogs.Items[0].GetName()])
		assert.Equal(t, installer.Modified, inv["gitops-operator ArgoCD openshift-gitops/openshift-gitops"], "health checks added, put back by destroy")
	}, "operatorChannel: latest", "operatorChannel: gitops-1.16")
}

// TestExistingClusterKeepsIdenticalIdentityProvider: oauth/cluster already has a Google
// identity provider identical to ours (and the client secret it names). install adopts
// it; destroy keeps it.
func TestExistingClusterKeepsIdenticalIdentityProvider(t *testing.T) {
	t.Parallel() // each test borrows a bed of its own from the pool
	existingRun(t, func(t *testing.T, r *harness.Rehearsal, d dynamic.Interface) {
		ctx := context.Background()
		oauthGVR := gvr("config.openshift.io", "v1", "oauths")
		oa, err := d.Resource(oauthGVR).Get(ctx, "cluster", metav1.GetOptions{})
		require.NoError(t, err)
		google := map[string]any{"name": "google", "mappingMethod": "claim", "type": "Google", "google": map[string]any{
			"clientID": "000000000000-rehearsal.apps.googleusercontent.com", "clientSecret": map[string]any{"name": "rhoai-bootstrap-google-client-secret"},
			"hostedDomain": "bed.example.com"}}
		htpasswd := map[string]any{"name": "local", "mappingMethod": "claim", "type": "HTPasswd", "htpasswd": map[string]any{"fileData": map[string]any{"name": "htpass"}}}
		require.NoError(t, unstructured.SetNestedSlice(oa.Object, []any{htpasswd, google}, "spec", "identityProviders"))
		_, err = d.Resource(oauthGVR).Update(ctx, oa, metav1.UpdateOptions{FieldManager: "console"})
		require.NoError(t, err)
		createYAML(t, d, `apiVersion: v1
kind: Secret
metadata: {name: rhoai-bootstrap-google-client-secret, namespace: openshift-config}
type: Opaque
stringData: {clientSecret: rehearsal-client-secret-value}
`)
		createYAML(t, d, `apiVersion: v1
kind: Secret
metadata: {name: htpass, namespace: openshift-config}
type: Opaque
stringData: {htpasswd: "alice:$2y$05$abcdefghijklmnopqrstuv"}
`)
	}, func(t *testing.T, _ map[string]string, inv map[string]installer.InventoryAction) {
		assert.Equal(t, installer.Adopted, inv["oauth OAuth cluster"], "the identity provider was already as we want it")
		// Same value; our managed-by label added, and taken off again by destroy.
		assert.Equal(t, installer.Modified, inv["oauth Secret openshift-config/rhoai-bootstrap-google-client-secret"])
		assert.Equal(t, installer.Created, inv["oauth ClusterRoleBinding rhoai-bootstrap-cluster-admins"])
	})
}

// TestExistingClusterAdoptsClusterAutoscaler: a ClusterAutoscaler exists before us (applied
// by hand from `rhoai-bootstrap render`'s manifest, so it even carries our label). It is
// adopted, never updated, and destroy does not delete it.
func TestExistingClusterAdoptsClusterAutoscaler(t *testing.T) {
	t.Parallel() // each test borrows a bed of its own from the pool
	existingRun(t, func(t *testing.T, r *harness.Rehearsal, d dynamic.Interface) {
		rendered := filepath.Join(r.WorkDir, "rendered")
		out, err := r.Command(context.Background(), r.Env(), "render", "-f", r.Config(), "--dir", rendered).CombinedOutput()
		require.NoError(t, err, string(out))
		caYAML, err := os.ReadFile(filepath.Join(rendered, "openshift", "99_rhoai-bootstrap_clusterautoscaler_default.yaml"))
		require.NoError(t, err)
		createYAML(t, d, string(caYAML))
	}, func(t *testing.T, planned map[string]string, inv map[string]installer.InventoryAction) {
		assert.Contains(t, planned["ClusterAutoscaler default"], "never deleted by destroy", "plan says it adopts it")
		assert.Equal(t, installer.Adopted, inv["gpu-pools ClusterAutoscaler default"])
		assert.Equal(t, installer.Created, inv["gpu-pools MachineSet openshift-machine-api/byo-4t9xq-t4-shared-us-east-1a"])
	})
}

// planEvents runs plan -o json and returns its events with their changes.
func planEvents(t *testing.T, r *harness.Rehearsal, env []string, cfgFile string, flags []string) []struct {
	Type    string             `json:"type"`
	Phase   string             `json:"phase"`
	Changes []installer.Change `json:"changes"`
} {
	t.Helper()
	out, err := r.Command(context.Background(), env, append([]string{"plan", "-f", cfgFile, "-o", "json"}, flags...)...).Output()
	require.NoError(t, err)
	var evs []struct {
		Type    string             `json:"type"`
		Phase   string             `json:"phase"`
		Changes []installer.Change `json:"changes"`
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var e struct {
			Type    string             `json:"type"`
			Phase   string             `json:"phase"`
			Changes []installer.Change `json:"changes"`
		}
		require.NoError(t, json.Unmarshal([]byte(l), &e))
		evs = append(evs, e)
	}
	return evs
}

// inventoryOf reads `status -o json` and returns "phase Kind ns/name" → action.
func inventoryOf(t *testing.T, r *harness.Rehearsal, env []string, cfgFile string, flags []string) map[string]installer.InventoryAction {
	t.Helper()
	out, err := r.Command(context.Background(), env, append([]string{"status", "-f", cfgFile, "-o", "json"}, flags...)...).Output()
	require.NoError(t, err)
	var st struct {
		Phases map[string]struct {
			Inventory []installer.InventoryEntry `json:"inventory"`
		} `json:"phases"`
	}
	require.NoError(t, json.Unmarshal(out, &st))
	inv := map[string]installer.InventoryAction{}
	for phase, p := range st.Phases {
		for _, e := range p.Inventory {
			inv[phase+" "+e.Kind+" "+kube.Ref(e.Namespace, e.Name)] = e.Action
		}
	}
	t.Logf("inventory: %v", inv)
	return inv
}
