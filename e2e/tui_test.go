//go:build e2e

package e2e_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/harness"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
)

// TestTUIInRealTerminal runs `rhoai-bootstrap install` in a real 80×24 terminal (tmux) on
// the test bed and reads the screen with capture-pane: the phase list must show phases
// running, then every phase done. Text only, no colours.
func TestTUIInRealTerminal(t *testing.T) {
	t.Parallel() // each test borrows a bed of its own from the pool
	tmux, err := exec.LookPath("tmux")
	require.NoError(t, err, "tmux is needed (.ci/run installs it)")
	r := rehearsal(t, testbed.BedOverlay)
	state := filepath.Join(r.WorkDir, "state")
	// The TUI starts only on a terminal without CI=true and --non-interactive.
	var env []string
	for _, kv := range r.Env() {
		if !strings.HasPrefix(kv, "CI=") {
			env = append(env, kv)
		}
	}
	env = append(env, "NO_COLOR=1", "TERM=xterm-256color")
	script := filepath.Join(r.WorkDir, "tui.sh")
	var b strings.Builder
	b.WriteString("#!/usr/bin/env bash\n")
	// The tmux server inherits this process's environment, CI=true included on CI, and
	// the shell would pass it on: unset it, or the command rightly chooses plain text.
	b.WriteString("unset CI\n")
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if strings.ContainsAny(k, "()") {
			continue
		}
		fmt.Fprintf(&b, "export %s=%q\n", k, v)
	}
	fmt.Fprintf(&b, "cd %q\n%q install -f %q --state-dir %q --timeout-factor %s --poll-interval 200ms\necho \"EXIT=$?\"\nsleep 600\n",
		r.Root, filepath.Join(r.BinDir, "rhoai-bootstrap"), r.Config(), state, harness.TimeoutFactor)
	require.NoError(t, os.WriteFile(script, []byte(b.String()), 0o700))
	session := fmt.Sprintf("rhoai-e2e-%d", os.Getpid())
	sock := filepath.Join(r.WorkDir, "tmux.sock")
	tm := func(args ...string) (string, error) {
		out, err := exec.Command(tmux, append([]string{"-S", sock}, args...)...).CombinedOutput()
		return string(out), err
	}
	_, err = tm("new-session", "-d", "-s", session, "-x", "80", "-y", "24", script)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = tm("kill-server") })

	sawRunning := false
	var screen string
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		screen, err = tm("capture-pane", "-p", "-S", "-200", "-t", session)
		require.NoError(t, err)
		// The live frame's title; plain text output never prints it.
		if strings.Contains(screen, "phases done ·") {
			sawRunning = true
		}
		if strings.Contains(screen, "EXIT=") {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Logf("final screen:\n%s", screen)
	require.Contains(t, screen, "EXIT=0")
	require.True(t, sawRunning, "the live view (title \"N/9 phases done · elapsed\") was on the screen")
	require.Contains(t, screen, "rhoai-bootstrap install: done after", "the view's closing summary")
	for _, phase := range []string{"preflight", "install-config", "cluster", "gpu-pools", "gitops-operator", "oauth", "certificates", "certificates-rollout", "root-app"} {
		found := false
		for _, line := range strings.Split(screen, "\n") {
			if strings.Contains(line, phase) && strings.Contains(line, "done") {
				found = true
			}
		}
		assert.True(t, found, "phase %s shown done", phase)
	}
	for _, line := range strings.Split(screen, "\n") {
		assert.LessOrEqual(t, len([]rune(line)), 80, "line fits 80 columns: %q", line)
	}
}
