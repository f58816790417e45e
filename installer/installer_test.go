package installer

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakePhase converges after Apply; it records calls and measures concurrency.
type fakePhase struct {
	name    string
	deps    []string
	world   *world
	inputs  any
	applyFn func(ctx context.Context, s *Scope) error
}

type world struct {
	mu                sync.Mutex
	applied           map[string]bool
	order             []string
	running, peak     int32
	applies, destroys atomic.Int32
	hold              time.Duration
}

func newWorld() *world { return &world{applied: map[string]bool{}} }

func (p *fakePhase) Name() string        { return p.name }
func (p *fakePhase) DependsOn() []string { return p.deps }
func (p *fakePhase) Inputs() any         { return p.inputs }
func (p *fakePhase) Check(_ context.Context, _ *Scope) (Status, error) {
	p.world.mu.Lock()
	defer p.world.mu.Unlock()
	if p.world.applied[p.name] {
		return Done("applied"), nil
	}
	return Pending("not applied", Change{Action: Create, Target: "thing " + p.name}), nil
}
func (p *fakePhase) Apply(ctx context.Context, s *Scope) error {
	n := atomic.AddInt32(&p.world.running, 1)
	defer atomic.AddInt32(&p.world.running, -1)
	for {
		old := atomic.LoadInt32(&p.world.peak)
		if n <= old || atomic.CompareAndSwapInt32(&p.world.peak, old, n) {
			break
		}
	}
	p.world.applies.Add(1)
	if p.applyFn != nil {
		if err := p.applyFn(ctx, s); err != nil {
			return err
		}
	}
	select {
	case <-time.After(p.world.hold):
	case <-ctx.Done():
		return ctx.Err()
	}
	p.world.mu.Lock()
	defer p.world.mu.Unlock()
	p.world.applied[p.name] = true
	p.world.order = append(p.world.order, p.name)
	return nil
}
func (p *fakePhase) Destroy(_ context.Context, _ *Scope) error {
	p.world.destroys.Add(1)
	p.world.mu.Lock()
	defer p.world.mu.Unlock()
	delete(p.world.applied, p.name)
	p.world.order = append(p.world.order, "-"+p.name)
	return nil
}

// diamond: a → (b, c, d) → e
func diamond(w *world) []Phase {
	return []Phase{
		&fakePhase{name: "a", world: w},
		&fakePhase{name: "b", deps: []string{"a"}, world: w},
		&fakePhase{name: "c", deps: []string{"a"}, world: w},
		&fakePhase{name: "d", deps: []string{"a"}, world: w},
		&fakePhase{name: "e", deps: []string{"b", "c", "d"}, world: w},
	}
}

func newRunner(t *testing.T, phases []Phase) (*Runner, *LocalStore, *[]Event) {
	t.Helper()
	st, err := NewLocalStore(t.TempDir())
	require.NoError(t, err)
	var mu sync.Mutex
	var events []Event
	bus := NewBus(nil, SinkFunc(func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }))
	return &Runner{Phases: phases, Store: st, Bus: bus, Cluster: "c1", Command: "test"}, st, &events
}

func TestRunnerOrderAndConcurrency(t *testing.T) {
	w := newWorld()
	// b, c and d each wait until all three have started: concurrency is proven by the
	// barrier being passed, not by timing (a loaded machine cannot make this flake; a
	// runner that serialises them fails it after the barrier's timeout).
	var started sync.WaitGroup
	started.Add(3)
	all := make(chan struct{})
	go func() { started.Wait(); close(all) }()
	ps := diamond(w)
	for _, p := range ps[1:4] {
		p.(*fakePhase).applyFn = func(ctx context.Context, _ *Scope) error {
			started.Done()
			select {
			case <-all:
				return nil
			case <-time.After(30 * time.Second):
				return errors.New("b, c and d did not all start together")
			}
		}
	}
	r, _, _ := newRunner(t, ps)
	sum, err := r.Install(context.Background())
	require.NoError(t, err)
	assert.Equal(t, OutcomeDone, sum.Outcome)
	assert.Equal(t, "a", w.order[0])
	assert.Equal(t, "e", w.order[4])
	assert.EqualValues(t, 3, w.peak, "b, c and d run together")

	w2 := newWorld()
	w2.hold = 10 * time.Millisecond
	r2, _, _ := newRunner(t, diamond(w2))
	r2.MaxParallel = 1
	_, err = r2.Install(context.Background())
	require.NoError(t, err)
	assert.EqualValues(t, 1, w2.peak)
}

