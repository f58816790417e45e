package installer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// ErrInterrupted is returned when the run was cancelled (Ctrl-C, SIGTERM); the state
// was saved and the same command resumes.
var ErrInterrupted = errors.New("interrupted")

// PhaseError is a phase failure.
type PhaseError struct {
	Phase string
	Err   error
}

func (e *PhaseError) Error() string { return fmt.Sprintf("phase %s: %v", e.Phase, e.Err) }
func (e *PhaseError) Unwrap() error { return e.Err }

// RunError gathers the phases that failed in one run.
type RunError struct{ Failed []*PhaseError }

func (e *RunError) Error() string {
	parts := make([]string, len(e.Failed))
	for i, f := range e.Failed {
		parts[i] = f.Error()
	}
	return strings.Join(parts, "; ")
}

// SaveError is a state save that did not happen (refused by the secret guard, or failed
// in the store). It fails the phase that asked for it, and the run.
type SaveError struct{ Err error }

func (e *SaveError) Error() string { return e.Err.Error() }
func (e *SaveError) Unwrap() error { return e.Err }

// Runner runs a graph of phases against a store.
type Runner struct {
	Phases []Phase
	Store  Store
	Bus    *Bus
	// Cluster names the state (checked against a loaded state).
	Cluster string
	// Command is recorded in the lock, e.g. "install".
	Command string
	// MaxParallel bounds concurrently running phases (0: unbounded).
	MaxParallel int
	// Only and Skip select phases by name.
	Only, Skip []string
	// Mutations, if set, reports the number of mutating requests made so far (for the summary).
	Mutations func() int64
	// Requests, if set, reports the number of read and watch requests made so far.
	Requests func() (reads, watches int64)
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

type execution struct {
	// stop ends the run early with a cause: the lock was lost (ErrLockLost).
	stop   context.CancelCauseFunc
	mu     sync.Mutex
	state  *State
	store  Store
	bus    *Bus
	action string
	extra  map[string]string
	now    func() time.Time
	// dirty is set when the state changed since the last save.
	lastSaved []byte
}

// lockLost returns the run's ErrLockLost once a store write reported it.
func lockLost(ctx context.Context) error {
	if c := context.Cause(ctx); errors.Is(c, ErrLockLost) {
		return c
	}
	return nil
}

// wrote passes on a store write's error; one that says the lock was lost stops the
// whole run: another run may hold the state now, and every phase still working must
// stop before it changes anything more.
func (ex *execution) wrote(err error) error {
	if errors.Is(err, ErrLockLost) && ex.stop != nil {
		ex.stop(err)
	}
	return err
}

func (ex *execution) saveLocked(ctx context.Context) error {
	if err := lockLost(ctx); err != nil {
		return &SaveError{Err: err}
	}
	ex.state.UpdatedAt = ex.now().UTC()
	snap := ex.state.Clone()
	b, err := jsonBytes(snap)
	if err != nil {
		return err
	}
	if ex.bus.Redactor.Contains(b) {
		return &SaveError{Err: errors.New("refusing to save state: it would contain a secret value (this is a bug; please report it)")}
	}
	if err := ex.store.Save(context.WithoutCancel(ctx), snap); err != nil {
		return &SaveError{Err: ex.wrote(fmt.Errorf("saving state: %w", err))}
	}
	ex.lastSaved = b
	return nil
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// graph checks names and dependencies and returns the phases in a topological order that
// keeps the declared order where it can.
func (r *Runner) graph() ([]Phase, map[string]Phase, error) {
	byName := map[string]Phase{}
	for _, p := range r.Phases {
		if _, dup := byName[p.Name()]; dup {
			return nil, nil, fmt.Errorf("phase %q is declared twice", p.Name())
		}
		byName[p.Name()] = p
	}
	for _, p := range r.Phases {
		for _, d := range p.DependsOn() {
			if _, ok := byName[d]; !ok {
				return nil, nil, fmt.Errorf("phase %q depends on unknown phase %q", p.Name(), d)
			}
		}
	}
	var order []Phase
	state := map[string]int{} // 0 new, 1 visiting, 2 done
	var visit func(p Phase, path []string) error
	visit = func(p Phase, path []string) error {
		switch state[p.Name()] {
		case 1:
			return fmt.Errorf("phases form a cycle: %s", strings.Join(append(path, p.Name()), " → "))
		case 2:
			return nil
		}
		state[p.Name()] = 1
		for _, d := range p.DependsOn() {
			if err := visit(byName[d], append(path, p.Name())); err != nil {
				return err
			}
		}
		state[p.Name()] = 2
		order = append(order, p)
		return nil
	}
	for _, p := range r.Phases {
		if err := visit(p, nil); err != nil {
			return nil, nil, err
		}
	}
	return order, byName, nil
}

// selection returns the selected phase names, checking --only/--skip names.
func (r *Runner) selection(byName map[string]Phase) (map[string]bool, error) {
	for _, n := range append(slices.Clone(r.Only), r.Skip...) {
		if _, ok := byName[n]; !ok {
			names := make([]string, 0, len(byName))
			for k := range byName {
				names = append(names, k)
			}
			sort.Strings(names)
			return nil, fmt.Errorf("unknown phase %q (phases: %s)", n, strings.Join(names, ", "))
		}
	}
	sel := map[string]bool{}
	for n := range byName {
		sel[n] = len(r.Only) == 0 || slices.Contains(r.Only, n)
	}
	for _, n := range r.Skip {
		sel[n] = false
	}
	return sel, nil
}

// checkSelection makes sure every selected phase's dependencies are selected or done.
func checkSelection(order []Phase, sel map[string]bool, st *State) error {
	var problems []string
	for _, p := range order {
		if !sel[p.Name()] {
			continue
		}
		for _, d := range p.DependsOn() {
			if !sel[d] && !st.IsDone(d) {
				problems = append(problems, fmt.Sprintf("phase %s needs %s, which is not selected and not done (add it to --only, or drop it from --skip)", p.Name(), d))
			}
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func (r *Runner) open(ctx context.Context, action string) (*execution, []Phase, map[string]bool, Unlocker, error) {
	order, byName, err := r.graph()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	sel, err := r.selection(byName)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	var lock Unlocker
	if action != "plan" {
		lock, err = r.Store.Lock(ctx, CurrentHolder(r.Command))
		if err != nil {
			return nil, nil, nil, nil, err
		}
	}
	st, err := r.Store.Load(ctx)
	if err != nil {
		if lock != nil {
			lock.Unlock()
		}
		return nil, nil, nil, nil, err
	}
	if st == nil {
		st = NewState(r.Cluster, r.now().UTC())
	}
	if st.Cluster != "" && r.Cluster != "" && st.Cluster != r.Cluster {
		if lock != nil {
			lock.Unlock()
		}
		return nil, nil, nil, nil, fmt.Errorf("state %s belongs to cluster %q, not %q: use another --state-dir", r.Store.Location(), st.Cluster, r.Cluster)
	}
	bus := r.Bus
	if bus == nil {
		bus = NewBus(nil)
	}
	ex := &execution{state: st, store: r.Store, bus: bus, action: action, extra: map[string]string{}, now: r.now}
	return ex, order, sel, lock, nil
}

// Install runs the selected phases, concurrently where the graph allows.
func (r *Runner) Install(ctx context.Context) (sum *Summary, err error) {
	ex, order, sel, lock, err := r.open(ctx, "install")
	if err != nil {
		return nil, err
	}
	defer func() { err = ex.release(lock, err) }()
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	ex.stop = stop
	if err := checkSelection(order, sel, ex.state); err != nil {
		return nil, err
	}
	start := r.now()
	ex.bus.Emit(Event{Type: RunStarted, Action: "install", Message: fmt.Sprintf("install %s (%d phases, state %s)", r.Cluster, len(order), r.Store.Location())})

	deps := map[string][]string{}
	for _, p := range order {
		deps[p.Name()] = p.DependsOn()
	}
	results, failures := walk(order, deps, r.MaxParallel, func(p Phase, before map[string]Outcome) (Outcome, error) {
		if !sel[p.Name()] {
			ex.bus.Emit(Event{Type: PhaseSkipped, Action: "install", Phase: p.Name(), Outcome: OutcomeSkipped, Message: "not selected"})
			return OutcomeSkipped, nil
		}
		var blockers []string
		for _, d := range p.DependsOn() {
			if o := before[d]; o != OutcomeDone && !(o == OutcomeSkipped && ex.stateDone(d)) {
				blockers = append(blockers, d)
			}
		}
		if len(blockers) > 0 {
			ex.bus.Emit(Event{Type: PhaseSkipped, Action: "install", Phase: p.Name(), Outcome: OutcomeBlocked, Message: "blocked by " + strings.Join(blockers, ", ")})
			return OutcomeBlocked, nil
		}
		if ctx.Err() != nil {
			return OutcomeInterrupted, nil
		}
		return ex.install(ctx, p)
	})
	return r.finish(ctx, ex, "install", start, order, results, failures)
}

// release gives the lock back. A lock that could not be released is an error of the run:
// the next run would be refused by it.
func (ex *execution) release(lock Unlocker, err error) error {
	uerr := lock.Unlock()
	if uerr == nil {
		return err
	}
	uerr = ex.bus.Redactor.Error(fmt.Errorf("releasing the state lock: %w (`rhoai-bootstrap state unlock` shows who holds it)", uerr))
	if err == nil {
		return uerr
	}
	return fmt.Errorf("%w; %w", err, uerr)
}

func (ex *execution) stateDone(name string) bool {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	return ex.state.IsDone(name)
}

func (r *Runner) finish(ctx context.Context, ex *execution, action string, start time.Time, order []Phase, results map[string]Outcome, failures []*PhaseError) (*Summary, error) {
	sum := &Summary{Action: action, Phases: map[string]Outcome{}, State: r.Store.Location(), Extra: ex.extra}
	lost := lockLost(ctx)
	interrupted := ctx.Err() != nil && lost == nil
	for _, p := range order {
		o := results[p.Name()]
		sum.Phases[p.Name()] = o
		if o == OutcomeInterrupted && lost == nil {
			interrupted = true
		}
	}
	for _, f := range failures {
		sum.Failed = append(sum.Failed, f.Phase)
	}
	if r.Mutations != nil {
		sum.Mutating = r.Mutations()
	}
	if r.Requests != nil {
		sum.Reads, sum.Watches = r.Requests()
	}
	var err error
	switch {
	case lost != nil:
		sum.Outcome, err = OutcomeFailed, lost
	case interrupted:
		sum.Outcome, err = OutcomeInterrupted, ErrInterrupted
	case len(failures) > 0:
		sum.Outcome, err = OutcomeFailed, &RunError{Failed: failures}
	default:
		sum.Outcome = OutcomeDone
		for _, o := range sum.Phases {
			if o == OutcomeBlocked {
				sum.Outcome = OutcomeBlocked
			}
		}
	}
	var serr error
	if lost == nil { // a run that lost its lock writes nothing more
		ex.mu.Lock()
		serr = ex.saveLocked(ctx)
		ex.mu.Unlock()
	}
	switch {
	case serr == nil:
	case err == nil:
		err = serr
	default:
		err = fmt.Errorf("%w; %w", err, serr)
	}
	err = ex.bus.Redactor.Error(err)
	ex.bus.Emit(Event{Type: RunFinished, Action: action, Outcome: sum.Outcome, DurationMS: time.Since(start).Milliseconds(), Summary: sum, Error: errString(err)})
	return sum, err
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// record changes a phase's journal and saves the state. The text it keeps (reasons,
// errors) is redacted first: an error may quote a secret (an API server echoing a
// request), and the state must hold none.
func (ex *execution) record(ctx context.Context, name string, f func(r *PhaseRecord)) error {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	r := ex.state.Phase(name)
	f(r)
	red := ex.bus.Redactor
	r.Reason, r.Error = red.Redact(r.Reason), red.Redact(r.Error)
	for i := range r.Journal {
		r.Journal[i].Error = red.Redact(r.Journal[i].Error)
	}
	return ex.saveLocked(ctx)
}

func outcomeOf(ctx context.Context, err error) Outcome {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, ErrInterrupted) {
		return OutcomeInterrupted
	}
	return OutcomeFailed
}

// install runs one phase: Check, then Apply and Check again when there is work.
func (ex *execution) install(ctx context.Context, p Phase) (Outcome, error) {
	name := p.Name()
	s := &Scope{phase: name, ex: ex}
	start := ex.now()
	ex.bus.Emit(Event{Type: PhaseStarted, Action: "install", Phase: name})
	fail := func(err error, attempted bool) (Outcome, error) {
		o := outcomeOf(ctx, err)
		finished := ex.now().UTC()
		rerr := ex.record(ctx, name, func(r *PhaseRecord) {
			r.Outcome, r.Error, r.FinishedAt = o, err.Error(), &finished
			if attempted && len(r.Journal) > 0 {
				j := &r.Journal[len(r.Journal)-1]
				j.Finished, j.Outcome, j.Error = finished, o, err.Error()
			}
		})
		var unsaved *SaveError
		if rerr != nil && !errors.As(err, &unsaved) && !errors.Is(rerr, ErrLockLost) {
			// The failure itself was not recorded: the run must say so, not carry on as
			// if the state knew. (A failure that is a failed save is not repeated.)
			o, err = OutcomeFailed, fmt.Errorf("%w; recording this failure in the state failed too: %w", err, rerr)
		}
		ex.bus.Emit(Event{Type: PhaseFailed, Action: "install", Phase: name, Outcome: o, Error: err.Error(), Problems: ProblemCount(err), DurationMS: time.Since(start).Milliseconds()})
		return o, err
	}
	var hash string
	if h, ok := p.(InputHasher); ok {
		var err error
		if hash, err = HashInputs(h.Inputs()); err != nil {
			return fail(err, false)
		}
	}
	st, err := p.Check(ctx, s)
	if err != nil {
		return fail(fmt.Errorf("check: %w", err), false)
	}
	ex.mu.Lock()
	prev := ex.state.Phase(name)
	recordedHash, wasDone := prev.InputHash, prev.Outcome == OutcomeDone
	ex.mu.Unlock()
	if st.Done && (hash == "" || hash == recordedHash) {
		if !wasDone || (hash != "" && recordedHash != hash) {
			finished := ex.now().UTC()
			if err := ex.record(ctx, name, func(r *PhaseRecord) {
				r.Outcome, r.Reason, r.Error, r.FinishedAt, r.InputHash = OutcomeDone, st.Reason, "", &finished, hash
			}); err != nil {
				return fail(err, false)
			}
		}
		ex.bus.Emit(Event{Type: PhaseDone, Action: "install", Phase: name, Outcome: OutcomeDone, Message: nonEmpty(st.Reason, "up to date"), DurationMS: time.Since(start).Milliseconds()})
		return OutcomeDone, nil
	}
	reason := st.Reason
	if st.Done {
		reason = "inputs changed since the last run"
	}
	startedAt := ex.now().UTC()
	if err := ex.record(ctx, name, func(r *PhaseRecord) {
		r.Outcome, r.Reason, r.Error, r.StartedAt, r.FinishedAt = OutcomeRunning, reason, "", &startedAt, nil
		r.Attempts++
		r.journal(JournalEntry{Action: "apply", Started: startedAt, Outcome: OutcomeRunning, Hash: hash})
	}); err != nil {
		return fail(err, false)
	}
	ex.bus.Emit(Event{Type: Progress, Action: "install", Phase: name, Message: reason, Changes: st.Changes})
	if err := p.Apply(ctx, s); err != nil {
		return fail(err, true)
	}
	after, err := p.Check(ctx, s)
	if err != nil {
		return fail(fmt.Errorf("check after apply: %w", err), true)
	}
	if !after.Done {
		return fail(fmt.Errorf("applied, but not converged: %s", nonEmpty(after.Reason, "check still reports work to do")), true)
	}
	finished := ex.now().UTC()
	if err := ex.record(ctx, name, func(r *PhaseRecord) {
		r.Outcome, r.Reason, r.Error, r.FinishedAt, r.InputHash = OutcomeDone, after.Reason, "", &finished, hash
		if len(r.Journal) > 0 {
			j := &r.Journal[len(r.Journal)-1]
			j.Finished, j.Outcome = finished, OutcomeDone
		}
	}); err != nil {
		return fail(err, true)
	}
	ex.bus.Emit(Event{Type: PhaseDone, Action: "install", Phase: name, Outcome: OutcomeDone, Message: nonEmpty(after.Reason, "done"), DurationMS: time.Since(start).Milliseconds()})
	return OutcomeDone, nil
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
