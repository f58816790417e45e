package certificates

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/kube"
)

// bundle is a private key and its chain (leaf first), as PEM.
type bundle struct {
	Key, Chain []byte
}

// parse returns the leaf and the issuers that follow it.
func (b bundle) parse() (*x509.Certificate, []*x509.Certificate, error) {
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
			return nil, nil, fmt.Errorf("parsing the certificate chain: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, nil, errors.New("no certificate in the chain")
	}
	if len(b.Key) == 0 {
		return nil, nil, errors.New("no private key")
	}
	return certs[0], certs[1:], nil
}

// pemFile is the side-file form of a bundle: key first, then the chain.
func (b bundle) pemFile() []byte { return slices.Concat(b.Key, b.Chain) }

// splitPEM reads a side file back into a bundle.
func splitPEM(data []byte) (bundle, error) {
	var out bundle
	rest := data
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
		return bundle{}, errors.New("incomplete certificate file")
	}
	return out, nil
}

func serialOf(c *x509.Certificate) string { return fmt.Sprintf("%x", c.SerialNumber) }

// tlsSecret is one of our TLS secrets. The same certificate and key go to both endpoints.
// It carries cert-manager's annotations for the payload's Certificate of the same name,
// so cert-manager takes it over without ordering (handoff.go).
func tlsSecret(namespace, name string, b bundle) *unstructured.Unstructured {
	meta := map[string]any{
		"name": name, "namespace": namespace,
		"labels": map[string]any{"app.kubernetes.io/managed-by": "rhoai-bootstrap", cmPartOfLabel: "true"},
	}
	if leaf, _, err := b.parse(); err == nil {
		if a, err := handOffMetadata(name, leaf); err == nil {
			meta["annotations"] = a
		}
	}
	return kube.Obj("v1", "Secret", namespace, name, map[string]any{
		"metadata": meta,
		"type":     string(corev1.SecretTypeTLS),
		"data": map[string]any{
			corev1.TLSCertKey:       b64(b.Chain),
			corev1.TLSPrivateKeyKey: b64(b.Key),
		},
	})
}

// secrets are both TLS secrets.
func secrets(b bundle) []*unstructured.Unstructured {
	return []*unstructured.Unstructured{tlsSecret(IngressNS, IngressSecret, b), tlsSecret(ConfigNS, APISecret, b)}
}

// ingressPatch is what we server-side-apply to the default IngressController: only the
// field we own.
func ingressPatch(secret string) *unstructured.Unstructured {
	spec := map[string]any{}
	if secret != "" {
		spec["defaultCertificate"] = map[string]any{"name": secret}
	}
	return kube.Obj("operator.openshift.io/v1", "IngressController", operatorNS, "default", map[string]any{"spec": spec})
}

// namedCert is our entry in apiserver/cluster's spec.servingCerts.namedCertificates.
func namedCert(host string) map[string]any {
	return map[string]any{"names": []any{host}, "servingCertificate": map[string]any{"name": APISecret}}
}

func entryNames(e any) []string {
	m, _ := e.(map[string]any)
	l, _ := m["names"].([]any)
	out := make([]string, 0, len(l))
	for _, n := range l {
		if s, ok := n.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func entrySecret(e any) string {
	m, _ := e.(map[string]any)
	sc, _ := m["servingCertificate"].(map[string]any)
	s, _ := sc["name"].(string)
	return s
}

func isOurs(e any) bool { return entrySecret(e) == APISecret }

// mergeNamedCerts puts our entry for host into the API server's named certificates and
// keeps the others. An entry of someone else's that also serves host would make the API
// server's choice ambiguous: host is taken out of its names (the entry goes when host was
// its only name); the inventory keeps the original so destroy can put it back.
func mergeNamedCerts(live []any, host string) []any {
	var out []any
	for _, e := range live {
		if isOurs(e) {
			continue
		}
		names := entryNames(e)
		if !slices.Contains(names, host) {
			out = append(out, e)
			continue
		}
		rest := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == host })
		if len(rest) == 0 {
			continue
		}
		m := deepCopy(e)
		m["names"] = toAny(rest)
		out = append(out, m)
	}
	return append(out, namedCert(host))
}

func isSubset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func sameList(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if _, ok := kube.Subset(a[i], b[i], ""); !ok {
			return false
		}
		if _, ok := kube.Subset(b[i], a[i], ""); !ok {
			return false
		}
	}
	return true
}

func namedCertsOf(u *unstructured.Unstructured) []any {
	if u == nil {
		return nil
	}
	l, _, _ := unstructured.NestedSlice(u.Object, "spec", "servingCerts", "namedCertificates")
	return l
}

func deepCopy(e any) map[string]any {
	m, _ := e.(map[string]any)
	return runtime.DeepCopyJSON(m)
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// trustRoot adds root to the certificate-authority-data of every cluster in a kubeconfig
// that carries inline CA data (the installer's kubeconfig does), so our own client keeps
// trusting the API server once it serves the new certificate. Clusters that trust the
// system roots or a CA file are left alone. It reports whether anything changed.
func trustRoot(kubeconfig []byte, root *x509.Certificate) ([]byte, bool, error) {
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		return nil, false, fmt.Errorf("parsing the saved kubeconfig: %w", err)
	}
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw})
	changed := false
	for _, cl := range cfg.Clusters {
		if len(cl.CertificateAuthorityData) == 0 || bytes.Contains(cl.CertificateAuthorityData, block) {
			continue
		}
		data := bytes.TrimRight(cl.CertificateAuthorityData, "\n")
		cl.CertificateAuthorityData = slices.Concat(data, []byte("\n"), block)
		changed = true
	}
	if !changed {
		return kubeconfig, false, nil
	}
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, false, fmt.Errorf("writing the kubeconfig: %w", err)
	}
	return out, true, nil
}

func ingressCertOf(ic *unstructured.Unstructured) string {
	name, _, _ := unstructured.NestedString(ic.Object, "spec", "defaultCertificate", "name")
	return name
}
