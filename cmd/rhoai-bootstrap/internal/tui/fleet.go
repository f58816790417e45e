package tui

import (
	"fmt"
	"io"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

// FleetOptions configure the live view of several clusters run by one command.
type FleetOptions struct {
	// Action is "install" or "destroy".
	Action string
	// Clusters are the clusters' names, in the command line's order. Each one's phases
	// come with Declare, once its run is about to start.
	Clusters []string
	// Cancel is called once the user confirms Ctrl-C: every cluster's run stops.
	Cancel func()
	// ResumeCommand is shown for a cluster that did not finish.
	ResumeCommand string
	In            io.Reader
	Out           io.Writer
	NoColor       bool
}

// StartFleetProgress starts the view of several clusters: one row per cluster with its
// current phase and status; Enter opens a cluster's phase view (the one a lone run
// shows), Esc goes back to the list. Events are routed by their cluster field. The view
// ends once every cluster's run finished (or Stop), printing each cluster's record.
func StartFleetProgress(opts FleetOptions) *Progress {
	out, popts := programOptions(opts.In, opts.Out, opts.NoColor)
	return startLive(newFleetModel(opts, time.Now), out, popts)
}

// Declare gives a cluster's phases to the view, before its run's first event.
func (p *Progress) Declare(cluster string, phases []PhaseInfo) {
	p.enqueue(declareMsg{cluster: cluster, phases: phases})
}

type declareMsg struct {
	cluster string
	phases  []PhaseInfo
}

// fleetModel is the list of clusters, each with its own phase view (progressModel).
type fleetModel struct {
	opts          FleetOptions
	now           func() time.Time
	st            styles
	width, height int

	names    []string
	clusters map[string]*progressModel
	cursor   int
	// open is the cluster whose phase view is shown; "" for the list.
	open string

	cancelGuard
	finished bool
}

func newFleetModel(opts FleetOptions, now func() time.Time) *fleetModel {
	if opts.Action == "" {
		opts.Action = "install"
	}
	m := &fleetModel{opts: opts, now: now, st: newStyles(opts.NoColor), width: 80, height: 24,
		names: opts.Clusters, clusters: map[string]*progressModel{}}
	for _, n := range opts.Clusters {
		m.clusters[n] = m.newCluster(n, nil)
	}
	return m
}

func (m *fleetModel) newCluster(name string, phases []PhaseInfo) *progressModel {
	c := newProgressModel(ProgressOptions{Action: m.opts.Action, Phases: phases, ResumeCommand: m.opts.ResumeCommand, NoColor: m.opts.NoColor}, m.now)
	c.width, c.height = m.width, m.height-1 // a line for the way back
	c.layout()
	return c
}

func (m *fleetModel) ended() bool  { return m.finished }
func (m *fleetModel) closed() bool { return m.detached }

func (m *fleetModel) Init() tea.Cmd { return tick() }

func (m *fleetModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		if msg.Width > 0 && msg.Height > 0 {
			m.width, m.height = msg.Width, msg.Height
			for _, c := range m.clusters {
				c.width, c.height = msg.Width, msg.Height-1
				c.layout()
			}
		}
	case tickMsg:
		if !m.finished {
			return m, tick()
		}
	case declareMsg:
		if c := m.clusters[msg.cluster]; c == nil || len(c.rows) == 0 {
			if c == nil {
				m.names = append(m.names, msg.cluster)
			}
			m.clusters[msg.cluster] = m.newCluster(msg.cluster, msg.phases)
		}
	case eventMsg:
		c := m.clusters[msg.Cluster]
		if c == nil {
			c = m.newCluster(msg.Cluster, nil)
			m.clusters[msg.Cluster] = c
			m.names = append(m.names, msg.Cluster)
		}
		_ = c.onEvent(installer.Event(msg)) // a cluster's end is not the view's
		if m.allEnded() {
			return m, m.finish()
		}
	case stopMsg:
		if !m.finished {
			return m, m.finish()
		}
	case tea.KeyPressMsg:
		return m, m.onKey(msg)
	case tea.MouseWheelMsg:
		if c := m.clusters[m.open]; c != nil {
			var cmd tea.Cmd
			c.vp, cmd = c.vp.Update(msg)
			return m, cmd
		}
	}
	return m, nil
}

func (m *fleetModel) allEnded() bool {
	for _, n := range m.names {
		if !m.clusters[n].finished {
			return false
		}
	}
	return true
}

