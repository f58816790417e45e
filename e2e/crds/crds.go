// Package crds holds the CustomResourceDefinitions that the local test bed
// needs but that no Go module or shared folder serves: the OpenShift GitOps
// operator's ArgoCD kind, and (for the payload's dry-run test) the Open Data
// Hub kinds it was written against before the real ones were at hand.
//
// They are deliberately minimal: each schema covers the fields that
// rhoai-bootstrap and its GitOps payload set, so that typos are rejected by
// the API server exactly as on a real cluster, and falls back to
// x-kubernetes-preserve-unknown-fields only where the real schema is too
// large to be worth copying.
package crds

import (
	"embed"
	"io/fs"
)

//go:embed *.yaml
var files embed.FS

// OpenDataHub lists the embedded files with the OpenDataHub / OpenShift AI
// CRDs, which a real cluster gets when the OpenShift AI operator is installed.
var OpenDataHub = []string{
	"datasciencecluster.yaml",
	"dscinitialization.yaml",
	"hardwareprofile.yaml",
	"acceleratorprofile.yaml",
}

// GitOps lists the embedded files with the CRDs that the OpenShift GitOps
// operator ships besides Argo CD's own (Application, AppProject), which come
// from the Argo CD module.
var GitOps = []string{
	"argocd.yaml",
}

// FS returns the embedded CRD manifests, one CustomResourceDefinition per
// file.
func FS() fs.FS { return files }
