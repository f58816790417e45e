package configs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const minimal = `apiVersion: rhoai-bootstrap.io/v1alpha1
kind: Cluster
metadata: {name: demo}
spec:
  baseDomain: example.com
  platform: {aws: {region: us-east-1, zones: [us-east-1a, us-east-1b]}}
  openshift: {pullSecretFile: ps.json}
`

func problems(t *testing.T, doc string) []string {
	t.Helper()
	_, err := Parse([]byte(doc), "test.yaml")
	if err == nil {
		return nil
	}
	var inv *InvalidError
	require.True(t, errors.As(err, &inv), "want *InvalidError, got %T: %v", err, err)
	var out []string
	for _, e := range inv.Errs {
		out = append(out, e.Error())
	}
	return out
}

func TestExamplesAreValid(t *testing.T) {
	t.Setenv("RHOAI_BED_OPENSHIFT_INSTALL", "/bin/false")
	t.Setenv("RHOAI_BED_ACME_DIRECTORY", "https://127.0.0.1:14000/dir")
	t.Setenv("RHOAI_BED_ACME_CA_FILE", "/tmp/ca.pem")
	t.Setenv("RHOAI_BED_DNS_RESOLVER", "127.0.0.1:8053")
	t.Setenv("RHOAI_BED_GIT_URL", "http://127.0.0.1:8080/rhoai-bootstrap.git")
	t.Setenv("RHOAI_BED_GITOPS_PATH", "manifests/gitops/clusters/overlays/dev")
	files, err := filepath.Glob("examples/*.yaml")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 4)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := Load(f)
			require.NoError(t, err)
			assert.True(t, filepath.IsAbs(c.Spec.OpenShift.PullSecretFile) || c.Spec.OpenShift.PullSecretFile == "")
		})
	}
}

func TestDevAndProdShareGPUPools(t *testing.T) {
	dev, err := Load("examples/dev.yaml")
	require.NoError(t, err)
	prod, err := Load("examples/prod.yaml")
	require.NoError(t, err)
	require.Len(t, prod.Spec.GPUPools, len(dev.Spec.GPUPools))
	for i := range dev.Spec.GPUPools {
		d, p := dev.Spec.GPUPools[i], prod.Spec.GPUPools[i]
		assert.Equal(t, d.Name, p.Name)
		assert.Equal(t, d.AcceleratorValue(), p.AcceleratorValue())
	}
	assert.Equal(t, "us-west-2", dev.Spec.Platform.AWS.Region)
	assert.Equal(t, "us-east-1", prod.Spec.Platform.AWS.Region)
}

