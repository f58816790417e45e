package tui

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
)

func runInitCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := NewInitCommand()
	var out bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader("")) // not a terminal: no prompts
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	err := cmd.Execute()
	return out.String(), err
}

func validFlags(path string) []string {
	return []string{
		"-o", path,
		"--name", "rhoai-dev", "--base-domain", "example.com",
		"--region", "us-west-2", "--zones", "us-west-2a,us-west-2b",
		"--pull-secret-file", "~/.pull-secret", "--ssh-public-key-file", "~/.ssh/id_ed25519.pub",
		"--gpu-pool", "name=t4-shared,gpu=T4,access=shared,min=0,max=4,spot=false",
		"--gpu-pool", "gpu=L40,access=private,max=2,spot=true",
		"--gpu-pool", "name=a100,gpu=A100,access=private,max=1,zones=us-west-2a",
		"--google-client-id", "123-abc.apps.googleusercontent.com", "--google-client-secret-env", "GOOGLE_CLIENT_SECRET",
		"--admin", "alice@example.com", "--admin", "bob@example.com", "--remove-kubeadmin",
		"--acme", "production", "--acme-email", "ops@example.com",
		"--gitops-repo", "https://github.com/org/platform", "--gitops-path", "clusters/dev",
	}
}

func TestInitNonInteractive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev.yaml")
	out, err := runInitCmd(t, append(validFlags(path), "--non-interactive")...)
	require.NoError(t, err, out)
	assert.Contains(t, out, "Wrote "+path+" (3 GPU pools)")
	assert.Contains(t, out, `"L40" is read as L4`, "the alias warning of validate")

	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())
	c, err := configs.Load(path)
	require.NoError(t, err)
	require.Len(t, c.Spec.GPUPools, 3)
	assert.Equal(t, "t4-shared", c.Spec.GPUPools[0].Name)
	assert.Equal(t, "l40-private", c.Spec.GPUPools[1].Name, "name derived from gpu and access")
	assert.True(t, c.Spec.GPUPools[1].Spot)
	assert.Equal(t, []string{"us-west-2a"}, c.Spec.GPUPools[2].Zones)
	assert.Equal(t, "letsencrypt", c.Spec.Certificates.ACME.Server)
	assert.Equal(t, "main", c.Spec.GitOps.Root.Revision)
	assert.True(t, c.Spec.OAuth.RemoveKubeadmin)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.NotContains(t, string(data), "clientSecret: GOOGLE", "only a reference, never a value")
	assert.Contains(t, string(data), "env: GOOGLE_CLIENT_SECRET")

	// An existing file is not replaced without --force.
	_, err = runInitCmd(t, append(validFlags(path), "--non-interactive")...)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "already exists")
	_, err = runInitCmd(t, append(validFlags(path), "--non-interactive", "--force", "--name", "other")...)
	require.NoError(t, err)
	c, err = configs.Load(path)
	require.NoError(t, err)
	assert.Equal(t, "other", c.Metadata.Name)
}

// Stdin that is not a terminal means no prompts, even without --non-interactive; CI=true
// too.
func TestInitNoTerminalMeansNoPrompts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev.yaml")
	_, err := runInitCmd(t, validFlags(path)...)
	require.NoError(t, err)
	_, err = configs.Load(path)
	require.NoError(t, err)

	t.Setenv("CI", "true")
	f := &initFlags{}
	cmd := NewInitCommand()
	cmd.SetIn(os.Stdin)
	assert.False(t, interactive(cmd, f))
}

func TestInitNonInteractiveReportsEveryProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	_, err := runInitCmd(t,
		"-o", path, "--non-interactive",
		"--name", "Bad_Name", "--region", "us-west-2", "--zones", "eu-west-1a",
		"--gpu-pool", "name=t4,gpu=T4,min=3,max=1",
		"--gpu-pool", "gpu=B200,max=x,color=blue",
		"--google-client-id", "id", "--google-client-secret-env", "A", "--google-client-secret-file", "/s",
		"--admin", "not-an-email",
		"--acme", "ftp://acme", "--acme-email", "nope",
		"--gitops-repo", "https://github.com/org/platform",
	)
	require.Error(t, err)
	var inv *configs.InvalidError
	require.True(t, errors.As(err, &inv), "%T", err)
	msg := err.Error()
	for _, want := range []string{
		"metadata.name: Invalid value: \"Bad_Name\"",
		"spec.baseDomain: Required value",
		"(set with --base-domain)",
		`spec.platform.aws.zones[0]: Invalid value: "eu-west-1a": not a zone of region "us-west-2"`,
		"spec.openshift.pullSecretFile: Required value",
		"spec.gpuPools[0].max: Invalid value: 1: must not be less than min (3)",
		"(set with --gpu-pool #1)",
		`spec.gpuPools[1].max: Invalid value: "x": must be a whole number`,
		`spec.gpuPools[1]: Invalid value: "color": unknown key`,
		`spec.gpuPools[1].gpu: Unsupported value: "B200"`,
		"spec.oauth.google.clientSecret: Invalid value",
		"spec.oauth.admins[0]: Invalid value: \"not-an-email\"",
		"spec.certificates.acme.server: Invalid value: \"ftp://acme\"",
		"spec.certificates.acme.email: Invalid value: \"nope\"",
		"spec.gitops.root.path: Required value",
	} {
		assert.Contains(t, msg, want)
	}
	assert.Len(t, inv.Errs, 14, msg)
	_, statErr := os.Stat(path)
	assert.True(t, os.IsNotExist(statErr), "nothing is written when invalid")
}

func TestParsePool(t *testing.T) {
	p, errs := parsePool("name=t4-shared,gpu=T4,access=shared,min=0,max=4,spot=false", 0)
	assert.Empty(t, errs)
	assert.Equal(t, configs.GPUPool{Name: "t4-shared", GPU: "T4", Access: configs.AccessShared, Max: 4}, p)
	p, errs = parsePool("gpu=H100, access=private, max=1, instanceType=p5.48xlarge, zones=us-east-1a:us-east-1b", 3)
	assert.Empty(t, errs)
	assert.Equal(t, "h100-private", p.Name)
	assert.Equal(t, []string{"us-east-1a", "us-east-1b"}, p.Zones)
	assert.Equal(t, "p5.48xlarge", p.InstanceType)
	_, errs = parsePool("min=-,spot=maybe,bogus", 2)
	require.Len(t, errs, 3)
	assert.Equal(t, "spec.gpuPools[2].min", errs[0].Field)
}

func TestWriteClusterFileRefusesInvalidData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.yaml")
	_, err := writeClusterFile(nil, path, []byte("apiVersion: v1\nkind: Cluster\n"), false)
	require.Error(t, err)
	_, statErr := os.Stat(path)
	assert.True(t, os.IsNotExist(statErr))
}

// Without a TTY nobody can be proposed anything: an ACME e-mail without --acme is an
// error naming the flag, never a silent choice of server.
func TestInitNonInteractiveNeedsTheACMEServerChosen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev.yaml")
	var args []string
	for _, a := range validFlags(path) {
		if a == "--acme" || a == "production" {
			continue
		}
		args = append(args, a)
	}
	_, err := runInitCmd(t, append(args, "--non-interactive")...)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "spec.certificates.acme.server: Required value")
	assert.Contains(t, err.Error(), "(set with --acme)")

	// Staging is allowed, with the warning validate gives.
	out, err := runInitCmd(t, append(args, "--acme", "staging", "--non-interactive")...)
	require.NoError(t, err, out)
	assert.Contains(t, out, "trusted by no browser and by no client in the cluster")
	assert.Contains(t, out, "proxy/cluster .spec.trustedCA")
}

// TestInitWritesTheDocumentedOrder: the file init writes reads like configs/examples:
// fields in their documented order, a pool's name first, a comment on each choice.
func TestInitWritesTheDocumentedOrder(t *testing.T) {
	out, err := runInitCmd(t, append(validFlags("-"), "--non-interactive")...)
	require.NoError(t, err, out)
	want, err := os.ReadFile(filepath.Join("testdata", "init.yaml"))
	require.NoError(t, err)
	assert.Equal(t, string(want), out)
}
