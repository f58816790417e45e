package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// run executes the CLI in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	printError(&out, err, root)
	return codeOf(err), out.String()
}

func TestValidate(t *testing.T) {
	code, out := runCLI(t, "validate", "-f", "../../configs/examples/dev.yaml")
	assert.Equal(t, ExitOK, code, out)
	assert.Contains(t, out, `"L40" is read as L4`)

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(`apiVersion: rhoai-bootstrap.io/v1alpha1
kind: Cluster
metadata: {name: demo}
spec:
  platform: {aws: {region: us-east-1, zones: [us-east-1a]}}
  openshift: {pullSecretFile: ps.json}
  gpuPools:
    - {name: v100, gpu: V100, min: 0, max: 1}
    - {name: t4, gpu: T4, min: 0, max: -2}
  oauth: {google: {clientID: x, clientSecret: "plain-text-secret"}}
`), 0o600))
	code, out = runCLI(t, "validate", "-f", bad)
	assert.Equal(t, ExitConfig, code)
	for _, want := range []string{
		`spec.gpuPools[0].gpu: Unsupported value: "V100"`,
		`spec.gpuPools[1].max: Invalid value: -2`,
		`spec.baseDomain: Required value`,
		`spec.oauth.google.clientSecret: Forbidden`,
	} {
		assert.Contains(t, out, want)
	}
	assert.NotContains(t, out, "plain-text-secret")
}

func TestDestroyRefusesWithoutYesOffTerminal(t *testing.T) {
	code, out := runCLI(t, "destroy", "-f", "../../configs/examples/dev.yaml", "--state-dir", t.TempDir())
	assert.Equal(t, ExitConfig, code)
	assert.Contains(t, out, "destroy needs --yes")
}

func TestUnknownPhaseIsAUsageError(t *testing.T) {
	t.Setenv("GOOGLE_CLIENT_SECRET", "x-secret")
	code, out := runCLI(t, "plan", "-f", "../../configs/examples/dev.yaml", "--state-dir", t.TempDir(), "--only", "nope")
	assert.Equal(t, ExitFailed, code)
	assert.Contains(t, out, `unknown phase "nope"`)
}

// TestRenderIsAcceptedByTheInstaller renders install-config.yaml and has the (fake,
// contract-honouring) openshift-install consume it; then renders again with the worker
// MachineSets it generated, which adds the GPU MachineSets.
func TestRenderIsAcceptedByTheInstaller(t *testing.T) {
	// The fake installer is built with this machine's Go caches: the test's own HOME below
	// would otherwise give the build empty module and build caches (twenty minutes of
	// downloads and compiles on a loaded 2-core machine instead of seconds).
	goEnv, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPATH").Output()
	require.NoError(t, err)
	caches := strings.Fields(string(goEnv))
	require.Len(t, caches, 3)
	dir := t.TempDir()
	home := t.TempDir()
	t.Setenv("HOME", home)
	require.NoError(t, os.WriteFile(filepath.Join(home, ".pull-secret"), []byte(`{"auths":{"registry.example.invalid":{"auth":"eDp5"}}}`), 0o600))
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".ssh"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519.pub"), []byte(testdataSSHKey+"\n"), 0o644))
	code, out := runCLI(t, "render", "-f", "../../configs/examples/dev.yaml", "--dir", dir)
	require.Equal(t, ExitOK, code, out)
	ic, err := os.ReadFile(filepath.Join(dir, "install-config.yaml"))
	require.NoError(t, err)
	for _, want := range []string{"name: rhoai-dev", "baseDomain: example.com", "region: us-west-2", "- us-west-2a", "type: m6i.4xlarge", "registry.example.invalid", "sshKey: ssh-ed25519"} {
		assert.Contains(t, string(ic), want)
	}
	assert.FileExists(t, filepath.Join(dir, "openshift", "99_rhoai-bootstrap_clusterautoscaler_default.yaml"))

	bin := filepath.Join(t.TempDir(), "openshift-install")
	build := exec.Command("go", "build", "-o", bin, "../../e2e/cmd/openshift-install")
	build.Env = append(os.Environ(), "GOCACHE="+caches[0], "GOMODCACHE="+caches[1], "GOPATH="+caches[2])
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the fake installer: %v\n%s", err, b)
	}
	inst := exec.Command(bin, "create", "manifests", "--dir", dir)
	inst.Env = append(os.Environ(), "FAKE_OPENSHIFT_INSTALL_REGISTRY="+filepath.Join(t.TempDir(), "reg"))
	b, err := inst.CombinedOutput()
	require.NoError(t, err, "openshift-install create manifests: %s", b)

	code, out = runCLI(t, "render", "-f", "../../configs/examples/dev.yaml", "--dir", dir)
	require.Equal(t, ExitOK, code, out)
	ms, err := filepath.Glob(filepath.Join(dir, "openshift", "99_rhoai-bootstrap_machineset_*.yaml"))
	require.NoError(t, err)
	// dev.yaml: 4 pools over 2 zones (max ≥ 2) + l40s over 2 zones + a100/h100 in one zone.
	assert.Len(t, ms, 10, strings.Join(ms, "\n"))
}

// TestRenderGitOpsPrintsModelTable: render --gitops writes the payload and prints one
// fit line per model; with a cluster file lacking the pools, it says which are missing.
func TestRenderGitOpsPrintsModelTable(t *testing.T) {
	code, out := runCLI(t, "render", "-f", "../../configs/examples/dev.yaml", "--gitops", t.TempDir())
	require.Equal(t, ExitOK, code, out)
	lines := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "GiB") || strings.Contains(l, "no GPU") {
			lines++
			assert.Contains(t, l, " ok ", "every model fits its pool: %s", l)
			assert.True(t, strings.HasSuffix(strings.TrimSpace(l), "yes"), "dev.yaml declares every pool: %s", l)
		}
	}
	assert.GreaterOrEqual(t, lines, 15, out)
	assert.Contains(t, out, "llama-4-scout-17b-16e-instruct")
	assert.Regexp(t, `llama-4-scout-17b-16e-instruct\s+vLLM \(LLMInferenceService\), TP 4\s+L40S-PRIVATE g6e.12xlarge\s+4\s+ok`, out)

	// existing-cluster.yaml has a one-GPU L40S pool only: Llama 4 Scout's pool is missing.
	code, out = runCLI(t, "render", "-f", "../../configs/examples/existing-cluster.yaml", "--gitops", t.TempDir())
	require.Equal(t, ExitOK, code, out)
	assert.Regexp(t, `need a pool \(GPU, access and instance type\) this cluster file does not declare`, out)
}

// testdataSSHKey is an ed25519 public key (its private half was never kept): the fake
// installer parses sshKey as openshift-install does, so a made-up blob is refused.
const testdataSSHKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINlVO2yCSI1aDEZnTw9+jGB18/oEpheO0CD7CCXD83aG test@example"