func TestValidationReportsEveryProblemWithItsPath(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want []string
	}{
		{"the four of the issue", `apiVersion: rhoai-bootstrap.io/v1alpha1
kind: Cluster
metadata: {name: demo}
spec:
  platform: {aws: {region: us-east-1, zones: [us-east-1a]}}
  openshift: {pullSecretFile: ps.json}
  gpuPools:
    - {name: a, gpu: T4, min: 0, max: 2}
    - {name: b, gpu: V100, min: 0, max: 2}
    - {name: c, gpu: L4, min: 0, max: -1}
  oauth:
    google: {clientID: x, clientSecret: "hunter2"}
`, []string{
			`spec.baseDomain: Required value`,
			`spec.gpuPools[1].gpu: Unsupported value: "V100": supported values: "T4", "A10G", "L4", "L40S", "A100", "H100", "L40"`,
			`spec.gpuPools[2].max: Invalid value: -1: must be 0 or more`,
			`spec.oauth.google.clientSecret: Forbidden: a secret value must not be written in the cluster file`,
		}},
		{"unknown fields, all of them", minimal + "  colour: blue\n  gpuPools: [{name: a, gpu: T4, min: 0, max: 1, sise: 2}]\n",
			[]string{`spec.colour: Forbidden: unknown field`, `spec.gpuPools[0].sise: Forbidden: unknown field`}},
		{"wrong kind and version", strings.Replace(strings.Replace(minimal, "Cluster", "Klaster", 1), "v1alpha1", "v9", 1),
			[]string{`apiVersion: Unsupported value: "rhoai-bootstrap.io/v9"`, `kind: Unsupported value: "Klaster"`}},
		{"zone outside region", strings.Replace(minimal, "us-east-1b", "eu-west-1a", 1),
			[]string{`spec.platform.aws.zones[1]: Invalid value: "eu-west-1a": not a zone of region "us-east-1"`}},
		{"min above max, bad access, bad instance type, unknown zone", minimal + "  gpuPools: [{name: p, gpu: A100, access: public, instanceType: g5.xlarge, min: 3, max: 2, zones: [us-east-1c]}]\n",
			[]string{`spec.gpuPools[0].instanceType: Invalid value: "g5.xlarge": instance type "g5.xlarge" does not carry A100 GPUs`,
				`spec.gpuPools[0].access: Unsupported value: "public"`,
				`spec.gpuPools[0].max: Invalid value: 2: must not be less than min (3)`,
				`spec.gpuPools[0].zones[0]: Unsupported value: "us-east-1c"`}},
		{"duplicate pool names", minimal + "  gpuPools: [{name: p, gpu: T4, min: 0, max: 1}, {name: p, gpu: L4, min: 0, max: 1}]\n",
			[]string{`spec.gpuPools[1].name: Duplicate value: "p"`}},
		{"secret ref with both", minimal + "  oauth: {google: {clientID: x, clientSecret: {env: A, file: b}}}\n",
			[]string{`spec.oauth.google.clientSecret: Invalid value: "env:A": set only one of env or file`}},
		{"secret ref unknown key", minimal + "  oauth: {google: {clientID: x, clientSecret: {value: x}}}\n",
			[]string{`expected {env: NAME} or {file: PATH}`}},
		{"removeKubeadmin without admins", minimal + "  oauth: {removeKubeadmin: true}\n",
			[]string{`spec.oauth.removeKubeadmin: Invalid value: true: needs oauth.google`}},
		{"acme", minimal + "  certificates: {acme: {server: http://x, email: nope, resolvers: [1.1.1.1], propagationTimeout: soon}}\n",
			[]string{`spec.certificates.acme.server: Invalid value: "http://x"`, `spec.certificates.acme.email: Invalid value: "nope"`,
				`spec.certificates.acme.resolvers[0]: Invalid value: "1.1.1.1": must be host:port`, `spec.certificates.acme.propagationTimeout: Invalid value: "soon"`}},
		{"gitops", minimal + "  gitops: {operatorChannel: 'Gitops 1', root: {repoURL: 'not a url', path: /abs}}\n",
			[]string{`spec.gitops.operatorChannel: Invalid value: "Gitops 1"`, `spec.gitops.root.repoURL: Invalid value: "not a url"`, `spec.gitops.root.path: Invalid value: "/abs"`}},
		{"existing needs kubeconfig, not a pull secret", strings.Replace(minimal, "zones: [us-east-1a, us-east-1b]}}", "zones: [us-east-1a]}, existing: {}}", 1),
			[]string{`spec.platform.existing.kubeconfig: Required value`}},
		{"missing pull secret", strings.Replace(minimal, "  openshift: {pullSecretFile: ps.json}\n", "", 1),
			[]string{`spec.openshift.pullSecretFile: Required value`}},
		{"wrong type", minimal + "  workers: {replicas: three}\n",
			[]string{`spec.workers.replicas: Invalid value: "string": wrong type: expected int`}},
		{"bad name", strings.Replace(minimal, "name: demo", "name: Demo_1", 1), []string{`metadata.name: Invalid value: "Demo_1"`}},
		{"unset env var", strings.Replace(minimal, "example.com", "${RHOAI_TEST_UNSET_VAR}", 1),
			[]string{`line 5: Required value: environment variable RHOAI_TEST_UNSET_VAR is not set`, `spec.baseDomain: Required value`}},
		{"duplicate key", minimal + "  baseDomain: other.com\n", []string{`not valid YAML`}},
		{"two documents", minimal + "---\n" + minimal, []string{`holds 2 YAML documents`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := problems(t, tc.doc)
			require.Len(t, got, len(tc.want), "problems: %q", got)
			for i, w := range tc.want {
				assert.Contains(t, got[i], w)
			}
		})
	}
}

