package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/retry"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

// How changes are recorded (the inventory, installer.InventoryEntry), and why a kill at
// any moment neither turns an object that existed into "created" nor loses one we made:
//
//   - created/adopted/modified is decided from a read *before* the write, and the entry is
//     saved before the write is sent. A create is saved as pending (no uid yet); once the
//     write returns, the uid is saved. A kill in between leaves a pending entry: the next
//     Apply that finds the object fills in its uid, and destroy deletes it only if one of
//     our field managers owns fields of it (proof our write landed; else it is somebody
//     else's object that appeared since and is left alone).
//   - a modified entry keeps the first previous value of each field and every value we set
//     (FieldChange.Ours), saved before the write. destroy restores a field only while its
//     live value is one of ours: a kill before the write, or someone changing the field
//     after us, leaves the field as it is.
//   - objects that exist and already look as we want are recorded as adopted and never
//     changed or deleted by destroy.

// ourManagers are the field managers whose fields prove a write of ours landed.
var ourManagers = []string{FieldManager, FieldManager + "-initial"}

// entryFor is the inventory entry of an object (action and uid to be filled in).
func entryFor(o Object) installer.InventoryEntry {
	apiVersion, kind := o.GetObjectKind().GroupVersionKind().ToAPIVersionAndKind()
	return installer.InventoryEntry{APIVersion: apiVersion, Kind: kind, Namespace: o.GetNamespace(), Name: o.GetName()}
}

// EntryID is the inventory identity of an object (see installer.InventoryEntry.ID).
func EntryID(gvk schema.GroupVersionKind, namespace, name string) string {
	return installer.InventoryEntry{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Namespace: namespace, Name: name}.ID()
}

// GVKOf is an entry's group/version/kind.
func GVKOf(e installer.InventoryEntry) schema.GroupVersionKind {
	return schema.FromAPIVersionAndKind(e.APIVersion, e.Kind)
}

// known returns the phase's entry for the live object, when the entry is about this very
// object: an entry whose uid differs is about an object that was deleted and replaced by
// someone else, which we treat as never seen.
func known(s *installer.Scope, live Object) (installer.InventoryEntry, bool) {
	e, ok := s.Tracked(entryFor(live).ID())
	if !ok || (e.UID != "" && e.UID != string(live.GetUID())) {
		return installer.InventoryEntry{}, false
	}
	return e, true
}

// writtenByUs reports whether one of our field managers owns fields of u.
func writtenByUs(u *unstructured.Unstructured) bool {
	for _, mf := range u.GetManagedFields() {
		if slices.Contains(ourManagers, mf.Manager) {
			return true
		}
	}
	return false
}

// isSecretData reports whether a path holds a Secret's data, whose values are never kept.
func isSecretData(e installer.InventoryEntry, path []string) bool {
	return e.APIVersion == "v1" && e.Kind == "Secret" && len(path) > 0 && (path[0] == "data" || path[0] == "stringData")
}

