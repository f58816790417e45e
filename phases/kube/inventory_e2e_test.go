//go:build e2e

package kube_test

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/kube"
)

// cfg is the test API server (a real kube-apiserver and etcd, with the real OAuth,
// APIServer and ClusterOperator CRDs of openshift/api).
var cfg *rest.Config

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	paths, err := testbed.EnsureBinaries(ctx)
	if err != nil {
		panic(err)
	}
	all, err := testbed.LoadCRDs(ctx, testbed.CRDSetOpenShift)
	if err != nil {
		panic(err)
	}
	env := &envtest.Environment{BinaryAssetsDirectory: paths.Kubernetes, ControlPlaneStartTimeout: time.Minute}
	if cfg, err = env.Start(); err != nil {
		_ = env.Stop()
		panic(err)
	}
	defer func() { _ = env.Stop() }()
	var crds []*unstructured.Unstructured
	for _, c := range all {
		switch c.GetName() {
		case "oauths.config.openshift.io", "apiservers.config.openshift.io", "clusteroperators.config.openshift.io":
			crds = append(crds, c)
		}
	}
	c, err := kube.Connect(cfg, kube.Options{})
	if err != nil {
		panic(err)
	}
	if err := applyCRDs(ctx, c, crds); err != nil {
		panic(err)
	}
	return m.Run()
}

// applyCRDs installs CRDs through a phase (every write goes through the recording
// helpers) and waits until they are served.
func applyCRDs(ctx context.Context, c *kube.Clients, crds []*unstructured.Unstructured) error {
	st, err := installer.NewLocalStore(filepath.Join(os.TempDir(), "kube-e2e-crds-"+time.Now().Format("150405.000000")))
	if err != nil {
		return err
	}
	defer os.RemoveAll(st.Dir)
	p := &step{name: "crds", apply: func(ctx context.Context, s *installer.Scope) error { return c.Apply(ctx, s, crds...) }}
	if _, err := (&installer.Runner{Phases: []installer.Phase{p}, Store: st, Cluster: "c", Command: "test"}).Install(ctx); err != nil {
		return err
	}
	for _, crd := range crds {
		if err := kube.Wait(ctx, nil, crd.GetName(), time.Minute, func(ctx context.Context) (bool, string, error) {
			u, err := c.Get(ctx, kube.GVK("apiextensions.k8s.io/v1", "CustomResourceDefinition"), "", crd.GetName())
			st, _, _ := kube.Condition(u, "Established")
			return st == "True", st, err
		}); err != nil {
			return err
		}
	}
	return nil
}

// step is a phase whose Apply and Destroy run the test's functions with the real Scope.
type step struct {
	name           string
	apply, destroy func(ctx context.Context, s *installer.Scope) error
	done           bool
}

func (p *step) Name() string        { return p.name }
func (p *step) DependsOn() []string { return nil }
func (p *step) Check(context.Context, *installer.Scope) (installer.Status, error) {
	if p.done {
		return installer.Done(""), nil
	}
	return installer.Pending("test step"), nil
}
func (p *step) Apply(ctx context.Context, s *installer.Scope) error {
	if err := p.apply(ctx, s); err != nil {
		return err
	}
	p.done = true
	return nil
}
func (p *step) Destroy(ctx context.Context, s *installer.Scope) error {
	if p.destroy == nil {
		return nil
	}
	return p.destroy(ctx, s)
}

// world is one test's phase, store and clients.
type world struct {
	t     *testing.T
	c     *kube.Clients
	dyn   dynamic.Interface
	store *installer.LocalStore
	bus   *installer.Bus
}

func newWorld(t *testing.T) *world {
	t.Helper()
	c, err := kube.Connect(cfg, kube.Options{})
	require.NoError(t, err)
	d, err := dynamic.NewForConfig(cfg)
	require.NoError(t, err)
	st, err := installer.NewLocalStore(t.TempDir())
	require.NoError(t, err)
	return &world{t: t, c: c, dyn: d, store: st, bus: installer.NewBus(&installer.Redactor{})}
}

