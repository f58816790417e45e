package cluster

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A bootstrap failure's folder is moved aside with its log bundle, private, and only the
// newest three such folders stay.
func TestKeepFailedAttempt(t *testing.T) {
	work := t.TempDir()
	asset := filepath.Join(work, "installer")
	start := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	var kept []Diagnostic
	for i := range 5 {
		require.NoError(t, os.MkdirAll(asset, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(asset, installerLog), []byte("level=error msg=boom\n"), 0o600))
		if i == 4 {
			require.NoError(t, os.WriteFile(filepath.Join(asset, "log-bundle-20260501100400.tar.gz"), []byte("gz"), 0o644))
		}
		d, err := keepFailedAttempt(work, asset, start.Add(time.Duration(i)*time.Minute))
		require.NoError(t, err)
		kept = append(kept, d)
		assert.NoDirExists(t, asset, "the next attempt starts from an empty folder")
	}
	last := kept[4]
	assert.Equal(t, filepath.Join(work, "installer-failed-20260501T100400Z"), last.Folder)
	assert.Equal(t, filepath.Join(last.Folder, "log-bundle-20260501100400.tar.gz"), last.LogBundle)
	st, err := os.Stat(last.Folder)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), st.Mode().Perm())
	assert.FileExists(t, filepath.Join(last.Folder, installerLog))
	assert.Empty(t, kept[3].LogBundle)

	folders, err := filepath.Glob(filepath.Join(work, failedPrefix+"*"))
	require.NoError(t, err)
	assert.Equal(t, []string{kept[2].Folder, kept[3].Folder, kept[4].Folder}, folders, "the last three are kept")

	// Two failures within one second keep both.
	require.NoError(t, os.MkdirAll(asset, 0o755))
	d, err := keepFailedAttempt(work, asset, start.Add(4*time.Minute))
	require.NoError(t, err)
	assert.Equal(t, last.Folder+"-2", d.Folder)

	// Nothing to keep when the folder is gone.
	d, err = keepFailedAttempt(work, asset, start)
	require.NoError(t, err)
	assert.Empty(t, d.Folder)
	assert.Contains(t, describeAttempt(last), "bootstrap log bundle: "+last.LogBundle)
}

// An attempt that ended without an exit code (its run was killed, LastExit -1) or before
// the installer wrote metadata.json (no infra ID) is described in words, not as
// "exit -1, infra ID ", which is what a fleet killed during `create cluster` printed.
func TestDescribeAttemptWithoutExitOrInfraID(t *testing.T) {
	killed := describeAttempt(Diagnostic{Exit: -1, Folder: "/s/installer-failed-1"})
	assert.Equal(t, "the failed attempt (stopped before the installer exited, no infra ID yet) is kept in /s/installer-failed-1", killed)
	failed := describeAttempt(Diagnostic{Exit: 5, InfraID: "c-x1", Folder: "/s/f", LogBundle: "/s/f/log-bundle-1.tar.gz"})
	assert.Equal(t, "the failed attempt (exit 5, infra ID c-x1) is kept in /s/f; its bootstrap log bundle: /s/f/log-bundle-1.tar.gz", failed)
}
