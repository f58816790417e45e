package installer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Inventory actions: what the bootstrap did to an object.
const (
	// Created objects did not exist before the bootstrap wrote them: destroy deletes them
	// (when their uid is still the one recorded).
	Created InventoryAction = "created"
	// Adopted objects existed and were left as they were: destroy leaves them.
	Adopted InventoryAction = "adopted"
	// Modified objects existed and some of their fields were changed: the previous value
	// of each is kept, and destroy puts it back.
	Modified InventoryAction = "modified"
)

// InventoryAction says what the bootstrap did to an object.
type InventoryAction string

// InventoryEntry is one object the bootstrap created, adopted or modified, as a phase's
// inventory records it. The idea is flux's inventory (fluxcd/pkg/ssa and the
// kustomize-controller's ResourceInventory: one entry per object, identified by
// namespace, name, group and kind, plus its version), with what flux does not need: the
// uid, so destroy never deletes an object that replaced ours, and the previous values of
// the fields we changed on objects that were not ours.
type InventoryEntry struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	// UID identifies the object we created or changed. Empty only for a Pending create
	// whose write was not confirmed.
	UID    string          `json:"uid,omitempty"`
	Action InventoryAction `json:"action"`
	// Pending marks an entry recorded before its write (the intent): the write may or may
	// not have happened before a kill. See phases/kube for how each case is settled.
	Pending bool `json:"pending,omitempty"`
	// Fields are, for a modified object, the fields we changed: each one's previous value
	// and the values we set.
	Fields []FieldChange `json:"fields,omitempty"`
	// Note says something people should know (why it was adopted, what cannot be restored).
	Note string `json:"note,omitempty"`
}

// FieldChange is one field of a modified object.
type FieldChange struct {
	// Path locates the field: map keys, and "[key=value]" for the entry of a list whose
	// entries are identified by one of their fields (identity providers by name).
	Path []string `json:"path"`
	// Previous is the value before our first change; absent when the field was not set.
	Previous json.RawMessage `json:"previous,omitempty"`
	// Ours are the values we set, oldest first (absent: we removed the field). destroy
	// restores Previous only while the live value is still one of ours: a value someone
	// else set since is theirs, and stays.
	Ours []json.RawMessage `json:"ours,omitempty"`
	// Unkept is set when the values are not kept because they are secret (a Secret's data):
	// such a field cannot be restored.
	Unkept bool `json:"unkept,omitempty"`
}

// maxOurs bounds FieldChange.Ours: the values of the last few runs are enough to
// recognise our own write after a kill.
const maxOurs = 3

// PathString renders a path for people: spec.identityProviders[name=google].
func (f FieldChange) PathString() string { return JoinPath(f.Path) }

// JoinPath renders a field path for people.
func JoinPath(p []string) string {
	var b strings.Builder
	for i, e := range p {
		if i > 0 && !strings.HasPrefix(e, "[") {
			b.WriteByte('.')
		}
		b.WriteString(e)
	}
	return b.String()
}

// ID identifies the object as flux does: namespace_name_group_kind (the version is not
// part of the identity: an object served at another version is the same object).
func (e InventoryEntry) ID() string {
	group, _, _ := strings.Cut(e.APIVersion, "/")
	if !strings.Contains(e.APIVersion, "/") {
		group = "" // the core group: "v1"
	}
	return e.Namespace + "_" + e.Name + "_" + group + "_" + e.Kind
}

// String names the entry for people: "created Namespace openshift-gitops-operator".
func (e InventoryEntry) String() string {
	ref := e.Name
	if e.Namespace != "" {
		ref = e.Namespace + "/" + e.Name
	}
	s := string(e.Action) + " " + e.Kind + " " + ref
	if e.Pending {
		s += " (write not confirmed)"
	}
	if len(e.Fields) > 0 {
		paths := make([]string, len(e.Fields))
		for i, f := range e.Fields {
			paths[i] = f.PathString()
		}
		s += " (" + strings.Join(paths, ", ") + ")"
	}
	if e.Note != "" {
		s += ": " + e.Note
	}
	return s
}

