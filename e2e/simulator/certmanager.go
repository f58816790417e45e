package simulator

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/acme"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/cpulog"
)

// The simulated cert-manager. The real controller cannot be built here as cert-manager ships
// it (its cmd/controller module is not served by the Go module proxy; its library module
// is), so the bed plays cert-manager in two parts:
//
//   - Certificates: cert-manager's own controllers, run by cmjudge (e2e/testbin/_cmjudge,
//     built from cert-manager v1.20.3's library module). For each Certificate whose spec,
//     Secret or CertificateRequests changed, `cmjudge -reconcile` runs once each, as their
//     packages construct them, the trigger (Issuing when the trigger chain says re-issue),
//     key manager (the next private key Secret), request manager (the CertificateRequest
//     with its CSR), CertificateRequest approver, issuing (the Secret, written by
//     cert-manager's pkg/controller/certificates/issuing/internal/secret.go
//     SecretsManager.UpdateData: tls.crt, tls.key, ca.crt when the issuer returned one, the
//     cert-manager.io/* annotations, secretTemplate's labels and annotations; then
//     status.revision, Issuing removed), readiness (Ready, notBefore, notAfter,
//     renewalTime) and revision manager controllers. What they write is cert-manager's
//     code's doing, not ours.
//   - Signing CertificateRequests for ACME ClusterIssuers (acmeissuer.go): what cert-manager's
//     certificaterequests-issuer-acme, acmeorders and acmechallenges controllers do
//     together, played with lego: one ACME order per approved CertificateRequest, for real,
//     against the ClusterIssuer's spec.acme.server (the bed's Pebble), DNS-01 solved through
//     Route53 with the credentials the cloud-credential operator made (cloudcredential.go),
//     via the bed's AWS endpoint, which publishes the TXT record in the DNS Pebble asks. No
//     Order or Challenge objects are made.
//   - ACME ClusterIssuers: pkg/issuer/acme/setup.go Setup, for real against the issuer's
//     spec.acme.server (the bed's Pebble): the account key is read from, or generated (RSA
//     2048, PKCS#1 PEM) into, the privateKeySecretRef Secret in cert-manager's cluster
//     resource namespace; the account is registered (or found) with the ACME server,
//     trusting spec.acme.caBundle; Ready=True ACMEAccountRegistered and status.acme.uri,
//     lastRegisteredEmail, lastPrivateKeyHash are written, or Ready=False
//     ErrRegisterACMEAccount with the error. Other issuer types are left alone.
//
// Time-based renewal is not played (nothing re-runs a Certificate at its renewalTime), and
// nothing here serves cert-manager's webhook or its cainjector.

const (
	mgrIssuers = "cert-manager-clusterissuers"
	// certManagerNS is cert-manager's --cluster-resource-namespace: the namespace the
	// cert-manager Operator for Red Hat OpenShift deploys cert-manager to, where a
	// ClusterIssuer's Secrets live.
	certManagerNS = "cert-manager"
)

var (
	gvrCertificate        = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "certificates"}
	gvrCertificateRequest = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "certificaterequests"}
	gvrClusterIssuer      = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "clusterissuers"}
)

// CMJudge runs cmjudge against the bed.
type CMJudge struct {
	// Binary is the cmjudge executable; Kubeconfig the bed's.
	Binary, Kubeconfig string
}

// CertificateVerdict is cmjudge's answer for one Certificate (its JSON output).
type CertificateVerdict struct {
	Certificate  string `json:"certificate"`
	Reissue      bool   `json:"reissue"`
	Reason       string `json:"reason"`
	Message      string `json:"message"`
	Ready        string `json:"ready"`
	ReadyReason  string `json:"readyReason"`
	PostIssuance string `json:"postIssuance"`
}

// reconcile runs cert-manager's certificates controllers once for one Certificate, then
// returns cert-manager's verdict on it.
func (j CMJudge) reconcile(ctx context.Context, ns, name string) (CertificateVerdict, error) {
	var v CertificateVerdict
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, j.Binary, "-kubeconfig", j.Kubeconfig, "-reconcile", ns+"/"+name)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	cpulog.Exited("cmjudge (cert-manager's controllers)", cmd.ProcessState)
	if err != nil {
		return v, fmt.Errorf("cmjudge -reconcile %s/%s: %w: %s", ns, name, err, lastLines(stderr.String(), 5))
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return v, fmt.Errorf("cmjudge %s/%s printed %q: %w", ns, name, out, err)
	}
	return v, nil
}