func TestPlainSecretIsNeverEchoed(t *testing.T) {
	_, err := Parse([]byte(minimal+"  oauth: {google: {clientID: x, clientSecret: 's3cr3t-value'}}\n"), "t.yaml")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cr3t-value")
}

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal+`  gpuPools: [{name: l40, gpu: l40, min: 0, max: 1}]
  certificates: {acme: {server: letsencrypt-staging, email: ops@example.com}}
  gitops: {root: {repoURL: https://example.com/r.git, path: clusters/dev}}
  oauth: {google: {clientID: x, clientSecret: {env: X}}}
`), "t.yaml")
	require.NoError(t, err)
	p := c.Spec.GPUPools[0]
	assert.Equal(t, AccessShared, p.Access)
	assert.Equal(t, "g6.xlarge", p.InstanceType)
	assert.Equal(t, []string{"us-east-1a", "us-east-1b"}, p.Zones)
	assert.Equal(t, "L4-SHARED", p.AcceleratorValue())
	assert.Equal(t, "letsencrypt-staging", c.Spec.Certificates.ACME.Server)
	assert.Equal(t, "https://acme-staging-v02.api.letsencrypt.org/directory", c.Spec.Certificates.ACME.ACMEDirectory())
	assert.Equal(t, "latest", c.Spec.GitOps.OperatorChannel, "gitops-1.16 is not offered on OpenShift 4.19+")
	assert.Equal(t, "main", c.Spec.GitOps.Root.Revision)
	assert.Equal(t, "google", c.Spec.OAuth.Google.Name)
	assert.Equal(t, 3, *c.Spec.ControlPlane.Replicas)
	require.Len(t, c.Warnings(), 2)
	assert.Contains(t, c.Warnings()[0], `"l40" is read as L4`)
}

// The ACME server is a choice with consequences (rate limits, who trusts the
// certificates), so it has no default; staging and private CAs are valid but warned about.
func TestACMEServerIsChosenOnPurpose(t *testing.T) {
	got := problems(t, minimal+"  certificates: {acme: {email: ops@example.com}}\n")
	require.Len(t, got, 1, "problems: %q", got)
	assert.Contains(t, got[0], `spec.certificates.acme.server: Required value: choose "letsencrypt"`)

	warn := func(server string) []string {
		c, err := Parse([]byte(minimal+"  certificates: {acme: {server: '"+server+"', email: ops@example.com}}\n"), "t.yaml")
		require.NoError(t, err)
		return c.Warnings()
	}
	assert.Empty(t, warn("letsencrypt"))
	staging := warn("letsencrypt-staging")
	require.Len(t, staging, 1)
	assert.Contains(t, staging[0], "spec.certificates.acme.server: Let's Encrypt staging certificates are trusted by no browser and by no client in the cluster")
	assert.Contains(t, staging[0], "pods calling *.apps routes fail TLS verification")
	assert.Contains(t, staging[0], "proxy/cluster .spec.trustedCA")
	private := warn("https://acme.internal.example.com/directory")
	require.Len(t, private, 1)
	assert.Contains(t, private[0], "certificates from https://acme.internal.example.com/directory chain to a private CA")
	assert.Contains(t, private[0], "proxy/cluster .spec.trustedCA")
}

func TestSecretRefResolve(t *testing.T) {
	t.Setenv("RHOAI_TEST_SECRET", "v1")
	v, err := SecretRef{Env: "RHOAI_TEST_SECRET"}.Resolve()
	require.NoError(t, err)
	assert.Equal(t, "v1", v)
	f := filepath.Join(t.TempDir(), "s")
	require.NoError(t, os.WriteFile(f, []byte("v2\n"), 0o600))
	v, err = SecretRef{File: f}.Resolve()
	require.NoError(t, err)
	assert.Equal(t, "v2", v)
	_, err = SecretRef{Env: "RHOAI_TEST_NOT_SET"}.Resolve()
	assert.ErrorContains(t, err, "RHOAI_TEST_NOT_SET is not set")
}

func TestCatalog(t *testing.T) {
	for _, n := range []string{"T4", "A10G", "L4", "L40S", "A100", "H100"} {
		g, alias, ok := LookupGPU(n)
		require.True(t, ok, n)
		assert.Empty(t, alias)
		s, err := g.Size(g.DefaultInstanceType)
		require.NoError(t, err, n)
		assert.GreaterOrEqual(t, s.GPUs, 1)
		assert.Contains(t, []string{"G", "P"}, g.QuotaClass)
	}
	g, alias, ok := LookupGPU("L40")
	require.True(t, ok)
	assert.Equal(t, "L40", alias)
	assert.Equal(t, "g6", g.Family)
}

