package installer

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEventSchemaFields pins the JSON field names of events and summaries that
// docs/output.md documents under schema 2. If this fails, update docs/output.md, and
// bump EventSchema unless the change only adds fields.
func TestEventSchemaFields(t *testing.T) {
	require.Equal(t, 2, EventSchema)
	e := Event{Schema: EventSchema, Time: time.Now(), Type: RunFinished, Cluster: "c", Action: "install", Phase: "p", Message: "m",
		Waiting: &Waiting{On: "x", Until: time.Now()}, Outcome: OutcomeDone, Error: "e", Problems: 2, DurationMS: 1,
		Changes: []Change{{Action: Create, Target: "t", Detail: "d"}}, Debug: true,
		Inventory: []InventoryEntry{{APIVersion: "v1", Kind: "Namespace", Namespace: "n", Name: "x", UID: "u", Action: Modified, Pending: true, Note: "n",
			Fields: []FieldChange{{Path: []string{"a"}, Previous: json.RawMessage(`1`), Ours: []json.RawMessage{json.RawMessage(`2`)}, Unkept: true}}}},
		Summary: &Summary{Action: "install", Outcome: OutcomeDone, Phases: map[string]Outcome{"p": OutcomeDone}, State: "s",
			Failed: []string{"p"}, Mutating: 1, Extra: map[string]string{"k": "v"}}}
	b, err := json.Marshal(e)
	require.NoError(t, err)
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &m))
	assert.Equal(t, []string{"action", "changes", "cluster", "debug", "durationMs", "error", "inventory", "message", "outcome", "phase", "problems", "schema", "summary", "time", "type", "waiting"}, keys(m))
	var inv []map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(m["inventory"], &inv))
	assert.Equal(t, []string{"action", "apiVersion", "fields", "kind", "name", "namespace", "note", "pending", "uid"}, keys(inv[0]))
	var fields []map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(inv[0]["fields"], &fields))
	assert.Equal(t, []string{"ours", "path", "previous", "unkept"}, keys(fields[0]))
	for _, a := range []InventoryAction{Created, Adopted, Modified} {
		assert.Contains(t, []string{"created", "adopted", "modified"}, string(a))
	}
	for _, a := range []Action{Create, Update, Delete, Run, Adopt} {
		assert.Contains(t, []string{"create", "update", "delete", "run", "adopt"}, string(a))
	}
	var sum, w map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(m["summary"], &sum))
	assert.Equal(t, []string{"action", "extra", "failed", "mutatingRequests", "outcome", "phases", "readRequests", "state", "watchRequests"}, keys(sum))
	require.NoError(t, json.Unmarshal(m["waiting"], &w))
	assert.Equal(t, []string{"on", "until"}, keys(w))
	var ch []map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(m["changes"], &ch))
	assert.Equal(t, []string{"action", "detail", "target"}, keys(ch[0]))
	for _, typ := range []EventType{RunStarted, PhaseStarted, Progress, WaitingOn, PhaseDone, PhaseSkipped, PhaseFailed, PhasePlanned, RunFinished} {
		assert.Contains(t, []string{"run-started", "phase-started", "progress", "waiting", "phase-done", "phase-skipped", "phase-failed", "phase-planned", "run-finished"}, string(typ))
	}
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// The cost event's fields (docs/output.md, "cost").
func TestCostEventFields(t *testing.T) {
	low, high := 0.1, 0.2
	e := Event{Type: CostEstimated, Cost: &Cost{Currency: "USD", Region: "r", MinHourly: 1, MaxHourly: 2, Source: "s", SourceDate: "d", AgeDays: 3, Notes: []string{"n"}, Limit: 4,
		Lines: []CostLine{{Name: "n", InstanceType: "t", Min: 1, Max: 2, Spot: true, SpotLow: &low, SpotHigh: &high, OnDemand: 1, Unknown: true, MinHourly: 1, MaxHourly: 2}}}}
	assert.Equal(t, "cost", string(CostEstimated))
	b, err := json.Marshal(e)
	require.NoError(t, err)
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &m))
	var cost map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(m["cost"], &cost))
	assert.Equal(t, []string{"ageDays", "currency", "limit", "lines", "maxHourly", "minHourly", "notes", "region", "source", "sourceDate"}, keys(cost))
	var lines []map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(cost["lines"], &lines))
	assert.Equal(t, []string{"instanceType", "max", "maxHourly", "min", "minHourly", "name", "onDemand", "spot", "spotHigh", "spotLow", "unknown"}, keys(lines[0]))
}