func TestRunnerRerunIsNoop(t *testing.T) {
	w := newWorld()
	r, st, _ := newRunner(t, diamond(w))
	_, err := r.Install(context.Background())
	require.NoError(t, err)
	before, err := os.ReadFile(st.Location())
	require.NoError(t, err)
	_, err = r.Install(context.Background())
	require.NoError(t, err)
	assert.EqualValues(t, 5, w.applies.Load(), "second run applies nothing")
	after, err := os.ReadFile(st.Location())
	require.NoError(t, err)
	var a, b State
	require.NoError(t, json.Unmarshal(before, &a))
	require.NoError(t, json.Unmarshal(after, &b))
	assert.Equal(t, a.Phases, b.Phases, "journal unchanged by a converged run")
}

func TestInputHashChangeReruns(t *testing.T) {
	w := newWorld()
	phases := diamond(w)
	phases[1].(*fakePhase).inputs = map[string]string{"v": "1"}
	r, _, _ := newRunner(t, phases)
	_, err := r.Install(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 5, w.applies.Load())
	phases[1].(*fakePhase).inputs = map[string]string{"v": "2"}
	_, err = r.Install(context.Background())
	require.NoError(t, err)
	assert.EqualValues(t, 6, w.applies.Load(), "only b re-applied")
}

func TestSelection(t *testing.T) {
	w := newWorld()
	r, _, _ := newRunner(t, diamond(w))
	r.Only = []string{"b"}
	_, err := r.Install(context.Background())
	require.ErrorContains(t, err, "phase b needs a, which is not selected and not done")

	r.Only = []string{"a", "b"}
	sum, err := r.Install(context.Background())
	require.NoError(t, err)
	assert.Equal(t, OutcomeSkipped, sum.Phases["c"])
	assert.Equal(t, OutcomeDone, sum.Phases["b"])

	r.Only = nil
	r.Skip = []string{"d"}
	_, err = r.Install(context.Background())
	require.ErrorContains(t, err, "phase e needs d, which is not selected and not done")

	r.Skip = []string{"d", "e"}
	sum, err = r.Install(context.Background())
	require.NoError(t, err)
	assert.Equal(t, OutcomeSkipped, sum.Phases["e"])
	assert.Equal(t, OutcomeDone, sum.Phases["c"])

	r.Skip = []string{"nope"}
	_, err = r.Install(context.Background())
	require.ErrorContains(t, err, `unknown phase "nope"`)
}

func TestGraphErrors(t *testing.T) {
	w := newWorld()
	r, _, _ := newRunner(t, []Phase{&fakePhase{name: "x", deps: []string{"y"}, world: w}, &fakePhase{name: "y", deps: []string{"x"}, world: w}})
	_, err := r.Install(context.Background())
	require.ErrorContains(t, err, "cycle")
	r.Phases = []Phase{&fakePhase{name: "x", deps: []string{"zz"}, world: w}}
	_, err = r.Install(context.Background())
	require.ErrorContains(t, err, `unknown phase "zz"`)
}

func TestFailureBlocksDependentsOnly(t *testing.T) {
	w := newWorld()
	phases := diamond(w)
	phases[2].(*fakePhase).applyFn = func(context.Context, *Scope) error { return errors.New("boom") }
	r, st, _ := newRunner(t, phases)
	sum, err := r.Install(context.Background())
	var re *RunError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "c", re.Failed[0].Phase)
	assert.Equal(t, OutcomeDone, sum.Phases["b"])
	assert.Equal(t, OutcomeDone, sum.Phases["d"])
	assert.Equal(t, OutcomeBlocked, sum.Phases["e"])
	s, err := st.Load(context.Background())
	require.NoError(t, err)
	assert.Equal(t, OutcomeFailed, s.Phases["c"].Outcome)
	assert.Equal(t, "boom", s.Phases["c"].Error)
	assert.Equal(t, 1, s.Phases["c"].Attempts)
	require.Len(t, s.Phases["c"].Journal, 1)
	assert.Equal(t, OutcomeFailed, s.Phases["c"].Journal[0].Outcome)
}

