package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A folder stands for its .yaml and .yml files, in name order, not its subfolders'; a
// folder without any is refused; a path that is not a folder is kept as given.
func TestClusterFiles(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"b.yaml", "a.yml", "notes.txt", "sub/c.yaml"} {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), nil, 0o600))
	}
	got, err := clusterFiles([]string{"one.yaml", dir, "missing.yaml"})
	require.NoError(t, err)
	assert.Equal(t, []string{"one.yaml", filepath.Join(dir, "a.yml"), filepath.Join(dir, "b.yaml"), "missing.yaml"}, got)

	empty := t.TempDir()
	_, err = clusterFiles([]string{empty})
	require.Error(t, err)
	assert.Equal(t, ExitConfig, codeOf(err))
	assert.Contains(t, err.Error(), "-f "+empty+": a folder with no .yaml or .yml file")
}

// clusterFile writes a copy of dev.yaml named name into dir.
func clusterFile(t *testing.T, devFile, dir, file, name string) string {
	t.Helper()
	b, err := os.ReadFile(devFile)
	require.NoError(t, err)
	p := filepath.Join(dir, file)
	require.NoError(t, os.WriteFile(p, []byte(strings.Replace(string(b), "name: rhoai-dev", "name: "+name, 1)), 0o600))
	return p
}

// Each cluster of a fleet gets its own state folder or S3 prefix, named after it; two
// files naming the same cluster are refused naming both files, before anything exists.
func TestFleetMembers(t *testing.T) {
	dir, dev, _ := newUser(t)
	prod := clusterFile(t, dev, dir, "prod.yaml", "rhoai-prod")
	o := &globalOptions{expanded: []string{dev, prod}, output: "text"}
	ms, err := o.members()
	require.NoError(t, err)
	require.Len(t, ms, 2)
	assert.Equal(t, "rhoai-dev", ms[0].name)
	assert.Equal(t, filepath.Join(".rhoai-bootstrap", "rhoai-dev"), ms[0].opts.dirOf(ms[0].name))
	assert.Equal(t, filepath.Join(".rhoai-bootstrap", "rhoai-prod"), ms[1].opts.dirOf(ms[1].name))
	assert.True(t, ms[0].opts.member)
	assert.Equal(t, dev, ms[0].opts.file)

	o = &globalOptions{expanded: []string{dev, prod}, stateDir: "/var/states", state: "s3://bucket/fleet/"}
	ms, err = o.members()
	require.NoError(t, err)
	assert.Equal(t, "/var/states/rhoai-prod", ms[1].opts.dirOf(ms[1].name))
	assert.Equal(t, "s3://bucket/fleet/rhoai-dev", ms[0].opts.state)
	assert.Equal(t, "s3://bucket/fleet/rhoai-prod", ms[1].opts.state)

	again := clusterFile(t, dev, dir, "again.yaml", "rhoai-dev")
	o = &globalOptions{expanded: []string{dev, prod, again}}
	_, err = o.members()
	require.Error(t, err)
	assert.Equal(t, ExitConfig, codeOf(err))
	assert.Equal(t, dev+" and "+again+` both name cluster "rhoai-dev" (metadata.name): each cluster needs its own file; give one of them once`, err.Error())

	// Every file's problems at once, each naming its file.
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("kind: Cluster\nspec: {nope: 1}\n"), 0o600))
	o = &globalOptions{expanded: []string{bad, dev, filepath.Join(dir, "missing.yaml")}}
	_, err = o.members()
	require.Error(t, err)
	assert.Equal(t, ExitConfig, codeOf(err))
	assert.Contains(t, err.Error(), bad)
	assert.Contains(t, err.Error(), "missing.yaml")
}

// A shared state folder would mix two clusters' state and locks: refused, naming both.
func TestFleetCollision(t *testing.T) {
	a := &member{file: "a.yaml", name: "a", opts: globalOptions{stateDir: "/s/x"}}
	b := &member{file: "b.yaml", name: "b", opts: globalOptions{stateDir: "/s/x/"}}
	assert.EqualError(t, collision(a, b), "a.yaml and b.yaml would share the state folder /s/x: give each cluster its own (they are named after metadata.name)")
	b.opts.stateDir = "/s/y"
	a.opts.state, b.opts.state = "s3://b/p", "s3://b/p"
	assert.EqualError(t, collision(a, b), "a.yaml and b.yaml would share the S3 state s3://b/p: give each cluster its own prefix")
	b.opts.state = "s3://b/q"
	assert.NoError(t, collision(a, b))
}

// The fleet's exit code is its worst cluster's: 0 < interrupted < locked < failed < refused.
func TestWorstExit(t *testing.T) {
	for _, c := range []struct {
		codes []int
		want  int
	}{
		{nil, ExitOK},
		{[]int{ExitOK, ExitOK}, ExitOK},
		{[]int{ExitOK, ExitInterrupted}, ExitInterrupted},
		{[]int{ExitInterrupted, ExitLocked}, ExitLocked},
		{[]int{ExitLocked, ExitFailed, ExitInterrupted}, ExitFailed},
		{[]int{ExitFailed, ExitConfig, ExitOK}, ExitConfig},
		{[]int{ExitConfig, ExitFailed}, ExitConfig},
		{[]int{ExitOK, 7}, 7}, // unknown: counts as a failure, kept as it is
	} {
		assert.Equal(t, c.want, worstExit(c.codes...), "%v", c.codes)
	}
}

