package graph

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/certificates"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/cluster"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/installconfig"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/oauth"
)

// recordOf decodes a phase's typed record from a state and encodes it again.
type recordOf func(st *installer.State) (any, error)

func typed[T installer.Record]() recordOf {
	return func(st *installer.State) (any, error) { return installer.RecordIn[T](st) }
}

// records are the phases that kept a record under schema 1, by name (certificates-rollout
// came later: its record starts empty, and a schema 1 certificates record's pending
// rollout is what it confirms).
var records = map[string]recordOf{
	cluster.Name:       typed[cluster.Record](),
	installconfig.Name: typed[installconfig.Record](),
	certificates.Name:  typed[certificates.Record](),
	oauth.Name:         typed[oauth.Record](),
}

// TestRecordsReadVersion1States reads a state file written by the last release with
// schema 1 (testdata/state-v1.json, see testdata/README.md) through the typed records:
// every phase's data decodes into its record and encodes back to the same JSON, so no
// fact recorded by that release is lost or renamed by the migration to schema 2.
func TestRecordsReadVersion1States(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "state-v1.json"))
	require.NoError(t, err)
	var v1 struct {
		Version int `json:"version"`
		Phases  map[string]struct {
			Data json.RawMessage `json:"data"`
		} `json:"phases"`
	}
	require.NoError(t, json.Unmarshal(raw, &v1))
	require.Equal(t, 1, v1.Version, "the fixture is a version 1 state")

	st, err := installer.DecodeState(raw, "state-v1.json")
	require.NoError(t, err)
	assert.Equal(t, installer.StateVersion, st.Version)
	withData := 0
	for name, p := range v1.Phases {
		if len(p.Data) == 0 {
			continue
		}
		withData++
		decode, ok := records[name]
		require.True(t, ok, "phase %s recorded data in version 1 but has no record type", name)
		rec, err := decode(st)
		require.NoError(t, err, name)
		b, err := json.Marshal(rec)
		require.NoError(t, err)
		assert.JSONEq(t, string(p.Data), string(b), "phase %s: the record keeps every version 1 key", name)
	}
	assert.Equal(t, len(records), withData, "the fixture holds a record of every phase that keeps one")

	// Facts the resume depends on, read through their types.
	c, err := installer.RecordIn[cluster.Record](st)
	require.NoError(t, err)
	assert.True(t, c.Installed)
	assert.NotEmpty(t, c.InfraID)
	assert.True(t, c.CreateStarted())
	ic, err := installer.RecordIn[installconfig.Record](st)
	require.NoError(t, err)
	require.NotNil(t, ic.Generated)
	assert.Equal(t, c.InfraID, ic.Generated.InfraID)
	certs, err := installer.RecordIn[certificates.Record](st)
	require.NoError(t, err)
	assert.Len(t, certs.Ledger, 1)
}
