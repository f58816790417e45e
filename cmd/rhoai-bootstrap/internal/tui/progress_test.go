package tui

import (
	"bytes"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

const resume = "rhoai-bootstrap install -f dev.yaml"

func graph() []PhaseInfo {
	return []PhaseInfo{
		{Name: "preflight"},
		{Name: "install-config", DependsOn: []string{"preflight"}},
		{Name: "cluster", DependsOn: []string{"install-config"}},
		{Name: "gpu-pools", DependsOn: []string{"cluster"}},
		{Name: "gitops-operator", DependsOn: []string{"cluster"}},
		{Name: "oauth", DependsOn: []string{"cluster"}},
		{Name: "certificates", DependsOn: []string{"cluster"}},
		{Name: "root-app", DependsOn: []string{"gitops-operator", "oauth", "certificates"}},
	}
}

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.Local)

// script builds events the way the runner stamps them, one second apart.
type script struct {
	at  time.Time
	evs []installer.Event
}

func (s *script) add(e installer.Event) *script {
	s.at = s.at.Add(time.Second)
	e.Schema, e.Time, e.Action = installer.EventSchema, s.at, "install"
	s.evs = append(s.evs, e)
	return s
}

func (s *script) phaseOK(name string) *script {
	s.add(installer.Event{Type: installer.PhaseStarted, Phase: name})
	s.add(installer.Event{Type: installer.Progress, Phase: name, Message: "applying " + name})
	return s.add(installer.Event{Type: installer.PhaseDone, Phase: name, Outcome: installer.OutcomeDone, Message: "done", DurationMS: 2000})
}

func (s *script) send(tm *teatest.TestModel) {
	for _, e := range s.evs {
		tm.Send(eventMsg(e))
	}
}

func startModel(t *testing.T, opts ProgressOptions, w, h int) (*teatest.TestModel, *progressModel) {
	t.Helper()
	if opts.Phases == nil {
		opts.Phases = graph()
	}
	if opts.ResumeCommand == "" {
		opts.ResumeCommand = resume
	}
	m := newProgressModel(opts, func() time.Time { return t0.Add(30 * time.Second) })
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(w, h))
	return tm, m
}

// finalText reads the program's whole output as a person would read it in the scrollback.
func finalText(t *testing.T, tm *teatest.TestModel) string {
	t.Helper()
	b, err := io.ReadAll(tm.FinalOutput(t, teatest.WithFinalTimeout(10*time.Second)))
	require.NoError(t, err)
	return strings.ReplaceAll(ansi.Strip(string(b)), "\r", "")
}

func TestProgressSuccess(t *testing.T) {
	tm, _ := startModel(t, ProgressOptions{Action: "install"}, 100, 30)
	s := &script{at: t0}
	s.add(installer.Event{Type: installer.RunStarted, Message: "install rhoai-dev (8 phases)"})
	for _, p := range graph() {
		s.phaseOK(p.Name)
	}
	s.add(installer.Event{Type: installer.Progress, Phase: "root-app", Message: "DEBUG-ONLY-LINE", Debug: true})
	s.add(installer.Event{Type: installer.RunFinished, Outcome: installer.OutcomeDone, DurationMS: 754000, Summary: &installer.Summary{
		Action: "install", Outcome: installer.OutcomeDone, State: "/home/u/.local/state/rhoai-bootstrap/rhoai-dev",
		Mutating: 42, Phases: map[string]installer.Outcome{"preflight": installer.OutcomeDone},
		Extra: map[string]string{
			"console":    "https://console-openshift-console.apps.rhoai-dev.example.com",
			"kubeconfig": "/home/u/.local/state/rhoai-bootstrap/rhoai-dev/auth/kubeconfig",
			"argocd":     "https://openshift-gitops-server-openshift-gitops.apps.rhoai-dev.example.com",
		},
	}})
	s.send(tm)

	out := finalText(t, tm)
	assert.Contains(t, out, "rhoai-bootstrap install: done after 12m34s")
	assert.Contains(t, out, "✓ preflight")
	assert.Contains(t, out, "✓ root-app")
	assert.Contains(t, out, "Console:           https://console-openshift-console.apps.rhoai-dev.example.com")
	assert.Contains(t, out, "Kubeconfig:        /home/u/.local/state/rhoai-bootstrap/rhoai-dev/auth/kubeconfig")
	assert.Contains(t, out, "argocd:            https://openshift-gitops-server")
	assert.Contains(t, out, "State:             /home/u/.local/state/rhoai-bootstrap/rhoai-dev")
	assert.Contains(t, out, "Mutating requests: 42")
	assert.NotContains(t, out, "To resume")
	assert.NotContains(t, out, "DEBUG-ONLY-LINE")

	final := tm.FinalModel(t).(*progressModel)
	assert.True(t, final.finished)
	for _, l := range final.log {
		assert.NotContains(t, l, "DEBUG-ONLY-LINE", "debug events stay out of the log pane")
	}
	for _, r := range final.rows {
		assert.Equal(t, stateDone, r.state, r.name)
	}
}

