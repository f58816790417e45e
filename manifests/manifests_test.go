package manifests_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/manifests"
)

func TestWriteGitOps(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, manifests.WriteGitOps(dir))

	var files int
	err := fs.WalkDir(manifests.GitOps, manifests.GitOpsRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(manifests.GitOpsRoot, filepath.FromSlash(p))
		require.NoError(t, err)
		st, err := os.Stat(filepath.Join(dir, rel))
		require.NoError(t, err, rel)
		if d.IsDir() {
			assert.Equal(t, fs.FileMode(0o755), st.Mode().Perm(), rel)
			return nil
		}
		files++
		assert.Equal(t, fs.FileMode(0o644), st.Mode().Perm(), rel)
		want, _ := manifests.GitOps.ReadFile(p)
		got, err := os.ReadFile(filepath.Join(dir, rel))
		require.NoError(t, err)
		assert.Equal(t, want, got, rel)
		return nil
	})
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(dir, "clusters", "overlays", "dev", "kustomization.yaml"))
	assert.FileExists(t, filepath.Join(dir, "README.md"))

	// A second run over identical files is a no-op.
	require.NoError(t, manifests.WriteGitOps(dir))

	// A locally edited file is never overwritten, and nothing else is written either.
	edited := filepath.Join(dir, "clusters", "overlays", "dev", "source.yaml")
	require.NoError(t, os.WriteFile(edited, []byte("# mine\n"), 0o644))
	missing := filepath.Join(dir, "README.md")
	require.NoError(t, os.Remove(missing))
	err = manifests.WriteGitOps(dir)
	var conflict *manifests.ConflictError
	require.True(t, errors.As(err, &conflict), "got %v", err)
	assert.Equal(t, []string{edited}, conflict.Files)
	got, _ := os.ReadFile(edited)
	assert.Equal(t, "# mine\n", string(got))
	assert.NoFileExists(t, missing, "nothing is written when any file conflicts")
	t.Logf("%d files written", files)
}

func TestWriteGitOpsNeedsDir(t *testing.T) {
	assert.Error(t, manifests.WriteGitOps(""))
}
