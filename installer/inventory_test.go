package installer

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInventoryTrackIsSavedAtOnceAndUntracked(t *testing.T) {
	w := newWorld()
	phases := diamond(w)
	var st *LocalStore
	ns := InventoryEntry{APIVersion: "v1", Kind: "Namespace", Name: "gitops", Action: Created, Pending: true}
	phases[0].(*fakePhase).applyFn = func(ctx context.Context, s *Scope) error {
		require.NoError(t, s.Track(ctx, ns))
		b, err := os.ReadFile(st.Location()) // on disk before Track returned
		require.NoError(t, err)
		assert.Contains(t, string(b), `"pending": true`)
		ns.UID, ns.Pending = "uid-1", false
		require.NoError(t, s.Track(ctx, ns)) // replaces, by identity
		og := InventoryEntry{APIVersion: "operators.coreos.com/v1", Kind: "OperatorGroup", Namespace: "gitops", Name: "og-x7k", UID: "uid-2", Action: Adopted}
		require.NoError(t, s.Track(ctx, og))
		got, ok := s.Tracked(ns.ID())
		require.True(t, ok)
		assert.Equal(t, "uid-1", got.UID)
		assert.Len(t, s.Inventory(), 2)
		s.Redactor().Add("s3cret-value")
		err = s.Track(ctx, InventoryEntry{APIVersion: "v1", Kind: "Secret", Name: "x", Action: Modified, Note: "s3cret-value"})
		require.ErrorContains(t, err, "refusing to save state")
		assert.Len(t, s.Inventory(), 2, "a refused entry is not kept in memory either")
		return nil
	}
	r, store, _ := newRunner(t, phases)
	st = store
	_, err := r.Install(context.Background())
	require.NoError(t, err)
	saved, err := st.Load(context.Background())
	require.NoError(t, err)
	inv := saved.Phases["a"].Inventory
	require.Len(t, inv, 2)
	assert.Equal(t, "_gitops__Namespace", inv[0].ID())
	assert.Equal(t, "gitops_og-x7k_operators.coreos.com_OperatorGroup", inv[1].ID())
	assert.Equal(t, "adopted OperatorGroup gitops/og-x7k", inv[1].String())

	// Plans never change the inventory.
	planPhase := &checkTracker{t: t}
	rp, _, _ := newRunner(t, []Phase{planPhase})
	_, err = rp.Plan(context.Background())
	require.NoError(t, err)
	assert.ErrorContains(t, planPhase.err, "during a plan")
}

// checkTracker tries to change its inventory from Check.
type checkTracker struct {
	t   *testing.T
	err error
}

func (c *checkTracker) Name() string        { return "tracker" }
func (c *checkTracker) DependsOn() []string { return nil }
func (c *checkTracker) Check(ctx context.Context, s *Scope) (Status, error) {
	c.err = s.Track(ctx, InventoryEntry{APIVersion: "v1", Kind: "Namespace", Name: "x", Action: Created})
	return Done(""), nil
}
func (c *checkTracker) Apply(context.Context, *Scope) error   { return nil }
func (c *checkTracker) Destroy(context.Context, *Scope) error { return nil }

func TestInventoryChangeKeepsTheFirstPreviousValue(t *testing.T) {
	e := InventoryEntry{APIVersion: "config.openshift.io/v1", Kind: "OAuth", Name: "cluster", Action: Modified}
	path := []string{"spec", "identityProviders", "[name=google]"}
	e.Change(path, nil, json.RawMessage(`{"v":1}`), false)
	e.Change(path, json.RawMessage(`{"v":1}`), json.RawMessage(`{"v":2}`), false) // a later run: previous is ours
	e.Change(path, nil, json.RawMessage(`{"v":2}`), false)
	require.Len(t, e.Fields, 1)
	f := e.Fields[0]
	assert.Nil(t, f.Previous, "the value before our first change: absent")
	assert.Equal(t, []json.RawMessage{json.RawMessage(`{"v":1}`), json.RawMessage(`{"v":2}`)}, f.Ours)
	assert.Equal(t, "spec.identityProviders[name=google]", f.PathString())
	for i := 3; i < 8; i++ {
		e.Change(path, nil, json.RawMessage(`{"v":`+string(rune('0'+i))+`}`), false)
	}
	assert.Len(t, e.Fields[0].Ours, maxOurs)

	e.Change([]string{"data", "clientSecret"}, json.RawMessage(`"old"`), json.RawMessage(`"new"`), true)
	assert.True(t, e.Fields[1].Unkept)
	assert.Nil(t, e.Fields[1].Previous, "a secret's values are never kept")
	assert.Nil(t, e.Fields[1].Ours)
}
