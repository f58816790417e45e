package installer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fill sets every exported string reachable from v (fields, pointers, slices, maps, map
// keys) to a text holding secret, so a test covers the fields Event will have later too.
func fill(v reflect.Value, secret string) {
	if v.Type() == reflect.TypeOf(json.RawMessage(nil)) {
		// JSON values (an inventory's field values): a JSON string holding the secret.
		b, _ := json.Marshal(map[string]string{"value": "before " + secret + " after"})
		v.SetBytes(b)
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("before " + secret + " after")
	case reflect.Pointer:
		if v.Type().Elem() == reflect.TypeOf(time.Time{}) {
			return
		}
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), secret)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), secret)
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		fill(v.Index(0), secret)
		fill(v.Index(1), secret)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k, secret)
		fill(e, secret)
		m.SetMapIndex(k, e)
		v.Set(m)
	}
}

func TestBusRedactsEveryStringField(t *testing.T) {
	const secret = "hunter2-client-secret"
	var got []Event
	red := &Redactor{}
	red.Add(secret)
	bus := NewBus(red, SinkFunc(func(e Event) { got = append(got, e) }))
	var e Event
	fill(reflect.ValueOf(&e).Elem(), secret)
	require.NotEmpty(t, e.Changes[0].Target)
	require.NotEmpty(t, e.Summary.Extra)
	bus.Emit(e)
	require.Len(t, got, 1)
	b, err := json.Marshal(got[0])
	require.NoError(t, err)
	assert.NotContains(t, string(b), secret)
	assert.NotContains(t, fmt.Sprintf("%+v %+v %+v", got[0], *got[0].Summary, *got[0].Waiting), secret)
	assert.Contains(t, got[0].Changes[1].Detail, "before [REDACTED] after")
	require.NotEmpty(t, got[0].Inventory[0].Fields[0].Ours)
	assert.JSONEq(t, `{"value": "before [REDACTED] after"}`, string(got[0].Inventory[0].Fields[0].Ours[1]), "JSON values are redacted and stay JSON")
	for k, v := range got[0].Summary.Extra {
		assert.Equal(t, "before [REDACTED] after", k)
		assert.Equal(t, "before [REDACTED] after", v)
	}
	// The event's parts may be shared with the run (the summary's facts): never changed
	// in place.
	assert.Contains(t, e.Changes[0].Target, secret)
	for _, v := range e.Summary.Extra {
		assert.Contains(t, v, secret)
	}
}

// Secrets that JSON writes differently from their plain text: the state guard finds
// them in the state anyway, and Redact scrubs their escaped form from text.
func TestRedactorFindsEscapedSecrets(t *testing.T) {
	for _, secret := range []string{
		`pa"ss"word`, `back\slash\value`, `<script>&amp;`, "tab\tnew\nline", "bell\x01\x1fctl", "line\u2028sep",
	} {
		t.Run(fmt.Sprintf("%q", secret), func(t *testing.T) {
			r := &Redactor{}
			r.Add(secret)
			type rec struct {
				Note  string `json:"note"`
				Bytes []byte `json:"bytes"`
			}
			for _, v := range []any{
				rec{Note: "x" + secret + "y"},
				map[string]any{"nested": []any{"a " + secret}},
			} {
				b, err := json.Marshal(v)
				require.NoError(t, err)
				assert.True(t, r.Contains(b), "in %s", b)
				b, err = json.MarshalIndent(v, "", "  ")
				require.NoError(t, err)
				assert.True(t, r.Contains(b), "in %s", b)
			}
			if len(secret) >= 8 {
				for pad := range 3 { // bytes fields are base64 in JSON, at any alignment
					b, err := json.Marshal(rec{Bytes: []byte(strings.Repeat("p", pad) + secret + "tail")})
					require.NoError(t, err)
					assert.True(t, r.Contains(b), "pad %d: %s", pad, b)
				}
			}
			q, err := json.Marshal("error: " + secret)
			require.NoError(t, err)
			assert.Equal(t, `"error: [REDACTED]"`, r.Redact(string(q)), "the escaped form in text")
			assert.False(t, r.Contains([]byte(`{"note":"nothing here"}`)))
		})
	}
	assert.Len(t, base64Forms("abcdefgh"), 3)
	assert.Equal(t, "YWJjZGVm", base64.StdEncoding.EncodeToString([]byte("abcdef")))
}

func TestRedactorLongestSecretFirst(t *testing.T) {
	r := &Redactor{}
	r.Add("token")
	r.Add("token-with-suffix")
	assert.Equal(t, "a [REDACTED] b", r.Redact("a token-with-suffix b"))
	assert.Equal(t, "[REDACTED]", r.Redact("token"))
	r.Add("abc") // too short: ignored
	assert.Equal(t, "abc", r.Redact("abc"))
}

