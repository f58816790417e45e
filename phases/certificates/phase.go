// Package certificates is the certificates phase: one Let's Encrypt (or any ACME) order,
// by DNS-01 on Route53, for api.<cluster>.<domain> and *.apps.<cluster>.<domain>,
// installed on the ingress controller and the API server.
//
// One order with both names, not one per endpoint: the duplicate-certificate rate limit
// (5 per exact set of names per week) then has one bucket to watch instead of two, each
// run makes one set of DNS-01 challenges, and renewal tracks one certificate. The same
// certificate and key go into both TLS secrets.
//
// It never orders needlessly: Check reads the certificate the cluster serves (our TLS
// secret) and reuses it unless the names changed, it came from another ACME server, or it
// is due (ARI, else a third of its lifetime left). A certificate ordered by a run that was
// killed before installing it is kept in a 0600 side file (acme/pending.pem) and installed
// by the next run instead of ordering again.
package certificates

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/kube"
)

// Names of what the phase makes.
const (
	Name          = "certificates"
	IngressNS     = "openshift-ingress"
	IngressSecret = "rhoai-bootstrap-ingress-tls"
	ConfigNS      = "openshift-config"
	APISecret     = "rhoai-bootstrap-api-tls"
	operatorNS    = "openshift-ingress-operator"
	rolloutGrace  = time.Minute
)

var (
	icGVK = kube.GVK("operator.openshift.io/v1", "IngressController")
	asGVK = kube.GVK("config.openshift.io/v1", "APIServer")
)

// Options tune the phase from the command line.
type Options struct {
	// ForceRenew orders even when the installed certificate is not due.
	ForceRenew bool
	// Now is the clock (time.Now when nil); tests move it to make a certificate due.
	Now func() time.Time
	// afterOrder is a test hook run right after a certificate was obtained and saved.
	afterOrder func() error
}

type phase struct {
	env  *phases.Env
	opts Options
}

// New returns the certificates phase.
func New(env *phases.Env, opts Options) installer.Phase { return &phase{env: env, opts: opts} }

func (p *phase) Name() string        { return Name }
func (p *phase) DependsOn() []string { return []string{"cluster"} }

func (p *phase) acme() configs.ACME { return p.env.Cluster.Spec.Certificates.ACME }

func (p *phase) now() time.Time {
	if p.opts.Now != nil {
		return p.opts.Now()
	}
	return time.Now()
}

// pemBundle is a key and its chain (leaf first).
type pemBundle struct {
	Key, Chain []byte
}

func (b pemBundle) leaf() (*x509.Certificate, []*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := b.Chain
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("parsing certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, nil, errors.New("no certificate in the chain")
	}
	return certs[0], certs[1:], nil
}

func serialOf(c *x509.Certificate) string { return fmt.Sprintf("%x", c.SerialNumber) }

// installed reads our ingress TLS secret and judges where it came from.
func (p *phase) installed(ctx context.Context, s *installer.Scope, c *kube.Clients) (*Installed, *pemBundle, error) {
	sec, err := c.Typed.CoreV1().Secrets(IngressNS).Get(ctx, IngressSecret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading the ingress certificate: %w", err)
	}
	b := &pemBundle{Key: sec.Data[corev1.TLSPrivateKeyKey], Chain: sec.Data[corev1.TLSCertKey]}
	leaf, issuers, err := b.leaf()
	if err != nil {
		return nil, nil, nil // unreadable: order a new one
	}
	var ledger []Order
	if _, err := s.Get("ledger", &ledger); err != nil {
		return nil, nil, err
	}
	fromCA := slices.ContainsFunc(ledger, func(o Order) bool {
		return o.Serial == serialOf(leaf) && o.Server == p.acme().ACMEDirectory()
	})
	if fromCA && len(issuers) > 0 {
		fromCA = leaf.CheckSignatureFrom(issuers[0]) == nil
	}
	return &Installed{Leaf: leaf, FromConfiguredCA: fromCA}, b, nil
}