func TestProgressFailure(t *testing.T) {
	tm, _ := startModel(t, ProgressOptions{Action: "install"}, 80, 24)
	s := &script{at: t0}
	s.add(installer.Event{Type: installer.RunStarted})
	s.phaseOK("preflight").phaseOK("install-config")
	s.add(installer.Event{Type: installer.PhaseStarted, Phase: "cluster"})
	s.add(installer.Event{Type: installer.WaitingOn, Phase: "cluster", Waiting: &installer.Waiting{On: "openshift-install create cluster", Until: t0.Add(time.Hour)}})
	errText := "openshift-install exited 4 (infrastructure): creating VPC: UnauthorizedOperation: You are not authorized to perform this operation on the account you use"
	s.add(installer.Event{Type: installer.PhaseFailed, Phase: "cluster", Outcome: installer.OutcomeFailed, Error: errText, DurationMS: 125000})
	for _, p := range []string{"gpu-pools", "gitops-operator", "oauth", "certificates", "root-app"} {
		s.add(installer.Event{Type: installer.PhaseSkipped, Phase: p, Outcome: installer.OutcomeBlocked, Message: "blocked by cluster"})
	}
	s.add(installer.Event{Type: installer.RunFinished, Outcome: installer.OutcomeFailed, Error: "phase cluster: " + errText, Summary: &installer.Summary{
		Action: "install", Outcome: installer.OutcomeFailed, State: "/state/rhoai-dev", Failed: []string{"cluster"}, Mutating: 3,
	}})
	s.send(tm)

	out := finalText(t, tm)
	assert.Contains(t, out, "rhoai-bootstrap install: failed")
	assert.Contains(t, out, "✗ cluster")
	assert.Contains(t, out, "! root-app")
	assert.Contains(t, out, "blocked by cluster")
	assert.Contains(t, out, "Failed:\n  cluster: openshift-install exited 4 (infrastructure)")
	// The full error is kept (wrapped), not cut.
	assert.Contains(t, strings.Join(strings.Fields(out), " "), "on the account you use")
	assert.Contains(t, out, "To resume, run:\n  "+resume)
	assert.Contains(t, out, "Mutating requests: 3")
}

