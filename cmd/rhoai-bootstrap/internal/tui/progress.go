package tui

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

// PhaseInfo is one node of the phase graph, as the runner declares it.
type PhaseInfo struct {
	Name      string
	DependsOn []string
}

// ProgressOptions configures the progress view.
type ProgressOptions struct {
	// Action is "install" or "destroy".
	Action string
	// Phases is the graph in the runner's order.
	Phases []PhaseInfo
	// Cancel is called once the user confirms Ctrl-C; the run then stops at the next safe
	// point and the view keeps rendering until run-finished arrives.
	Cancel func()
	// ResumeCommand is shown on failure or interrupt, e.g. "rhoai-bootstrap install -f dev.yaml".
	ResumeCommand string
	// In and Out default to the terminal (tests pass their own).
	In  io.Reader
	Out io.Writer
	// NoColor renders plain text (NO_COLOR is set).
	NoColor bool
}

// ErrDetached is returned by Wait when the user closed the view (a third Ctrl-C) before
// the run finished. The run was already asked to stop; the caller should still wait for it.
var ErrDetached = errors.New("progress view closed before the run finished")

// Progress is the live view of an install or destroy. It is an installer.Sink.
type Progress struct {
	prog  *tea.Program
	model liveModel
	out   io.Writer

	mu    sync.Mutex
	queue []tea.Msg
	wake  chan struct{}
	// gone is set once the program has exited: later events go straight to the model,
	// so that the summary is still printed when the view closed early or failed.
	gone    bool
	printed bool

	done chan struct{}
	err  error
}

var _ installer.Sink = (*Progress)(nil)

// liveModel is what Progress drives: one cluster's phase view (progressModel) or a
// fleet's list of clusters (fleetModel).
type liveModel interface {
	tea.Model
	// ended: the run finished and finalText is its record; closed: the user closed the
	// view before that (a third Ctrl-C).
	ended() bool
	closed() bool
	finalText() string
}

func (m *progressModel) ended() bool  { return m.finished }
func (m *progressModel) closed() bool { return m.detached }

// StartProgress starts the view at once (inline, not on the alternate screen, so that the
// final summary stays in the scrollback) and returns; events then stream in through Event.
func StartProgress(opts ProgressOptions) *Progress {
	out, popts := programOptions(opts.In, opts.Out, opts.NoColor)
	return startLive(newProgressModel(opts, time.Now), out, popts)
}

// programOptions are the live view's program options on in and out (the terminal when
// nil), and the output.
func programOptions(in io.Reader, out io.Writer, noColor bool) (io.Writer, []tea.ProgramOption) {
	if out == nil {
		out = os.Stdout
	}
	popts := []tea.ProgramOption{
		tea.WithOutput(out),
		// The command owns SIGINT/SIGTERM (they cancel the run's context); in raw mode a
		// Ctrl-C typed at the keyboard reaches us as a key and goes through the confirmation.
		tea.WithoutSignalHandler(),
	}
	if in != nil {
		popts = append(popts, tea.WithInput(in))
	}
	if noColor {
		popts = append(popts, tea.WithColorProfile(colorprofile.Ascii))
	}
	return out, popts
}

