package installer

import (
	"encoding/json"
	"fmt"
	"time"
)

// StateVersion is the schema version of state.json.
//
//   - 1: each phase's "data" is a map of string keys to JSON values.
//   - 2: each phase's "data" is that phase's typed Record. The records keep version 1's
//     keys, so a version 1 file decodes as is; DecodeState migrates it and the next save
//     writes version 2.
//   - 3: each phase keeps an "inventory" of the objects it created, adopted or modified.
//     A phase that had run under version 2 or 1 is marked "untracked": what it made then
//     is in no inventory, and destroy says so instead of guessing.
const StateVersion = 3

// Outcome is where a phase stands.
type Outcome string

// Outcomes.
const (
	OutcomePending     Outcome = "pending"
	OutcomeRunning     Outcome = "running"
	OutcomeDone        Outcome = "done"
	OutcomeFailed      Outcome = "failed"
	OutcomeInterrupted Outcome = "interrupted"
	OutcomeBlocked     Outcome = "blocked"
	OutcomeSkipped     Outcome = "skipped"
	OutcomeDestroyed   Outcome = "destroyed"
)

// State is everything the bootstrap cannot observe: the journal of each phase and the
// small facts phases record (infraID, serials, timestamps). It never holds a secret.
type State struct {
	Version   int                     `json:"version"`
	Cluster   string                  `json:"cluster"`
	CreatedAt time.Time               `json:"createdAt"`
	UpdatedAt time.Time               `json:"updatedAt"`
	Phases    map[string]*PhaseRecord `json:"phases"`
}

// PhaseRecord is one phase's journal and data.
type PhaseRecord struct {
	Outcome    Outcome    `json:"outcome"`
	Reason     string     `json:"reason,omitempty"`
	Attempts   int        `json:"attempts"`
	StartedAt  *time.Time `json:"startedAt,omitempty"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	Error      string     `json:"error,omitempty"`
	// InputHash is the hash of the phase's inputs at its last success.
	InputHash string `json:"inputHash,omitempty"`
	// Data is the phase's Record (see Load and Save): facts it keeps for later runs,
	// never secrets.
	Data json.RawMessage `json:"data,omitempty"`
	// Inventory lists the objects the phase created, adopted or modified (Scope.Track).
	Inventory []InventoryEntry `json:"inventory,omitempty"`
	// Untracked is set when the phase ran under a state version without inventories: the
	// objects it made then are not in Inventory.
	Untracked bool `json:"untracked,omitempty"`
	// Journal keeps the most recent attempts, newest last.
	Journal []JournalEntry `json:"journal,omitempty"`
}

// JournalEntry records one attempt of one action on a phase.
type JournalEntry struct {
	Action   string    `json:"action"` // apply | destroy
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	Outcome  Outcome   `json:"outcome"`
	Error    string    `json:"error,omitempty"`
	Hash     string    `json:"inputHash,omitempty"`
}

// maxJournal bounds each phase's journal so a cluster that is re-run daily keeps a small file.
const maxJournal = 20

// NewState returns an empty state for a cluster.
func NewState(cluster string, now time.Time) *State {
	return &State{Version: StateVersion, Cluster: cluster, CreatedAt: now, UpdatedAt: now, Phases: map[string]*PhaseRecord{}}
}

// Phase returns the record of a phase, creating it.
func (s *State) Phase(name string) *PhaseRecord {
	if s.Phases == nil {
		s.Phases = map[string]*PhaseRecord{}
	}
	r, ok := s.Phases[name]
	if !ok {
		r = &PhaseRecord{Outcome: OutcomePending}
		s.Phases[name] = r
	}
	return r
}

// IsDone reports whether a phase's last recorded outcome is done.
func (s *State) IsDone(name string) bool {
	r, ok := s.Phases[name]
	return ok && r.Outcome == OutcomeDone
}

func (r *PhaseRecord) journal(e JournalEntry) {
	r.Journal = append(r.Journal, e)
	if len(r.Journal) > maxJournal {
		r.Journal = r.Journal[len(r.Journal)-maxJournal:]
	}
}

// Clone deep-copies the state (through JSON), so a snapshot can be saved while phases go on.
func (s *State) Clone() *State {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("state is not serialisable: %v", err))
	}
	var c State
	if err := json.Unmarshal(b, &c); err != nil {
		panic(fmt.Sprintf("state does not round-trip: %v", err))
	}
	return &c
}