// rawOf encodes a field value for the inventory (nil: absent).
func rawOf(v any, present bool) json.RawMessage {
	if !present {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

// oursOf encodes a value we set (absent is JSON null, which FieldChange.Ours uses for "we
// removed it").
func oursOf(v any, present bool) json.RawMessage {
	if !present {
		return json.RawMessage("null")
	}
	return rawOf(v, true)
}

// sameJSON compares two JSON values semantically (number types, key order).
func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// fieldChange is one field that differs between what we apply and what is live.
type fieldChange struct {
	path     []string
	previous any
	present  bool
	value    any
}

// changedFields lists the fields set in desired that have another value in live: maps
// are walked key by key, anything else (lists included, as Subset compares them whole) is
// one field. The object's identity (apiVersion, kind, name, namespace) is not a field.
func changedFields(desired, live map[string]any, path []string) []fieldChange {
	keys := make([]string, 0, len(desired))
	for k := range desired {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []fieldChange
	for _, k := range keys {
		p := append(slices.Clone(path), k)
		switch JoinFieldPath(p) {
		case "apiVersion", "kind", "metadata.name", "metadata.namespace":
			continue
		}
		dv := desired[k]
		lv, present := live[k]
		if dm, ok := dv.(map[string]any); ok && len(dm) > 0 {
			if lm, ok := lv.(map[string]any); ok {
				out = append(out, changedFields(dm, lm, p)...)
				continue
			}
		}
		if _, same := Subset(dv, lv, ""); !same {
			out = append(out, fieldChange{path: p, previous: lv, present: present, value: dv})
		}
	}
	return out
}

// JoinFieldPath renders a field path: spec.identityProviders[name=google].
func JoinFieldPath(p []string) string { return installer.JoinPath(p) }

// recordApply records, before the write, what applying o to live will do: create (live
// nil), adopt (no field differs), or modify (the fields that differ, with their previous
// values). It returns whether o needs a write at all.
func (c *Clients) recordApply(ctx context.Context, s *installer.Scope, o, live *unstructured.Unstructured) (bool, error) {
	if live == nil {
		e, ok := s.Tracked(entryFor(o).ID())
		if ok && e.Action != installer.Created {
			// It was adopted or modified and has been deleted since: what we create now is ours.
			ok = false
		}
		if !ok || e.UID != "" {
			e = entryFor(o)
			e.Action, e.Pending = installer.Created, true
			return true, s.Track(ctx, e)
		}
		return true, nil // a pending create of ours: still pending
	}
	e, ok := known(s, live)
	changes := changedFields(o.Object, live.Object, nil)
	if ok && e.Action == installer.Created {
		if e.Pending {
			// Decided absent before our write, found now: ours, with this uid.
			e.UID, e.Pending = string(live.GetUID()), false
			if err := s.Track(ctx, e); err != nil {
				return false, err
			}
		}
		return len(changes) > 0, nil
	}
	if !ok {
		e = entryFor(live)
		e.UID, e.Action = string(live.GetUID()), installer.Adopted
	}
	if len(changes) == 0 {
		if ok {
			return false, nil
		}
		return false, s.Track(ctx, e)
	}
	e.Action = installer.Modified
	for _, ch := range changes {
		e.Change(ch.path, rawOf(ch.previous, ch.present), oursOf(ch.value, true), isSecretData(e, ch.path))
	}
	return true, s.Track(ctx, e)
}

// settleCreate records the uid of an object our write created.
func settleCreate(ctx context.Context, s *installer.Scope, u *unstructured.Unstructured) error {
	e, ok := s.Tracked(entryFor(u).ID())
	if !ok || e.Action != installer.Created || !e.Pending {
		return nil
	}
	e.UID, e.Pending = string(u.GetUID()), false
	return s.Track(ctx, e)
}

// Adopt records an object that exists and that the phase takes as it is (an operator
// installed from the console, a ClusterAutoscaler made by someone else). Nothing is
// written to the cluster; an object already in the inventory keeps its entry.
func (c *Clients) Adopt(ctx context.Context, s *installer.Scope, live Object, note string) error {
	if _, ok := known(s, live); ok {
		return nil
	}
	e := entryFor(live)
	e.UID, e.Action, e.Note = string(live.GetUID()), installer.Adopted, note
	if err := s.Track(ctx, e); err != nil {
		return err
	}
	s.Progress("adopted %s as it is: %s", Describe(live), note)
	return nil
}

// Create creates o under field manager (our main one when empty), recording it first. An
// object that turns out to exist already is recorded as created when one of our field
// managers wrote it (a write of ours from a killed run), else as adopted, and left as is.
func (c *Clients) Create(ctx context.Context, s *installer.Scope, o *unstructured.Unstructured, manager string) (*unstructured.Unstructured, error) {
	if manager == "" {
		manager = FieldManager
	}
	ri, err := c.Resource(o.GroupVersionKind(), o.GetNamespace())
	if err != nil {
		return nil, err
	}
	if _, err := c.recordApply(ctx, s, o, nil); err != nil {
		return nil, err
	}
	u, err := ri.Create(recorded(ctx), o, metav1.CreateOptions{FieldManager: manager})
	if apierrors.IsAlreadyExists(err) {
		live, gerr := c.Get(ctx, o.GroupVersionKind(), o.GetNamespace(), o.GetName())
		if gerr != nil || live == nil {
			return nil, fmt.Errorf("creating %s: %w", Describe(o), err)
		}
		if writtenByUs(live) {
			return live, settleCreate(ctx, s, live)
		}
		e := entryFor(live)
		e.UID, e.Action, e.Note = string(live.GetUID()), installer.Adopted, "created by someone else meanwhile"
		return live, s.Track(ctx, e)
	}
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", Describe(o), err)
	}
	return u, settleCreate(ctx, s, u)
}

// ListEdit is a change to a list of an object whose entries are identified by one of
// their fields (identity providers by name, named certificates by their secret's name).
type ListEdit struct {
	GVK             schema.GroupVersionKind
	Namespace, Name string
	// Path is where the list is; Key is the entries' identifying field, dotted when nested
	// ("servingCertificate.name").
	Path []string
	Key  string
	// Edit gets a copy of the live list and returns the wanted one.
	Edit func(live []any) []any
	// BeforeWrite, if set, runs after the change is recorded and before it is sent (a
	// phase records what the write will start, such as a rollout to wait for).
	BeforeWrite func() error
}

// EditList applies a ListEdit with an update guarded by resourceVersion: such lists are
// atomic, so a server-side apply would take every entry, ours or not. Each entry the
// edit adds, changes or removes is recorded before the update, so destroy can put back
// exactly those entries; an object the edit does not change is recorded as adopted. It
// reports whether it wrote anything.
func (c *Clients) EditList(ctx context.Context, s *installer.Scope, le ListEdit) (bool, error) {
	gvk, namespace, name, listPath, keyField := le.GVK, le.Namespace, le.Name, le.Path, le.Key
	changed := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		live, err := c.Get(ctx, gvk, namespace, name)
		if err != nil {
			return err
		}
		if live == nil {
			return fmt.Errorf("%s %s does not exist", gvk.Kind, Ref(namespace, name))
		}
		items, _, _ := unstructured.NestedSlice(live.Object, listPath...)
		out := le.Edit(deepCopyList(items))
		diffs, err := listChanges(items, out, keyField)
		if err != nil {
			return fmt.Errorf("%s %s %s: %w", gvk.Kind, Ref(namespace, name), JoinFieldPath(listPath), err)
		}
		e, ok := known(s, live)
		if len(diffs) == 0 {
			if !ok {
				e = entryFor(live)
				e.UID, e.Action = string(live.GetUID()), installer.Adopted
				return s.Track(ctx, e)
			}
			return nil
		}
		if !ok || e.Action == installer.Adopted {
			if !ok {
				e = entryFor(live)
				e.UID = string(live.GetUID())
			}
			e.Action = installer.Modified
		}
		if e.Action == installer.Modified {
			for _, d := range diffs {
				e.Change(append(slices.Clone(listPath), d.key), rawOf(d.before, d.before != nil), oursOf(d.after, d.after != nil), false)
			}
			if err := s.Track(ctx, e); err != nil {
				return err
			}
		}
		if le.BeforeWrite != nil {
			if err := le.BeforeWrite(); err != nil {
				return err
			}
		}
		if len(out) == 0 {
			unstructured.RemoveNestedField(live.Object, listPath...)
		} else if err := unstructured.SetNestedSlice(live.Object, out, listPath...); err != nil {
			return err
		}
		ri, err := c.Resource(gvk, namespace)
		if err != nil {
			return err
		}
		if _, err := ri.Update(recorded(ctx), live, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
			return err
		}
		changed = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("updating %s %s %s: %w", gvk.Kind, Ref(namespace, name), JoinFieldPath(listPath), err)
	}
	return changed, nil
}

func deepCopyList(l []any) []any {
	out := make([]any, len(l))
	for i, v := range l {
		out[i] = deepCopyJSON(v)
	}
	return out
}

func deepCopyJSON(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

// listEntryDiff is one keyed entry that differs between two lists.
type listEntryDiff struct {
	key           string // "[name=google]"
	before, after any    // nil: absent
}

// entryKey is the "[field=value]" selector of a list entry.
func entryKey(entry any, keyField string) (string, bool) {
	m, ok := entry.(map[string]any)
	if !ok {
		return "", false
	}
	v, found, _ := unstructured.NestedFieldNoCopy(m, strings.Split(keyField, ".")...)
	s, isString := v.(string)
	if !found || !isString || s == "" {
		return "", false
	}
	return "[" + keyField + "=" + s + "]", true
}

// listChanges lists the keyed entries added, changed or removed between before and after.
func listChanges(before, after []any, keyField string) ([]listEntryDiff, error) {
	index := func(l []any) (map[string]any, []string, error) {
		m := map[string]any{}
		var order []string
		for _, e := range l {
			k, ok := entryKey(e, keyField)
			if !ok {
				return nil, nil, fmt.Errorf("an entry has no %s: entries cannot be told apart", keyField)
			}
			if _, dup := m[k]; !dup {
				order = append(order, k)
			}
			m[k] = e
		}
		return m, order, nil
	}
	b, bOrder, err := index(before)
	if err != nil {
		return nil, err
	}
	a, aOrder, err := index(after)
	if err != nil {
		return nil, err
	}
	var out []listEntryDiff
	seen := map[string]bool{}
	for _, k := range append(bOrder, aOrder...) {
		if seen[k] {
			continue
		}
		seen[k] = true
		bv, av := b[k], a[k]
		if reflect.DeepEqual(normalizeJSON(bv), normalizeJSON(av)) {
			continue
		}
		out = append(out, listEntryDiff{key: k, before: bv, after: av})
	}
	return out, nil
}

func normalizeJSON(v any) any {
	if v == nil {
		return nil
	}
	return deepCopyJSON(v)
}

// DestroyInventory undoes what the phase's inventory records, newest entry first: created
// objects are deleted (only while their uid is the recorded one), modified fields are put
// back (only while their live value is one we set), adopted objects are left. Each entry
// leaves the inventory once dealt with, so an interrupted destroy resumes. An object stuck
// on a finalizer stops the walk (what it needs is kept) with a *StuckError.
//
// A phase that ran under a release without inventories (state schema 1 or 2) made objects
// no inventory lists: they cannot be told from objects that were there before, so they
// are left, and said so. Failing instead would block the phases destroyed after it, the
// cluster itself among them (whose removal takes these objects too), and that release
// cannot destroy either once this one has rewritten the state.
func (c *Clients) DestroyInventory(ctx context.Context, s *installer.Scope, timeout time.Duration, strip bool) error {
	if s.Untracked() {
		s.Progress("left what %s made under a release that kept no inventory (state version 1 or 2): it cannot be told from what existed before; "+
			"on a cluster the bootstrap installed, destroying the cluster removes it, on an existing cluster remove it by hand (`status` lists the phase as untracked)", s.Name())
	}
	inv := s.Inventory()
	for i := len(inv) - 1; i >= 0; i-- {
		if err := c.DestroyEntry(ctx, s, inv[i], timeout, strip); err != nil {
			return err
		}
	}
	return nil
}

// DestroyEntry undoes one inventory entry (see DestroyInventory) and drops it.
func (c *Clients) DestroyEntry(ctx context.Context, s *installer.Scope, e installer.InventoryEntry, timeout time.Duration, strip bool) error {
	gvk := GVKOf(e)
	live, err := c.Get(ctx, gvk, e.Namespace, e.Name)
	if err != nil {
		return err
	}
	switch {
	case live == nil:
		// Gone already (an earlier destroy, or someone else).
	case e.Action == installer.Adopted:
		s.Debugf("left %s %s: it existed before the bootstrap", e.Kind, Ref(e.Namespace, e.Name))
	case e.Action == installer.Created:
		uid := e.UID
		if e.Pending {
			if !writtenByUs(live) {
				s.Progress("left %s %s: our create was never confirmed and no field of it is ours", e.Kind, Ref(e.Namespace, e.Name))
				break
			}
			uid = string(live.GetUID())
		}
		if uid != string(live.GetUID()) {
			s.Progress("left %s %s: it is not the object we created (uid %s, ours was %s)", e.Kind, Ref(e.Namespace, e.Name), live.GetUID(), uid)
			break
		}
		if err := c.deleteAndWait(ctx, s, gvk, e.Namespace, e.Name, uid, timeout, strip); err != nil {
			return err
		}
	case e.Action == installer.Modified:
		if string(live.GetUID()) != e.UID {
			s.Progress("left %s %s: it was replaced since we changed it", e.Kind, Ref(e.Namespace, e.Name))
			break
		}
		if err := c.restore(ctx, s, gvk, e); err != nil {
			return err
		}
	}
	return s.Untrack(ctx, e.ID())
}

// restore puts back the previous value of each field we changed, with an update guarded
// by resourceVersion, as long as the live value is still one we set.
func (c *Clients) restore(ctx context.Context, s *installer.Scope, gvk schema.GroupVersionKind, e installer.InventoryEntry) error {
	var restored, kept []string
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		restored, kept = nil, nil
		live, err := c.Get(ctx, gvk, e.Namespace, e.Name)
		if err != nil || live == nil {
			return err
		}
		for _, f := range e.Fields {
			cur, present := fieldAt(live.Object, f.Path)
			curRaw := oursOf(cur, present)
			switch {
			case f.Unkept:
				kept = append(kept, f.PathString()+" (a secret's previous value is never kept)")
			case f.Previous == nil && !present, f.Previous != nil && present && sameJSON(curRaw, f.Previous):
				// As it was already.
			case slices.ContainsFunc(f.Ours, func(v json.RawMessage) bool { return sameJSON(v, curRaw) }):
				if err := setFieldAt(live.Object, f.Path, f.Previous); err != nil {
					return err
				}
				restored = append(restored, f.PathString())
			default:
				kept = append(kept, f.PathString()+" (changed by someone else since)")
			}
		}
		if len(restored) == 0 {
			return nil
		}
		ri, err := c.Resource(gvk, e.Namespace)
		if err != nil {
			return err
		}
		_, err = ri.Update(recorded(ctx), live, metav1.UpdateOptions{FieldManager: FieldManager})
		return err
	})
	if err != nil {
		return fmt.Errorf("restoring %s %s: %w", e.Kind, Ref(e.Namespace, e.Name), err)
	}
	if len(restored) > 0 {
		s.Changed(installer.Change{Action: installer.Update, Target: e.Kind + " " + Ref(e.Namespace, e.Name), Detail: "restored " + strings.Join(restored, ", ")})
	}
	if len(kept) > 0 {
		s.Progress("left as they are in %s %s: %s", e.Kind, Ref(e.Namespace, e.Name), strings.Join(kept, "; "))
	}
	return nil
}