// startLive runs m as the live view on out.
func startLive(m liveModel, out io.Writer, popts []tea.ProgramOption) *Progress {
	p := &Progress{
		prog:  tea.NewProgram(m, popts...),
		model: m,
		out:   out,
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	go p.run()
	go p.pump()
	return p
}

func (p *Progress) run() {
	_, err := p.prog.Run()
	// From here on the event loop no longer touches the model.
	p.mu.Lock()
	defer p.mu.Unlock()
	defer close(p.done)
	m := p.model
	switch {
	case err != nil:
		p.err = fmt.Errorf("progress view: %w", err)
	case m.closed():
		p.err = ErrDetached
	default:
		// A normal exit only follows finish, which printed the summary.
		p.printed = m.ended()
	}
	p.gone = true
	for _, msg := range p.queue {
		p.applyLocked(msg)
	}
	p.queue = nil
	p.applyLocked(nil)
}

// applyLocked updates the model without a program and prints the summary once the run
// has finished, so that it is never lost from the scrollback.
func (p *Progress) applyLocked(msg tea.Msg) {
	if msg != nil {
		p.model.Update(msg)
	}
	if p.model.ended() && !p.printed {
		p.printed = true
		fmt.Fprintln(p.out, p.model.finalText())
	}
}

// Event implements installer.Sink. It never blocks the engine on the terminal: events are
// queued and forwarded in order by one goroutine.
func (p *Progress) Event(e installer.Event) { p.enqueue(eventMsg(e)) }

// Stop ends the view when the run cannot emit run-finished, e.g. when the runner returned
// before starting (state locked, bad graph). err is shown in the summary. After a
// run-finished event it does nothing.
func (p *Progress) Stop(err error) { p.enqueue(stopMsg{err: err}) }

// Wait blocks until the view has exited, which it does on its own after run-finished
// (having printed the final summary) or after Stop. It returns an error only when the
// view itself failed or was closed early (ErrDetached), never for the run's outcome;
// the summary is then still printed, as plain text, when run-finished arrives.
func (p *Progress) Wait() error {
	<-p.done
	return p.err
}

func (p *Progress) enqueue(m tea.Msg) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone {
		p.applyLocked(m)
		return
	}
	p.queue = append(p.queue, m)
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// pump forwards queued messages; Program.Send blocks until the event loop takes the
// message, and becomes a no-op once the program has exited.
func (p *Progress) pump() {
	for {
		select {
		case <-p.done:
			return
		case <-p.wake:
		}
		for {
			p.mu.Lock()
			if len(p.queue) == 0 || p.gone {
				p.mu.Unlock()
				break
			}
			m := p.queue[0]
			p.queue = p.queue[1:]
			p.mu.Unlock()
			p.prog.Send(m)
		}
	}
}

type (
	eventMsg installer.Event
	tickMsg  time.Time
	stopMsg  struct{ err error }
)

// phaseState is what the list shows for a phase.
type phaseState string

const (
	stateWaiting     phaseState = "waiting"
	stateRunning     phaseState = "running"
	stateDone        phaseState = "done"
	stateSkipped     phaseState = "skipped"
	stateBlocked     phaseState = "blocked"
	stateFailed      phaseState = "failed"
	stateInterrupted phaseState = "interrupted"
)

func stateOf(o installer.Outcome) (phaseState, bool) {
	switch o {
	case installer.OutcomeDone, installer.OutcomeDestroyed:
		return stateDone, true
	case installer.OutcomeSkipped:
		return stateSkipped, true
	case installer.OutcomeBlocked:
		return stateBlocked, true
	case installer.OutcomeFailed:
		return stateFailed, true
	case installer.OutcomeInterrupted:
		return stateInterrupted, true
	case installer.OutcomeRunning:
		return stateRunning, true
	}
	return "", false
}

type phaseRow struct {
	name    string
	deps    []string
	state   phaseState
	started time.Time
	dur     time.Duration
	waitOn  string
	until   time.Time
	note    string
	err     string
}

// progressModel is the Bubble Tea model behind Progress. It only ever changes in response
// to events (and the user's Ctrl-C), never by itself.
type progressModel struct {
	opts   ProgressOptions
	now    func() time.Time
	st     styles
	width  int
	height int

	rows   []*phaseRow
	byName map[string]*phaseRow
	log    []string
	vp     viewport.Model

	start time.Time
	cancelGuard

	finished bool
	outcome  installer.Outcome
	runDur   time.Duration
	runErr   string
	summary  *installer.Summary
}

func newProgressModel(opts ProgressOptions, now func() time.Time) *progressModel {
	if opts.Action == "" {
		opts.Action = "install"
	}
	m := &progressModel{
		opts:   opts,
		now:    now,
		st:     newStyles(opts.NoColor),
		width:  80,
		height: 24,
		byName: map[string]*phaseRow{},
		vp:     viewport.New(),
	}
	for _, ph := range opts.Phases {
		r := &phaseRow{name: ph.Name, deps: ph.DependsOn, state: stateWaiting}
		m.rows = append(m.rows, r)
		m.byName[ph.Name] = r
	}
	m.layout()
	return m
}

func tick() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return tickMsg(t) })
}

