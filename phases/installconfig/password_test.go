package installconfig

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

// runPhase runs installconfig.Run on a script inside a real Runner, so the events pass
// through the same bus (and redactor) as in the command.
type runPhase struct {
	bin, dir string
	ran      bool
}

func (p *runPhase) Name() string        { return "cluster" }
func (p *runPhase) DependsOn() []string { return nil }
func (p *runPhase) Check(context.Context, *installer.Scope) (installer.Status, error) {
	if p.ran {
		return installer.Done("ran"), nil
	}
	return installer.Pending("run"), nil
}
func (p *runPhase) Apply(ctx context.Context, s *installer.Scope) error {
	p.ran = true
	return Run(ctx, s, p.bin, p.dir, nil, nil, "create", "cluster")
}
func (p *runPhase) Destroy(context.Context, *installer.Scope) error { return nil }

// installerScript writes a script that prints lines like openshift-install's stderr
// (level=… msg=…, unquoted, as its TextFormatter with DisableQuote prints them) and, when
// writeFile, first writes the password file like the installer's asset store does.
func installerScript(t *testing.T, dir string, lines []string, writeFile string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	if writeFile != "" {
		fmt.Fprintf(&b, "mkdir -p %q\nprintf '%%s' %s > %q\n", filepath.Join(dir, "auth"), shellQuote(writeFile), filepath.Join(dir, PasswordFile))
	}
	for _, l := range lines {
		fmt.Fprintf(&b, "printf '%%s\\n' %s >&2\n", shellQuote(l))
	}
	bin := filepath.Join(t.TempDir(), "openshift-install")
	require.NoError(t, os.WriteFile(bin, []byte(b.String()), 0o700))
	return bin
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// runAndCollect runs the script and returns every event as JSON lines, and the state file.
func runAndCollect(t *testing.T, bin, dir string) string {
	t.Helper()
	var mu sync.Mutex
	var out strings.Builder
	sink := installer.SinkFunc(func(e installer.Event) {
		b, err := json.Marshal(e)
		require.NoError(t, err)
		mu.Lock()
		defer mu.Unlock()
		out.Write(b)
		out.WriteByte('\n')
	})
	stateDir := t.TempDir()
	store, err := installer.NewLocalStore(stateDir)
	require.NoError(t, err)
	r := &installer.Runner{Phases: []installer.Phase{&runPhase{bin: bin, dir: dir}}, Store: store, Bus: installer.NewBus(&installer.Redactor{}, sink), Cluster: "c", Command: "install"}
	_, err = r.Install(context.Background())
	require.NoError(t, err)
	st, err := os.ReadFile(filepath.Join(stateDir, "state.json"))
	require.NoError(t, err)
	return out.String() + string(st)
}

func TestRunRedactsTheKubeadminPassword(t *testing.T) {
	// A password with characters that JSON and Go quoting both escape.
	const pw = `Kp7"x\Q<z>&9-Ab`
	quoted := strconv.Quote(pw)
	line := fmt.Sprintf(`level=info msg=Login to the console with user: %q, and password: %s`, "kubeadmin", quoted)
	forms := func(v string) []string {
		j, _ := json.Marshal(v)
		return []string{v, quoted, quoted[1 : len(quoted)-1], string(j[1 : len(j)-1])}
	}
	for _, tc := range []struct {
		name  string
		file  string
		lines []string
	}{
		{"from the line, before the file exists", "", []string{"level=info msg=Install complete!", line}},
		{"from the file, before the line", pw, []string{"level=info msg=the password is " + pw + " (a leak elsewhere)", line}},
		{"the bare form of releases before 4.6", "", []string{"level=info msg=Login to the console with user: kubeadmin, password: Kp7x-Qz9Ab-bare1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out := runAndCollect(t, installerScript(t, dir, tc.lines, tc.file), dir)
			assert.Contains(t, out, "Login to the console with user:", "the line itself is still shown")
			assert.Contains(t, out, "[REDACTED]")
			secrets := forms(pw)
			if strings.Contains(tc.name, "bare") {
				secrets = []string{"Kp7x-Qz9Ab-bare1"}
			}
			for _, f := range secrets {
				assert.NotContains(t, out, f, "no form of the password in events or state")
			}
		})
	}
}

func TestRunDoesNotRedactOrdinaryLines(t *testing.T) {
	dir := t.TempDir()
	out := runAndCollect(t, installerScript(t, dir, []string{"level=info msg=Waiting up to 20m0s for the Kubernetes API", "level=info msg=mkdir -p /tmp/x"}, ""), dir)
	assert.NotContains(t, out, "[REDACTED]")
	assert.Contains(t, out, "mkdir -p /tmp/x")
}