// lastLines keeps the end of a long log.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// syncCertificate runs cert-manager's certificates controllers for one Certificate (key
// namespace/name; "namespace/*" for every Certificate of a namespace whose Secrets
// changed) when what they read changed: its spec, its Secret, its CertificateRequests.
func (s *Simulator) syncCertificate(ctx context.Context, key string) (time.Duration, error) {
	j := s.options().CMJudge
	if j == nil {
		return 0, nil
	}
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	if name == allKey {
		return 0, s.enqueueAll(ctx, s.certificates, gvrCertificate, ns)
	}
	crt, err := s.get(ctx, gvrCertificate, ns, name)
	if err != nil || crt == nil || crt.GetDeletionTimestamp() != nil {
		return 0, err
	}
	seen, err := s.certificateInputs(ctx, crt)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	done := s.judged[key] == seen
	s.mu.Unlock()
	if done {
		return 0, nil
	}
	v, err := j.reconcile(ctx, ns, name)
	if err != nil {
		return 0, err
	}
	// What the controllers wrote changes the inputs, so they run once more and find
	// nothing to do (level-triggered, as their own work queues would re-run them).
	s.mu.Lock()
	s.judged[key] = seen
	s.mu.Unlock()
	s.logf("cert-manager: %s reissue=%v (%s) ready=%s (%s)", key, v.Reissue, v.Reason, v.Ready, v.ReadyReason)
	return 0, nil
}

// certificateInputs fingerprints what cert-manager's certificates controllers read of a
// Certificate: the Certificate itself, its Secret, and the Secrets and CertificateRequests
// it owns. A run that writes nothing leaves it unchanged, which ends the loop.
func (s *Simulator) certificateInputs(ctx context.Context, crt *unstructured.Unstructured) (string, error) {
	parts := []string{string(crt.GetUID()), crt.GetResourceVersion()}
	secretName := nestedStr(crt, "spec", "secretName")
	secs, err := s.list(ctx, gvrSecret, crt.GetNamespace())
	if err != nil {
		return "", err
	}
	for _, sec := range secs {
		if sec.GetName() == secretName || ownedBy(&sec, crt) {
			parts = append(parts, "secret/"+sec.GetName()+"="+sec.GetResourceVersion())
		}
	}
	reqs, err := s.list(ctx, gvrCertificateRequest, crt.GetNamespace())
	if err != nil {
		return "", err
	}
	for _, r := range reqs {
		if ownedBy(&r, crt) {
			parts = append(parts, "request/"+r.GetName()+"="+r.GetResourceVersion())
		}
	}
	slices.Sort(parts[2:])
	return strings.Join(parts, " "), nil
}

// ownedBy reports whether owner is u's controller.
func ownedBy(u, owner *unstructured.Unstructured) bool {
	for _, o := range u.GetOwnerReferences() {
		if o.Controller != nil && *o.Controller && o.UID == owner.GetUID() {
			return true
		}
	}
	return false
}

// upsertCond sets c among old conditions, keeping the others (cert-manager's
// apiutil.SetCertificateCondition: lastTransitionTime kept while the status is unchanged).
func upsertCond(old []any, generation int64, c cond) []any {
	out := make([]any, 0, len(old)+1)
	set := metaConds(old, generation, c)[0]
	found := false
	for _, item := range old {
		if m, ok := item.(map[string]any); ok && m["type"] == c.Type {
			out, found = append(out, set), true
			continue
		}
		out = append(out, item)
	}
	if !found {
		out = append(out, set)
	}
	return out
}

// syncClusterIssuer plays cert-manager's ACME issuer Setup (pkg/issuer/acme/setup.go) for
// one ClusterIssuer.
func (s *Simulator) syncClusterIssuer(ctx context.Context, name string) (time.Duration, error) {
	iss, err := s.get(ctx, gvrClusterIssuer, "", name)
	if err != nil || iss == nil || iss.GetDeletionTimestamp() != nil {
		return 0, err
	}
	spec, ok, _ := unstructured.NestedMap(iss.Object, "spec", "acme")
	if !ok {
		return 0, nil // only ACME issuers are played
	}
	if conds, _, _ := unstructured.NestedSlice(iss.Object, "status", "conditions"); readyFor(conds, iss.GetGeneration()) {
		return 0, nil
	}
	status, reason, msg := "True", "ACMEAccountRegistered", "The ACME account was registered with the ACME server"
	acc, hash, err := s.registerACMEAccount(ctx, spec)
	retry := time.Duration(0)
	if err != nil {
		status, reason, msg = "False", "ErrRegisterACMEAccount", "Failed to register ACME account: "+err.Error()
		retry = 30 * time.Second
	}
	email := str(spec["email"])
	err = s.update(ctx, mgrIssuers, gvrClusterIssuer, "", name, true, func(u *unstructured.Unstructured) (bool, error) {
		old, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		st, _, _ := unstructured.NestedMap(u.Object, "status")
		if st == nil {
			st = map[string]any{}
		}
		before := fingerprint(st)
		st["conditions"] = upsertCond(old, u.GetGeneration(), cond{Type: "Ready", Status: status, Reason: reason, Message: msg})
		if acc != nil {
			st["acme"] = map[string]any{"uri": acc.URI, "lastRegisteredEmail": email, "lastPrivateKeyHash": hash}
		}
		if fingerprint(st) == before {
			return false, nil
		}
		u.Object["status"] = st
		return true, nil
	})
	s.logf("cert-manager: ClusterIssuer %s Ready=%s %s", name, status, msg)
	return retry, err
}

