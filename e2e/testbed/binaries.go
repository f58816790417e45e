package testbed

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Versions of the binaries that e2e/testbin/build.sh builds. They can be
// overridden with the same environment variables the script reads.
const (
	DefaultKubernetesVersion = "v1.37.2"
	DefaultPebbleVersion     = "v2.10.3"
	// DefaultCertManagerVersion is cert-manager as the cert-manager Operator for Red Hat
	// OpenShift ships it (CertManagerModule); cmjudge is built from it.
	DefaultCertManagerVersion = "v1.20.3"
)

// Paths are the cache folders that hold the test bed's binaries.
type Paths struct {
	// Root is the cache folder printed by build.sh (RHOAI_TESTBIN_CACHE or
	// ~/.cache/rhoai-bootstrap/testbin).
	Root string
	// Kubernetes holds etcd, kube-apiserver, kubectl and kube-controller-manager;
	// it is what envtest calls the binary assets directory.
	Kubernetes string
	// Pebble holds pebble and pebble-challtestsrv.
	Pebble string
	// ArgoCD holds Argo CD's multi-call binary (argocd) and the kustomize its
	// repo-server runs.
	ArgoCD string
	// CMJudge is the cmjudge binary: cert-manager's own certificate policy chains
	// (e2e/testbin/_cmjudge), in a folder named by cert-manager's version and a hash of
	// the judge's source, as build.sh names it.
	CMJudge string
}

// EnsureBinaries runs e2e/testbin/build.sh, which builds the binaries once
// (about 10 minutes cold) and returns at once when they are cached. Its
// progress goes to stderr so a cold build does not look like a hang.
func EnsureBinaries(ctx context.Context) (Paths, error) {
	root, err := ModuleRoot()
	if err != nil {
		return Paths{}, err
	}
	script := filepath.Join(root, "e2e", "testbin", "build.sh")
	var stdout bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Dir = root
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return Paths{}, fmt.Errorf("running %s: %w", script, err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	cache := strings.TrimSpace(lines[len(lines)-1])
	if cache == "" {
		return Paths{}, fmt.Errorf("%s printed no cache folder", script)
	}
	p := Paths{
		Root:       cache,
		Kubernetes: filepath.Join(cache, envOr("K8S_VERSION", DefaultKubernetesVersion)),
		Pebble:     filepath.Join(cache, "pebble-"+envOr("PEBBLE_VERSION", DefaultPebbleVersion)),
		ArgoCD:     filepath.Join(cache, "argocd-"+envOr("ARGOCD_VERSION", DefaultArgoCDVersion)),
	}
	src, err := os.ReadFile(filepath.Join(root, "e2e", "testbin", "_cmjudge", "main.go"))
	if err != nil {
		return Paths{}, fmt.Errorf("reading cmjudge's source: %w", err)
	}
	sum := sha256.Sum256(src)
	p.CMJudge = filepath.Join(cache, "cmjudge-"+envOr("CERT_MANAGER_VERSION", DefaultCertManagerVersion)+"-"+hex.EncodeToString(sum[:])[:12], "cmjudge")
	for _, f := range []string{
		filepath.Join(p.Kubernetes, "etcd"),
		filepath.Join(p.Kubernetes, "kube-apiserver"),
		filepath.Join(p.Kubernetes, "kubectl"),
		filepath.Join(p.Kubernetes, "kube-controller-manager"),
		filepath.Join(p.Pebble, "pebble"),
		filepath.Join(p.Pebble, "pebble-challtestsrv"),
		filepath.Join(p.ArgoCD, "argocd"),
		filepath.Join(p.ArgoCD, "kustomize"),
		filepath.Join(p.ArgoCD, "git-verify-wrapper.sh"),
		p.CMJudge,
	} {
		if _, err := os.Stat(f); err != nil {
			return Paths{}, fmt.Errorf("build.sh finished but a binary is missing: %w", err)
		}
	}
	return p, nil
}

// ModuleRoot walks up from the working directory to the folder holding
// go.mod, so the bed works from any package directory (go test runs in the
// package's folder, go run in the caller's).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding the module root: no go.mod above the working directory")
		}
		dir = parent
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// tail returns the last n bytes of a file, for error messages about a
// process that died during start-up.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		if _, err := f.Seek(st.Size()-n, io.SeekStart); err != nil {
			return ""
		}
	}
	b, _ := io.ReadAll(f)
	return string(b)
}
