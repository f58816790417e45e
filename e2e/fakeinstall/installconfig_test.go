package fakeinstall

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const validConfig = `
apiVersion: v1
metadata: {name: demo}
baseDomain: example.com
platform: {aws: {region: us-west-2}}
pullSecret: '{"auths":{"registry.example.com":{"auth":"dXNlcjpwYXNz"}}}'
`

func TestValidateReportsFieldPaths(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(string) string
		want   []string // each must appear in the aggregated message
		errors int
	}{
		{name: "valid", edit: func(s string) string { return s }},
		{
			name:   "missing region",
			edit:   func(s string) string { return strings.Replace(s, "{region: us-west-2}", "{}", 1) },
			want:   []string{"platform.aws.region: Required value"},
			errors: 1,
		},
		{
			name:   "no aws platform",
			edit:   func(s string) string { return strings.Replace(s, "{aws: {region: us-west-2}}", "{}", 1) },
			want:   []string{`platform: Invalid value: "": must specify one of the platforms (aws)`},
			errors: 1,
		},
		{
			name:   "wrong apiVersion",
			edit:   func(s string) string { return strings.Replace(s, "apiVersion: v1", "apiVersion: v2", 1) },
			want:   []string{`apiVersion: Invalid value: "v2": install-config version must be "v1"`},
			errors: 1,
		},
		{
			name: "name and base domain missing",
			edit: func(s string) string {
				return strings.NewReplacer("metadata: {name: demo}", "metadata: {}", "baseDomain: example.com", "").Replace(s)
			},
			want:   []string{"metadata.name: Required value", "baseDomain: Required value"},
			errors: 2,
		},
		{
			name:   "name not a DNS label",
			edit:   func(s string) string { return strings.Replace(s, "name: demo", "name: Demo_1", 1) },
			want:   []string{`metadata.name: Invalid value: "Demo_1"`},
			errors: 1,
		},
		{
			name: "pull secret not JSON",
			edit: func(s string) string {
				return strings.Replace(s, `'{"auths":{"registry.example.com":{"auth":"dXNlcjpwYXNz"}}}'`, "not-json", 1)
			},
			want:   []string{`pullSecret: Invalid value: "<redacted>": invalid character`},
			errors: 1,
		},
		{
			name: "pull secret without auths",
			edit: func(s string) string {
				return strings.Replace(s, `'{"auths":{"registry.example.com":{"auth":"dXNlcjpwYXNz"}}}'`, `'{"x":1}'`, 1)
			},
			want:   []string{`pullSecret: Invalid value: "<redacted>": auths required`},
			errors: 1,
		},
		{
			// A key cut short keeps its "ssh-ed25519 " prefix; openshift-install parses it.
			name: "ssh key that does not parse",
			edit: func(s string) string {
				return s + "sshKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake test@example.com\n"
			},
			want:   []string{`sshKey: Invalid value: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake test@example.com": ssh: no key found`},
			errors: 1,
		},
		{
			name:   "control plane pool misnamed",
			edit:   func(s string) string { return s + "controlPlane: {name: control, replicas: 0}\n" },
			want:   []string{`controlPlane.name: Unsupported value: "control": supported values: "master"`, "controlPlane.replicas: Invalid value: 0"},
			errors: 2,
		},
		{
			name: "compute pool problems",
			edit: func(s string) string {
				return s + "compute:\n- {name: worker, replicas: -1, platform: {aws: {zones: [eu-west-1a]}}}\n- {name: worker}\n- {name: infra}\n"
			},
			want: []string{
				"compute[0].replicas: Invalid value: -1",
				`compute[0].platform.aws.zones[0]: Invalid value: "eu-west-1a": zone is not in region "us-west-2"`,
				`compute[1].name: Duplicate value: "worker"`,
				`compute[2].name: Unsupported value: "infra"`,
			},
			errors: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ic, _, err := parseInstallConfig([]byte(tt.edit(validConfig)))
			require.NoError(t, err)
			errs := ic.validate()
			require.Len(t, errs, tt.errors, "errors: %v", errs)
			if tt.errors == 0 {
				return
			}
			msg := aggregate(errs)
			for _, w := range tt.want {
				assert.Contains(t, msg, w)
			}
			assert.NotContains(t, msg, "dXNlcjpwYXNz", "the pull secret must never be echoed")
			if tt.errors > 1 {
				assert.True(t, strings.HasPrefix(msg, "[") && strings.HasSuffix(msg, "]"), "several errors aggregate as [a, b]: %s", msg)
			}
		})
	}
}

func TestValidateFillsDefaultPools(t *testing.T) {
	ic, _, err := parseInstallConfig([]byte(validConfig))
	require.NoError(t, err)
	require.Empty(t, ic.validate())
	require.NotNil(t, ic.ControlPlane)
	assert.Equal(t, int64(3), *ic.ControlPlane.Replicas)
	require.Len(t, ic.Compute, 1)
	assert.Equal(t, "worker", ic.Compute[0].Name)
	pool := ic.poolAWS(&ic.Compute[0])
	assert.Equal(t, []string{"us-west-2a", "us-west-2b", "us-west-2c"}, pool.Zones)
	assert.Equal(t, "m6i.xlarge", pool.InstanceType)
	assert.Equal(t, "ami-0a1b2c3d4e5f", pool.AMIID)
}

func TestParseRejectsNonMappings(t *testing.T) {
	_, _, err := parseInstallConfig([]byte("- a\n- b\n"))
	require.ErrorContains(t, err, "failed to unmarshal install-config.yaml")
	_, _, err = parseInstallConfig([]byte("a: [unclosed\n"))
	require.ErrorContains(t, err, "failed to unmarshal install-config.yaml")
}

func TestGenerateInfraID(t *testing.T) {
	tests := []struct{ name, wantBase string }{
		{"demo", "demo"},
		{"a-cluster-name-that-is-far-too-long-for-aws", "a-cluster-name-that-i"},
		{"twenty-chars-exactly-", "twenty-chars-exactly"}, // trailing "-" after the cut is trimmed
		{"odd_chars..here", "odd-chars-here"},
	}
	suffix := regexp.MustCompile(`^[bcdfghjklmnpqrstvwxz2456789]{5}$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := generateInfraID(tt.name)
			assert.LessOrEqual(t, len(id), 27)
			base, rnd, ok := strings.Cut(id, tt.wantBase+"-")
			require.True(t, ok && base == "", "infraID %q should start with %q", id, tt.wantBase+"-")
			assert.Regexp(t, suffix, rnd)
		})
	}
	assert.NotEqual(t, generateInfraID("demo"), generateInfraID("demo"), "the suffix is random")
}

func TestSpreadGivesEarlierZonesTheRemainder(t *testing.T) {
	tests := []struct {
		total int64
		zones int
		want  []int32
	}{
		{5, 3, []int32{2, 2, 1}},
		{3, 3, []int32{1, 1, 1}},
		{0, 2, []int32{0, 0}},
		{2, 3, []int32{1, 1, 0}},
	}
	for _, tt := range tests {
		var got []int32
		for i := range tt.zones {
			got = append(got, spread(tt.total, tt.zones, i))
		}
		assert.Equal(t, tt.want, got, "%d over %d zones", tt.total, tt.zones)
	}
}

func TestQuoteIfNeededMatchesLogrus(t *testing.T) {
	assert.Equal(t, "plain-text_1.2/x@y", quoteIfNeeded("plain-text_1.2/x@y"))
	assert.Equal(t, `"two words"`, quoteIfNeeded("two words"))
	assert.Equal(t, `""`, quoteIfNeeded(""))
}
