package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

// Escaping as GitHub documents it: %, CR and LF in the message; also : and , in a
// property. An unescaped newline would end the command and print the rest as plain log.
func TestWorkflowCommandEscaping(t *testing.T) {
	var b bytes.Buffer
	workflowCommand(&b, "error", "rhoai-bootstrap: certificates, api", "100% done\r\nnext: line, two")
	assert.Equal(t, "::error title=rhoai-bootstrap%3A certificates%2C api::100%25 done%0D%0Anext: line, two\n", b.String())

	b.Reset()
	workflowCommand(&b, "warning", "", "plain")
	assert.Equal(t, "::warning::plain\n", b.String())
}

// The sink sits behind the bus's redactor: a secret in a phase's error never reaches an
// annotation.
func TestGitHubAnnotationsAreRedacted(t *testing.T) {
	var b bytes.Buffer
	red := &installer.Redactor{}
	red.Add("s3cr3t-Value")
	bus := installer.NewBus(red, &githubSink{w: &b})
	bus.Emit(installer.Event{Type: installer.PhaseFailed, Phase: "oauth", Outcome: installer.OutcomeFailed, Error: "the server said: s3cr3t-Value is wrong"})
	bus.Emit(installer.Event{Type: installer.PhasePlanned, Phase: "gpu-pools", Outcome: "would-change", Message: "2 changes",
		Changes: []installer.Change{{Action: installer.Create, Target: "MachineSet x", Detail: "new"}}})
	bus.Emit(installer.Event{Type: installer.PhasePlanned, Phase: "cluster", Outcome: "done"})
	bus.Emit(installer.Event{Type: installer.Progress, Phase: "preflight", Message: "warning: 4 of 5 orders this week"})
	out := b.String()
	assert.NotContains(t, out, "s3cr3t-Value")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	assert.True(t, strings.HasPrefix(lines[0], "::error title=rhoai-bootstrap oauth failed::the server said: "), lines[0])
	assert.Contains(t, lines[1], "::warning title=rhoai-bootstrap plan%3A gpu-pools would change::2 changes%0A")
	assert.Equal(t, "::warning title=rhoai-bootstrap preflight::4 of 5 orders this week", lines[2])
}

// With GITHUB_ACTIONS=true a failed install also prints its failures as workflow
// commands, on stderr (stdout stays JSON lines with -o json); without it, none.
func TestInstallOnGitHubActions(t *testing.T) {
	dir, file, env := newUser(t)
	env = append(env, "AWS_EC2_METADATA_DISABLED=true")
	code, stdout, stderr := runMain(t, append(env, "GITHUB_ACTIONS=true"), "install", "-f", file, "--state-dir", filepath.Join(dir, "state"), "-o", "json", "--non-interactive")
	assert.Equal(t, ExitFailed, code)
	assert.Contains(t, stderr, "::error title=rhoai-bootstrap preflight failed::check: 2 preflight problems:%0A  - spec.openshift.installer: openshift-install not found in PATH")
	assert.Equal(t, 1, strings.Count(stderr, "::error"), "one annotation per failure: %s", stderr)
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		assert.True(t, strings.HasPrefix(l, `{"schema":2,`), "stdout is JSON lines only: %q", l)
	}

	code, _, stderr = runMain(t, append(env, "GITHUB_ACTIONS=true"), "install", "-f", file, "--state-dir", filepath.Join(dir, "state2"), "--max-hourly-cost", "10")
	assert.Equal(t, ExitConfig, code)
	assert.Contains(t, stderr, "::error title=rhoai-bootstrap::--max-hourly-cost: the machines could cost $110.79/h")

	_, _, stderr = runMain(t, env, "install", "-f", file, "--state-dir", filepath.Join(dir, "state3"), "-o", "json")
	assert.NotContains(t, stderr, "::error")
}