func TestProgressCancel(t *testing.T) {
	var cancels atomic.Int32
	cancelled := make(chan struct{})
	tm, _ := startModel(t, ProgressOptions{Action: "install", Cancel: func() {
		if cancels.Add(1) == 1 {
			close(cancelled)
		}
	}}, 80, 24)
	s := &script{at: t0}
	s.add(installer.Event{Type: installer.RunStarted})
	s.phaseOK("preflight")
	s.add(installer.Event{Type: installer.PhaseStarted, Phase: "install-config"})
	s.send(tm)

	ctrlC := tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	tm.Send(ctrlC)
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		return strings.Contains(ansi.Strip(string(b)), "Cancel? state is saved; press ctrl+c again to stop")
	}, teatest.WithDuration(5*time.Second))
	// Any other key continues; the next Ctrl-C asks again.
	tm.Send(tea.KeyPressMsg{Code: 'x', Text: "x"})
	tm.Send(ctrlC)
	tm.Send(ctrlC)
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("Cancel was not called after the confirmed Ctrl-C")
	}

	// The view keeps rendering until the engine reports the end.
	e := &script{at: s.at}
	e.add(installer.Event{Type: installer.PhaseFailed, Phase: "install-config", Outcome: installer.OutcomeInterrupted, Error: "context canceled", DurationMS: 4000})
	e.add(installer.Event{Type: installer.RunFinished, Outcome: installer.OutcomeInterrupted, Error: "interrupted", Summary: &installer.Summary{
		Action: "install", Outcome: installer.OutcomeInterrupted, State: "/state/rhoai-dev",
		Phases: map[string]installer.Outcome{
			"preflight": installer.OutcomeDone, "install-config": installer.OutcomeInterrupted,
			"cluster": installer.OutcomeInterrupted, "root-app": installer.OutcomeInterrupted,
		},
	}})
	e.send(tm)

	out := finalText(t, tm)
	assert.Contains(t, out, "rhoai-bootstrap install: interrupted (state is saved)")
	assert.Contains(t, out, "‖ install-config")
	assert.Contains(t, out, "‖ cluster")
	assert.Contains(t, out, "To resume, run:\n  "+resume)
	assert.NotContains(t, out, "Failed:")
	final := tm.FinalModel(t).(*progressModel)
	assert.False(t, final.detached, "the third key was a confirmation, not a detach")
	assert.Equal(t, int32(1), cancels.Load())
}

var sgr = regexp.MustCompile("\x1b\\[[0-9;:]*m")

// At 80×24 without colour no line of the live view or of the summary may be wider than
// the terminal, however long the messages are, and the live view must fit its height.
func TestProgressFits80x24NoColor(t *testing.T) {
	t.Setenv("NO_COLOR", "1")
	testFits80x24(t, true)
}

func TestProgressFits80x24Color(t *testing.T) { testFits80x24(t, false) }

func testFits80x24(t *testing.T, noColor bool) {
	long := strings.Repeat("very-long-resource-name-", 8)
	m := newProgressModel(ProgressOptions{Action: "install", Phases: graph(), ResumeCommand: resume, NoColor: noColor},
		func() time.Time { return t0.Add(95 * time.Second) })
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	check := func(stage string) {
		t.Helper()
		v := m.View().Content
		if noColor {
			assert.NotRegexp(t, sgr, v, "%s: no colour or style with NO_COLOR", stage)
		} else {
			assert.Regexp(t, sgr, v, "%s: styled", stage)
		}
		lines := strings.Split(v, "\n")
		// One line short of the screen: a full-height inline frame scrolls into the
		// scrollback on every redraw.
		assert.Len(t, lines, 23, "%s: frame height:\n%s", stage, v)
		for _, l := range lines {
			assert.LessOrEqual(t, ansi.StringWidth(l), 80, "%s: %q", stage, l)
		}
	}
	s := &script{at: t0}
	s.add(installer.Event{Type: installer.RunStarted, Message: "install rhoai-dev " + long})
	s.phaseOK("preflight")
	s.add(installer.Event{Type: installer.PhaseStarted, Phase: "install-config"})
	s.add(installer.Event{Type: installer.WaitingOn, Phase: "install-config", Waiting: &installer.Waiting{On: "CSV " + long, Until: t0.Add(10 * time.Minute)}})
	for i := 0; i < 40; i++ {
		s.add(installer.Event{Type: installer.Progress, Phase: "install-config", Message: "step " + long + "\nsecond line"})
	}
	for _, e := range s.evs {
		m.Update(eventMsg(e))
	}
	check("running")
	row := m.phaseLines(true)[1]
	assert.Contains(t, row, "install-config")
	assert.Contains(t, row, "running")
	assert.Contains(t, row, "1m30s", "elapsed time of the running phase (now - started)")
	assert.Contains(t, row, "waiting until "+clock(t0.Add(10*time.Minute))+" for CSV very-long")

	m.Update(tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl})
	check("confirming")
	f := &script{at: s.at}
	f.add(installer.Event{Type: installer.PhaseFailed, Phase: "install-config", Outcome: installer.OutcomeFailed, Error: "boom " + long, DurationMS: 61000})
	for _, e := range f.evs {
		m.Update(eventMsg(e))
	}
	check("failed")

	m.Update(eventMsg(installer.Event{Type: installer.RunFinished, Outcome: installer.OutcomeFailed,
		Summary: &installer.Summary{Outcome: installer.OutcomeFailed, Failed: []string{"install-config"}, State: "/state/" + long}}))
	text := m.finalText()
	assert.NotRegexp(t, sgr, text, "the summary is plain text in any case")
	for _, l := range strings.Split(text, "\n") {
		assert.LessOrEqual(t, ansi.StringWidth(l), 80, "summary: %q", l)
	}
	assert.Contains(t, text, "To resume, run:\n  "+resume)
}