// An error that quotes a secret is stored redacted (never refused and dropped), and the
// run's error says the same.
func TestFailureQuotingASecretIsStoredRedacted(t *testing.T) {
	const secret = `s3cr"et<value>`
	w := newWorld()
	phases := diamond(w)
	phases[2].(*fakePhase).applyFn = func(_ context.Context, s *Scope) error {
		s.Redactor().Add(secret)
		return fmt.Errorf("the API server said: invalid clientSecret %q", secret)
	}
	r, st, events := newRunner(t, phases)
	_, err := r.Install(context.Background())
	var re *RunError
	require.ErrorAs(t, err, &re, "errors.As still sees the failure")
	assert.NotContains(t, err.Error(), "s3cr")
	assert.Contains(t, err.Error(), "[REDACTED]")
	b, err := os.ReadFile(st.Location())
	require.NoError(t, err)
	assert.False(t, r.Bus.Redactor.Contains(b), "no form of the secret in %s", b)
	saved, err := st.Load(context.Background())
	require.NoError(t, err)
	c := saved.Phases["c"]
	assert.Equal(t, OutcomeFailed, c.Outcome, "the failure was recorded")
	assert.Contains(t, c.Error, "invalid clientSecret")
	assert.Contains(t, c.Error, "[REDACTED]")
	require.NotEmpty(t, c.Journal)
	assert.Contains(t, c.Journal[len(c.Journal)-1].Error, "[REDACTED]")
	for _, e := range *events {
		b, err := json.Marshal(e)
		require.NoError(t, err)
		assert.False(t, r.Bus.Redactor.Contains(b), "event %s", b)
	}
}

// flakyStore fails saves once armed.
type flakyStore struct {
	*LocalStore
	failSaves bool
	failLock  bool
}

func (f *flakyStore) Save(ctx context.Context, s *State) error {
	if f.failSaves {
		return errors.New("disk full")
	}
	return f.LocalStore.Save(ctx, s)
}

type badUnlock struct{ Unlocker }

func (badUnlock) Unlock() error { return errors.New("network down") }

func (f *flakyStore) Lock(ctx context.Context, h LockInfo) (Unlocker, error) {
	u, err := f.LocalStore.Lock(ctx, h)
	if err != nil || !f.failLock {
		return u, err
	}
	u.Unlock()
	return badUnlock{}, nil
}

// A state that could not be saved is an error of the run, never dropped: a destroy whose
// removal the state cannot record, a failure that cannot be recorded, a lock that cannot
// be released.
func TestUnsavedStateIsARunError(t *testing.T) {
	w := newWorld()
	phases := diamond(w)
	r, local, _ := newRunner(t, phases)
	st := &flakyStore{LocalStore: local}
	r.Store = st
	_, err := r.Install(context.Background())
	require.NoError(t, err)

	// Destroy: e is removed, then its record cannot be saved.
	phases[4].(*fakePhase).applyFn = nil
	r.Phases[4] = &destroyThen{fakePhase: phases[4].(*fakePhase), then: func() { st.failSaves = true }}
	sum, err := r.Destroy(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "phase e: removed, but recording that failed")
	assert.Contains(t, err.Error(), "disk full")
	assert.Equal(t, OutcomeFailed, sum.Phases["e"])
	assert.Equal(t, OutcomeBlocked, sum.Phases["a"], "what e depends on is kept")

	// Install: c fails, and so does recording it.
	st.failSaves = false
	w2 := newWorld()
	phases2 := diamond(w2)
	phases2[2].(*fakePhase).applyFn = func(context.Context, *Scope) error {
		st.failSaves = true
		return errors.New("boom")
	}
	r2, local2, _ := newRunner(t, phases2)
	st2 := &flakyStore{LocalStore: local2}
	r2.Store, st = st2, st2
	_, err = r2.Install(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "phase c: boom; recording this failure in the state failed too")

	// A lock that cannot be released.
	w3 := newWorld()
	r3, local3, _ := newRunner(t, diamond(w3))
	r3.Store = &flakyStore{LocalStore: local3, failLock: true}
	_, err = r3.Install(context.Background())
	require.ErrorContains(t, err, "releasing the state lock: network down")
}

type destroyThen struct {
	*fakePhase
	then func()
}

func (d *destroyThen) Destroy(ctx context.Context, s *Scope) error {
	err := d.fakePhase.Destroy(ctx, s)
	d.then()
	return err
}

func BenchmarkEmit(b *testing.B) {
	for _, secrets := range []int{0, 3} {
		red := &Redactor{}
		for i := range secrets {
			red.Add(fmt.Sprintf("secret-value-%d-%s", i, strings.Repeat("x", 30)))
		}
		bus := NewBus(red, SinkFunc(func(Event) {}))
		progress := Event{Type: Progress, Action: "install", Phase: "certificates", Message: "waiting up to 10m0s (until 10:32:05) for CSV openshift-gitops-operator.v1.16.2: Installing"}
		changed := Event{Type: Progress, Action: "install", Phase: "oauth", Message: "update OAuth cluster (identity provider google)",
			Changes: []Change{{Action: Update, Target: "OAuth cluster", Detail: "identity provider google"}}}
		finished := Event{Type: RunFinished, Action: "install", Outcome: OutcomeDone, Summary: &Summary{Action: "install", Outcome: OutcomeDone,
			Phases: map[string]Outcome{"preflight": OutcomeDone, "install-config": OutcomeDone, "cluster": OutcomeDone, "gpu-pools": OutcomeDone,
				"gitops-operator": OutcomeDone, "oauth": OutcomeDone, "certificates": OutcomeDone, "root-app": OutcomeDone},
			State: "/home/me/.rhoai-bootstrap/rhoai-dev/state.json", Extra: map[string]string{"console": "https://console", "kubeconfig": "/x/auth/kubeconfig"}}}
		for name, e := range map[string]Event{"progress": progress, "change": changed, "run-finished": finished} {
			b.Run(fmt.Sprintf("%s/secrets=%d", name, secrets), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					bus.Emit(e)
				}
			})
		}
	}
}