// finish erases the live view and prints every cluster's record, as a lone run's view
// does its own.
func (m *fleetModel) finish() tea.Cmd {
	m.finished = true
	return tea.Sequence(
		tea.Tick(frameClear, func(time.Time) tea.Msg { return nil }),
		tea.Println(m.finalText()),
		tea.Quit,
	)
}

func (m *fleetModel) onKey(k tea.KeyPressMsg) tea.Cmd {
	if m.finished {
		return nil
	}
	if handled, quit, cancel := m.press(k); handled {
		if cancel && m.opts.Cancel != nil {
			m.opts.Cancel()
		}
		if quit {
			return tea.Quit
		}
		return nil
	}
	if c := m.clusters[m.open]; c != nil {
		if k.String() == "esc" {
			m.open = ""
			return nil
		}
		return c.onKey(k)
	}
	switch k.String() {
	case "up", "k":
		m.cursor = max(0, m.cursor-1)
	case "down", "j":
		m.cursor = min(len(m.names)-1, m.cursor+1)
	case "enter":
		if m.cursor < len(m.names) {
			m.open = m.names[m.cursor]
		}
	}
	return nil
}

func (m *fleetModel) View() tea.View {
	if m.finished {
		return tea.NewView(" ")
	}
	if c := m.clusters[m.open]; c != nil {
		v := c.View()
		v.Content = m.st.title.Render("["+m.open+"]") + " " + m.st.faint.Render("esc: all clusters") + "\n" + v.Content
		v.Content = fit(v.Content, m.width)
		return v
	}
	var b strings.Builder
	done := 0
	for _, n := range m.names {
		if m.clusters[n].finished {
			done++
		}
	}
	b.WriteString(m.st.title.Render(fmt.Sprintf("rhoai-bootstrap %s · %d clusters · %d finished", m.opts.Action, len(m.names), done)))
	b.WriteByte('\n')
	nameW := 8
	for _, n := range m.names {
		nameW = max(nameW, min(len(n), 24))
	}
	for i, n := range m.names {
		state, what := m.clusterLine(m.clusters[n])
		cur := "  "
		if i == m.cursor {
			cur = "› "
		}
		line := fmt.Sprintf("%s%s %-*s %-11s %s", cur, glyphs[state], nameW, ansi.Truncate(n, nameW, "…"), state, what)
		b.WriteString(m.clusters[n].style(state)(ansi.Truncate(line, m.width, "…")))
		b.WriteByte('\n')
	}
	switch {
	case m.cancelling:
		b.WriteString(m.st.warn.Render("stopping every cluster: waiting for running phases to return (state is saved); ctrl+c again closes this view"))
	case m.confirming:
		b.WriteString(m.st.warn.Render("Cancel every cluster? state is saved; press ctrl+c again to stop, any other key to continue"))
	default:
		b.WriteString(m.st.faint.Render("↑/↓ select · enter: its phases · ctrl+c cancel"))
	}
	v := tea.NewView(fit(b.String(), m.width))
	v.WindowTitle = "rhoai-bootstrap " + m.opts.Action
	return v
}

// clusterLine is a cluster's state and what it is doing: its running phases, else where
// it stopped, with how many phases are done.
func (m *fleetModel) clusterLine(c *progressModel) (phaseState, string) {
	var running, failed []string
	done := 0
	for _, r := range c.rows {
		switch r.state {
		case stateRunning:
			running = append(running, r.name)
		case stateFailed:
			failed = append(failed, r.name)
		case stateDone, stateSkipped:
			done++
		}
	}
	count := fmt.Sprintf("%d/%d phases done", done, len(c.rows))
	switch {
	case c.finished:
		st, ok := stateOf(c.outcome)
		if !ok {
			st = stateFailed
		}
		if len(failed) > 0 {
			return st, count + " · failed: " + strings.Join(failed, ", ")
		}
		return st, count
	case len(failed) > 0:
		return stateFailed, count + " · failed: " + strings.Join(failed, ", ")
	case len(running) > 0:
		return stateRunning, count + " · " + strings.Join(running, ", ")
	case c.start.IsZero():
		return stateWaiting, "not started"
	}
	return stateRunning, count
}

// finalText is every cluster's record, one after the other, each headed by its name.
func (m *fleetModel) finalText() string {
	var parts []string
	for _, n := range m.names {
		parts = append(parts, "["+n+"] "+m.clusters[n].finalText())
	}
	return strings.Join(parts, "\n\n")
}
