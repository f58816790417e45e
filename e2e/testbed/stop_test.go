package testbed_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
)

// alive counts the PIDs that are alive.
func alive(pids []int) int {
	n := 0
	for _, pid := range pids {
		if testbed.Alive(pid) {
			n++
		}
	}
	return n
}

// Stop ends every process of a bed and removes its work dir; the env file
// says what a shell needs.
func TestStopLeavesNothing(t *testing.T) {
	t.Parallel()
	b, err := testbed.Start(t.Context(), testbed.Options{CRDSets: []testbed.CRDSet{}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Stop() })

	envFile := filepath.Join(t.TempDir(), "bed.env")
	require.NoError(t, b.WriteEnvFile(envFile))
	env, err := os.ReadFile(envFile)
	require.NoError(t, err)
	for _, want := range []string{"export KUBECONFIG=", "export AWS_ENDPOINT_URL='http://127.0.0.1:", "export RHOAI_BED_ACME_DIRECTORY='https://127.0.0.1:", "export RHOAI_BED_HOSTED_ZONE_ID=", "unset AWS_PROFILE"} {
		assert.Contains(t, string(env), want)
	}
	assert.NotContains(t, strings.Join(b.Env(), "\n"), "AWS_PROFILE")

	// Without ShortLivedValidity Pebble offers only the 90-day profile, so
	// orders naming no profile are deterministic.
	dir, err := pebbleHTTPClient(t).Get(b.ACMEDirectoryURL())
	require.NoError(t, err)
	var directory struct {
		Meta struct {
			Profiles map[string]string `json:"profiles"`
		} `json:"meta"`
	}
	require.NoError(t, json.NewDecoder(dir.Body).Decode(&directory))
	dir.Body.Close()
	assert.Equal(t, []string{"default"}, slices.Collect(maps.Keys(directory.Meta.Profiles)))

	pids := b.PIDs()
	// moto, challtestsrv, pebble, etcd, kube-apiserver, kube-controller-manager
	require.Len(t, pids, 6)
	require.Equal(t, 6, alive(pids), "pids %v", pids)
	workDir := b.WorkDir()

	require.NoError(t, b.Stop())
	for _, pid := range pids {
		assert.False(t, testbed.Alive(pid), "process %d survived Stop", pid)
	}
	assert.NoDirExists(t, workDir)
}

// When the bed's process is SIGKILLed — Stop never runs — the kernel kills
// its children (parent-death signal), envtest's etcd and kube-apiserver
// included.
func TestSIGKILLedParentTakesChildrenDown(t *testing.T) {
	t.Parallel()
	self, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	var report struct {
		PIDs    []int  `json:"pids"`
		WorkDir string `json:"workDir"`
	}
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	require.NoError(t, err, "the helper bed did not report its PIDs")
	require.NoError(t, json.Unmarshal(line, &report))
	t.Cleanup(func() { _ = os.RemoveAll(report.WorkDir) })
	require.Len(t, report.PIDs, 6) // as in TestStopLeavesNothing
	require.Equal(t, 6, alive(report.PIDs), "pids %v", report.PIDs)
	require.False(t, slices.Contains(report.PIDs, cmd.Process.Pid))

	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	err = wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return alive(report.PIDs) == 0, nil
	})
	for _, pid := range report.PIDs {
		assert.False(t, testbed.Alive(pid), "process %d outlived its SIGKILLed parent", pid)
	}
	require.NoError(t, err)
}

// A component that dies during start-up fails Start with its log, and
// everything already started is stopped. Not parallel: it compares the test
// binary's child processes before and after.
func TestFailedStartStopsEverything(t *testing.T) {
	before := children(t)
	workDir := filepath.Join(t.TempDir(), "bed")
	_, err := testbed.Start(t.Context(), testbed.Options{
		CRDSets:    []testbed.CRDSet{},
		WorkDir:    workDir,
		MotoServer: "/bin/false",
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "moto exited during start-up")
	assert.ElementsMatch(t, before, children(t), "child processes left behind")
	assert.NoDirExists(t, workDir)
}

// children lists the live child processes of the test binary.
func children(t *testing.T) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) > 1 && fields[0] != "Z" && fields[1] == strconv.Itoa(os.Getpid()) {
			pids = append(pids, pid)
		}
	}
	return pids
}
