package testbed

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// frontProxyClient is the name kube-apiserver's aggregator presents to extension API
// servers, as kubeadm names it (kubeadm's front-proxy-client certificate).
const frontProxyClient = "front-proxy-client"

// ConfigureFrontProxy gives kube-apiserver what its aggregator needs to proxy to extension
// API servers (the simulated OLM package server), with the flags kubeadm sets
// (kubernetes cmd/kubeadm/app/phases/controlplane/manifests.go getAPIServerCommand): a
// front-proxy CA that extension servers trust, published in
// kube-system/extension-apiserver-authentication, and a client certificate signed by it
// that the aggregator presents with the user in X-Remote-User. envtest sets none of them.
func ConfigureFrontProxy(api *envtest.APIServer, dir string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("front-proxy CA key: %w", err)
	}
	caCert, err := cert.NewSelfSignedCACert(cert.Config{CommonName: "front-proxy-ca"}, caKey)
	if err != nil {
		return fmt.Errorf("front-proxy CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("front-proxy client key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: frontProxyClient},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("front-proxy client certificate: %w", err)
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return err
	}
	caFile := filepath.Join(dir, "front-proxy-ca.crt")
	certFile := filepath.Join(dir, "front-proxy-client.crt")
	keyFile := filepath.Join(dir, "front-proxy-client.key")
	caPEM, err := cert.EncodeCertificates(caCert)
	if err != nil {
		return err
	}
	clientPEM, err := cert.EncodeCertificates(&x509.Certificate{Raw: der})
	if err != nil {
		return err
	}
	if err := cert.WriteCert(caFile, caPEM); err != nil {
		return err
	}
	if err := cert.WriteCert(certFile, clientPEM); err != nil {
		return err
	}
	if err := keyutil.WriteKey(keyFile, keyPEM); err != nil {
		return err
	}
	if err := os.Chmod(keyFile, 0o600); err != nil {
		return err
	}
	api.Configure().
		Set("requestheader-client-ca-file", caFile).
		Set("requestheader-allowed-names", frontProxyClient).
		Set("requestheader-username-headers", "X-Remote-User").
		Set("requestheader-group-headers", "X-Remote-Group").
		Set("requestheader-extra-headers-prefix", "X-Remote-Extra-").
		Set("proxy-client-cert-file", certFile).
		Set("proxy-client-key-file", keyFile)
	return nil
}
