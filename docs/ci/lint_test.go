// Package ci holds the CI kit's examples (docs/ci) and the test that lints them. It has
// no code of its own: actionlint is a test dependency only, never part of the binary.
package ci

import (
	"io"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rhysd/actionlint"
	"github.com/stretchr/testify/require"
)

// TestWorkflowsPassActionlint runs actionlint (v1.7.12, as a library) over every workflow
// of the kit, with shellcheck over their run: scripts, as `actionlint` on a developer's
// machine would. Every problem fails the test with its position.
func TestWorkflowsPassActionlint(t *testing.T) {
	files, err := filepath.Glob("github/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	shellcheck, err := exec.LookPath("shellcheck")
	require.NoError(t, err, "actionlint checks run: scripts with shellcheck: apt-get install shellcheck (.ci/run does)")
	linter, err := actionlint.NewLinter(io.Discard, &actionlint.LinterOptions{Shellcheck: shellcheck})
	require.NoError(t, err)
	for _, f := range files {
		problems, err := linter.LintFile(f, nil)
		require.NoError(t, err, f)
		for _, p := range problems {
			t.Errorf("%s:%d:%d: %s [%s]", f, p.Line, p.Column, p.Message, p.Kind)
		}
	}
}
