package tui

import (
	"bytes"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

// forCluster stamps a script's events with a cluster, as that cluster's bus does.
func (s *script) forCluster(name string) *script {
	for i := range s.evs {
		s.evs[i].Cluster = name
	}
	return s
}

// waitFleetScreen waits until the terminal shows every one of want.
func waitFleetScreen(t *testing.T, tm *teatest.TestModel, want ...string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		plain := []byte(ansi.Strip(string(b)))
		for _, w := range want {
			if !bytes.Contains(plain, []byte(w)) {
				return false
			}
		}
		return true
	}, teatest.WithDuration(5*time.Second))
}

// The fleet view: one row per cluster with its current phase and status; Enter opens
// the selected cluster's phase view, Esc comes back; once every cluster's run finished,
// each one's record is printed, headed by its name.
func TestFleetProgress(t *testing.T) {
	m := newFleetModel(FleetOptions{Action: "install", Clusters: []string{"rhoai-dev", "rhoai-prod"}, ResumeCommand: resume},
		func() time.Time { return t0.Add(30 * time.Second) })
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 30))
	tm.Send(declareMsg{cluster: "rhoai-dev", phases: graph()})
	tm.Send(declareMsg{cluster: "rhoai-prod", phases: graph()})

	dev := (&script{at: t0}).add(installer.Event{Type: installer.RunStarted}).phaseOK("preflight").
		add(installer.Event{Type: installer.PhaseStarted, Phase: "install-config"})
	prod := (&script{at: t0}).add(installer.Event{Type: installer.RunStarted}).
		add(installer.Event{Type: installer.PhaseStarted, Phase: "preflight"}).
		add(installer.Event{Type: installer.PhaseFailed, Phase: "preflight", Outcome: installer.OutcomeFailed, Error: "no AWS credentials found"})
	dev.forCluster("rhoai-dev").send(tm)
	prod.forCluster("rhoai-prod").send(tm)
	waitFleetScreen(t, tm, "rhoai-bootstrap install · 2 clusters · 0 finished",
		"› ▸ rhoai-dev", "1/8 phases done · install-config",
		"✗ rhoai-prod", "0/8 phases done · failed: preflight", "enter: its phases")

	tm.Send(tea.KeyPressMsg{Code: tea.KeyDown})
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
	waitFleetScreen(t, tm, "[rhoai-prod] esc: all clusters", "✗ preflight", "FAILED after")
	tm.Send(tea.KeyPressMsg{Code: tea.KeyEscape})
	waitFleetScreen(t, tm, "› ✗ rhoai-prod")

	(&script{at: t0.Add(time.Minute)}).add(installer.Event{Type: installer.RunFinished, Outcome: installer.OutcomeFailed,
		Summary: &installer.Summary{Outcome: installer.OutcomeFailed, Failed: []string{"preflight"}}}).forCluster("rhoai-prod").send(tm)
	rest := &script{at: t0.Add(time.Minute)}
	rest.add(installer.Event{Type: installer.PhaseDone, Phase: "install-config", Outcome: installer.OutcomeDone})
	rest.add(installer.Event{Type: installer.RunFinished, Outcome: installer.OutcomeDone, DurationMS: 60000,
		Summary: &installer.Summary{Outcome: installer.OutcomeDone, State: "/s/rhoai-dev/state.json"}})
	rest.forCluster("rhoai-dev").send(tm)

	out := finalText(t, tm)
	assert.Contains(t, out, "[rhoai-dev] rhoai-bootstrap install: done after 1m00s")
	assert.Contains(t, out, "[rhoai-prod] rhoai-bootstrap install: failed")
	assert.Contains(t, out, "preflight: no AWS credentials found")
	assert.Contains(t, out, "To resume, run:\n  "+resume)
	final := tm.FinalModel(t).(*fleetModel)
	require.True(t, final.finished)
	assert.False(t, final.detached)
}

// A fleet's Ctrl-C, confirmed, cancels every cluster at once (one cancel function).
func TestFleetProgressCancel(t *testing.T) {
	cancelled := 0
	m := newFleetModel(FleetOptions{Clusters: []string{"a", "b"}, Cancel: func() { cancelled++ }}, time.Now)
	ctrlC := tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	m.Update(ctrlC)
	assert.True(t, m.confirming)
	assert.Contains(t, ansi.Strip(m.View().Content), "Cancel every cluster?")
	m.Update(ctrlC)
	assert.Equal(t, 1, cancelled)
	assert.Contains(t, ansi.Strip(m.View().Content), "stopping every cluster")
}