// FuzzParse: go test ./configs -run '^$' -fuzz FuzzParse -fuzztime 60s -fuzzminimizetime 5s
// (minimizing an interesting input takes up to 60 s by default with this many instrumented
// packages, which looks like a stall; 5 s keeps the fuzzer fuzzing)
func FuzzParse(f *testing.F) {
	for _, name := range []string{"dev.yaml", "prod.yaml", "existing-cluster.yaml"} {
		b, err := os.ReadFile(filepath.Join("examples", name))
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte(minimal))
	f.Add([]byte("spec: {oauth: {google: {clientSecret: 'x'}}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml")
		if err == nil {
			// Whatever parses must validate again after a round trip.
			out, err := Marshal(c)
			require.NoError(t, err)
			_, err = Parse(out, "roundtrip.yaml")
			require.NoError(t, err, "round trip of\n%s", out)
		}
	})
}

// TestModelServerFromNamesWhatIsMissing: a model without its shape annotations or
// context length cannot be sized, and says which annotation to add.
func TestModelServerFromNamesWhatIsMissing(t *testing.T) {
	o := map[string]any{"kind": "LLMInferenceService", "metadata": map[string]any{"name": "m", "annotations": map[string]any{
		"rhoai-bootstrap.io/gpu-type": "T4", "rhoai-bootstrap.io/gpu-access": "shared", "rhoai-bootstrap.io/params-billion": "3",
		"rhoai-bootstrap.io/weights-dtype": "fp16", "rhoai-bootstrap.io/layers": "28"}},
		"spec": map[string]any{}}
	_, ok, err := ModelServerFrom(o)
	require.True(t, ok)
	require.Error(t, err)
	for _, want := range []string{"rhoai-bootstrap.io/instance-type", "rhoai-bootstrap.io/kv-heads", "--max-model-len"} {
		assert.Contains(t, err.Error(), want)
	}
	_, ok, err = ModelServerFrom(map[string]any{"kind": "ConfigMap"})
	assert.False(t, ok)
	assert.NoError(t, err)
}

// A pool name that fitted the old 20-character rule still makes 64-character MachineSet
// names in ap-southeast-2a with a 27-character infra ID (the installer's longest).
func TestMachineSetNamesFitTheWorstCaseInfraID(t *testing.T) {
	apse2 := `apiVersion: rhoai-bootstrap.io/v1alpha1
kind: Cluster
metadata: {name: demo}
spec:
  baseDomain: example.com
  platform: {aws: {region: ap-southeast-2, zones: [ap-southeast-2a]}}
  openshift: {pullSecretFile: ps.json}
`
	got := problems(t, apse2+"  gpuPools: [{name: l40s-private-models2, gpu: L40S, min: 0, max: 1}]\n")
	require.Len(t, got, 1, "problems: %q", got)
	assert.Contains(t, got[0], `spec.gpuPools[0].name: Invalid value: "l40s-private-models2"`)
	assert.Contains(t, got[0], "in zone ap-southeast-2a")
	assert.Contains(t, got[0], "up to 64 characters")
	assert.Contains(t, got[0], "at most 19 characters")

	// 19 characters fit exactly: 27 + 1 + 19 + 1 + 15 = 63.
	assert.Empty(t, problems(t, apse2+"  gpuPools: [{name: l40s-private-models, gpu: L40S, min: 0, max: 1}]\n"))
	// A name that only fits in shorter zones is still checked against each of its zones.
	got = problems(t, strings.Replace(apse2, "[ap-southeast-2a]", "[ap-southeast-2a, ap-southeast-2b]", 1)+
		"  gpuPools: [{name: a-twenty-character-p, gpu: T4, min: 0, max: 1, zones: [ap-southeast-2b]}]\n")
	require.Len(t, got, 1, "problems: %q", got)
	assert.Contains(t, got[0], "in zone ap-southeast-2b")
}

// A leading ---, or a trailing one followed only by comments, is still one document.
func TestOneDocumentWithSeparators(t *testing.T) {
	for _, doc := range []string{"---\n" + minimal, minimal + "---\n# nothing more\n", "# head\n---\n" + minimal + "---\n"} {
		_, err := Parse([]byte(doc), "t.yaml")
		assert.NoError(t, err, "%q", doc)
	}
}
