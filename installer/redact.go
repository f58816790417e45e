package installer

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// redacted replaces a secret wherever text leaves the process.
const redacted = "[REDACTED]"

// Redactor replaces known secret values with "[REDACTED]" wherever text leaves the process
// (events, logs, errors, the debug log, the text the state keeps) and lets the state store
// refuse a secret. A secret is looked for as is and in the forms serialisation gives it:
// JSON-escaped (a secret holding `"`, `\`, `<`, `>`, `&` or control characters is written
// differently inside a JSON string) and, by the state guard, base64 (how JSON carries bytes).
type Redactor struct {
	mu       sync.RWMutex
	secrets  []string
	replacer *strings.Replacer // every form of every secret → "[REDACTED]"; nil: none
	needles  [][]byte          // what Contains looks for
}

// Add registers a secret value (values shorter than 4 bytes are ignored: too common).
func (r *Redactor) Add(secret string) {
	if len(secret) < 4 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.Contains(r.secrets, secret) {
		return
	}
	r.secrets = append(r.secrets, secret)
	// Longest first: a secret that contains another is replaced whole.
	var forms []string
	for _, s := range r.secrets {
		forms = append(forms, textForms(s)...)
	}
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	forms = slices.Compact(forms)
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, redacted)
	}
	r.replacer = strings.NewReplacer(pairs...)
	r.needles = nil
	for _, s := range r.secrets {
		for _, f := range append(textForms(s), base64Forms(s)...) {
			r.needles = append(r.needles, []byte(f))
		}
	}
}

// textForms are the ways a secret appears in text: as is, and JSON-escaped with and without
// HTML escaping (encoding/json.Marshal writes < as \u003c; an Encoder may not).
func textForms(s string) []string {
	forms := []string{s}
	for _, html := range []bool{true, false} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		if enc.Encode(s) != nil {
			continue
		}
		q := strings.TrimSuffix(b.String(), "\n")
		if e := q[1 : len(q)-1]; !slices.Contains(forms, e) {
			forms = append(forms, e)
		}
	}
	return forms
}

// base64Forms are the runs of base64 text a secret produces inside any base64-encoded
// bytes, at each of the three alignments it can have (only runs of 8 characters or more:
// shorter ones would match by chance).
func base64Forms(s string) []string {
	var out []string
	for skip := 0; skip < 3 && skip < len(s); skip++ {
		t := s[skip:]
		t = t[:len(t)/3*3]
		if len(t) >= 6 {
			out = append(out, base64.StdEncoding.EncodeToString([]byte(t)))
		}
	}
	return out
}

// Redact replaces every registered secret in s.
func (r *Redactor) Redact(s string) string {
	if r == nil || s == "" {
		return s
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.replacer == nil {
		return s
	}
	return r.replacer.Replace(s)
}

// Contains reports whether b holds any registered secret, in any form (see Redactor).
func (r *Redactor) Contains(b []byte) bool {
	if r == nil {
		return false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, n := range r.needles {
		if bytes.Contains(b, n) {
			return true
		}
	}
	return false
}

// active reports whether there is anything to redact.
func (r *Redactor) active() bool {
	if r == nil {
		return false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.replacer != nil
}

// Event returns e with every string in it redacted: all exported fields, walked by
// reflection so that a field added to Event later is covered without anyone remembering
// to. Pointers, slices and maps are copied, never changed in place: they may be shared with
// the run (the summary's facts).
func (r *Redactor) Event(e Event) Event { return redactCopy(r, e) }

// redactCopy returns a copy of v with every string in its exported fields redacted.
func redactCopy[T any](r *Redactor, v T) T {
	if !r.active() {
		return v
	}
	return r.value(reflect.ValueOf(v)).Interface().(T)
}

// Error returns err with its text redacted; errors.Is and errors.As still see the chain.
func (r *Redactor) Error(err error) error {
	if err == nil || !r.active() {
		return err
	}
	msg := r.Redact(err.Error())
	if msg == err.Error() {
		return err
	}
	return &redactedError{err: err, msg: msg}
}

type redactedError struct {
	err error
	msg string
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// rawJSON is the type of JSON values carried as bytes (an inventory's field values).
var rawJSON = reflect.TypeOf(json.RawMessage(nil))

// value returns a redacted copy of v.
func (r *Redactor) value(v reflect.Value) reflect.Value {
	if !holdsText(v.Type()) {
		return v
	}
	if v.Type() == rawJSON {
		// JSON text: a secret in it is in one of its JSON-escaped forms, which Redact
		// replaces with "[REDACTED]", itself valid inside a JSON string.
		if v.IsNil() {
			return v
		}
		return reflect.ValueOf(json.RawMessage(r.Redact(string(v.Bytes()))))
	}
	switch v.Kind() {
	case reflect.String:
		out := reflect.New(v.Type()).Elem()
		out.SetString(r.Redact(v.String()))
		return out
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type().Elem())
		out.Elem().Set(r.value(v.Elem()))
		return out
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type()).Elem()
		out.Set(r.value(v.Elem()))
		return out
	case reflect.Struct:
		out := reflect.New(v.Type()).Elem()
		out.Set(v)
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				out.Field(i).Set(r.value(v.Field(i)))
			}
		}
		return out
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			out.Index(i).Set(r.value(v.Index(i)))
		}
		return out
	case reflect.Array:
		out := reflect.New(v.Type()).Elem()
		for i := range v.Len() {
			out.Index(i).Set(r.value(v.Index(i)))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			out.SetMapIndex(r.value(it.Key()), r.value(it.Value()))
		}
		return out
	}
	return v
}

// textTypes caches holdsText per type.
var textTypes sync.Map // reflect.Type → bool

// holdsText reports whether a value of type t can hold a string in an exported field (an
// interface can hold anything). Types without (numbers, time.Time) are passed through.
func holdsText(t reflect.Type) bool {
	if v, ok := textTypes.Load(t); ok {
		return v.(bool)
	}
	// A recursive type refers back to itself while being decided: assume it holds text
	// (conservative: at worst a copy too many).
	textTypes.Store(t, true)
	var ok bool
	switch {
	case t == rawJSON:
		ok = true
	case t.Kind() == reflect.String, t.Kind() == reflect.Interface:
		ok = true
	case t.Kind() == reflect.Pointer, t.Kind() == reflect.Slice, t.Kind() == reflect.Array:
		ok = holdsText(t.Elem())
	case t.Kind() == reflect.Map:
		ok = holdsText(t.Key()) || holdsText(t.Elem())
	case t.Kind() == reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && holdsText(f.Type) {
				ok = true
				break
			}
		}
	}
	textTypes.Store(t, ok)
	return ok
}
