package cpulog

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A process that burns CPU is logged with that CPU, live (from /proc) and once reaped
// (its rusage); without Env nothing is written.
func TestLiveAndExited(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.log")
	cmd := exec.Command("sh", "-c", `i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo busy; exec sleep 30`)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	t.Setenv(Env, "")             // make testtime sets it for the whole suite
	Live("busy", cmd.Process.Pid) // Env unset: nothing written
	_, err = os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist)

	t.Setenv(Env, path)
	_, err = bufio.NewReader(out).ReadString('\n') // the busy loop has ended
	require.NoError(t, err)
	Live("busy", cmd.Process.Pid)
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	Exited("busy-exited", cmd.ProcessState)
	Exited("nothing", nil)

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, lines, 2, string(b))
	var live, exited Sample
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &live))
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &exited))
	assert.Equal(t, "busy", live.Proc)
	// The shell's loop of 300000 additions: a tenth of a second or more.
	assert.Greater(t, live.Own, 0.1, "%+v", live)
	assert.Equal(t, "busy-exited", exited.Proc)
	assert.GreaterOrEqual(t, exited.Own, live.Own+live.Children-0.05, "rusage includes reaped children")
}
