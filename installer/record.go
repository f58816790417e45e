package installer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
)

// Record is a phase's typed record: the facts it keeps in the state for later runs (an
// infra ID, a ledger of certificate orders; never a secret). Each phase declares its record
// as a struct in its own package, and PhaseName ties the type to the phase that owns it, so
// a reader names the record by its type, not by string keys:
//
//	rec, err := installer.Load[cluster.Record](s)        // any phase may read any record
//	err = installer.Save(ctx, s, func(r *Record) error { … }) // only the owner writes its own
//
// The record is saved as the phase's "data" object in state.json. Field names are JSON
// keys there; keep them stable (state files outlive binaries), and mark fields omitempty
// so a cleared fact leaves the file.
type Record interface {
	PhaseName() string
}

// Load returns the record of T's phase as the state holds it now; the zero T when that
// phase recorded nothing yet.
func Load[T Record](s *Scope) (T, error) {
	var rec T
	name := rec.PhaseName()
	s.ex.mu.Lock()
	defer s.ex.mu.Unlock()
	r, ok := s.ex.state.Phases[name]
	if !ok {
		return rec, nil
	}
	if err := r.decode(&rec); err != nil {
		return rec, fmt.Errorf("reading the %s phase's record: %w", name, err)
	}
	return rec, nil
}

// Save changes this phase's record and saves the state at once, so a kill right after
// still finds the change. change runs under the run's state lock: it must only edit the
// record (no Scope calls). An error from change leaves the record as it was. Refused in
// plans, for another phase's record, and when the state would hold a registered secret.
func Save[T Record](ctx context.Context, s *Scope, change func(*T) error) error {
	var rec T
	name := rec.PhaseName()
	if name != s.phase {
		return fmt.Errorf("phase %s tried to change the %s phase's record: a phase writes only its own (this is a bug)", s.phase, name)
	}
	if s.readOnly {
		return fmt.Errorf("phase %s tried to change its record during a plan: plans must not change anything", s.phase)
	}
	s.ex.mu.Lock()
	defer s.ex.mu.Unlock()
	r := s.ex.state.Phase(name)
	if err := r.decode(&rec); err != nil {
		return fmt.Errorf("reading the %s phase's record: %w", name, err)
	}
	if err := change(&rec); err != nil {
		return err
	}
	old := r.Data
	if err := r.encode(rec); err != nil {
		return fmt.Errorf("encoding the %s phase's record: %w", name, err)
	}
	if err := s.ex.saveLocked(ctx); err != nil {
		r.Data = old // what is not saved is not recorded: later saves must not carry it
		return err
	}
	return nil
}

// decode reads the record into v (left as is when there is none).
func (r *PhaseRecord) decode(v any) error {
	if r.empty() {
		return nil
	}
	return json.Unmarshal(r.Data, v)
}

// encode stores v as the record; an empty object clears it.
func (r *PhaseRecord) encode(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	r.Data = b
	if r.empty() {
		r.Data = nil
	}
	return nil
}

// empty reports whether the phase recorded nothing.
func (r *PhaseRecord) empty() bool {
	d := bytes.TrimSpace(r.Data)
	return len(d) == 0 || bytes.Equal(d, []byte("null")) || bytes.Equal(d, []byte("{}"))
}

// RecordIn decodes T's record from a loaded state (status, tests); the zero T when its
// phase recorded nothing.
func RecordIn[T Record](st *State) (T, error) {
	var rec T
	if st == nil {
		return rec, nil
	}
	r, ok := st.Phases[rec.PhaseName()]
	if !ok {
		return rec, nil
	}
	if err := r.decode(&rec); err != nil {
		return rec, fmt.Errorf("reading the %s phase's record: %w", rec.PhaseName(), err)
	}
	return rec, nil
}