// install runs apply as phase "p" (a new install each call, as a new run would).
func (w *world) install(apply func(ctx context.Context, s *installer.Scope) error) {
	w.t.Helper()
	r := &installer.Runner{Phases: []installer.Phase{&step{name: "p", apply: apply}}, Store: w.store, Bus: w.bus, Cluster: "c", Command: "test"}
	_, err := r.Install(context.Background())
	require.NoError(w.t, err)
}

// destroy undoes phase "p"'s inventory.
func (w *world) destroy() {
	w.t.Helper()
	p := &step{name: "p", destroy: func(ctx context.Context, s *installer.Scope) error {
		return w.c.DestroyInventory(ctx, s, 20*time.Second, false)
	}}
	r := &installer.Runner{Phases: []installer.Phase{p}, Store: w.store, Bus: w.bus, Cluster: "c", Command: "test"}
	_, err := r.Destroy(context.Background())
	require.NoError(w.t, err)
}

func (w *world) inventory() []installer.InventoryEntry {
	w.t.Helper()
	st, err := w.store.Load(context.Background())
	require.NoError(w.t, err)
	if st == nil || st.Phases["p"] == nil {
		return nil
	}
	return st.Phases["p"].Inventory
}

func (w *world) get(gvr schema.GroupVersionResource, ns, name string) *unstructured.Unstructured {
	w.t.Helper()
	u, err := w.dyn.Resource(gvr).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return u
}

var (
	nsGVR    = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	cmGVR    = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	secGVR   = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	oauthGVR = schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "oauths"}
	asGVR    = schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "apiservers"}
)

func configMap(ns, name string, data map[string]any) *unstructured.Unstructured {
	return kube.Obj("v1", "ConfigMap", ns, name, map[string]any{"data": data})
}

func TestCreatedAdoptedModifiedAndDestroy(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	ns := kube.Obj("v1", "Namespace", "", "inv-a", nil)
	ns.SetLabels(map[string]string{"team": "platform", "monitoring": "on"})
	// The namespace exists before us with labels of its own; one of ours has another value.
	pre := kube.Obj("v1", "Namespace", "", "inv-a", nil)
	pre.SetLabels(map[string]string{"team": "data", "owner": "alice"})
	_, err := w.dyn.Resource(nsGVR).Create(ctx, pre, metav1.CreateOptions{})
	require.NoError(t, err)
	adopted := configMap("inv-a", "already-there", map[string]any{"k": "v"})
	_, err = w.dyn.Resource(cmGVR).Namespace("inv-a").Create(ctx, adopted, metav1.CreateOptions{})
	require.NoError(t, err)

	w.install(func(ctx context.Context, s *installer.Scope) error {
		return w.c.Apply(ctx, s, ns, adopted, configMap("inv-a", "ours", map[string]any{"k": "v"}))
	})
	inv := w.inventory()
	require.Len(t, inv, 3)
	byName := map[string]installer.InventoryEntry{}
	for _, e := range inv {
		byName[e.Name] = e
		assert.NotEmpty(t, e.UID, e.String())
		assert.False(t, e.Pending, e.String())
	}
	assert.Equal(t, installer.Modified, byName["inv-a"].Action)
	require.Len(t, byName["inv-a"].Fields, 2)
	assert.Equal(t, "metadata.labels.monitoring", byName["inv-a"].Fields[0].PathString())
	assert.Nil(t, byName["inv-a"].Fields[0].Previous, "the label was absent")
	assert.Equal(t, "metadata.labels.team", byName["inv-a"].Fields[1].PathString())
	assert.JSONEq(t, `"data"`, string(byName["inv-a"].Fields[1].Previous))
	assert.Equal(t, installer.Adopted, byName["already-there"].Action)
	assert.Equal(t, installer.Created, byName["ours"].Action)

	// A converged apply writes nothing and records nothing new.
	before := w.inventory()
	counter := &kube.Counter{}
	cc, err := kube.Connect(cfg, kube.Options{Counter: counter})
	require.NoError(t, err)
	w.install(func(ctx context.Context, s *installer.Scope) error {
		return cc.Apply(ctx, s, ns, adopted, configMap("inv-a", "ours", map[string]any{"k": "v"}))
	})
	assert.Zero(t, counter.Count(), "no write on a converged apply")
	assert.Equal(t, before, w.inventory())

	// Someone sets "monitoring" to their own value after us: it is theirs now.
	live := w.get(nsGVR, "", "inv-a")
	labels := live.GetLabels()
	labels["monitoring"] = "theirs"
	live.SetLabels(labels)
	_, err = w.dyn.Resource(nsGVR).Update(ctx, live, metav1.UpdateOptions{})
	require.NoError(t, err)

	w.destroy()
	assert.Empty(t, w.inventory(), "every entry dealt with")
	got := w.get(nsGVR, "", "inv-a")
	require.NotNil(t, got, "a namespace we did not create stays")
	assert.Equal(t, map[string]string{"team": "data", "owner": "alice", "monitoring": "theirs", "kubernetes.io/metadata.name": "inv-a"}, got.GetLabels(),
		"our change of team undone; the value someone set after us kept")
	assert.NotNil(t, w.get(cmGVR, "inv-a", "already-there"), "adopted: left")
	ours := w.get(cmGVR, "inv-a", "ours")
	assert.True(t, ours == nil || ours.GetDeletionTimestamp() != nil, "created: deleted")
}