func TestInterruptSavesState(t *testing.T) {
	w := newWorld()
	w.hold = 5 * time.Second
	r, st, _ := newRunner(t, diamond(w))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	sum, err := r.Install(ctx)
	require.ErrorIs(t, err, ErrInterrupted)
	assert.Equal(t, OutcomeInterrupted, sum.Outcome)
	s, err := st.Load(context.Background())
	require.NoError(t, err)
	assert.Equal(t, OutcomeInterrupted, s.Phases["a"].Outcome)
}

func TestLockContention(t *testing.T) {
	dir := t.TempDir()
	a, err := NewLocalStore(dir)
	require.NoError(t, err)
	b, err := NewLocalStore(dir)
	require.NoError(t, err)
	holder := LockInfo{PID: 4242, Host: "ci-7", Started: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC), Command: "install"}
	u, err := a.Lock(context.Background(), holder)
	require.NoError(t, err)
	_, err = b.Lock(context.Background(), CurrentHolder("install"))
	var le *LockedError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, 4242, le.Holder.PID)
	assert.Contains(t, err.Error(), "pid 4242 on ci-7")
	assert.Contains(t, err.Error(), "2026-11-28T10:00:00Z")
	require.NoError(t, u.Unlock())
	u2, err := b.Lock(context.Background(), CurrentHolder("install"))
	require.NoError(t, err)
	require.NoError(t, u2.Unlock())
}

func TestAtomicSaveKeepsOldStateOnCrash(t *testing.T) {
	st, err := NewLocalStore(t.TempDir())
	require.NoError(t, err)
	ctx := context.Background()
	old := NewState("c1", time.Now())
	old.Phase("a").Outcome = OutcomeDone
	require.NoError(t, st.Save(ctx, old))
	// Crash between the temp file's fsync and the rename.
	st.beforeRename = func(string) error { return errors.New("simulated crash") }
	next := old.Clone()
	next.Phase("a").Outcome = OutcomeFailed
	require.Error(t, st.Save(ctx, next))
	got, err := st.Load(ctx)
	require.NoError(t, err)
	assert.Equal(t, OutcomeDone, got.Phases["a"].Outcome)
	fi, err := os.Stat(st.Location())
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	st.beforeRename = nil
	require.NoError(t, st.Save(ctx, next))
	got, err = st.Load(ctx)
	require.NoError(t, err)
	assert.Equal(t, OutcomeFailed, got.Phases["a"].Outcome)
	// Leftover temp files (from a real crash) never shadow the state.
	require.NoError(t, os.WriteFile(filepath.Join(st.Dir, ".state.json.tmp-123"), []byte("{torn"), 0o600))
	_, err = st.Load(ctx)
	require.NoError(t, err)
}

func TestCorruptStateSaysWhatToDo(t *testing.T) {
	st, err := NewLocalStore(t.TempDir())
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(st.Location(), []byte("{torn"), 0o600))
	_, err = st.Load(context.Background())
	require.ErrorContains(t, err, "is corrupt")
}

func TestStateRefusesSecrets(t *testing.T) {
	w := newWorld()
	phases := diamond(w)
	phases[0].(*fakePhase).applyFn = func(ctx context.Context, s *Scope) error {
		s.Redactor().Add("tops3cret")
		s.Progress("resolved tops3cret for the IdP")
		return Save(ctx, s, func(r *recordA) error { r.Note = "tops3cret"; return nil })
	}
	r, st, events := newRunner(t, phases)
	_, err := r.Install(context.Background())
	require.ErrorContains(t, err, "refusing to save state")
	b, err := os.ReadFile(st.Location())
	require.NoError(t, err)
	assert.NotContains(t, string(b), "tops3cret")
	leaked := false
	for _, e := range *events {
		b, err := json.Marshal(e)
		require.NoError(t, err)
		assert.NotContains(t, string(b), "tops3cret")
		leaked = leaked || strings.Contains(e.Message, "[REDACTED]")
	}
	assert.True(t, leaked, "the progress line quoting the secret was emitted, redacted")
}