// The live rows: elapsed time for running phases, final durations, and what a running
// phase waits on until when.
func TestProgressWaitingRow(t *testing.T) {
	m := newProgressModel(ProgressOptions{Phases: graph(), NoColor: true}, func() time.Time { return t0.Add(65 * time.Second) })
	m.Update(tea.WindowSizeMsg{Width: 140, Height: 40})
	until := t0.Add(32 * time.Minute)
	m.Update(eventMsg(installer.Event{Type: installer.PhaseStarted, Phase: "preflight", Time: t0}))
	m.Update(eventMsg(installer.Event{Type: installer.WaitingOn, Phase: "preflight", Time: t0.Add(time.Second),
		Waiting: &installer.Waiting{On: "CSV openshift-gitops-operator.v1.16.2: Installing", Until: until}}))
	lines := m.phaseLines(true)
	assert.Regexp(t, `^▸ preflight\s+running\s+1m05s  waiting until `+clock(until)+` for CSV openshift-gitops-operator.v1.16.2: Installing$`, lines[0])
	assert.Regexp(t, `^· install-config\s+waiting\s+after preflight$`, lines[1])
	m.Update(eventMsg(installer.Event{Type: installer.PhaseDone, Phase: "preflight", Outcome: installer.OutcomeDone, DurationMS: 61500, Message: "up to date"}))
	assert.Regexp(t, `^✓ preflight\s+done\s+1m02s  up to date$`, m.phaseLines(true)[0])
	assert.Regexp(t, `^· install-config\s+waiting\s*$`, m.phaseLines(true)[1])
}

// StartProgress end to end: events from another goroutine, exit on run-finished, and the
// summary left in Out.
func TestStartProgress(t *testing.T) {
	var out safeBuffer
	p := StartProgress(ProgressOptions{
		Action: "destroy", Phases: graph()[:2], ResumeCommand: "rhoai-bootstrap destroy -f dev.yaml",
		In: strings.NewReader(""), Out: &out, NoColor: true,
	})
	go func() {
		p.Event(installer.Event{Type: installer.RunStarted, Action: "destroy"})
		p.Event(installer.Event{Type: installer.PhaseStarted, Action: "destroy", Phase: "install-config"})
		p.Event(installer.Event{Type: installer.PhaseDone, Action: "destroy", Phase: "install-config", Outcome: installer.OutcomeDestroyed, Message: "removed"})
		p.Event(installer.Event{Type: installer.PhaseSkipped, Action: "destroy", Phase: "preflight", Outcome: installer.OutcomeSkipped, Message: "nothing recorded to remove"})
		p.Event(installer.Event{Type: installer.RunFinished, Action: "destroy", Outcome: installer.OutcomeDone, Summary: &installer.Summary{Outcome: installer.OutcomeDone, State: "/state/x"}})
	}()
	done := make(chan error, 1)
	go func() { done <- p.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the view did not exit after run-finished")
	}
	text := strings.ReplaceAll(ansi.Strip(out.String()), "\r", "")
	assert.Contains(t, text, "rhoai-bootstrap destroy: done")
	assert.Contains(t, text, "✓ install-config")
	assert.Contains(t, text, "- preflight")
	assert.NotContains(t, text, "To resume")
	// Events after the end are dropped, not blocked on.
	p.Event(installer.Event{Type: installer.Progress, Message: "late"})
}