func (m *progressModel) Init() tea.Cmd { return tick() }

func (m *progressModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		// Output that is not a terminal reports no size: keep 80×24 then.
		if msg.Width > 0 && msg.Height > 0 {
			m.width, m.height = msg.Width, msg.Height
			m.layout()
		}
	case tickMsg:
		if !m.finished {
			return m, tick()
		}
	case eventMsg:
		return m, m.onEvent(installer.Event(msg))
	case stopMsg:
		if m.finished {
			return m, nil
		}
		m.finished = true
		if msg.err != nil {
			m.runErr = msg.err.Error()
		}
		m.outcome = installer.OutcomeFailed
		return m, m.finish()
	case tea.KeyPressMsg:
		return m, m.onKey(msg)
	case tea.MouseWheelMsg:
		var cmd tea.Cmd
		m.vp, cmd = m.vp.Update(msg)
		return m, cmd
	}
	return m, nil
}

func (m *progressModel) onKey(k tea.KeyPressMsg) tea.Cmd {
	if m.finished {
		return nil
	}
	if handled, quit, cancel := m.press(k); handled {
		if cancel {
			m.addLog(m.now(), "", "cancel requested: stopping at the next safe point (state is saved)")
			if m.opts.Cancel != nil {
				m.opts.Cancel()
			}
		}
		if quit {
			return tea.Quit
		}
		return nil
	}
	var cmd tea.Cmd
	m.vp, cmd = m.vp.Update(k)
	return cmd
}

func (m *progressModel) onEvent(e installer.Event) tea.Cmd {
	at := e.Time
	if at.IsZero() {
		at = m.now()
	}
	r := m.byName[e.Phase]
	if r == nil && e.Phase != "" {
		// A phase the caller did not declare: show it anyway rather than lose it.
		r = &phaseRow{name: e.Phase, state: stateWaiting}
		m.rows = append(m.rows, r)
		m.byName[e.Phase] = r
		m.layout()
	}
	dur := time.Duration(e.DurationMS) * time.Millisecond
	switch e.Type {
	case installer.RunStarted:
		m.start = at
		m.addLog(at, "", nonEmpty(e.Message, e.Action+" started"))
	case installer.PhaseStarted:
		r.state, r.started, r.waitOn, r.note = stateRunning, at, "", ""
		m.addLog(at, e.Phase, "started")
	case installer.Progress:
		if e.Debug {
			return nil
		}
		if r != nil && e.Message != "" {
			r.note = oneLine(e.Message)
		}
		m.addLog(at, e.Phase, e.Message)
	case installer.WaitingOn:
		if r != nil && e.Waiting != nil {
			r.waitOn, r.until = e.Waiting.On, e.Waiting.Until
			m.addLog(at, e.Phase, waitingText(e.Waiting.On, e.Waiting.Until))
		}
	case installer.PhaseDone:
		r.state, r.dur, r.waitOn, r.note = stateDone, dur, "", e.Message
		m.addLog(at, e.Phase, fmt.Sprintf("done in %s (%s)", fmtDur(dur), nonEmpty(e.Message, "ok")))
	case installer.PhaseSkipped:
		r.state, _ = stateOf(e.Outcome)
		if r.state == "" {
			r.state = stateSkipped
		}
		r.note = e.Message
		m.addLog(at, e.Phase, string(r.state)+": "+e.Message)
	case installer.PhaseFailed:
		r.state, _ = stateOf(e.Outcome)
		if r.state == "" {
			r.state = stateFailed
		}
		r.dur, r.waitOn, r.err, r.note = dur, "", e.Error, e.Error
		m.addLog(at, e.Phase, fmt.Sprintf("%s after %s: %s", strings.ToUpper(string(r.state)), fmtDur(dur), e.Error))
	case installer.PhasePlanned:
		m.addLog(at, e.Phase, nonEmpty(e.Message, "planned"))
	case installer.RunFinished:
		return m.onFinished(e)
	}
	return nil
}