type view struct {
	decision Decision
	current  *pemBundle
	pending  *pemBundle
	changes  []installer.Change
}

func (p *phase) observe(ctx context.Context, s *installer.Scope, c *kube.Clients) (*view, error) {
	v := &view{}
	names := Names(p.env.Cluster)
	if b, err := s.GetFile(ctx, pendingFile); err == nil {
		pb, perr := splitPEM(b)
		if perr == nil {
			if leaf, _, err := pb.leaf(); err == nil && sameNames(leaf.DNSNames, names) && p.now().Before(leaf.NotAfter) {
				v.pending = pb
				v.changes = append(v.changes, installer.Change{Action: installer.Update, Target: "TLS secrets", Detail: "install certificate " + serialOf(leaf) + " ordered by an interrupted run"})
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	cur, b, err := p.installed(ctx, s, c)
	if err != nil {
		return nil, err
	}
	v.current = b
	var ari *Window
	if cur != nil && cur.Leaf != nil && cur.FromConfiguredCA {
		if lc, _, err := p.client(ctx, s, false); err == nil && lc != nil {
			ari = renewalWindow(ctx, lc, cur.Leaf)
		}
	}
	v.decision = Decide(p.now(), names, cur, ari)
	if p.opts.ForceRenew && !v.decision.Order && v.pending == nil {
		v.decision = Decision{Order: true, Reason: "order: renewal forced (--force)"}
	}
	if v.pending == nil && v.decision.Order {
		v.changes = append(v.changes, installer.Change{Action: installer.Run, Target: "ACME order for " + fmt.Sprint(names), Detail: v.decision.Reason})
	}
	if v.pending == nil && !v.decision.Order {
		// Installed and current: are both secrets and both patches in place?
		ch, err := c.Diff(ctx, p.secrets(*b))
		if err != nil {
			return nil, err
		}
		v.changes = append(v.changes, ch...)
		ch, err = p.patchChanges(ctx, c)
		if err != nil {
			return nil, err
		}
		v.changes = append(v.changes, ch...)
	}
	return v, nil
}

func (p *phase) Check(ctx context.Context, s *installer.Scope) (installer.Status, error) {
	if p.env.Cluster.Spec.Certificates == nil {
		return installer.Done("spec.certificates not set: the cluster keeps its own certificates"), nil
	}
	c, err := p.env.Kube(ctx, s)
	if err != nil {
		return installer.Status{}, err
	}
	v, err := p.observe(ctx, s, c)
	if err != nil {
		return installer.Status{}, err
	}
	if len(v.changes) == 0 {
		return installer.Done(v.decision.Reason), nil
	}
	return installer.Pending(v.decision.Reason, v.changes...), nil
}

func (p *phase) secrets(b pemBundle) []*unstructured.Unstructured {
	mk := func(ns, name string) *unstructured.Unstructured {
		sec := &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app.kubernetes.io/managed-by": "rhoai-bootstrap"}},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{corev1.TLSCertKey: b.Chain, corev1.TLSPrivateKeyKey: b.Key},
		}
		m, _ := kube.FromJSONish(sec)
		delete(m["metadata"].(map[string]any), "creationTimestamp")
		return &unstructured.Unstructured{Object: m}
	}
	return []*unstructured.Unstructured{mk(IngressNS, IngressSecret), mk(ConfigNS, APISecret)}
}

func (p *phase) ingressPatch() *unstructured.Unstructured {
	return kube.Obj("operator.openshift.io/v1", "IngressController", operatorNS, "default", map[string]any{
		"spec": map[string]any{"defaultCertificate": map[string]any{"name": IngressSecret}},
	})
}

func (p *phase) namedCert() map[string]any {
	return map[string]any{"names": []any{p.env.Cluster.APIHost()}, "servingCertificate": map[string]any{"name": APISecret}}
}

func namedCerts(as *unstructured.Unstructured) []any {
	l, _, _ := unstructured.NestedSlice(as.Object, "spec", "servingCerts", "namedCertificates")
	return l
}

func isOurs(e any) bool {
	m, _ := e.(map[string]any)
	sc, _ := m["servingCertificate"].(map[string]any)
	return sc != nil && sc["name"] == APISecret
}

func (p *phase) patchChanges(ctx context.Context, c *kube.Clients) ([]installer.Change, error) {
	ch, err := c.Diff(ctx, []*unstructured.Unstructured{p.ingressPatch()})
	if err != nil {
		return nil, err
	}
	as, err := c.Get(ctx, asGVK, "", "cluster")
	if err != nil {
		return nil, err
	}
	if as == nil {
		return nil, errors.New("apiserver.config.openshift.io/cluster does not exist: is this an OpenShift cluster?")
	}
	found := false
	for _, e := range namedCerts(as) {
		if _, same := kube.Subset(p.namedCert(), e, ""); same {
			found = true
		}
	}
	if !found {
		ch = append(ch, installer.Change{Action: installer.Update, Target: "APIServer cluster", Detail: "named certificate for " + p.env.Cluster.APIHost()})
	}
	return ch, nil
}

func (p *phase) Apply(ctx context.Context, s *installer.Scope) error {
	c, err := p.env.Kube(ctx, s)
	if err != nil {
		return err
	}
	v, err := p.observe(ctx, s, c)
	if err != nil {
		return err
	}
	bundle := v.pending
	if bundle == nil && v.decision.Order {
		if bundle, err = p.order(ctx, s); err != nil {
			return err
		}
	}
	if bundle == nil {
		bundle = v.current
	}
	if err := p.recordPrevious(ctx, s, c); err != nil {
		return err
	}
	changedAt := time.Now()
	if err := c.Apply(ctx, s, p.secrets(*bundle)...); err != nil {
		return err
	}
	if err := c.Apply(ctx, s, p.ingressPatch()); err != nil {
		return err
	}
	if err := p.mergeNamedCert(ctx, s, c); err != nil {
		return err
	}
	for _, op := range []string{"ingress", "kube-apiserver"} {
		if err := c.WaitRollout(ctx, s, op, changedAt, p.env.Timeouts.Rollout, rolloutGrace); err != nil {
			return err
		}
	}
	if err := p.trustChain(ctx, s, *bundle); err != nil {
		return err
	}
	leaf, _, _ := bundle.leaf()
	if err := s.Put(ctx, "installed", map[string]any{"serial": serialOf(leaf), "notAfter": leaf.NotAfter}); err != nil {
		return err
	}
	return s.DeleteFile(ctx, pendingFile)
}

// order obtains a certificate, saves it (key included) in a 0600 side file before
// anything else, and records it in the ledger.
func (p *phase) order(ctx context.Context, s *installer.Scope) (*pemBundle, error) {
	var ledger []Order
	if _, err := s.Get("ledger", &ledger); err != nil {
		return nil, err
	}
	names := Names(p.env.Cluster)
	server := p.acme().ACMEDirectory()
	if err := checkRateLimit(ledger, names, server, p.now()); err != nil {
		return nil, err
	}
	lc, _, err := p.client(ctx, s, true)
	if err != nil {
		return nil, err
	}
	res, err := p.obtain(ctx, s, lc, names)
	if err != nil {
		return nil, err
	}
	b := &pemBundle{Key: res.PrivateKey, Chain: res.Certificate}
	if err := s.PutFile(ctx, pendingFile, append(append([]byte{}, b.Key...), b.Chain...)); err != nil {
		return nil, err
	}
	leaf, _, err := b.leaf()
	if err != nil {
		return nil, err
	}
	ledger = append(ledger, Order{Time: time.Now().UTC(), Names: names, Serial: serialOf(leaf), NotAfter: leaf.NotAfter, Server: server, IssuerSubject: leaf.Issuer.String()})
	if err := s.Put(ctx, "ledger", ledger); err != nil {
		return nil, err
	}
	s.Changed(installer.Change{Action: installer.Create, Target: "certificate " + serialOf(leaf), Detail: "valid until " + leaf.NotAfter.UTC().Format(time.RFC3339)})
	if p.opts.afterOrder != nil {
		if err := p.opts.afterOrder(); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// splitPEM separates the key block from the certificate blocks of a side file.
func splitPEM(b []byte) (*pemBundle, error) {
	out := &pemBundle{}
	rest := b
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		enc := pem.EncodeToMemory(block)
		if block.Type == "CERTIFICATE" {
			out.Chain = append(out.Chain, enc...)
		} else {
			out.Key = append(out.Key, enc...)
		}
	}
	if len(out.Key) == 0 || len(out.Chain) == 0 {
		return nil, errors.New("incomplete certificate file")
	}
	return out, nil
}

// recordPrevious keeps what the ingress controller and API server used before our first
// patch, so destroy can restore it.
func (p *phase) recordPrevious(ctx context.Context, s *installer.Scope, c *kube.Clients) error {
	var done bool
	if ok, _ := s.Get("previousRecorded", &done); ok && done {
		return nil
	}
	ic, err := c.Get(ctx, icGVK, operatorNS, "default")
	if err != nil {
		return err
	}
	prevIngress := ""
	if ic != nil {
		prevIngress, _, _ = unstructured.NestedString(ic.Object, "spec", "defaultCertificate", "name")
	}
	if prevIngress == IngressSecret {
		prevIngress = ""
	}
	if err := s.Put(ctx, "previousIngressCertificate", prevIngress); err != nil {
		return err
	}
	return s.Put(ctx, "previousRecorded", true)
}

// mergeNamedCert puts our entry into apiserver/cluster's namedCertificates, keeping the
// others; the list is atomic, so this is an update guarded by resourceVersion.
func (p *phase) mergeNamedCert(ctx context.Context, s *installer.Scope, c *kube.Clients) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		as, err := c.Get(ctx, asGVK, "", "cluster")
		if err != nil || as == nil {
			return err
		}
		list := namedCerts(as)
		var out []any
		for _, e := range list {
			if _, same := kube.Subset(p.namedCert(), e, ""); same {
				return nil
			}
			if !isOurs(e) {
				out = append(out, e)
			}
		}
		out = append(out, p.namedCert())
		if err := unstructured.SetNestedSlice(as.Object, out, "spec", "servingCerts", "namedCertificates"); err != nil {
			return err
		}
		ri, err := c.Resource(asGVK, "")
		if err != nil {
			return err
		}
		if _, err := ri.Update(ctx, as, metav1.UpdateOptions{FieldManager: kube.FieldManager}); err != nil {
			return err
		}
		s.Changed(installer.Change{Action: installer.Update, Target: "APIServer cluster", Detail: "named certificate for " + p.env.Cluster.APIHost()})
		return nil
	})
}

