//go:build e2e

package e2e_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/harness"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/certificates"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/graph"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/kube"
)

// servedCertificate reads the ingress TLS secret's chain.
func servedCertificate(t *testing.T, r *harness.Rehearsal) (*x509.Certificate, []*x509.Certificate) {
	t.Helper()
	d := dyn(t, r)
	sec, err := d.Resource(gvr("", "v1", "secrets")).Namespace("openshift-ingress").Get(context.Background(), "rhoai-bootstrap-ingress-tls", metav1.GetOptions{})
	require.NoError(t, err)
	data, _, _ := unstructured.NestedString(sec.Object, "data", "tls.crt")
	raw, err := base64Decode(data)
	require.NoError(t, err)
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, raw = pem.Decode(raw)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		require.NoError(t, err)
		certs = append(certs, c)
	}
	require.NotEmpty(t, certs)
	return certs[0], certs[1:]
}

// TestCertificates: one order on the first run, verified against Pebble's issuing root and
// installed on both endpoints; none on a re-run; a renewal once due (clock moved); a new
// order for other names; a clear error and no patch for a bad ACME server.
func TestCertificates(t *testing.T) {
	r := rehearsal(t)
	ctx := context.Background()
	state := filepath.Join(r.WorkDir, "state")
	env := r.Env()
	requireSuccess(t, install(t, r, state, env))
	require.Equal(t, 1, ledgerOrders(t, state))

	leaf, chain := servedCertificate(t, r)
	rootPEM, interPEM, err := r.Bed.ACMEIssuers(ctx)
	require.NoError(t, err)
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(rootPEM))
	inters.AppendCertsFromPEM(interPEM)
	for _, c := range chain {
		inters.AddCert(c)
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, DNSName: "api.rhoai-local.bed.example.com"})
	require.NoError(t, err, "the served certificate chains to Pebble's issuing root")
	_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, DNSName: "console-openshift-console.apps.rhoai-local.bed.example.com"})
	require.NoError(t, err)
	ic, err := dyn(t, r).Resource(gvr("operator.openshift.io", "v1", "ingresscontrollers")).Namespace("openshift-ingress-operator").Get(ctx, "default", metav1.GetOptions{})
	require.NoError(t, err)
	name, _, _ := unstructured.NestedString(ic.Object, "spec", "defaultCertificate", "name")
	assert.Equal(t, "rhoai-bootstrap-ingress-tls", name)
	as, err := dyn(t, r).Resource(gvr("config.openshift.io", "v1", "apiservers")).Get(ctx, "cluster", metav1.GetOptions{})
	require.NoError(t, err)
	nc, _, _ := unstructured.NestedSlice(as.Object, "spec", "servingCerts", "namedCertificates")
	require.Len(t, nc, 1)
	assert.Equal(t, []any{"api.rhoai-local.bed.example.com"}, nc[0].(map[string]any)["names"])

	// A re-run orders nothing.
	requireSuccess(t, install(t, r, state, env))
	assert.Equal(t, 1, ledgerOrders(t, state))

	// Due: the same phase with the clock 80 days ahead renews (in-process, to move the clock).
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	c, err := configs.Load(r.Config())
	require.NoError(t, err)
	store, err := installer.NewLocalStore(state)
	require.NoError(t, err)
	penv := &phases.Env{Cluster: c, WorkDir: state, Timeouts: phases.DefaultTimeouts.Scale(0.05), Counter: &kube.Counter{}}
	kube.PollInterval = 200 * time.Millisecond
	// The clock stands 80 days ahead until the renewal is in the ledger; after that the new
	// certificate is judged at the real time (its own window starts ~60 days from now).
	future := func() time.Time {
		if ledgerOrders(t, state) >= 2 {
			return time.Now()
		}
		return time.Now().Add(80 * 24 * time.Hour)
	}
	runner := &installer.Runner{Phases: graph.Phases(penv, graph.Options{Certificates: certificates.Options{Now: future}}),
		Store: store, Cluster: c.Metadata.Name, Command: "test", Only: []string{"certificates"}}
	plan, err := runner.Plan(ctx)
	require.NoError(t, err)
	for _, e := range plan {
		if e.Phase == "certificates" {
			assert.Equal(t, "would-change", e.State)
			assert.Contains(t, e.Reason, "order: due")
		}
	}
	_, err = runner.Install(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, ledgerOrders(t, state), "renewed once due")
	renewed, _ := servedCertificate(t, r)
	assert.NotEqual(t, leaf.SerialNumber, renewed.SerialNumber)

	// Other names: the same cluster under another name (existing mode, fresh state) orders.
	b, err := os.ReadFile(r.Config())
	require.NoError(t, err)
	doc := strings.Replace(string(b), "name: rhoai-local", "name: rhoai-other", 1)
	doc = strings.Replace(doc, "      zones: [us-east-1a, us-east-1b]\n", "      zones: [us-east-1a, us-east-1b]\n    existing:\n      kubeconfig: ${KUBECONFIG}\n", 1)
	other := filepath.Join(r.WorkDir, "other.yaml")
	require.NoError(t, os.WriteFile(other, []byte(doc), 0o600))
	otherState := filepath.Join(r.WorkDir, "state-other")
	only := []string{"--only", "preflight,cluster,certificates"}
	res := r.Run(ctx, env, append(append([]string{"install", "-f", other}, r.Flags(otherState)...), only...)...)
	requireSuccess(t, res)
	assert.Equal(t, 1, ledgerOrders(t, otherState), "names changed: a new order")
	renamed, _ := servedCertificate(t, r)
	assert.Contains(t, renamed.DNSNames, "api.rhoai-other.bed.example.com")

	// A bad ACME server: a clear error, and no patch or secret changed.
	bad := strings.Replace(doc, "server: ${RHOAI_BED_ACME_DIRECTORY}", "server: https://127.0.0.1:1/dir", 1)
	require.NotEqual(t, doc, bad)
	badFile := filepath.Join(r.WorkDir, "bad.yaml")
	require.NoError(t, os.WriteFile(badFile, []byte(strings.Replace(bad, "name: rhoai-other", "name: rhoai-third", 1)), 0o600))
	since := time.Now()
	res = r.Run(ctx, env, append(append([]string{"install", "-f", badFile}, r.Flags(filepath.Join(r.WorkDir, "state-bad"))...), only...)...)
	assert.Equal(t, 1, res.Code)
	failed := ""
	for _, e := range res.Events {
		if e.Type == "phase-failed" && e.Phase == "certificates" {
			failed = e.Error
		}
	}
	assert.Contains(t, failed, "https://127.0.0.1:1/dir")
	after, _ := servedCertificate(t, r)
	assert.Equal(t, renamed.SerialNumber, after.SerialNumber, "nothing was patched")
	assert.Zero(t, mutatingAuditEvents(t, r, since), "no partial change")
}

func base64Decode(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
