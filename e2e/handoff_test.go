//go:build e2e

package e2e_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/harness"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/payload"
)

// cmjudge is the binary e2e/testbin/build.sh builds from cert-manager's module; its folder
// names the version and a hash of its source, as the script computes them.
func cmjudge(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testbin", "_cmjudge", "main.go"))
	require.NoError(t, err)
	sum := sha256.Sum256(src)
	out, err := exec.Command(filepath.Join("testbin", "build.sh")).Output()
	require.NoError(t, err, "e2e/testbin/build.sh")
	cache := string(bytes.TrimSpace(out[bytes.LastIndexByte(bytes.TrimSpace(out), '\n')+1:]))
	return filepath.Join(cache, "cmjudge-v1.20.3-"+hex.EncodeToString(sum[:])[:12], "cmjudge")
}

type verdict struct {
	Certificate  string
	Reissue      bool
	Reason       string
	Message      string
	Ready        string
	ReadyReason  string
	PostIssuance string
}

// TestHandOffToCertManager: after a full install the Secrets carry cert-manager's
// annotations; the payload's Certificates (rendered through the root application as Argo
// CD would) are judged by cert-manager's own policy chains against them: nothing to
// re-issue, Ready. Then a re-run orders nothing and reports handed-off, plan shows it,
// `certificates renew` refuses pointing at cert-manager, and destroy leaves the Secrets.
func TestHandOffToCertManager(t *testing.T) {
	t.Parallel()
	judge := cmjudge(t)
	r := rehearsal(t)
	state := filepath.Join(r.WorkDir, "state")
	env := r.Env()
	requireSuccess(t, install(t, r, state, env))
	require.Equal(t, 1, ledgerOrders(t, state))

	ctx := context.Background()
	d := dyn(t, r)
	secrets := d.Resource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"})
	for _, ref := range [][2]string{{"openshift-config", "rhoai-bootstrap-api-tls"}, {"openshift-ingress", "rhoai-bootstrap-ingress-tls"}} {
		sec, err := secrets.Namespace(ref[0]).Get(ctx, ref[1], metav1.GetOptions{})
		require.NoError(t, err)
		a := sec.GetAnnotations()
		assert.Equal(t, ref[1], a["cert-manager.io/certificate-name"])
		assert.Equal(t, "rhoai-bootstrap-acme", a["cert-manager.io/issuer-name"])
		assert.Equal(t, "ClusterIssuer", a["cert-manager.io/issuer-kind"])
		assert.Equal(t, "cert-manager.io", a["cert-manager.io/issuer-group"])
		// The certificate's own DNS names in its order (cert-manager writes them so); the
		// ACME server chooses that order.
		assert.ElementsMatch(t, []string{"api.rhoai-local.bed.example.com", "*.apps.rhoai-local.bed.example.com"},
			strings.Split(a["cert-manager.io/alt-names"], ","))
	}

	// The payload's objects for this cluster, as Argo CD renders them from the root
	// application the bootstrap applied (the bed's simulated Argo CD applies child
	// applications only, so the test applies the certificates' objects itself).
	root, err := d.Resource(appsGVR).Namespace("openshift-gitops").Get(ctx, "rhoai-root", metav1.GetOptions{})
	require.NoError(t, err)
	repo, err := filepath.Abs("..")
	require.NoError(t, err)
	rend := payload.Renderer{Root: repo}
	children, err := rend.RenderApp(root)
	require.NoError(t, err)
	var names []string
	for _, ch := range children {
		if ch.GetName() != "config-certificates" {
			continue
		}
		objs, err := rend.RenderApp(ch)
		require.NoError(t, err)
		for _, o := range objs {
			if o.GetKind() != "Certificate" || o.GetName() == "maas-default-gateway-tls" {
				continue // the gateway's is new: cert-manager issues it
			}
			gvr := schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "certificates"}
			_, err := d.Resource(gvr).Namespace(o.GetNamespace()).Create(ctx, o, metav1.CreateOptions{})
			require.NoError(t, err)
			names = append(names, o.GetNamespace()+"/"+o.GetName())
		}
	}
	require.Len(t, names, 2, "the payload has Certificates for both Secrets")

	out, err := exec.CommandContext(ctx, judge, append([]string{"-kubeconfig", r.Bed.Kubeconfig(), "-set-ready"}, names...)...).Output()
	require.NoError(t, err, "cmjudge: %s", out)
	dec := json.NewDecoder(bytes.NewReader(out))
	for range names {
		var v verdict
		require.NoError(t, dec.Decode(&v))
		t.Logf("cert-manager's verdict: %+v", v)
		assert.False(t, v.Reissue, "%s: cert-manager would order: %s: %s", v.Certificate, v.Reason, v.Message)
		assert.Equal(t, "True", v.Ready, "%s: %s", v.Certificate, v.ReadyReason)
	}

	// Handed off: a re-run orders nothing and records the hand-off; plan shows it.
	res := install(t, r, state, env)
	requireSuccess(t, res)
	assert.Equal(t, 1, ledgerOrders(t, state), "no order at or after the hand-off")
	var reason string
	for _, e := range res.Events {
		if e.Phase == "certificates" && e.Type == "phase-done" {
			reason = e.Message
		}
	}
	b, err := os.ReadFile(filepath.Join(state, "state.json"))
	require.NoError(t, err)
	assert.Contains(t, string(b), `"handedOff"`, "the state records the hand-off (%s)", reason)
	plan := r.Run(ctx, env, append([]string{"plan", "-f", r.Config()}, r.Flags(state)...)...)
	assert.Equal(t, 0, plan.Code, plan.Stderr)
	assert.True(t, hasMessage(plan, "handed-off"), "plan shows the hand-off")

	renew := r.Run(ctx, env, append([]string{"certificates", "renew", "-f", r.Config()}, r.Flags(state)...)...)
	assert.NotEqual(t, 0, renew.Code, "renew refuses once cert-manager renews")
	assert.True(t, hasMessage(renew, "cert-manager renews these certificates"), "renew names cert-manager: %s", renew.Stderr)
	assert.Equal(t, 1, ledgerOrders(t, state))
}

// hasMessage reports whether any event's message or error, or stderr, contains s.
func hasMessage(res harness.Result, s string) bool {
	for _, e := range res.Events {
		if strings.Contains(e.Message, s) || strings.Contains(e.Error, s) {
			return true
		}
	}
	return strings.Contains(res.Stderr, s)
}