// trustChain adds the new chain's issuers to the saved kubeconfig's CA data, so our own
// connection keeps working once the API server serves the new certificate, then checks it.
func (p *phase) trustChain(ctx context.Context, s *installer.Scope, b pemBundle) error {
	if !p.env.Cluster.Installs() {
		return nil
	}
	raw, err := s.GetFile(ctx, phases.KubeconfigFile)
	if err != nil {
		return fmt.Errorf("reading the saved kubeconfig: %w", err)
	}
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		return fmt.Errorf("parsing the saved kubeconfig: %w", err)
	}
	_, issuers, err := b.leaf()
	if err != nil {
		return err
	}
	changed := false
	for _, cl := range cfg.Clusters {
		for _, iss := range issuers {
			block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: iss.Raw})
			if len(cl.CertificateAuthorityData) > 0 && !bytes.Contains(cl.CertificateAuthorityData, block) {
				cl.CertificateAuthorityData = append(append(cl.CertificateAuthorityData, '\n'), block...)
				changed = true
			}
		}
	}
	if changed {
		out, err := clientcmd.Write(*cfg)
		if err != nil {
			return err
		}
		if err := s.PutFile(ctx, phases.KubeconfigFile, out); err != nil {
			return err
		}
		// The installer's copy is the one people use (KUBECONFIG=…/auth/kubeconfig).
		if err := os.WriteFile(filepath.Join(p.env.InstallerDir(), "auth", "kubeconfig"), out, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		p.env.ResetKube()
		s.Progress("kubeconfig now also trusts the new certificate's issuer")
	}
	c, err := p.env.Kube(ctx, s)
	if err != nil {
		return err
	}
	if _, err := c.Typed.Discovery().ServerVersion(); err != nil {
		return fmt.Errorf("after installing the API certificate our kubeconfig no longer connects: %w", err)
	}
	return nil
}