// Stop ends the view when the runner returned before run-finished (e.g. state locked).
func TestStartProgressStop(t *testing.T) {
	var out safeBuffer
	p := StartProgress(ProgressOptions{Action: "install", Phases: graph(), ResumeCommand: resume, In: strings.NewReader(""), Out: &out, NoColor: true})
	p.Stop(assert.AnError)
	require.NoError(t, p.Wait())
	text := strings.ReplaceAll(ansi.Strip(out.String()), "\r", "")
	assert.Contains(t, text, "Error: "+assert.AnError.Error())
	assert.Contains(t, text, "To resume, run:\n  "+resume)
}

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *safeBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// A third Ctrl-C, after the cancel, gives the terminal back without waiting for the run.
func TestProgressThirdCtrlCDetaches(t *testing.T) {
	var cancels int
	m := newProgressModel(ProgressOptions{Phases: graph(), Cancel: func() { cancels++ }}, time.Now)
	ctrlC := tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	_, cmd := m.Update(ctrlC)
	assert.Nil(t, cmd)
	_, cmd = m.Update(ctrlC)
	assert.Nil(t, cmd)
	assert.Equal(t, 1, cancels)
	assert.Contains(t, m.View().Content, "stopping")
	_, cmd = m.Update(ctrlC)
	require.NotNil(t, cmd)
	assert.IsType(t, tea.QuitMsg{}, cmd())
	assert.True(t, m.detached)
	assert.Equal(t, 1, cancels)
}

// Closing the view early (a third Ctrl-C, typed on the input) hands the terminal back; the
// summary is still printed, plain, when the run finishes.
func TestStartProgressDetachedStillPrintsSummary(t *testing.T) {
	var out safeBuffer
	in, typing := io.Pipe()
	defer typing.Close()
	cancelled := make(chan struct{})
	p := StartProgress(ProgressOptions{Action: "install", Phases: graph(), ResumeCommand: resume, In: in, Out: &out, NoColor: true,
		Cancel: func() { close(cancelled) }})
	p.Event(installer.Event{Type: installer.RunStarted})
	p.Event(installer.Event{Type: installer.PhaseStarted, Phase: "preflight"})
	_, err := typing.Write([]byte{0x03, 0x03, 0x03}) // Ctrl-C three times
	require.NoError(t, err)
	<-cancelled
	require.ErrorIs(t, p.Wait(), ErrDetached)
	assert.NotContains(t, out.String(), "To resume")

	p.Event(installer.Event{Type: installer.PhaseFailed, Phase: "preflight", Outcome: installer.OutcomeInterrupted, Error: "context canceled"})
	p.Event(installer.Event{Type: installer.RunFinished, Outcome: installer.OutcomeInterrupted,
		Summary: &installer.Summary{Outcome: installer.OutcomeInterrupted, State: "/state/x"}})
	text := strings.ReplaceAll(ansi.Strip(out.String()), "\r", "")
	assert.Contains(t, text, "rhoai-bootstrap install: interrupted (state is saved)\n‖ preflight")
	assert.Contains(t, text, "To resume, run:\n  "+resume)
}

// More phases than rows: running and failed ones stay visible, the rest is counted.
func TestProgressManyPhasesSmallTerminal(t *testing.T) {
	var ph []PhaseInfo
	for i := 0; i < 30; i++ {
		ph = append(ph, PhaseInfo{Name: "phase-" + strconv.Itoa(i)})
	}
	m := newProgressModel(ProgressOptions{Phases: ph, NoColor: true}, time.Now)
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	m.Update(eventMsg(installer.Event{Type: installer.PhaseStarted, Phase: "phase-29"}))
	v := m.View().Content
	assert.Len(t, strings.Split(v, "\n"), 23)
	assert.Contains(t, v, "▸ phase-29")
	assert.Contains(t, v, "… 13 more phases")
}
