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
)

// textSink prints events as plain lines, one glyph per kind, for terminals without the TUI
// and for CI logs.
type textSink struct {
	mu      sync.Mutex
	w       io.Writer
	verbose bool
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
			printSummary(t.w, e)
		}
	case installer.PhasePlanned:
		fmt.Fprintf(t.w, "%s %s %-16s %s %s\n", glyph(e), ts, e.Phase, e.Outcome, e.Message)
		for _, c := range e.Changes {
			fmt.Fprintf(t.w, "                      %s\n", c)
		}
	default:
		line := e.Message
		if e.Type == installer.PhaseStarted {
			line = "started"
		}
		if e.Error != "" {
			line = strings.TrimSpace(line + " " + e.Error)
		}
		if e.DurationMS > 0 && e.Type != installer.Progress {
			line += fmt.Sprintf(" (%s)", (time.Duration(e.DurationMS) * time.Millisecond).Round(100*time.Millisecond))
		}
		fmt.Fprintf(t.w, "%s %s %-16s %s\n", glyph(e), ts, e.Phase, line)
	}
}

func printSummary(w io.Writer, e installer.Event) {
	s := e.Summary
	fmt.Fprintf(w, "\n%s %s in %s\n", s.Action, s.Outcome, (time.Duration(e.DurationMS) * time.Millisecond).Round(100*time.Millisecond))
	for _, k := range []string{"console", "kubeconfig", "kubeadmin-password"} {
		if v := s.Extra[k]; v != "" {
			fmt.Fprintf(w, "  %-19s %s\n", k+":", v)
		}
	}
	fmt.Fprintf(w, "  %-19s %s\n", "state:", s.State)
	fmt.Fprintf(w, "  %-19s %d\n", "mutating requests:", s.Mutating)
	if e.Error != "" {
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
