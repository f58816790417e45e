package installer

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordA is phase "a"'s record in the tests.
type recordA struct {
	Note  string   `json:"note,omitempty"`
	Count int      `json:"count,omitempty"`
	Seen  []string `json:"seen,omitempty"`
}

func (recordA) PhaseName() string { return "a" }

// recordB is phase "b"'s record.
type recordB struct {
	FromA string `json:"fromA,omitempty"`
}

func (recordB) PhaseName() string { return "b" }

func TestRecordsAreTypedAndSavedAtOnce(t *testing.T) {
	w := newWorld()
	phases := diamond(w)
	var onDisk []byte
	var st *LocalStore
	phases[0].(*fakePhase).applyFn = func(ctx context.Context, s *Scope) error {
		require.NoError(t, Save(ctx, s, func(r *recordA) error { r.Note, r.Count = "infra-42", 2; return nil }))
		var err error
		onDisk, err = os.ReadFile(st.Location()) // saved before Save returned, not at the end
		return err
	}
	phases[1].(*fakePhase).applyFn = func(ctx context.Context, s *Scope) error {
		a, err := Load[recordA](s) // another phase's record, through its type
		if err != nil {
			return err
		}
		if err := Save(ctx, s, func(r *recordA) error { r.Note = "overwritten by b"; return nil }); err == nil {
			t.Error("phase b changed phase a's record")
		} else {
			assert.ErrorContains(t, err, "phase b tried to change the a phase's record")
		}
		return Save(ctx, s, func(r *recordB) error { r.FromA = a.Note; return nil })
	}
	r, store, _ := newRunner(t, phases)
	st = store
	_, err := r.Install(context.Background())
	require.NoError(t, err)
	assert.Contains(t, string(onDisk), `"data": {`)
	assert.Contains(t, string(onDisk), `"note": "infra-42"`)

	saved, err := st.Load(context.Background())
	require.NoError(t, err)
	a, err := RecordIn[recordA](saved)
	require.NoError(t, err)
	assert.Equal(t, recordA{Note: "infra-42", Count: 2}, a)
	b, err := RecordIn[recordB](saved)
	require.NoError(t, err)
	assert.Equal(t, "infra-42", b.FromA)
	assert.Equal(t, StateVersion, saved.Version)

	// Clearing every field drops the record from the file.
	phases[0].(*fakePhase).applyFn = func(ctx context.Context, s *Scope) error {
		return Save(ctx, s, func(r *recordA) error { *r = recordA{}; return nil })
	}
	phases[0].(*fakePhase).inputs = "changed"
	_, err = r.Install(context.Background())
	require.NoError(t, err)
	saved, err = st.Load(context.Background())
	require.NoError(t, err)
	assert.Nil(t, saved.Phases["a"].Data)
}

func TestSaveErrorsLeaveTheRecordAsItWas(t *testing.T) {
	w := newWorld()
	phases := diamond(w)
	phases[0].(*fakePhase).applyFn = func(ctx context.Context, s *Scope) error {
		require.NoError(t, Save(ctx, s, func(r *recordA) error { r.Note = "kept"; return nil }))
		err := Save(ctx, s, func(r *recordA) error { r.Note = "never"; return assert.AnError })
		require.ErrorIs(t, err, assert.AnError)
		s.Redactor().Add("s3cret-value")
		err = Save(ctx, s, func(r *recordA) error { r.Note = "s3cret-value"; return nil })
		require.ErrorContains(t, err, "refusing to save state")
		rec, err := Load[recordA](s)
		require.NoError(t, err)
		assert.Equal(t, "kept", rec.Note, "a refused save is not recorded in memory either")
		return nil
	}
	r, st, _ := newRunner(t, phases)
	_, err := r.Install(context.Background())
	require.NoError(t, err, "later saves of the run still work")
	saved, err := st.Load(context.Background())
	require.NoError(t, err)
	a, err := RecordIn[recordA](saved)
	require.NoError(t, err)
	assert.Equal(t, "kept", a.Note)
}

// v1State is a state file as version 1 wrote it: each phase's data a map of keys.
const v1State = `{
  "version": 1,
  "cluster": "c1",
  "createdAt": "2026-11-28T10:00:00Z",
  "updatedAt": "2026-11-28T10:05:00Z",
  "phases": {
    "a": {"outcome": "done", "attempts": 1, "data": {"note": "infra-42", "count": 2, "seen": ["x"]}},
    "b": {"outcome": "done", "attempts": 1, "data": {}},
    "c": {"outcome": "pending", "attempts": 0}
  }
}`

func TestStateVersion1Migrates(t *testing.T) {
	st, err := DecodeState([]byte(v1State), "state.json")
	require.NoError(t, err)
	assert.Equal(t, StateVersion, st.Version)
	assert.True(t, st.Phases["a"].Untracked, "a ran before inventories: what it made is in none")
	assert.False(t, st.Phases["c"].Untracked, "c never ran")
	a, err := RecordIn[recordA](st)
	require.NoError(t, err)
	assert.Equal(t, recordA{Note: "infra-42", Count: 2, Seen: []string{"x"}}, a)
	assert.Nil(t, st.Phases["b"].Data, "an empty map is no record")

	b, err := EncodeState(st)
	require.NoError(t, err)
	var out map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &out))
	assert.JSONEq(t, "3", string(out["version"]))

	_, err = DecodeState([]byte(`{"version": 1, "phases": {"a": {"outcome": "done", "data": ["not", "a", "map"]}}}`), "state.json")
	require.ErrorContains(t, err, "phase a: data is not an object")
	_, err = DecodeState([]byte(`{"version": 4}`), "state.json")
	require.ErrorContains(t, err, "newer than this binary understands")
}

func TestStateVersion1ResumesAndIsRewritten(t *testing.T) {
	w := newWorld()
	phases := diamond(w)
	var seen recordA
	phases[1].(*fakePhase).applyFn = func(_ context.Context, s *Scope) error {
		var err error
		seen, err = Load[recordA](s)
		return err
	}
	r, st, _ := newRunner(t, phases)
	require.NoError(t, os.WriteFile(st.Location(), []byte(v1State), 0o600))
	w.applied["a"] = true
	_, err := r.Install(context.Background())
	require.NoError(t, err)
	assert.EqualValues(t, 4, w.applies.Load(), "a was done in the version 1 state")
	assert.Equal(t, "infra-42", seen.Note)
	b, err := os.ReadFile(st.Location())
	require.NoError(t, err)
	var v struct{ Version int }
	require.NoError(t, json.Unmarshal(b, &v))
	assert.Equal(t, StateVersion, v.Version)
}