// Destroy restores the ingress controller's and API server's previous certificates,
// removes our secrets and, with --revoke, revokes the certificate.
func (p *phase) Destroy(ctx context.Context, s *installer.Scope) error {
	c, gone, err := p.env.KubeForDestroy(ctx, s)
	if err != nil || gone {
		return err
	}
	if p.env.Revoke && p.env.Cluster.Spec.Certificates != nil {
		if _, b, err := p.installed(ctx, s, c); err == nil && b != nil {
			if lc, _, err := p.client(ctx, s, false); err == nil && lc != nil {
				reason := uint(4) // superseded
				if err := lc.Certificate.RevokeWithReason(ctx, b.Chain, &reason); err != nil {
					return fmt.Errorf("revoking the certificate: %w", err)
				}
				s.Changed(installer.Change{Action: installer.Delete, Target: "certificate (revoked at the ACME server)"})
			}
		}
	}
	var prev string
	_, _ = s.Get("previousIngressCertificate", &prev)
	ic := kube.Obj("operator.openshift.io/v1", "IngressController", operatorNS, "default", map[string]any{})
	if prev != "" {
		ic.Object["spec"] = map[string]any{"defaultCertificate": map[string]any{"name": prev}}
	}
	// Applying without the field hands it back: SSA removes fields only we owned.
	if live, err := c.Get(ctx, icGVK, operatorNS, "default"); err != nil {
		return err
	} else if live != nil {
		if err := c.ApplyOne(ctx, ic); err != nil {
			return err
		}
		s.Changed(installer.Change{Action: installer.Update, Target: "IngressController default", Detail: "default certificate restored"})
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		as, err := c.Get(ctx, asGVK, "", "cluster")
		if err != nil || as == nil {
			return err
		}
		var out []any
		for _, e := range namedCerts(as) {
			if !isOurs(e) {
				out = append(out, e)
			}
		}
		if len(out) == len(namedCerts(as)) {
			return nil
		}
		if len(out) == 0 {
			unstructured.RemoveNestedField(as.Object, "spec", "servingCerts", "namedCertificates")
		} else if err := unstructured.SetNestedSlice(as.Object, out, "spec", "servingCerts", "namedCertificates"); err != nil {
			return err
		}
		ri, err := c.Resource(asGVK, "")
		if err != nil {
			return err
		}
		_, err = ri.Update(ctx, as, metav1.UpdateOptions{FieldManager: kube.FieldManager})
		return err
	})
	if err != nil {
		return fmt.Errorf("restoring apiserver/cluster: %w", err)
	}
	for _, ref := range [][2]string{{IngressNS, IngressSecret}, {ConfigNS, APISecret}} {
		if _, err := c.Delete(ctx, kube.GVK("v1", "Secret"), ref[0], ref[1], metav1.DeletePropagationBackground); err != nil {
			return err
		}
	}
	for _, k := range []string{"installed", "previousRecorded", "previousIngressCertificate"} {
		if err := s.Put(ctx, k, nil); err != nil {
			return err
		}
	}
	// The ledger and the ACME account stay: rate limits outlive the cluster.
	return s.DeleteFile(ctx, pendingFile)
}
