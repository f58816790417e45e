//go:build e2e

package e2e_test

import (
	"bytes"
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
	r := rehearsal(t, testbed.BedOverlay)
	state := filepath.Join(r.WorkDir, "state")
	_, screen := runTUI(t, r, r.Env(), r.Config(), state)
	t.Logf("final screen:\n%s", screen)
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

// runTUI runs install in a real 80×24 terminal (tmux) with env (CI removed: the TUI starts
// only on a terminal without CI=true and --non-interactive) and reads the screen with
// capture-pane until the command exits. It requires exit 0 and the live view's title
// ("N/9 phases done · elapsed", which plain text output never prints) on some frame, and
// returns every distinct screen seen (with scrollback) and the last one.
func runTUI(t *testing.T, r *harness.Rehearsal, env []string, cfgFile, state string) (frames []byte, last string) {
	t.Helper()
	tmux, err := exec.LookPath("tmux")
	require.NoError(t, err, "tmux is needed (.ci/run installs it)")
	var b strings.Builder
	// The tmux server inherits this process's environment, CI=true included on CI, and
	// the shell would pass it on: unset it, or the command rightly chooses plain text.
	b.WriteString("#!/usr/bin/env bash\nunset CI\n")
	for _, kv := range append(env, "NO_COLOR=1", "TERM=xterm-256color") {
		k, v, _ := strings.Cut(kv, "=")
		if k == "CI" || strings.ContainsAny(k, "()") {
			continue
		}
		fmt.Fprintf(&b, "export %s=%q\n", k, v)
	}
	fmt.Fprintf(&b, "cd %q\n%q install -f %q --state-dir %q --timeout-factor %s --poll-interval 200ms\necho \"EXIT=$?\"\nsleep 600\n",
		r.Root, filepath.Join(r.BinDir, "rhoai-bootstrap"), cfgFile, state, harness.TimeoutFactor)
	dir := t.TempDir()
	script := filepath.Join(dir, "tui.sh")
	require.NoError(t, os.WriteFile(script, []byte(b.String()), 0o700))
	session := fmt.Sprintf("rhoai-e2e-%d", os.Getpid())
	sock := filepath.Join(dir, "tmux.sock")
	tm := func(args ...string) (string, error) {
		out, err := exec.Command(tmux, append([]string{"-S", sock}, args...)...).CombinedOutput()
		return string(out), err
	}
	_, err = tm("new-session", "-d", "-s", session, "-x", "80", "-y", "24", script)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = tm("kill-server") })
	var all bytes.Buffer
	seen := map[string]bool{}
	live := false
	for deadline := time.Now().Add(8 * time.Minute); time.Now().Before(deadline); time.Sleep(150 * time.Millisecond) {
		last, err = tm("capture-pane", "-p", "-S", "-500", "-t", session)
		require.NoError(t, err)
		if !seen[last] {
			seen[last] = true
			all.WriteString(last)
			all.WriteString("\n")
		}
		live = live || strings.Contains(last, "phases done ·")
		if strings.Contains(last, "EXIT=") {
			break
		}
	}
	require.Contains(t, last, "EXIT=0", "the TUI install ended well:\n%s", last)
	require.True(t, live, "the live TUI view (title \"N/9 phases done · elapsed\") was on the screen")
	t.Logf("%d distinct TUI frames", len(seen))
	return all.Bytes(), last
}
