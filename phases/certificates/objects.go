package certificates

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"

	configv1 "github.com/openshift/api/config/v1"
	operatorv1 "github.com/openshift/api/operator/v1"
	operatorv1ac "github.com/openshift/client-go/operator/applyconfigurations/operator/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
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
func tlsSecret(namespace, name string, b bundle) *kube.Unstructured {
	sec := corev1ac.Secret(name, namespace).
		WithLabels(map[string]string{"app.kubernetes.io/managed-by": "rhoai-bootstrap", cmPartOfLabel: "true"}).
		WithType(corev1.SecretTypeTLS).
		WithData(map[string][]byte{corev1.TLSCertKey: b.Chain, corev1.TLSPrivateKeyKey: b.Key})
	if leaf, _, err := b.parse(); err == nil {
		if a, err := handOffMetadata(name, leaf); err == nil {
			sec.WithAnnotations(a)
		}
	}
	return kube.MustApply(sec)
}

// secrets are both TLS secrets.
func secrets(b bundle) []*kube.Unstructured {
	return []*kube.Unstructured{tlsSecret(IngressNS, IngressSecret, b), tlsSecret(ConfigNS, APISecret, b)}
}

// ingressPatch is what we server-side-apply to the default IngressController: only the
// field we own (none when secret is empty: applying that gives the field up).
func ingressPatch(secret string) *kube.Unstructured {
	spec := operatorv1ac.IngressControllerSpec()
	if secret != "" {
		spec.WithDefaultCertificate(corev1.LocalObjectReference{Name: secret})
	}
	return kube.MustApply(operatorv1ac.IngressController("default", operatorNS).WithSpec(spec))
}

// namedCert is our entry in apiserver/cluster's spec.servingCerts.namedCertificates.
func namedCert(host string) configv1.APIServerNamedServingCert {
	return configv1.APIServerNamedServingCert{Names: []string{host}, ServingCertificate: configv1.SecretNameReference{Name: APISecret}}
}

func isOurs(e configv1.APIServerNamedServingCert) bool { return e.ServingCertificate.Name == APISecret }

// mergeNamedCerts puts our entry for host into the API server's named certificates and
// keeps the others. An entry of someone else's that also serves host would make the API
// server's choice ambiguous: host is taken out of its names (the entry goes when host was
// its only name); the inventory keeps the original so destroy can put it back.
func mergeNamedCerts(live []configv1.APIServerNamedServingCert, host string) []configv1.APIServerNamedServingCert {
	var out []configv1.APIServerNamedServingCert
	for _, e := range live {
		if isOurs(e) {
			continue
		}
		if !slices.Contains(e.Names, host) {
			out = append(out, e)
			continue
		}
		rest := slices.DeleteFunc(slices.Clone(e.Names), func(n string) bool { return n == host })
		if len(rest) == 0 {
			continue
		}
		e.Names = rest
		out = append(out, e)
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

// sameList reports whether two lists of named certificates are the same entries in the
// same order.
func sameList(a, b []configv1.APIServerNamedServingCert) bool {
	return equality.Semantic.DeepEqual(a, b)
}

func namedCertsOf(as *configv1.APIServer) []configv1.APIServerNamedServingCert {
	if as == nil {
		return nil
	}
	return as.Spec.ServingCerts.NamedCertificates
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

func ingressCertOf(ic *operatorv1.IngressController) string {
	if ic.Spec.DefaultCertificate == nil {
		return ""
	}
	return ic.Spec.DefaultCertificate.Name
}
