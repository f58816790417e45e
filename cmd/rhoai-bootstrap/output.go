package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/pricing"
)

// textSink prints events as plain lines, one glyph per kind, for terminals without the TUI
// and for CI logs.
type textSink struct {
	mu      sync.Mutex
	w       io.Writer
	verbose bool
	// problems counts, per failed phase, the problems its printed error lists: the
	// summary points at them instead of printing them again.
	problems map[string]int
}

func glyph(e installer.Event) string {
	switch e.Type {
	case installer.PhaseStarted:
		return "►"
	case installer.PhaseDone:
		return "✔"
	case installer.PhaseFailed:
		if e.Outcome == installer.OutcomeInterrupted {
			return "■"
		}
		return "✗"
	case installer.PhaseSkipped:
		return "–"
	case installer.WaitingOn:
		return "◎"
	case installer.PhasePlanned:
		switch e.Outcome {
		case "done":
			return "✔"
		case "would-change":
			return "~"
		case "blocked", "skipped":
			return "–"
		}
		return "✗"
	}
	return " "
}

func (t *textSink) Event(e installer.Event) {
	if e.Debug && !t.verbose {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	ts := e.Time.Local().Format("15:04:05")
	switch e.Type {
	case installer.RunStarted:
		fmt.Fprintf(t.w, "%s   %s\n", ts, e.Message)
	case installer.RunFinished:
		if e.Summary != nil {
			printSummary(t.w, e, t.problems)
		}
	case installer.CostEstimated:
		fmt.Fprintf(t.w, "$ %s %-16s %s\n", ts, "cost", e.Message)
		if e.Cost != nil {
			pricing.WriteText(t.w, *e.Cost, strings.Repeat(" ", 11))
		}
	case installer.PhasePlanned:
		fmt.Fprintf(t.w, "%s %s %-20s %s %s\n", glyph(e), ts, e.Phase, e.Outcome, e.Message)
		for _, c := range e.Changes {
			fmt.Fprintf(t.w, "                      %s\n", c)
		}
		for _, in := range e.Inventory {
			fmt.Fprintf(t.w, "                      recorded: %s\n", in)
		}
	default:
		line := e.Message
		if e.Type == installer.PhaseStarted {
			line = "started"
		}
		if e.Error != "" {
			line = strings.TrimSpace(line + " " + e.Error)
		}
		if e.Type == installer.PhaseFailed {
			if t.problems == nil {
				t.problems = map[string]int{}
			}
			t.problems[e.Phase] = max(e.Problems, 1)
		}
		if e.DurationMS > 0 && e.Type != installer.Progress {
			line += fmt.Sprintf(" (%s)", (time.Duration(e.DurationMS) * time.Millisecond).Round(100*time.Millisecond))
		}
		fmt.Fprintf(t.w, "%s %s %-20s %s\n", glyph(e), ts, e.Phase, line)
	}
}

// printSummary closes a run. A phase's error was printed where it happened; the summary
// names the failed phases and points up at it, and prints in full only an error no phase
// line showed (the state lock lost, an interruption).
func printSummary(w io.Writer, e installer.Event, shown map[string]int) {
	s := e.Summary
	head := fmt.Sprintf("%s %s in %s", s.Action, s.Outcome, (time.Duration(e.DurationMS) * time.Millisecond).Round(100*time.Millisecond))
	var pointers []string
	for _, name := range s.Failed {
		switch n, ok := shown[name]; {
		case !ok:
			pointers = append(pointers, name)
		case n > 1:
			pointers = append(pointers, fmt.Sprintf("%s (%d problems above)", name, n))
		default:
			pointers = append(pointers, name+" (error above)")
		}
	}
	if len(pointers) > 0 {
		head += ": " + strings.Join(pointers, ", ")
	}
	fmt.Fprintf(w, "\n%s\n", head)
	for _, k := range []string{"console", "kubeconfig", "kubeadmin-password"} {
		if v := s.Extra[k]; v != "" {
			fmt.Fprintf(w, "  %-19s %s\n", k+":", v)
		}
	}
	fmt.Fprintf(w, "  %-19s %s\n", "state:", s.State)
	fmt.Fprintf(w, "  %-19s %d\n", "mutating requests:", s.Mutating)
	if e.Error != "" && len(s.Failed) == 0 {
		fmt.Fprintf(w, "  %-19s %s\n", "error:", e.Error)
	}
}

// jsonSink prints one JSON object per event (the versioned schema in installer.Event).
type jsonSink struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func newJSONSink(w io.Writer) *jsonSink { return &jsonSink{enc: json.NewEncoder(w)} }

func (j *jsonSink) Event(e installer.Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = j.enc.Encode(e)
}

// debugLog appends every event, debug lines included, to a file next to the state, like
// openshift-install's .openshift_install.log: always written, secrets redacted by the bus.
type debugLog struct {
	mu sync.Mutex
	f  *os.File
}

func openDebugLog(path string) (*debugLog, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the debug log: %w", err)
	}
	return &debugLog{f: f}, nil
}

func (d *debugLog) Event(e installer.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, _ := json.Marshal(e)
	d.f.Write(append(b, '\n'))
}

func (d *debugLog) Close() error { return d.f.Close() }