// Lines are prefixed whole, however they are written; a blank line gets the bare prefix.
func TestPrefixWriter(t *testing.T) {
	var out bytes.Buffer
	w := newPrefixWriter(&lockedWriter{w: &out}, "dev")
	for _, s := range []string{"one ", "line\ntwo\n", "\nthree", " and more"} {
		n, err := w.Write([]byte(s))
		require.NoError(t, err)
		require.Equal(t, len(s), n)
	}
	assert.Equal(t, "[dev] one line\n[dev] two\n[dev]\n", out.String())
	require.NoError(t, w.Flush())
	assert.Equal(t, "[dev] one line\n[dev] two\n[dev]\n[dev] three and more\n", out.String())
}

// Two cluster files in one install: each cluster runs (here both fail preflight: no
// openshift-install), every text line carries its cluster's prefix, each keeps its own
// state folder and debug log, a summary line per cluster ends the run, and the exit code
// is the worst. With -o json every event names its cluster.
func TestFleetInstall(t *testing.T) {
	dir, dev, env := newUser(t)
	prod := clusterFile(t, dev, dir, "prod.yaml", "rhoai-prod")
	env = append(env, "AWS_EC2_METADATA_DISABLED=true")
	states := filepath.Join(dir, "states")
	code, stdout, stderr := runMain(t, env, "install", "-f", dev, "-f", prod, "--state-dir", states, "--max-parallel-clusters", "2")
	assert.Equal(t, ExitFailed, code, stderr)
	for _, l := range strings.Split(strings.TrimRight(stdout, "\n"), "\n") {
		assert.Regexp(t, `^\[rhoai-(dev|prod)\]( |$)`, l)
	}
	for _, name := range []string{"rhoai-dev", "rhoai-prod"} {
		assert.Contains(t, stdout, "["+name+"] ✗")
		assert.Contains(t, stdout, "["+name+"] install failed in")
		assert.FileExists(t, filepath.Join(states, name, "state.json"))
		assert.Regexp(t, `(?m)^  `+name+` +failed +exit 1  log `+filepath.Join(states, name, "rhoai-bootstrap.log")+`$`, stderr)
	}
	assert.Contains(t, stderr, "install of 2 clusters:")
	assert.NotContains(t, stderr, "error:", "each error was printed on its phase line")

	code, stdout, stderr = runMain(t, env, "install", "-f", dir, "--state-dir", states, "-o", "json")
	assert.Equal(t, ExitFailed, code, stderr)
	seen := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var e struct {
			Schema  int    `json:"schema"`
			Cluster string `json:"cluster"`
		}
		require.NoError(t, json.Unmarshal([]byte(l), &e), l)
		assert.Equal(t, 2, e.Schema)
		seen[e.Cluster]++
	}
	assert.Len(t, seen, 2, "the folder holds both files: %v", seen)
	assert.Positive(t, seen["rhoai-dev"])
	assert.Positive(t, seen["rhoai-prod"])
}

// Commands that take one file say so; a file given twice is refused before anything.
func TestFleetRefusals(t *testing.T) {
	dir, dev, env := newUser(t)
	prod := clusterFile(t, dev, dir, "prod.yaml", "rhoai-prod")
	code, _, stderr := runMain(t, env, "validate", "-f", dev, "-f", prod)
	assert.Equal(t, ExitConfig, code)
	assert.Contains(t, stderr, "-f: this command takes one cluster file, not 2")

	code, stdout, stderr := runMain(t, env, "install", "-f", dev, "-f", dev, "--state-dir", filepath.Join(dir, "s"))
	assert.Equal(t, ExitConfig, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, `both name cluster "rhoai-dev"`)
	assert.NoDirExists(t, filepath.Join(dir, "s"))

	code, _, stderr = runMain(t, env, "destroy", "-f", dev, "-f", prod, "--state-dir", filepath.Join(dir, "s"))
	assert.Equal(t, ExitConfig, code)
	assert.Contains(t, stderr, "destroy needs --yes when stdin is not a terminal")
	assert.NoDirExists(t, filepath.Join(dir, "s"))
}

// JSON events name their cluster, with one file too (the schema 2 field).
func TestSingleFileJSONNamesCluster(t *testing.T) {
	dir, dev, env := newUser(t)
	env = append(env, "AWS_EC2_METADATA_DISABLED=true")
	_, stdout, _ := runMain(t, env, "install", "-f", dev, "--state-dir", filepath.Join(dir, "s"), "-o", "json")
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		assert.True(t, strings.HasPrefix(l, `{"schema":2,`), l)
		assert.Contains(t, l, `"cluster":"rhoai-dev"`)
	}
}

// On GitHub Actions a fleet's failures are workflow commands naming their cluster, at the
// start of their lines (not behind the cluster's prefix).
func TestFleetOnGitHubActions(t *testing.T) {
	dir, dev, env := newUser(t)
	prod := clusterFile(t, dev, dir, "prod.yaml", "rhoai-prod")
	env = append(env, "AWS_EC2_METADATA_DISABLED=true", "GITHUB_ACTIONS=true")
	states := filepath.Join(dir, "states")
	// rhoai-prod's state folder is a file: its run fails before any phase (no phase line).
	require.NoError(t, os.MkdirAll(states, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(states, "rhoai-prod"), nil, 0o600))
	code, _, stderr := runMain(t, env, "install", "-f", dev, "-f", prod, "--state-dir", states, "-o", "json")
	assert.Equal(t, ExitFailed, code, stderr)
	assert.Regexp(t, `(?m)^::error title=rhoai-bootstrap \[rhoai-dev\] preflight failed::check: 2 preflight problems`, stderr)
	assert.Regexp(t, `(?m)^::error title=rhoai-bootstrap \[rhoai-prod\]::.*`+filepath.Join(states, "rhoai-prod"), stderr)
	assert.Regexp(t, `(?m)^\[rhoai-prod\] error: `, stderr)
}
