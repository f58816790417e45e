package manifests_test

import (
	"io/fs"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/manifests"
)

// secretPatterns are shapes of credentials that must never be committed.
var secretPatterns = map[string]*regexp.Regexp{
	"private key":           regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`),
	"AWS access key":        regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b`),
	"GitHub token":          regexp.MustCompile(`\bgh[pousr]_[A-Za-z0-9]{30,}\b`),
	"Hugging Face token":    regexp.MustCompile(`\bhf_[A-Za-z0-9]{30,}\b`),
	"Slack token":           regexp.MustCompile(`\bxox[abpr]-[A-Za-z0-9-]{10,}`),
	"bearer token":          regexp.MustCompile(`(?i)bearer\s+[A-Za-z0-9._~+/-]{20,}`),
	"pull secret auth":      regexp.MustCompile(`"auth"\s*:\s*"[A-Za-z0-9+/=]{20,}"`),
	"password value":        regexp.MustCompile(`(?i)\bpassword\s*:\s*["']?[^\s"'{$]{6,}`),
	"dockerconfigjson data": regexp.MustCompile(`\.dockerconfigjson\s*:`),
}

// TestNoSecretsInPayload scans every file of the payload and every rendered object.
func TestNoSecretsInPayload(t *testing.T) {
	files := 0
	err := fs.WalkDir(manifests.GitOps, manifests.GitOpsRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := manifests.GitOps.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		for what, re := range secretPatterns {
			assert.False(t, re.Match(data), "%s looks like it holds a %s", p, what)
		}
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, files, 50)
	t.Logf("%d payload files scanned", files)

	fsys := payloadFS(t)
	ks := kustomizations(t)
	for _, dir := range sortedKeys(ks) {
		if ks[dir].Kind == "Component" {
			continue
		}
		for _, o := range render(t, fsys, dir) {
			if kindOf(o) == "Secret" {
				assert.Empty(t, get(o, "data"), "%s: Secret %s carries data", dir, nameOf(o))
				assert.Empty(t, get(o, "stringData"), "%s: Secret %s carries stringData", dir, nameOf(o))
			}
		}
	}
}

// TestSecretPatternsBite proves the scanner recognises what it is meant to.
func TestSecretPatternsBite(t *testing.T) {
	samples := map[string]string{
		"private key":        "-----BEGIN OPENSSH PRIVATE KEY-----",
		"AWS access key":     "key: AKIAABCDEFGHIJKLMNOP",
		"Hugging Face token": "HF_TOKEN: hf_abcdefghijklmnopqrstuvwxyzABCDEFGH",
		"pull secret auth":   `{"auths":{"x":{"auth":"dXNlcjpwYXNzd29yZHBhc3N3b3Jk"}}}`,
		"password value":     "password: hunter2hunter2",
	}
	for what, s := range samples {
		assert.True(t, secretPatterns[what].MatchString(s), what)
	}
}