// Change records a change of a field in a modified entry: the first previous value is
// kept, value joins Ours; unkept drops both (a secret's values).
func (e *InventoryEntry) Change(path []string, previous, value json.RawMessage, unkept bool) {
	key := JoinPath(path)
	i := slices.IndexFunc(e.Fields, func(f FieldChange) bool { return f.PathString() == key })
	if i < 0 {
		e.Fields = append(e.Fields, FieldChange{Path: slices.Clone(path), Previous: previous, Unkept: unkept})
		i = len(e.Fields) - 1
	}
	f := &e.Fields[i]
	if unkept {
		f.Previous, f.Ours, f.Unkept = nil, nil, true
		return
	}
	if !slices.ContainsFunc(f.Ours, func(v json.RawMessage) bool { return bytes.Equal(v, value) }) {
		f.Ours = append(f.Ours, value)
		if len(f.Ours) > maxOurs {
			f.Ours = f.Ours[len(f.Ours)-maxOurs:]
		}
	}
}

// Inventory returns this phase's inventory as the state holds it now (a copy).
func (s *Scope) Inventory() []InventoryEntry {
	s.ex.mu.Lock()
	defer s.ex.mu.Unlock()
	r, ok := s.ex.state.Phases[s.phase]
	if !ok {
		return nil
	}
	return cloneEntries(r.Inventory)
}

// Untracked reports whether this phase ran under a state version without inventories, so
// objects it made then are in no inventory.
func (s *Scope) Untracked() bool {
	s.ex.mu.Lock()
	defer s.ex.mu.Unlock()
	r, ok := s.ex.state.Phases[s.phase]
	return ok && r.Untracked
}

// Tracked returns this phase's entry for an object, if it has one.
func (s *Scope) Tracked(id string) (InventoryEntry, bool) {
	for _, e := range s.Inventory() {
		if e.ID() == id {
			return e, true
		}
	}
	return InventoryEntry{}, false
}

// Track adds or replaces this phase's entry for e's object and saves the state at once,
// so the entry survives a kill right after. Refused in plans.
func (s *Scope) Track(ctx context.Context, e InventoryEntry) error {
	return s.editInventory(ctx, func(inv []InventoryEntry) []InventoryEntry {
		if i := slices.IndexFunc(inv, func(x InventoryEntry) bool { return x.ID() == e.ID() }); i >= 0 {
			inv[i] = e
			return inv
		}
		return append(inv, e)
	})
}

// Untrack removes this phase's entry for an object (destroy dealt with it) and saves the
// state at once.
func (s *Scope) Untrack(ctx context.Context, id string) error {
	return s.editInventory(ctx, func(inv []InventoryEntry) []InventoryEntry {
		return slices.DeleteFunc(inv, func(x InventoryEntry) bool { return x.ID() == id })
	})
}

func (s *Scope) editInventory(ctx context.Context, edit func([]InventoryEntry) []InventoryEntry) error {
	if s.readOnly {
		return fmt.Errorf("phase %s tried to change its inventory during a plan: plans must not change anything", s.phase)
	}
	s.ex.mu.Lock()
	defer s.ex.mu.Unlock()
	r := s.ex.state.Phase(s.phase)
	old := r.Inventory
	r.Inventory = edit(cloneEntries(r.Inventory))
	if len(r.Inventory) == 0 {
		r.Inventory = nil
	}
	if err := s.ex.saveLocked(ctx); err != nil {
		r.Inventory = old // what is not saved is not recorded
		return fmt.Errorf("recording %s's inventory: %w", s.phase, err)
	}
	return nil
}

func cloneEntries(in []InventoryEntry) []InventoryEntry {
	if in == nil {
		return nil
	}
	b, err := json.Marshal(in)
	if err != nil {
		panic(fmt.Sprintf("inventory is not serialisable: %v", err))
	}
	var out []InventoryEntry
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("inventory does not round-trip: %v", err))
	}
	return out
}
