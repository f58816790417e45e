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
	"strings"
	"time"

	"golang.org/x/crypto/acme"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
)

// The simulated cert-manager. What it plays, and what it does not:
//
//   - Certificates: cert-manager's trigger and readiness controllers, with cert-manager's
//     own policy chains deciding. Options.CMJudge is cmjudge (e2e/testbin/_cmjudge), built
//     from cert-manager v1.20.3's module: for each Certificate it evaluates the trigger
//     chain (re-issue?) and the readiness chain against the live Secret and
//     CertificateRequests, and with -set-ready writes Ready, notBefore, notAfter and
//     renewalTime as pkg/controller/certificates/readiness/readiness_controller.go does.
//     When the trigger chain says re-issue, Issuing=True is set with the chain's reason and
//     message, as internal/controller/certificates/trigger/trigger_controller.go ProcessItem
//     does (nothing is done while Issuing is already True).
//   - It does NOT issue: no CertificateRequest, no ACME order, no Secret is written
//     (cert-manager's requestmanager, issuing and ACME order/challenge controllers are not
//     played). A Certificate whose Secret the bootstrap made and cert-manager accepts is
//     Ready; one whose Secret nobody made (the MaaS gateway's) stays Issuing=True and
//     Ready=False with cert-manager's reason DoesNotExist, which Argo CD's Certificate
//     health check reports as Progressing. On a real cluster cert-manager would order it.
//   - ACME ClusterIssuers: pkg/issuer/acme/setup.go Setup, for real against the issuer's
//     spec.acme.server (the bed's Pebble): the account key is read from, or generated (RSA
//     2048, PKCS#1 PEM) into, the privateKeySecretRef Secret in cert-manager's cluster
//     resource namespace; the account is registered (or found) with the ACME server,
//     trusting spec.acme.caBundle; Ready=True ACMEAccountRegistered and status.acme.uri,
//     lastRegisteredEmail, lastPrivateKeyHash are written, or Ready=False
//     ErrRegisterACMEAccount with the error. Other issuer types are left alone.
//
// A real cert-manager controller would need the whole of cert-manager (its cmd/controller
// module, DNS-01 through Route53 on moto, the bed's recursive DNS): not built here yet.

const (
	mgrCertManager = "cert-manager-certificates-trigger"
	mgrIssuers     = "cert-manager-clusterissuers"
	// certManagerNS is cert-manager's --cluster-resource-namespace: the namespace the
	// cert-manager Operator for Red Hat OpenShift deploys cert-manager to, where a
	// ClusterIssuer's Secrets live.
	certManagerNS = "cert-manager"
)

var (
	gvrCertificate   = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "certificates"}
	gvrClusterIssuer = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "clusterissuers"}
)

// CMJudge runs cmjudge against the bed.
type CMJudge struct {
	// Binary is the cmjudge executable; Kubeconfig the bed's.
	Binary, Kubeconfig string
}

// CertificateVerdict is cmjudge's answer for one Certificate (its JSON output).
type CertificateVerdict struct {
	Certificate string `json:"certificate"`
	Reissue     bool   `json:"reissue"`
	Reason      string `json:"reason"`
	Message     string `json:"message"`
	Ready       string `json:"ready"`
	ReadyReason string `json:"readyReason"`
}

// judge runs cmjudge -set-ready for one Certificate.
func (j CMJudge) judge(ctx context.Context, ns, name string) (CertificateVerdict, error) {
	var v CertificateVerdict
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, j.Binary, "-kubeconfig", j.Kubeconfig, "-set-ready", ns+"/"+name)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return v, fmt.Errorf("cmjudge %s/%s: %w: %s", ns, name, err, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return v, fmt.Errorf("cmjudge %s/%s printed %q: %w", ns, name, out, err)
	}
	return v, nil
}

// syncCertificate plays the trigger and readiness controllers for one Certificate
// (key namespace/name; "namespace/*" for every Certificate of a namespace whose Secrets
// changed).
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
		crts, err := s.list(ctx, gvrCertificate, ns)
		if err != nil {
			return 0, err
		}
		for _, c := range crts {
			s.certificates.add(keyOf(&c))
		}
		return 0, nil
	}
	crt, err := s.get(ctx, gvrCertificate, ns, name)
	if err != nil || crt == nil || crt.GetDeletionTimestamp() != nil {
		return 0, err
	}
	// Judge again only when the Certificate's spec or its Secret changed: cmjudge's own
	// status writes must not feed back into this loop.
	secretRV := ""
	if sec, err := s.get(ctx, gvrSecret, ns, nestedStr(crt, "spec", "secretName")); err != nil {
		return 0, err
	} else if sec != nil {
		secretRV = sec.GetResourceVersion()
	}
	seen := fmt.Sprintf("certificate/%s/%d/%s", crt.GetUID(), crt.GetGeneration(), secretRV)
	s.mu.Lock()
	judged := s.judged[key] == seen
	s.mu.Unlock()
	if judged {
		return 0, nil
	}
	v, err := j.judge(ctx, ns, name)
	if err != nil {
		return 0, err
	}
	if v.Reissue {
		err = s.update(ctx, mgrCertManager, gvrCertificate, ns, name, true, func(u *unstructured.Unstructured) (bool, error) {
			if condStatus(u.Object, "Issuing", "status", "conditions") == "True" {
				return false, nil // an issuance is already in progress
			}
			old, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			conds := upsertCond(old, u.GetGeneration(), cond{Type: "Issuing", Status: "True", Reason: v.Reason, Message: v.Message})
			return true, unstructured.SetNestedSlice(u.Object, conds, "status", "conditions")
		})
		if err != nil {
			return 0, err
		}
	}
	s.mu.Lock()
	s.judged[key] = seen
	s.mu.Unlock()
	s.logf("cert-manager: %s reissue=%v (%s) ready=%s (%s)", key, v.Reissue, v.Reason, v.Ready, v.ReadyReason)
	return 0, nil
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
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if skip, _ := spec["skipTLSVerify"].(bool); skip {
		tr.TLSClientConfig.InsecureSkipVerify = true
	}
	if ca := str(spec["caBundle"]); ca != "" {
		pemCA, err := base64.StdEncoding.DecodeString(ca)
		if err != nil {
			return nil, "", fmt.Errorf("spec.acme.caBundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemCA) {
			return nil, "", errors.New("spec.acme.caBundle holds no PEM certificate")
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	cl := &acme.Client{Key: key, DirectoryURL: str(spec["server"]), HTTPClient: &http.Client{Transport: tr, Timeout: 30 * time.Second}, UserAgent: "cert-manager-simulated"}
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
