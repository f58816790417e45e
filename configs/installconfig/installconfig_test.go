package installconfig

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every SSH key file shipped with the examples is one openshift-install accepts: the
// local bed's example key once was a truncated blob that only our own prefix check let by.
func TestExampleSSHKeysParse(t *testing.T) {
	files, err := filepath.Glob("../examples/*/*.pub")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		assert.NoError(t, CheckSSHPublicKey(b), f)
	}
}

func TestCheckSSHPublicKey(t *testing.T) {
	for name, tc := range map[string]struct {
		key  string
		want string
	}{
		"truncated":   {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake test@example.com", "not an SSH public key (ssh: no key found"},
		"private key": {"-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----\n", "private key"},
		"empty":       {"", "not an SSH public key"},
	} {
		t.Run(name, func(t *testing.T) {
			err := CheckSSHPublicKey([]byte(tc.key))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "b3Blbn")
		})
	}
}