// fieldAt reads the value at a field path ("[key=value]" selects a list entry).
func fieldAt(obj map[string]any, path []string) (any, bool) {
	var cur any = obj
	for _, p := range path {
		if sel, ok := parseSelector(p); ok {
			l, _ := cur.([]any)
			i := sel.index(l)
			if i < 0 {
				return nil, false
			}
			cur = l[i]
			continue
		}
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// setFieldAt sets the value at a field path, or removes it when raw is nil (a list entry
// is removed from its list; a map key is deleted). Missing maps are created; a missing list
// entry is appended.
func setFieldAt(obj map[string]any, path []string, raw json.RawMessage) error {
	var value any
	if raw != nil {
		if err := json.Unmarshal(raw, &value); err != nil {
			return fmt.Errorf("decoding the previous value of %s: %w", JoinFieldPath(path), err)
		}
	}
	last := len(path) - 1
	if sel, ok := parseSelector(path[last]); ok {
		parent, _ := fieldAt(obj, path[:last])
		l, _ := parent.([]any)
		i := sel.index(l)
		switch {
		case raw == nil && i >= 0:
			l = slices.Delete(slices.Clone(l), i, i+1)
		case raw == nil:
			return nil
		case i >= 0:
			l = slices.Clone(l)
			l[i] = value
		default:
			l = append(slices.Clone(l), value)
		}
		if len(l) == 0 {
			return setFieldAt(obj, path[:last], nil)
		}
		return setFieldAt(obj, path[:last], rawOf(l, true))
	}
	if raw == nil {
		if parent, ok := fieldAt(obj, path[:last]); ok {
			if m, ok := parent.(map[string]any); ok {
				delete(m, path[last])
			}
		}
		return nil
	}
	if slices.ContainsFunc(path[:last], func(p string) bool { _, ok := parseSelector(p); return ok }) {
		parent, ok := fieldAt(obj, path[:last])
		m, isMap := parent.(map[string]any)
		if !ok || !isMap {
			return fmt.Errorf("cannot restore %s: its parent is gone", JoinFieldPath(path))
		}
		m[path[last]] = value
		return nil
	}
	return unstructured.SetNestedField(obj, value, path...)
}

// selector is a parsed "[field=value]" path element.
type selector struct {
	field []string
	value string
}

func parseSelector(p string) (selector, bool) {
	if !strings.HasPrefix(p, "[") || !strings.HasSuffix(p, "]") {
		return selector{}, false
	}
	f, v, ok := strings.Cut(p[1:len(p)-1], "=")
	if !ok {
		return selector{}, false
	}
	return selector{field: strings.Split(f, "."), value: v}, true
}

func (sel selector) index(l []any) int {
	return slices.IndexFunc(l, func(e any) bool {
		m, ok := e.(map[string]any)
		if !ok {
			return false
		}
		v, found, _ := unstructured.NestedFieldNoCopy(m, sel.field...)
		s, isString := v.(string)
		return found && isString && s == sel.value
	})
}

// IsStuck reports whether err is a *StuckError.
func IsStuck(err error) bool {
	var se *StuckError
	return errors.As(err, &se)
}