func (m *progressModel) onFinished(e installer.Event) tea.Cmd {
	if m.finished {
		return nil
	}
	m.finished = true
	m.outcome, m.runErr, m.summary = e.Outcome, e.Error, e.Summary
	m.runDur = time.Duration(e.DurationMS) * time.Millisecond
	if s := e.Summary; s != nil {
		if m.outcome == "" {
			m.outcome = s.Outcome
		}
		// Phases cut off by a cancel end without an event of their own: take their
		// outcome from the summary.
		for name, o := range s.Phases {
			r := m.byName[name]
			if r == nil {
				continue
			}
			if st, ok := stateOf(o); ok && (r.state == stateWaiting || r.state == stateRunning) {
				r.state = st
			}
		}
	}
	m.addLog(e.Time, "", fmt.Sprintf("%s finished: %s", m.opts.Action, m.outcome))
	return m.finish()
}

// frameClear is how long finish waits for the renderer (60 frames a second) to have
// erased the live view before it prints the summary in its place.
const frameClear = 100 * time.Millisecond

// finish erases the live view (View is empty from now on), then prints the plain summary
// where it was, so that it stays in the scrollback, and quits. Printing while the frame is
// still drawn would push a tall frame's top into the scrollback half-erased.
func (m *progressModel) finish() tea.Cmd {
	return tea.Sequence(
		tea.Tick(frameClear, func(time.Time) tea.Msg { return nil }),
		tea.Println(m.finalText()),
		tea.Quit,
	)
}

func (m *progressModel) addLog(at time.Time, phase, msg string) {
	if at.IsZero() {
		at = m.now()
	}
	line := at.Local().Format("15:04:05") + " "
	if phase != "" {
		line += phase + ": "
	}
	m.log = append(m.log, line+oneLine(msg))
	follow := m.vp.AtBottom()
	m.setLogContent()
	if follow {
		m.vp.GotoBottom()
	}
}

func (m *progressModel) setLogContent() {
	lines := make([]string, len(m.log))
	for i, l := range m.log {
		lines[i] = ansi.Truncate(l, m.width, "…")
	}
	m.vp.SetContentLines(lines)
}

// visibleRows is how many phase rows fit with a log pane of at least three lines.
func (m *progressModel) visibleRows() int {
	return max(1, min(len(m.rows), m.height-4-3))
}

// layout sizes the log pane from the terminal: header, phase rows, separator, log, footer,
// one line short of the screen (a full-height inline frame scrolls into the scrollback).
func (m *progressModel) layout() {
	rows := m.visibleRows()
	if rows < len(m.rows) {
		rows++ // the "… more" line
	}
	follow := m.vp.AtBottom()
	m.vp.SetWidth(m.width)
	m.vp.SetHeight(max(1, m.height-4-rows))
	m.setLogContent()
	if follow {
		m.vp.GotoBottom()
	}
}

func (m *progressModel) View() tea.View {
	if m.finished {
		// Shrink the live frame to one blank line; the summary is printed above it. (An
		// empty view leaves the last frame on the screen.)
		return tea.NewView(" ")
	}
	var b strings.Builder
	done := 0
	for _, r := range m.rows {
		if r.state == stateDone || r.state == stateSkipped {
			done++
		}
	}
	elapsed := ""
	if !m.start.IsZero() {
		elapsed = " · " + fmtDur(m.now().Sub(m.start))
	}
	b.WriteString(m.st.title.Render(fmt.Sprintf("rhoai-bootstrap %s · %d/%d phases done%s", m.opts.Action, done, len(m.rows), elapsed)))
	b.WriteByte('\n')
	for _, line := range m.phaseLines(true) {
		b.WriteString(line)
		b.WriteByte('\n')
	}
	sep := "── log "
	b.WriteString(m.st.faint.Render(sep + strings.Repeat("─", max(0, m.width-ansi.StringWidth(sep)))))
	b.WriteByte('\n')
	b.WriteString(m.vp.View())
	b.WriteByte('\n')
	b.WriteString(m.footer())
	v := tea.NewView(fit(b.String(), m.width))
	v.WindowTitle = "rhoai-bootstrap " + m.opts.Action
	return v
}