func TestPlan(t *testing.T) {
	w := newWorld()
	r, st, _ := newRunner(t, diamond(w))
	plan, err := r.Plan(context.Background())
	require.NoError(t, err)
	require.Len(t, plan, 5)
	assert.Equal(t, "would-change", plan[0].State)
	assert.Equal(t, []Change{{Action: Create, Target: "thing a"}}, plan[0].Changes)
	assert.Equal(t, "blocked", plan[1].State)
	assert.Equal(t, []string{"a"}, plan[1].BlockedBy)
	_, err = os.Stat(st.Location())
	assert.True(t, os.IsNotExist(err), "plan writes no state")
	assert.EqualValues(t, 0, w.applies.Load())

	_, err = r.Install(context.Background())
	require.NoError(t, err)
	plan, err = r.Plan(context.Background())
	require.NoError(t, err)
	for _, e := range plan {
		assert.Equal(t, "done", e.State, e.Phase)
	}
}

func TestPlanRefusesWrites(t *testing.T) {
	w := newWorld()
	p := &checkWriter{fakePhase{name: "a", world: w}}
	r, _, _ := newRunner(t, []Phase{p})
	plan, err := r.Plan(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "failed", plan[0].State)
	assert.Contains(t, plan[0].Reason, "plans must not change anything")
}

type checkWriter struct{ fakePhase }

func (c *checkWriter) Check(ctx context.Context, s *Scope) (Status, error) {
	return Status{}, Save(ctx, s, func(r *recordA) error { r.Note = "v"; return nil })
}

func TestDestroyReverseOrder(t *testing.T) {
	w := newWorld()
	r, st, _ := newRunner(t, diamond(w))
	_, err := r.Install(context.Background())
	require.NoError(t, err)
	w.order = nil
	sum, err := r.Destroy(context.Background())
	require.NoError(t, err)
	assert.Equal(t, OutcomeDone, sum.Outcome)
	assert.Equal(t, "-e", w.order[0])
	assert.Equal(t, "-a", w.order[4])
	s, err := st.Load(context.Background())
	require.NoError(t, err)
	assert.Equal(t, OutcomeDestroyed, s.Phases["a"].Outcome)
	// A second destroy has nothing left to remove.
	_, err = r.Destroy(context.Background())
	require.NoError(t, err)
	assert.EqualValues(t, 5, w.destroys.Load())
}

func TestClusterMismatch(t *testing.T) {
	w := newWorld()
	r, _, _ := newRunner(t, diamond(w))
	_, err := r.Install(context.Background())
	require.NoError(t, err)
	r.Cluster = "other"
	_, err = r.Install(context.Background())
	require.ErrorContains(t, err, `belongs to cluster "c1"`)
}

func TestDestroyFailureKeepsDependencies(t *testing.T) {
	w := newWorld()
	phases := diamond(w)
	r, _, _ := newRunner(t, phases)
	_, err := r.Install(context.Background())
	require.NoError(t, err)
	orig := phases[1]
	r.Phases[1] = &failingDestroy{fakePhase: *orig.(*fakePhase)}
	sum, err := r.Destroy(context.Background())
	require.Error(t, err)
	assert.Equal(t, OutcomeFailed, sum.Phases["b"])
	assert.Equal(t, OutcomeBlocked, sum.Phases["a"], "a outlives b, which still needs it")
	assert.Equal(t, OutcomeDestroyed, sum.Phases["c"], "independent branches go on")
	// Once b can be removed, a second destroy finishes the job.
	r.Phases[1] = orig
	sum, err = r.Destroy(context.Background())
	require.NoError(t, err)
	assert.Equal(t, OutcomeDestroyed, sum.Phases["a"])
	assert.Equal(t, OutcomeSkipped, sum.Phases["c"], "nothing left of c")
}

type failingDestroy struct{ fakePhase }

func (f *failingDestroy) Destroy(context.Context, *Scope) error { return errors.New("stuck") }