// readyFor reports whether conds hold Ready=True observed at generation.
func readyFor(conds []any, generation int64) bool {
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Ready" && m["status"] == "True" {
			g, _ := m["observedGeneration"].(int64)
			return g == generation
		}
	}
	return false
}

// registerACMEAccount gets or makes the account key and registers it with the ACME
// server (or finds the account that key already has), as Setup's registerAccount does.
func (s *Simulator) registerACMEAccount(ctx context.Context, spec map[string]any) (*acme.Account, string, error) {
	key, err := s.acmeAccountKey(ctx, spec)
	if err != nil {
		return nil, "", err
	}
	hc, err := acmeHTTPClient(spec)
	if err != nil {
		return nil, "", err
	}
	cl := &acme.Client{Key: key, DirectoryURL: str(spec["server"]), HTTPClient: hc, UserAgent: acmeUserAgent}
	var contact []string
	if e := str(spec["email"]); e != "" {
		contact = []string{"mailto:" + strings.ToLower(e)}
	}
	acc, err := cl.Register(ctx, &acme.Account{Contact: contact}, acme.AcceptTOS)
	if errors.Is(err, acme.ErrAccountAlreadyExists) {
		acc, err = cl.GetReg(ctx, "")
	}
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(x509.MarshalPKCS1PrivateKey(key))
	return acc, base64.StdEncoding.EncodeToString(sum[:]), nil
}

// acmeUserAgent is how the simulated cert-manager introduces itself to the ACME server.
const acmeUserAgent = "cert-manager-simulated"

// acmeHTTPClient is an ClusterIssuer's HTTP client for its ACME server: trusting
// spec.acme.caBundle when set, or nothing at all with skipTLSVerify, as
// pkg/acme/accounts/client.go NewClient builds it.
func acmeHTTPClient(spec map[string]any) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if skip, _ := spec["skipTLSVerify"].(bool); skip {
		tr.TLSClientConfig.InsecureSkipVerify = true
	}
	if ca := str(spec["caBundle"]); ca != "" {
		pemCA, err := base64.StdEncoding.DecodeString(ca)
		if err != nil {
			return nil, fmt.Errorf("spec.acme.caBundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemCA) {
			return nil, errors.New("spec.acme.caBundle holds no PEM certificate")
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// acmeAccountKey reads the issuer's account key, or generates one into its Secret as
// createAccountPrivateKey does (pki.MinRSAKeySize = 2048, PKCS#1, label managed-by).
func (s *Simulator) acmeAccountKey(ctx context.Context, spec map[string]any) (*rsa.PrivateKey, error) {
	ref, _ := spec["privateKeySecretRef"].(map[string]any)
	name, field := str(ref["name"]), str(ref["key"])
	if field == "" {
		field = "tls.key"
	}
	if name == "" {
		return nil, errors.New("spec.acme.privateKeySecretRef.name is empty")
	}
	sec, err := s.typed.CoreV1().Secrets(certManagerNS).Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		blk, _ := pem.Decode(sec.Data[field])
		if blk == nil {
			return nil, fmt.Errorf("Account private key is invalid: no PEM in %s/%s %s", certManagerNS, name, field)
		}
		return x509.ParsePKCS1PrivateKey(blk.Bytes)
	}
	// The operator made cert-manager's namespace when it deployed cert-manager.
	if _, err := s.create(ctx, gvrNamespace, mgrIssuers, objWith("v1", "Namespace", "", certManagerNS)); err != nil {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	sec2 := objWith("v1", "Secret", certManagerNS, name)
	sec2.SetLabels(map[string]string{"app.kubernetes.io/managed-by": "cert-manager"})
	sec2.Object["data"] = map[string]any{field: base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))}
	if _, err := s.create(ctx, gvrSecret, mgrIssuers, sec2); err != nil {
		return nil, err
	}
	return s.acmeAccountKey(ctx, spec) // the stored key wins a race with another writer
}

func objWith(apiVersion, kind, ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind}}
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}