func (m *progressModel) footer() string {
	switch {
	case m.cancelling:
		return m.st.warn.Render("stopping: waiting for running phases to return (state is saved); ctrl+c again closes this view")
	case m.confirming:
		return m.st.warn.Render("Cancel? state is saved; press ctrl+c again to stop, any other key to continue")
	}
	return m.st.faint.Render("ctrl+c cancel · ↑/↓ pgup/pgdn scroll log")
}

var glyphs = map[phaseState]string{
	stateWaiting: "·", stateRunning: "▸", stateDone: "✓", stateSkipped: "-",
	stateBlocked: "!", stateFailed: "✗", stateInterrupted: "‖",
}

func (m *progressModel) style(s phaseState) func(...string) string {
	switch s {
	case stateDone:
		return m.st.ok.Render
	case stateFailed:
		return m.st.bad.Render
	case stateRunning:
		return m.st.active.Render
	case stateBlocked, stateInterrupted:
		return m.st.warn.Render
	}
	return m.st.faint.Render
}

// phaseLines renders the phase list; live rows are capped to the screen, and the ones
// that matter (running, failed) are kept when the list must be cut.
func (m *progressModel) phaseLines(live bool) []string {
	nameW := 8
	for _, r := range m.rows {
		nameW = max(nameW, min(len(r.name), 22))
	}
	rows := m.rows
	more := 0
	if live && len(rows) > m.visibleRows() {
		rows, more = m.pickRows(m.visibleRows())
	}
	now := m.now()
	var out []string
	for _, r := range rows {
		el := ""
		switch {
		case r.state == stateRunning && !r.started.IsZero():
			el = fmtDur(now.Sub(r.started))
		case r.dur > 0 || r.state == stateDone || r.state == stateFailed:
			el = fmtDur(r.dur)
		}
		name := ansi.Truncate(r.name, nameW, "…")
		line := fmt.Sprintf("%s %-*s %-11s %6s  %s", glyphs[r.state], nameW, name, r.state, el, m.note(r))
		out = append(out, m.style(r.state)(ansi.Truncate(line, m.width, "…")))
	}
	if more > 0 {
		out = append(out, m.st.faint.Render(fmt.Sprintf("  … %d more phases", more)))
	}
	return out
}

func (m *progressModel) pickRows(n int) ([]*phaseRow, int) {
	keep := map[*phaseRow]bool{}
	for _, r := range m.rows {
		if len(keep) < n && (r.state == stateRunning || r.state == stateFailed) {
			keep[r] = true
		}
	}
	for _, r := range m.rows {
		if len(keep) < n && r.state == stateWaiting {
			keep[r] = true
		}
	}
	for i := len(m.rows) - 1; i >= 0 && len(keep) < n; i-- {
		keep[m.rows[i]] = true
	}
	var rows []*phaseRow
	for _, r := range m.rows {
		if keep[r] {
			rows = append(rows, r)
		}
	}
	return rows, len(m.rows) - len(rows)
}

func (m *progressModel) note(r *phaseRow) string {
	switch r.state {
	case stateRunning:
		if r.waitOn != "" {
			return waitingText(r.waitOn, r.until)
		}
		return oneLine(r.note)
	case stateWaiting:
		var open []string
		for _, d := range r.deps {
			if dr := m.byName[d]; dr == nil || dr.state != stateDone {
				open = append(open, d)
			}
		}
		if len(open) > 0 {
			return "after " + strings.Join(open, ", ")
		}
		return ""
	case stateInterrupted:
		return "stopped; the next run resumes here"
	}
	return oneLine(r.note)
}

