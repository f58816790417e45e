package installer

import (
	"context"
	"fmt"
	"time"
)

// Scope is a phase's handle on the run: events, its record (Load, Save), side files. Phases get
// one per call; it is safe to use from the phase's own goroutines.
type Scope struct {
	phase    string
	ex       *execution
	readOnly bool
}

// Name is the phase's name.
func (s *Scope) Name() string { return s.phase }

// ReadOnly reports whether this is a plan: nothing may change.
func (s *Scope) ReadOnly() bool { return s.readOnly }

// Progress emits a progress line.
func (s *Scope) Progress(format string, args ...any) {
	s.ex.bus.Emit(Event{Type: Progress, Action: s.ex.action, Phase: s.phase, Message: fmt.Sprintf(format, args...)})
}

// Debugf emits a line the text front-end shows only with -v (the debug log keeps all).
func (s *Scope) Debugf(format string, args ...any) {
	s.ex.bus.Emit(Event{Type: Progress, Action: s.ex.action, Phase: s.phase, Message: fmt.Sprintf(format, args...), Debug: true})
}

// Waiting says what the phase waits on now and until when at most. The event's message
// reads like openshift-install's: "waiting up to 10m0s (until 10:32:05) for CSV
// openshift-gitops-operator.v1.16.2: Installing"; Waiting.On keeps just the object part
// for front-ends that show the deadline themselves.
func (s *Scope) Waiting(on string, until time.Time) {
	msg := fmt.Sprintf("waiting up to %s (until %s) for %s", time.Until(until).Round(time.Second), until.Format("15:04:05"), on)
	s.ex.bus.Emit(Event{Type: WaitingOn, Action: s.ex.action, Phase: s.phase, Message: msg, Waiting: &Waiting{On: on, Until: until}})
}

// Changed reports one change the phase just made.
func (s *Scope) Changed(c Change) {
	s.ex.bus.Emit(Event{Type: Progress, Action: s.ex.action, Phase: s.phase, Message: c.String(), Changes: []Change{c}})
}

// PutFile stores a side file next to the state (0600), e.g. the ACME account key.
func (s *Scope) PutFile(ctx context.Context, name string, data []byte) error {
	if s.readOnly {
		return fmt.Errorf("phase %s tried to write %s during a plan", s.phase, name)
	}
	if err := lockLost(ctx); err != nil {
		return err
	}
	return s.ex.wrote(s.ex.store.PutFile(ctx, name, data))
}

// GetFile reads a side file (fs.ErrNotExist when absent).
func (s *Scope) GetFile(ctx context.Context, name string) ([]byte, error) {
	return s.ex.store.GetFile(ctx, name)
}

// DeleteFile removes a side file.
func (s *Scope) DeleteFile(ctx context.Context, name string) error {
	if s.readOnly {
		return fmt.Errorf("phase %s tried to delete %s during a plan", s.phase, name)
	}
	if err := lockLost(ctx); err != nil {
		return err
	}
	return s.ex.wrote(s.ex.store.DeleteFile(ctx, name))
}

// Publish adds a fact to the run's summary (console URL, kubeconfig path).
func (s *Scope) Publish(key, value string) {
	s.ex.mu.Lock()
	defer s.ex.mu.Unlock()
	s.ex.extra[key] = value
}

// Redactor lets a phase register a secret it resolved, so it never leaves the process.
func (s *Scope) Redactor() *Redactor { return s.ex.bus.Redactor }

// Now is the run's clock.
func (s *Scope) Now() time.Time { return s.ex.now() }
