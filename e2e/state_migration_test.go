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

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

// TestResumesFromVersion1State: a state file written by the previous release (schema 1:
// phases/graph/testdata/state-v1.json, captured from that binary) still resumes. The
// world is made by a first install; then state.json is replaced by the captured file
// with this run's values put under the captured keys (an infra ID, certificate serials
// and the ACME server's port differ per bed; the keys, nesting, journals and outcomes are
// the old binary's). The next install converges without a single mutating request and
// rewrites the file as the current version with every recorded fact kept; the same holds
// for a version 2 state, and destroy still works after either.
func TestResumesFromVersion1State(t *testing.T) {
	t.Parallel()
	r := rehearsal(t, testbed.BedOverlay)
	state := filepath.Join(r.WorkDir, "state")
	env := r.Env()
	requireSuccess(t, install(t, r, state, env))

	type phase map[string]json.RawMessage
	type doc struct {
		Version int              `json:"version"`
		Phases  map[string]phase `json:"phases"`
	}
	read := func(path string) (map[string]json.RawMessage, doc) {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		var raw map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(b, &raw))
		var d doc
		require.NoError(t, json.Unmarshal(b, &d))
		return raw, d
	}
	// Facts the inventory replaced: this release no longer writes them, and keeps what an
	// old state holds (the previous values of what the old release changed).
	legacy := map[string]bool{"certificates.previous": true, "oauth.previousIdP": true}
	_, cur := read(filepath.Join(state, "state.json"))
	raw, v1 := read(filepath.Join(r.Root, "phases", "graph", "testdata", "state-v1.json"))
	require.Equal(t, 1, v1.Version)
	want := map[string]map[string]json.RawMessage{}
	for name, p := range v1.Phases {
		now := cur.Phases[name]
		require.NotNil(t, now, "phase %s", name)
		p["inputHash"] = now["inputHash"]
		if len(p["data"]) == 0 {
			continue
		}
		var old, fresh map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(p["data"], &old))
		require.NoError(t, json.Unmarshal(now["data"], &fresh))
		for k := range old {
			if legacy[name+"."+k] {
				continue // carried over as the old release wrote it
			}
			require.Contains(t, fresh, k, "this release records %s.%s under the key version 1 used", name, k)
			old[k] = fresh[k]
		}
		want[name] = old
		b, err := json.Marshal(old)
		require.NoError(t, err)
		p["data"] = b
	}
	b, err := json.Marshal(v1.Phases)
	require.NoError(t, err)
	raw["phases"] = b
	b, err = json.MarshalIndent(raw, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(state, "state.json"), b, 0o600))

	since := time.Now()
	res := install(t, r, state, env)
	requireSuccess(t, res)
	assert.Zero(t, res.Summary().Summary.Mutating, "converged from the version 1 state")
	assert.Zero(t, mutatingAuditEvents(t, r, since))
	for _, e := range res.Events {
		// The engine's words when a phase's recorded input hash differs: the hashes
		// carried over too.
		assert.NotEqual(t, "inputs changed since the last run", e.Message, e.Phase)
	}

	_, after := read(filepath.Join(state, "state.json"))
	assert.Equal(t, installer.StateVersion, after.Version, "rewritten as the current version")
	for name, data := range want {
		b, err := json.Marshal(data)
		require.NoError(t, err)
		assert.JSONEq(t, string(b), string(after.Phases[name]["data"]), "phase %s keeps its facts", name)
		assert.JSONEq(t, "true", string(after.Phases[name]["untracked"]), "phase %s ran before inventories", name)
	}

	// A version 2 state (typed records, no inventory) resumes too. Version 3 only adds
	// each phase's "inventory" and "untracked", so the version 2 file is this one without
	// them, as the release before inventories wrote it.
	raw, _ = read(filepath.Join(state, "state.json"))
	var phases map[string]map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw["phases"], &phases))
	for _, p := range phases {
		delete(p, "inventory")
		delete(p, "untracked")
	}
	raw["phases"], err = json.Marshal(phases)
	require.NoError(t, err)
	raw["version"] = json.RawMessage("2")
	b, err = json.MarshalIndent(raw, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(state, "state.json"), b, 0o600))
	since = time.Now()
	res = install(t, r, state, env)
	requireSuccess(t, res)
	assert.Zero(t, res.Summary().Summary.Mutating, "converged from the version 2 state")
	assert.Zero(t, mutatingAuditEvents(t, r, since))
	_, after = read(filepath.Join(state, "state.json"))
	assert.Equal(t, installer.StateVersion, after.Version)
	assert.JSONEq(t, "true", string(after.Phases["oauth"]["untracked"]))

	// destroy still works: what the untracked phases made is left, and said so (the
	// cluster's removal takes it), and the cluster itself is destroyed.
	res = r.Run(context.Background(), env, append([]string{"destroy", "--yes", "-f", r.Config()}, r.Flags(state)...)...)
	require.Equal(t, 0, res.Code, "destroy after a resume from an old state: %s", res.Stderr)
	left := 0
	for _, e := range res.Events {
		if strings.Contains(e.Message, "kept no inventory") {
			left++
		}
	}
	assert.Positive(t, left, "destroy says what it leaves")
	clusters, err := r.RegistryClusters()
	require.NoError(t, err)
	for _, c := range clusters {
		assert.True(t, c.Destroyed, "cluster %s destroyed", c.InfraID)
	}
}