func TestDestroyLeavesObjectsThatAreNotOurs(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.dyn.Resource(nsGVR).Create(ctx, kube.Obj("v1", "Namespace", "", "inv-b", nil), metav1.CreateOptions{})
	require.NoError(t, err)
	w.install(func(ctx context.Context, s *installer.Scope) error {
		if err := w.c.Apply(ctx, s, configMap("inv-b", "replaced", map[string]any{"k": "v"})); err != nil {
			return err
		}
		// A kill between the intent and the write: the entry is pending, and the object
		// that appears is someone else's (none of its fields are ours).
		return s.Track(ctx, installer.InventoryEntry{APIVersion: "v1", Kind: "ConfigMap", Namespace: "inv-b", Name: "never-written", Action: installer.Created, Pending: true})
	})
	// Someone deletes ours and makes their own under the same name; another makes the
	// object our killed run meant to create.
	require.NoError(t, w.dyn.Resource(cmGVR).Namespace("inv-b").Delete(ctx, "replaced", metav1.DeleteOptions{}))
	_, err = w.dyn.Resource(cmGVR).Namespace("inv-b").Create(ctx, configMap("inv-b", "replaced", map[string]any{"k": "theirs"}), metav1.CreateOptions{FieldManager: "someone"})
	require.NoError(t, err)
	_, err = w.dyn.Resource(cmGVR).Namespace("inv-b").Create(ctx, configMap("inv-b", "never-written", nil), metav1.CreateOptions{FieldManager: "someone"})
	require.NoError(t, err)

	w.destroy()
	assert.NotNil(t, w.get(cmGVR, "inv-b", "replaced"), "another uid: not ours")
	assert.NotNil(t, w.get(cmGVR, "inv-b", "never-written"), "pending and no field of ours: not ours")
	assert.Empty(t, w.inventory())
}