// finalText is the plain-text record of the run left in the scrollback: the phase list
// and the summary, including the exact command that resumes a failed or stopped run.
func (m *progressModel) finalText() string {
	var b strings.Builder
	plain := *m
	plain.st = styles{}
	width := max(m.width, 40)
	plain.width = width

	outcome := m.outcome
	head := fmt.Sprintf("rhoai-bootstrap %s: %s", m.opts.Action, nonEmpty(string(outcome), "ended"))
	switch outcome {
	case installer.OutcomeInterrupted:
		head = fmt.Sprintf("rhoai-bootstrap %s: interrupted (state is saved)", m.opts.Action)
	case installer.OutcomeBlocked:
		head = fmt.Sprintf("rhoai-bootstrap %s: incomplete (some phases were blocked)", m.opts.Action)
	}
	if m.runDur > 0 {
		head += " after " + fmtDur(m.runDur)
	}
	b.WriteString(head + "\n")
	for _, l := range plain.phaseLines(false) {
		b.WriteString(l + "\n")
	}

	var failed []string
	if s := m.summary; s != nil {
		failed = s.Failed
	}
	if len(failed) == 0 {
		for _, r := range m.rows {
			if r.state == stateFailed {
				failed = append(failed, r.name)
			}
		}
	}
	if len(failed) > 0 {
		b.WriteString("\nFailed:\n")
		for _, name := range failed {
			msg := "(no error recorded)"
			if r := m.byName[name]; r != nil && r.err != "" {
				msg = r.err
			}
			b.WriteString(indentWrap(name+": "+msg, "  ", "    ", width) + "\n")
		}
	} else if m.runErr != "" && outcome != installer.OutcomeInterrupted {
		b.WriteString("\n" + indentWrap("Error: "+m.runErr, "", "  ", width) + "\n")
	}

	if s := m.summary; s != nil {
		b.WriteString("\n")
		kv := func(k, v string) {
			if v != "" {
				b.WriteString(fit(fmt.Sprintf("%-18s %s", k+":", v), width) + "\n")
			}
		}
		kv("Console", s.Extra["console"])
		kv("Kubeconfig", s.Extra["kubeconfig"])
		keys := make([]string, 0, len(s.Extra))
		for k := range s.Extra {
			if k != "console" && k != "kubeconfig" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			kv(k, s.Extra[k])
		}
		kv("State", s.State)
		kv("Mutating requests", fmt.Sprint(s.Mutating))
	}
	if outcome != installer.OutcomeDone && m.opts.ResumeCommand != "" {
		// Never cut: it must be copied exactly.
		b.WriteString("\nTo resume, run:\n  " + m.opts.ResumeCommand + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// waitingText puts the deadline first so that it survives when a narrow terminal cuts
// the line.
func waitingText(on string, until time.Time) string {
	if until.IsZero() {
		return "waiting for " + oneLine(on)
	}
	return "waiting until " + clock(until) + " for " + oneLine(on)
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// cancelGuard is the Ctrl-C protocol of the live views (one cluster's and the fleet's):
// the first Ctrl-C asks for confirmation, the second cancels the run, a third gives the
// terminal back (detached) even though the phases have not returned yet — the run was
// already cancelled. Any other key while the question is up withdraws it.
type cancelGuard struct{ confirming, cancelling, detached bool }

// press takes a key: handled says it was the guard's (nothing else should act on it),
// quit that the view ends now, cancel that the run is to be cancelled now.
func (g *cancelGuard) press(k tea.KeyPressMsg) (handled, quit, cancel bool) {
	switch {
	case k.String() == "ctrl+c" && g.cancelling:
		g.detached = true
		return true, true, false
	case k.String() == "ctrl+c" && g.confirming:
		g.confirming, g.cancelling = false, true
		return true, false, true
	case k.String() == "ctrl+c":
		g.confirming = true
		return true, false, false
	case g.confirming:
		g.confirming = false
		return true, false, false
	}
	return false, false, false
}
