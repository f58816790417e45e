package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// runMainEnv makes the test binary run main() instead of the tests: the child process
// is the real command, with the real process-wide logging set up and real stdout/stderr.
const runMainEnv = "RHOAI_BOOTSTRAP_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main() // exits
	}
	code := m.Run()
	if shippedDir != "" {
		_ = os.RemoveAll(shippedDir)
	}
	os.Exit(code)
}

// runMain runs the command as a separate process with exactly env.
func runMain(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(env, runMainEnv+"=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	var ee *exec.ExitError
	if err := cmd.Run(); err != nil && !errors.As(err, &ee) {
		t.Fatalf("running %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// golden compares got with testdata/name (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run with -update to create it")
	assert.Equal(t, string(want), got)
}

var (
	clockRE    = regexp.MustCompile(`\b\d\d:\d\d:\d\d\b`)
	durationRE = regexp.MustCompile(`\b\d+(\.\d+)?(ms|s|µs)\b`)
	portRE     = regexp.MustCompile(`127\.0\.0\.1:\d+`)
)

// normal replaces what changes from run to run: times, durations, ports, the temp folder,
// and the order of the blocked phases' lines (independent phases run concurrently).
func normal(s, dir string) string {
	s = strings.ReplaceAll(s, dir, "$TMP")
	s = clockRE.ReplaceAllString(s, "HH:MM:SS")
	s = durationRE.ReplaceAllString(s, "DUR")
	s = portRE.ReplaceAllString(s, "127.0.0.1:PORT")
	lines := strings.Split(s, "\n")
	for i := 0; i < len(lines); {
		j := i
		for j < len(lines) && strings.HasPrefix(lines[j], "– ") {
			j++
		}
		slices.Sort(lines[i:j])
		i = max(j, i+1)
	}
	return strings.Join(lines, "\n")
}

// newUser lays out what a new user has: the example cluster file with the pull secret and
// SSH key paths pointing at real files, no AWS configuration, no openshift-install in PATH.
func newUser(t *testing.T) (dir, file string, env []string) {
	t.Helper()
	dir = t.TempDir()
	examples, err := filepath.Abs("../../configs/examples")
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(examples, "dev.yaml"))
	require.NoError(t, err)
	y := strings.NewReplacer(
		"~/.pull-secret", filepath.Join(examples, "local", "pull-secret.json"),
		"~/.ssh/id_ed25519.pub", filepath.Join(examples, "local", "id_ed25519.pub"),
	).Replace(string(b))
	file = filepath.Join(dir, "dev.yaml")
	require.NoError(t, os.WriteFile(file, []byte(y), 0o600))
	home := filepath.Join(dir, "home")
	require.NoError(t, os.MkdirAll(home, 0o700))
	env = []string{"HOME=" + home, "PATH=" + filepath.Join(dir, "bin"), "CI=true", "GOOGLE_CLIENT_SECRET=not-a-real-secret"}
	return dir, file, env
}

// imds plays an EC2 instance metadata service that refuses tokens (as this machine's
// does): the AWS SDK then logs "WARN falling back to IMDSv1" and finds no role.
func imds(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// closedPort is an address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// ownLine matches the lines rhoai-bootstrap writes itself (text front-end, summary).
var ownLine = regexp.MustCompile(`^(|HH:MM:SS   install .*|[►✗–✔◎~ ] HH:MM:SS [a-z-]+ +.*|  - .*|install failed in DUR: .*|  (state|mutating requests): .*)$`)

func requireOwnLines(t *testing.T, stdout, stderr string) {
	t.Helper()
	assert.Empty(t, stderr, "nothing on stderr: the summary on stdout points at the error")
	for _, l := range strings.Split(strings.TrimRight(stdout, "\n"), "\n") {
		assert.Regexp(t, ownLine, l, "a line rhoai-bootstrap did not write")
	}
}

// TestInstallWithoutAWSCredentials: a new user's first install, no AWS credentials and no
// openshift-install. Each problem is said once, in words, where it happened; the summary
// points at it; the AWS SDK's own logging and error chain go to the debug log (and -v),
// not to the terminal.
func TestInstallWithoutAWSCredentials(t *testing.T) {
	dir, file, env := newUser(t)
	env = append(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT="+imds(t))
	state := filepath.Join(dir, "state")
	code, stdout, stderr := runMain(t, env, "install", "-f", file, "--state-dir", state)
	assert.Equal(t, ExitFailed, code)
	out := normal(stdout, dir)
	golden(t, "install-no-aws-credentials.txt", out)
	requireOwnLines(t, out, stderr)

	log, err := os.ReadFile(filepath.Join(state, "rhoai-bootstrap.log"))
	require.NoError(t, err)
	assert.Contains(t, string(log), "aws-sdk: WARN falling back to IMDSv1", "the SDK's own line is in the debug log")
	assert.Contains(t, string(log), "no EC2 IMDS role found", "the SDK's error chain is in the debug log")

	_, stdout, stderr = runMain(t, env, "install", "-f", file, "--state-dir", state, "-v")
	assert.Contains(t, stdout, "no EC2 IMDS role found", "-v shows the SDK's chain")
	assert.NotContains(t, stdout+stderr, "SDK ", "-v shows no library log lines")
}

// TestInstallAgainstUnreachableAWS: credentials, but AWS cannot be reached.
func TestInstallAgainstUnreachableAWS(t *testing.T) {
	dir, file, env := newUser(t)
	env = append(env, "AWS_ACCESS_KEY_ID=AKIAEXAMPLEEXAMPLE00", "AWS_SECRET_ACCESS_KEY=not-a-real-secret-key",
		"AWS_ENDPOINT_URL=http://"+closedPort(t), "AWS_MAX_ATTEMPTS=1", "AWS_EC2_METADATA_DISABLED=true")
	code, stdout, stderr := runMain(t, env, "install", "-f", file, "--state-dir", filepath.Join(dir, "state"))
	assert.Equal(t, ExitFailed, code)
	out := normal(stdout, dir)
	golden(t, "install-unreachable-aws.txt", out)
	requireOwnLines(t, out, stderr)
	assert.NotContains(t, stdout, "not-a-real-secret")
}

// TestValidateSaysWhatTheFileMustBe: a cluster file that is a YAML list is explained in
// words; -v adds the decoder's own error.
func TestValidateSaysWhatTheFileMustBe(t *testing.T) {
	list := filepath.Join(t.TempDir(), "list.yaml")
	require.NoError(t, os.WriteFile(list, []byte("- apiVersion: rhoai-bootstrap.io/v1alpha1\n  kind: Cluster\n"), 0o600))
	code, out := runCLI(t, "validate", "-f", list)
	assert.Equal(t, ExitConfig, code)
	assert.Equal(t, "error: "+list+" is invalid (1 problem):\n"+
		"  - the file must be one mapping with apiVersion, kind, metadata and spec (as in configs/examples/, or as `rhoai-bootstrap init` writes); this one is a list\n", out)

	_, out = runCLI(t, "validate", "-f", list, "-v")
	assert.Contains(t, out, "  details: json: cannot unmarshal array into Go value of type configs.Cluster")
}

// TestLongValuesAreCut: a 5 MB baseDomain is quoted by its first characters and its length.
func TestLongValuesAreCut(t *testing.T) {
	_, file, _ := newUser(t)
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	long := strings.Repeat("a", 5_000_000) + ".example.com"
	require.NoError(t, os.WriteFile(file, []byte(strings.Replace(string(b), "baseDomain: example.com", "baseDomain: "+long, 1)), 0o600))
	t.Setenv("GOOGLE_CLIENT_SECRET", "x")
	code, out := runCLI(t, "validate", "-f", file)
	assert.Equal(t, ExitConfig, code)
	assert.Less(t, len(out), 2000, "the value is not echoed whole")
	assert.Contains(t, out, `spec.baseDomain: Invalid value: "`+strings.Repeat("a", configs.QuoteLimit-15)+`…" (5000012 characters): must be no more than 253 characters`)
}

// TestWords: --version, and counts in the singular.
func TestWords(t *testing.T) {
	code, out := runCLI(t, "--version")
	assert.Equal(t, ExitOK, code, out)
	assert.Equal(t, "rhoai-bootstrap version dev\n", out)
	code, same := runCLI(t, "version")
	assert.Equal(t, ExitOK, code, same)
	assert.Equal(t, out, same, "--version and the version command say the same")

	_, file, _ := newUser(t)
	one := filepath.Join(filepath.Dir(file), "one-pool.yaml")
	b, err := os.ReadFile("../../configs/examples/existing-cluster.yaml")
	require.NoError(t, err)
	y := strings.Replace(string(b), "    - {name: l40s-private, gpu: L40S, access: private, min: 0, max: 1}\n", "", 1)
	require.NoError(t, os.WriteFile(one, []byte(y), 0o600))
	t.Setenv("GOOGLE_CLIENT_SECRET", "x")
	code, out = runCLI(t, "validate", "-f", one)
	assert.Equal(t, ExitOK, code, out)
	assert.Contains(t, out, ", 1 GPU pool)\n")
}

// keyPaths lists a YAML document's field paths in the order they are written.
func keyPaths(t *testing.T, data []byte) []string {
	t.Helper()
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal(data, &doc))
	var out []string
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			walk(n.Content[0], path)
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := strings.TrimPrefix(path+"."+n.Content[i].Value, ".")
				out = append(out, p)
				walk(n.Content[i+1], p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(&doc, "")
	return out
}

// TestInitValidateShowDefaultsRoundTrip: what init writes, validate accepts, and
// validate --show-defaults prints the same cluster, in the same order, with the
// defaults added.
func TestInitValidateShowDefaultsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "dev.yaml")
	code, out := runCLI(t, "init", "--non-interactive", "-o", file,
		"--name", "rhoai-dev", "--base-domain", "example.com", "--region", "us-west-2", "--zones", "us-west-2a,us-west-2b",
		"--pull-secret-file", "pull-secret.json", "--ssh-public-key-file", "id.pub",
		"--gpu-pool", "name=t4-shared,gpu=T4,min=0,max=4", "--gpu-pool", "gpu=L40S,access=private,max=2,spot=true,zones=us-west-2a",
		"--google-client-id", "123-abc.apps.googleusercontent.com", "--google-client-secret-env", "GOOGLE_CLIENT_SECRET",
		"--admin", "alice@example.com", "--acme", "staging", "--acme-email", "ops@example.com",
		"--gitops-repo", "https://github.com/org/platform", "--gitops-path", "clusters/dev")
	require.Equal(t, ExitOK, code, out)
	written, err := os.ReadFile(file)
	require.NoError(t, err)

	code, out = runCLI(t, "validate", "-f", file)
	require.Equal(t, ExitOK, code, out)
	assert.Contains(t, out, "valid (cluster rhoai-dev, 2 GPU pools)")

	shown := filepath.Join(dir, "shown.yaml")
	root := newRootCommand()
	var stdout, stderr bytes.Buffer
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs([]string{"validate", "--show-defaults", "-f", file})
	require.NoError(t, root.Execute(), stderr.String())
	require.NoError(t, os.WriteFile(shown, stdout.Bytes(), 0o600))

	a, err := configs.Load(file)
	require.NoError(t, err)
	b, err := configs.Load(shown)
	require.NoError(t, err, "what --show-defaults prints is a valid cluster file")
	assert.Equal(t, a, b, "--show-defaults reads as the same cluster")

	// init's fields appear in --show-defaults in the same order: it only adds defaults.
	all := keyPaths(t, stdout.Bytes())
	i := 0
	for _, p := range keyPaths(t, written) {
		for i < len(all) && all[i] != p {
			i++
		}
		require.Less(t, i, len(all), "%s is missing or out of order in --show-defaults:\n%s", p, stdout.String())
	}
	assert.Equal(t, []string{"apiVersion", "kind", "metadata", "metadata.name", "spec", "spec.baseDomain", "spec.platform"}, keyPaths(t, written)[:7],
		"the documented order (configs/examples/dev.yaml)")
	assert.Contains(t, string(written), "- {name: t4-shared, gpu: T4, access: shared, min: 0, max: 4} # 1 × T4 16 GB per machine (g4dn.xlarge)")
	assert.Contains(t, string(written), "server: letsencrypt-staging # untrusted: pods calling *.apps fail TLS")
}