func TestPendingCreateThatLandedIsOurs(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.dyn.Resource(nsGVR).Create(ctx, kube.Obj("v1", "Namespace", "", "inv-c", nil), metav1.CreateOptions{})
	require.NoError(t, err)
	w.install(func(ctx context.Context, s *installer.Scope) error {
		return w.c.Apply(ctx, s, configMap("inv-c", "landed", map[string]any{"k": "v"}))
	})
	// As if killed after the write, before the uid was saved.
	st, err := w.store.Load(ctx)
	require.NoError(t, err)
	st.Phases["p"].Inventory[0].UID, st.Phases["p"].Inventory[0].Pending = "", true
	require.NoError(t, w.store.Save(ctx, st))

	// The next apply finds it and fills in the uid, without a write.
	w.install(func(ctx context.Context, s *installer.Scope) error {
		return w.c.Apply(ctx, s, configMap("inv-c", "landed", map[string]any{"k": "v"}))
	})
	inv := w.inventory()
	require.Len(t, inv, 1)
	assert.Equal(t, installer.Created, inv[0].Action, "decided absent before our write: created, not adopted")
	assert.False(t, inv[0].Pending)
	assert.Equal(t, string(w.get(cmGVR, "inv-c", "landed").GetUID()), inv[0].UID)

	// Pending again, and destroy straight away: our field manager proves the write landed.
	st, err = w.store.Load(ctx)
	require.NoError(t, err)
	st.Phases["p"].Inventory[0].UID, st.Phases["p"].Inventory[0].Pending = "", true
	require.NoError(t, w.store.Save(ctx, st))
	w.destroy()
	cm := w.get(cmGVR, "inv-c", "landed")
	assert.True(t, cm == nil || cm.GetDeletionTimestamp() != nil, "ours: deleted")
}

func idp(name, kind string) map[string]any {
	return map[string]any{"name": name, "type": kind, "mappingMethod": "claim"}
}

func TestEditListRecordsEntriesAndRestoresOnlyThem(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	oauth := kube.Obj("config.openshift.io/v1", "OAuth", "", "cluster", map[string]any{
		"spec": map[string]any{"identityProviders": []any{idp("local", "HTPasswd"), idp("google", "GitHub")}},
	})
	_, err := w.dyn.Resource(oauthGVR).Create(ctx, oauth, metav1.CreateOptions{})
	require.NoError(t, err)
	google := idp("google", "Google")
	google["google"] = map[string]any{"clientID": "x", "clientSecret": map[string]any{"name": "s"}}
	edit := kube.ListEdit{GVK: kube.GVK("config.openshift.io/v1", "OAuth"), Name: "cluster", Path: []string{"spec", "identityProviders"}, Key: "name",
		Edit: func(l []any) []any {
			for i, e := range l {
				if e.(map[string]any)["name"] == "google" {
					l[i] = google
					return l
				}
			}
			return append(l, google)
		}}
	w.install(func(ctx context.Context, s *installer.Scope) error {
		changed, err := w.c.EditList(ctx, s, edit)
		assert.True(t, changed)
		return err
	})
	inv := w.inventory()
	require.Len(t, inv, 1)
	assert.Equal(t, installer.Modified, inv[0].Action)
	require.Len(t, inv[0].Fields, 1)
	assert.Equal(t, "spec.identityProviders[name=google]", inv[0].Fields[0].PathString())

	// Someone adds a provider after us.
	live := w.get(oauthGVR, "", "cluster")
	idps, _, _ := unstructured.NestedSlice(live.Object, "spec", "identityProviders")
	require.NoError(t, unstructured.SetNestedSlice(live.Object, append(idps, idp("corp", "OpenID")), "spec", "identityProviders"))
	_, err = w.dyn.Resource(oauthGVR).Update(ctx, live, metav1.UpdateOptions{})
	require.NoError(t, err)

	w.destroy()
	idps, _, _ = unstructured.NestedSlice(w.get(oauthGVR, "", "cluster").Object, "spec", "identityProviders")
	assert.Equal(t, []any{idp("local", "HTPasswd"), idp("google", "GitHub"), idp("corp", "OpenID")}, idps,
		"what was under our name before is back, where it was; the provider added since stays")

	// A provider identical to ours already there: adopted, and destroy keeps it.
	w2 := newWorld(t)
	live = w.get(oauthGVR, "", "cluster")
	require.NoError(t, unstructured.SetNestedSlice(live.Object, []any{google}, "spec", "identityProviders"))
	_, err = w.dyn.Resource(oauthGVR).Update(ctx, live, metav1.UpdateOptions{})
	require.NoError(t, err)
	w2.install(func(ctx context.Context, s *installer.Scope) error {
		changed, err := w2.c.EditList(ctx, s, edit)
		assert.False(t, changed)
		return err
	})
	require.Len(t, w2.inventory(), 1)
	assert.Equal(t, installer.Adopted, w2.inventory()[0].Action)
	w2.destroy()
	idps, _, _ = unstructured.NestedSlice(w.get(oauthGVR, "", "cluster").Object, "spec", "identityProviders")
	assert.Equal(t, []any{google}, idps)
}

