package rootapp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/preflight"
)

// CertificatesApp is the payload's child application that hands the certificates to
// cert-manager (manifests/gitops/components/configs/certificates).
const CertificatesApp = "config-certificates"

// certificatesRoute53Region is where Route53, a global service, is addressed when the
// cluster is not ours on AWS (platform.existing).
const certificatesRoute53Region = "us-east-1"

// CertificatesValues are the per-cluster values of the payload's ClusterCertificates
// object (its spec, field for field).
type CertificatesValues struct {
	APIHost      string `json:"apiHost"`
	AppsWildcard string `json:"appsWildcard"`
	MaaSHost     string `json:"maasHost"`
	ACME         struct {
		Server string `json:"server"`
		Email  string `json:"email"`
	} `json:"acme"`
	Route53 struct {
		HostedZoneID string `json:"hostedZoneID"`
		Region       string `json:"region"`
	} `json:"route53"`
}

// certificatesValues reads the cluster file (and, when it names no hosted zone, finds the
// public zone of the base domain, as the certificates phase does).
func (p *phase) certificatesValues(ctx context.Context) (CertificatesValues, error) {
	c := p.env.Cluster
	a := c.Spec.Certificates.ACME
	var v CertificatesValues
	v.APIHost, v.AppsWildcard, v.MaaSHost = c.APIHost(), "*."+c.AppsDomain(), "maas."+c.AppsDomain()
	v.ACME.Server, v.ACME.Email = a.ACMEDirectory(), a.Email
	v.Route53.HostedZoneID, v.Route53.Region = a.Route53.HostedZoneID, certificatesRoute53Region
	if aws := c.Spec.Platform.AWS; aws != nil && aws.Region != "" {
		v.Route53.Region = aws.Region
	}
	if v.Route53.HostedZoneID == "" {
		cfg, err := p.env.AWS(ctx)
		if err != nil {
			return v, err
		}
		if v.Route53.HostedZoneID, err = preflight.FindPublicZone(ctx, cfg, c.Spec.BaseDomain); err != nil {
			return v, err
		}
	}
	return v, nil
}

// kustomizePatch is one entry of an Argo CD Application's spec.source.kustomize.patches.
type kustomizePatch struct {
	Target map[string]string `json:"target"`
	Patch  string            `json:"patch"`
}

func jsonPatch(ops ...map[string]any) (string, error) {
	b, err := json.Marshal(ops)
	return string(b), err
}

// certificatesPatches are the root application's kustomize patches that make the
// payload's certificates this cluster's. Argo CD applies a root application's patches to
// the rendered child Applications; this one gives config-certificates patches of its own,
// which replace the spec of the ClusterCertificates object (and add the ACME server's CA
// for a private server) before that kustomization's replacements copy it into the
// ClusterIssuer and the Certificates. Values come from the cluster file, so nothing
// per-cluster is committed and a changed file changes the cluster on the next run.
// Without spec.certificates the bootstrap orders nothing to hand over: the child
// application is deleted from the rendering ($patch: delete).
func (p *phase) certificatesPatches(ctx context.Context) ([]any, error) {
	target := map[string]string{"group": "argoproj.io", "kind": "Application", "name": CertificatesApp}
	if p.env.Cluster.Spec.Certificates == nil {
		del, err := json.Marshal(map[string]any{"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
			"metadata": map[string]any{"name": CertificatesApp, "namespace": "openshift-gitops"}, "$patch": "delete"})
		if err != nil {
			return nil, err
		}
		return []any{kustomizePatch{Target: target, Patch: string(del)}}, nil
	}
	v, err := p.certificatesValues(ctx)
	if err != nil {
		return nil, fmt.Errorf("the payload's certificate values: %w", err)
	}
	values, err := jsonPatch(map[string]any{"op": "replace", "path": "/spec", "value": v})
	if err != nil {
		return nil, err
	}
	child := []kustomizePatch{{Target: map[string]string{"group": "rhoai-bootstrap.io", "kind": "ClusterCertificates", "name": "cluster"}, Patch: values}}
	if f := p.env.Cluster.Spec.Certificates.ACME.CABundleFile; f != "" {
		ca, err := caBundle(f)
		if err != nil {
			return nil, err
		}
		op, err := jsonPatch(map[string]any{"op": "add", "path": "/spec/acme/caBundle", "value": ca})
		if err != nil {
			return nil, err
		}
		child = append(child, kustomizePatch{Target: map[string]string{"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "rhoai-bootstrap-acme"}, Patch: op})
	}
	root, err := jsonPatch(map[string]any{"op": "add", "path": "/spec/source/kustomize", "value": map[string]any{"patches": child}})
	if err != nil {
		return nil, err
	}
	return []any{kustomizePatch{Target: target, Patch: root}}, nil
}

// caBundle is a private ACME server's CA as the ClusterIssuer's spec.acme.caBundle wants
// it: base64 of the PEM file.
func caBundle(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading spec.certificates.acme.caBundleFile: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}
