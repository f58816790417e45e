package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// gitServer serves the bed's Git repositories over smart HTTP on 127.0.0.1 with git's own
// http-backend (https://git-scm.com/docs/git-http-backend), run as a CGI program by
// net/http/cgi: the protocol Argo CD's repo-server speaks to any Git host, with no
// credentials (the repositories are exported to anyone, as a public GitHub repository is).
type gitServer struct {
	root string // GIT_PROJECT_ROOT: one bare repository per folder
	url  string // http://127.0.0.1:<port>
	srv  *http.Server
}

// PayloadRepo is the repository name the bed publishes the GitOps payload under.
const PayloadRepo = "rhoai-bootstrap.git"

// payloadDir is the payload's folder in this repository; the published repository keeps
// it at the same path, so the cluster file's gitops.root.path is unchanged.
const payloadDir = "manifests/gitops"

// Overlays the root application may point at on the bed (the cluster file's
// gitops.root.path, through RHOAI_BED_GITOPS_PATH).
const (
	// DevOverlay is the payload's dev environment, every child application of it.
	DevOverlay = payloadDir + "/clusters/overlays/dev"
	// BedOverlay is the bed's small overlay (e2e/testbed/overlay): two child applications
	// of the payload, for tests whose subject is not the hand-off.
	BedOverlay = payloadDir + "/clusters/overlays/bed"
	// BedCertificatesOverlay is the bed's certificates overlay
	// (e2e/testbed/overlay-certificates): the cert-manager operator and config-certificates
	// only, for the cert-manager hand-off test.
	BedCertificatesOverlay = payloadDir + "/clusters/overlays/bed-certificates"
)

// bedOverlays are the bed's own overlays and where each kustomization lives in this
// repository.
var bedOverlays = map[string]string{
	BedOverlay:             "e2e/testbed/overlay",
	BedCertificatesOverlay: "e2e/testbed/overlay-certificates",
}

func (b *Bed) startGit() error {
	gitBin, err := exec.LookPath("git")
	if err != nil {
		return fmt.Errorf("the bed serves the GitOps payload with git, which is not installed: %w", err)
	}
	root := filepath.Join(b.workDir, "git")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", root, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listening for git: %w", err)
	}
	g := &gitServer{root: root, url: "http://" + ln.Addr().String()}
	g.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: &cgi.Handler{
		Path: gitBin,
		Args: []string{"http-backend"},
		Dir:  root,
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "HOME=" + root},
	}}
	go func() { _ = g.srv.Serve(ln) }()
	b.git = g
	b.closers = append(b.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), stopGrace)
		defer cancel()
		return g.srv.Shutdown(ctx)
	})
	return nil
}

// GitURL is the clone URL of the bed's payload repository ("" on a bed without
// Kubernetes, which serves no payload).
func (b *Bed) GitURL() string {
	if b.git == nil {
		return ""
	}
	return b.git.url + "/" + PayloadRepo
}

// PublishPayload commits this checkout's GitOps payload (root/manifests/gitops) to the
// bed's repository on branch main, as the cluster file's gitops.root expects it. Only
// the repository URL is rewritten: each overlay's GitOpsSource (the payload's one place
// naming its repository, clusters/overlays/<env>/source.yaml) is pointed at the bed's
// URL, as a user who forks the payload does. Calling it again commits the current
// checkout on top, so a test can publish a change.
func (b *Bed) PublishPayload(ctx context.Context, root string) (string, error) {
	work, err := os.MkdirTemp(b.workDir, "payload-")
	if err != nil {
		return "", fmt.Errorf("publishing the payload: %w", err)
	}
	defer os.RemoveAll(work)
	bare := filepath.Join(b.git.root, PayloadRepo)
	if _, err := os.Stat(bare); errors.Is(err, fs.ErrNotExist) {
		if err := runGit(ctx, "", "init", "--quiet", "--bare", "--initial-branch=main", bare); err != nil {
			return "", err
		}
	}
	if err := runGit(ctx, "", "clone", "--quiet", bare, work); err != nil {
		return "", err
	}
	dst := filepath.Join(work, filepath.FromSlash(payloadDir))
	if err := os.RemoveAll(dst); err != nil {
		return "", fmt.Errorf("publishing the payload: %w", err)
	}
	if err := os.CopyFS(dst, os.DirFS(filepath.Join(root, filepath.FromSlash(payloadDir)))); err != nil {
		return "", fmt.Errorf("copying the payload: %w", err)
	}
	// The bed's overlays next to the payload's, with the dev overlay's GitOpsSource.
	src, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(DevOverlay), "source.yaml"))
	if err != nil {
		return "", fmt.Errorf("reading the dev overlay's GitOpsSource: %w", err)
	}
	for overlay, from := range bedOverlays {
		bed := filepath.Join(work, filepath.FromSlash(overlay))
		if err := os.CopyFS(bed, os.DirFS(filepath.Join(root, filepath.FromSlash(from)))); err != nil {
			return "", fmt.Errorf("copying the bed's overlay %s: %w", from, err)
		}
		if err := os.WriteFile(filepath.Join(bed, "source.yaml"), src, 0o644); err != nil {
			return "", fmt.Errorf("copying the dev overlay's GitOpsSource: %w", err)
		}
	}
	sources, err := filepath.Glob(filepath.Join(dst, "clusters", "overlays", "*", "source.yaml"))
	if err != nil {
		return "", err
	}
	for _, f := range sources {
		if err := repointSource(f, b.GitURL()); err != nil {
			return "", err
		}
	}
	for _, args := range [][]string{
		{"checkout", "--quiet", "-B", "main"},
		{"add", "--all"},
		{"-c", "user.name=rhoai test bed", "-c", "user.email=bed@rhoai-bootstrap.invalid",
			"commit", "--quiet", "--allow-empty", "-m", "payload from " + root},
		{"push", "--quiet", "origin", "main"},
	} {
		if err := runGit(ctx, work, args...); err != nil {
			return "", err
		}
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "git", "rev-parse", "HEAD")
	cmd.Dir, cmd.Stdout = work, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("reading the published commit: %w", err)
	}
	return strings.TrimSpace(out.String()), nil
}

// repointSource replaces the repository URL of a GitOpsSource file with url, keeping the
// rest of the file (comments included) as it is.
func repointSource(file, url string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("reading %s: %w", file, err)
	}
	var src struct {
		Spec struct {
			RepoURL string `json:"repoURL"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &src); err != nil || src.Spec.RepoURL == "" {
		return fmt.Errorf("%s has no spec.repoURL to point at the bed (%v)", file, err)
	}
	out := strings.ReplaceAll(string(data), src.Spec.RepoURL, url)
	return os.WriteFile(file, []byte(out), 0o644)
}

func runGit(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	// No user or system configuration may change what the bed commits.
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_TERMINAL_PROMPT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}