func TestEditListPutsBackANameTakenOutOfAnotherEntry(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	host := "api.c.example.com"
	named := func(secret string, names ...any) map[string]any {
		return map[string]any{"names": names, "servingCertificate": map[string]any{"name": secret}}
	}
	shared, only, other := named("admin-cert", host, "api.alias.example.com"), named("admin-only", host), named("corp", "x.example.com")
	as := kube.Obj("config.openshift.io/v1", "APIServer", "", "cluster", map[string]any{
		"spec": map[string]any{"servingCerts": map[string]any{"namedCertificates": []any{shared, only, other}}},
	})
	_, err := w.dyn.Resource(asGVR).Create(ctx, as, metav1.CreateOptions{})
	require.NoError(t, err)
	w.install(func(ctx context.Context, s *installer.Scope) error {
		_, err := w.c.EditList(ctx, s, kube.ListEdit{GVK: kube.GVK("config.openshift.io/v1", "APIServer"), Name: "cluster",
			Path: []string{"spec", "servingCerts", "namedCertificates"}, Key: "servingCertificate.name",
			Edit: func([]any) []any { // as certificates.mergeNamedCerts does
				return []any{named("admin-cert", "api.alias.example.com"), other, named("ours", host)}
			}})
		return err
	})
	assert.Len(t, w.inventory()[0].Fields, 3, "shared changed, only removed, ours added")
	w.destroy()
	l, _, _ := unstructured.NestedSlice(w.get(asGVR, "", "cluster").Object, "spec", "servingCerts", "namedCertificates")
	assert.ElementsMatch(t, []any{shared, only, other}, l)
}

func TestSecretValuesAreNeverKept(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.dyn.Resource(nsGVR).Create(ctx, kube.Obj("v1", "Namespace", "", "inv-d", nil), metav1.CreateOptions{})
	require.NoError(t, err)
	old := base64.StdEncoding.EncodeToString([]byte("old-secret-value"))
	_, err = w.dyn.Resource(secGVR).Namespace("inv-d").Create(ctx, kube.Obj("v1", "Secret", "inv-d", "s", map[string]any{"data": map[string]any{"k": old}}), metav1.CreateOptions{})
	require.NoError(t, err)
	neu := base64.StdEncoding.EncodeToString([]byte("new-secret-value"))
	w.install(func(ctx context.Context, s *installer.Scope) error {
		return w.c.Apply(ctx, s, kube.Obj("v1", "Secret", "inv-d", "s", map[string]any{"data": map[string]any{"k": neu}}))
	})
	b, err := os.ReadFile(w.store.Location())
	require.NoError(t, err)
	assert.NotContains(t, string(b), old)
	assert.NotContains(t, string(b), neu)
	inv := w.inventory()
	require.Len(t, inv, 1)
	assert.True(t, inv[0].Fields[0].Unkept)
}

func TestWritesAroundTheHelpersAreRefused(t *testing.T) {
	c, err := kube.Connect(cfg, kube.Options{})
	require.NoError(t, err)
	ri, err := c.Resource(kube.GVK("v1", "ConfigMap"), "default")
	require.NoError(t, err)
	_, err = ri.Create(context.Background(), configMap("default", "sneaky", nil), metav1.CreateOptions{})
	var unrecorded *kube.ErrUnrecorded
	require.True(t, errors.As(err, &unrecorded), "got %v", err)
}
