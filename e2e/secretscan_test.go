//go:build e2e

package e2e_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/fakeinstall"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/harness"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
)

// Planted secrets: distinctive values in every secret input, so that any copy of them
// found in an output is a leak. The kubeadmin password holds every character JSON and
// HTML escape differently (`"`, `\`, `<`, `>`, `&`), so an escaped copy is a distinct
// string that a raw comparison would miss.
const (
	plantedGoogleSecret = "gcs-PLANTED-7f3a9c41e2-google-client-secret"
	plantedPullToken    = "pst-PLANTED-5be81d0a77-pull-secret-token"
	plantedAWSSecret    = "aws-PLANTED-c09e2f61b4-aws-secret-access-key"
	plantedKubeadmin    = `kap-PLANTED-"q\b<s>&a-kubeadmin`
)

// TestNoSecretInAnyOutput plants a distinctive value in each secret input — Google client
// secret, pull-secret token, AWS secret key, the kubeadmin password the installer prints,
// the ACME account key — runs render, plan, install (plain text with debug lines, JSON
// lines, and the TUI in a real terminal), status and destroy, and scans every output and
// every file the bootstrap wrote for each value, raw, JSON-escaped (with and without HTML
// escaping), Go-quoted and base64-encoded (every alignment, standard and URL alphabets).
// Not scanned, by design: the installer's own asset folder (openshift-install keeps the
// pull secret and the kubeadmin password there, as the real one does), the
// install-config.yaml that render --dir writes as the installer's input, and the ACME
// account key's own file.
func TestNoSecretInAnyOutput(t *testing.T) {
	t.Parallel() // each test borrows a bed of its own from the pool
	r := rehearsal(t, testbed.BedOverlay)
	ctx := context.Background()
	state := filepath.Join(r.WorkDir, "state")

	// The pull secret's token goes inside the registry auth, as `podman login` writes it.
	auth := base64.StdEncoding.EncodeToString([]byte("rehearsal:" + plantedPullToken))
	pullSecret := filepath.Join(r.WorkDir, "pull-secret.json")
	require.NoError(t, os.WriteFile(pullSecret, []byte(`{"auths":{"registry.rehearsal.invalid":{"auth":"`+auth+`","email":"ops@bed.example.com"}}}`), 0o600))
	cfgFile := rewriteConfig(t, r, filepath.Join(r.WorkDir, "scan.yaml"),
		"pullSecretFile: local/pull-secret.json", "pullSecretFile: "+pullSecret,
		"sshPublicKeyFile: local/id_ed25519.pub", "sshPublicKeyFile: "+filepath.Join(filepath.Dir(r.Config()), "local", "id_ed25519.pub"))

	// The ACME account key: saved where the certificates phase keeps it, so it is used.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	keyFile := filepath.Join(state, "acme", "account.key")
	require.NoError(t, os.MkdirAll(filepath.Dir(keyFile), 0o700))
	require.NoError(t, os.WriteFile(keyFile, keyPEM, 0o600))

	secrets := map[string][]string{
		"Google client secret":  forms(plantedGoogleSecret),
		"pull-secret token":     append(forms(plantedPullToken), forms(auth)...),
		"AWS secret access key": forms(plantedAWSSecret),
		"kubeadmin password":    forms(plantedKubeadmin),
		"ACME account key":      keyForms(keyPEM, key),
	}
	env := r.Env(
		"GOOGLE_CLIENT_SECRET="+plantedGoogleSecret,
		"AWS_SECRET_ACCESS_KEY="+plantedAWSSecret,
		fakeinstall.EnvKubeadminPassword+"="+plantedKubeadmin,
	)
	flags := r.Flags(state)
	outputs := map[string][]byte{}
	// The real Argo CD's folders (logs, kubeconfig, home, temporary checkouts): those this
	// rehearsal's installs start are scanned too.
	argoBefore := argoCDDirs(t, r)
	run := func(name string, wantOK bool, args ...string) {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
		defer cancel()
		cmd := r.Command(cctx, env, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		outputs[name+" (stdout)"], outputs[name+" (stderr)"] = stdout.Bytes(), stderr.Bytes()
		if wantOK {
			require.NoError(t, err, "%s\nstdout (end): %s\nstderr: %s", name, tail(stdout.String(), 2000), stderr.String())
		}
	}
	f := func(args ...string) []string { return append(append(args, "-f", cfgFile), flags...) }

	run("render", true, "render", "-f", cfgFile, "--dir", filepath.Join(r.WorkDir, "rendered"), "--gitops", filepath.Join(r.WorkDir, "rendered-gitops"))
	run("plan before install", false, f("plan")...)
	run("plan -o json before install", false, f("plan", "-o", "json")...)
	run("install (text, -v)", true, f("install", "-v")...)
	run("status", true, f("status")...)
	run("status -o json", true, f("status", "-o", "json")...)
	run("plan", true, f("plan", "-v")...)
	run("plan -o json", true, f("plan", "-o", "json")...)
	run("destroy (text, -v)", true, f("destroy", "--yes", "-v")...)
	run("install -o json", true, f("install", "-o", "json")...)
	run("destroy -o json", true, f("destroy", "--yes", "-o", "json")...)
	outputs["install (TUI frames)"], _ = runTUI(t, r, env, cfgFile, state)
	run("status after the TUI", true, f("status", "-v")...)

	// Every file the bootstrap wrote: the state folder (state, debug log, side files, the
	// installer's copies) and the render folders.
	files := map[string][]byte{}
	for _, root := range []string{state, filepath.Join(r.WorkDir, "rendered"), filepath.Join(r.WorkDir, "rendered-gitops")} {
		require.NoError(t, filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				// The installer's asset folder, and a failed attempt's copy of it.
				if path == filepath.Join(state, "installer") || strings.HasPrefix(d.Name(), "installer-failed-") {
					return filepath.SkipDir
				}
				return nil
			}
			if path == keyFile {
				return nil // the account key's own place
			}
			if path == filepath.Join(r.WorkDir, "rendered", "install-config.yaml") {
				// render --dir writes the installer's input for `openshift-install create
				// manifests --dir DIR` (see `render --help`): an asset folder of the
				// installer's, which needs the pull secret in it.
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files[path] = b
			return nil
		}))
	}
	// What runs in the "cluster" and could see the planted values there: the real Argo CD
	// (its logs and every file it wrote) and the simulated controllers (their log). Out of
	// scope: the bed's API server (etcd and its audit log hold the cluster's Secrets, as a
	// real cluster's do) and Argo CD's Redis (in process memory, a cache of manifests
	// rendered from Git and of resource trees, which Argo CD keeps without Secret data).
	argoFiles := 0
	for _, dir := range argoCDDirs(t, r) {
		if slices.Contains(argoBefore, dir) {
			continue
		}
		require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !d.Type().IsRegular() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files[path] = b
			argoFiles++
			return nil
		}))
	}
	require.NotZero(t, argoFiles, "Argo CD's files were scanned")
	simLog, err := os.ReadFile(r.SimulatorLog())
	require.NoError(t, err)
	files[r.SimulatorLog()] = simLog
	require.NotEmpty(t, files[filepath.Join(state, "state.json")], "the state was scanned")
	require.NotEmpty(t, files[filepath.Join(state, "rhoai-bootstrap.log")], "the debug log was scanned")
	// The run used the planted key (and still does): the same account, never a new one.
	now, err := os.ReadFile(keyFile)
	require.NoError(t, err)
	require.Equal(t, string(keyPEM), string(now), "the planted ACME account key is the one in use")
	// The installer did print the password, so there was something to hide.
	inst, err := os.ReadFile(filepath.Join(state, "installer", ".openshift_install.log"))
	require.NoError(t, err)
	// (logrus quotes the message, which holds the Go-quoted password: quoted twice)
	qq := strconv.Quote(strconv.Quote(plantedKubeadmin))
	require.Contains(t, string(inst), qq[1:len(qq)-1], "the installer printed the planted password")

	hits := 0
	scan := func(where string, b []byte) {
		for secret, needles := range secrets {
			for _, n := range needles {
				if i := bytes.Index(b, []byte(n)); i >= 0 {
					hits++
					t.Errorf("%s: the %s (as %q) in %s: …%s…", where, secret, n, where, b[max(0, i-80):min(len(b), i+len(n)+40)])
					break
				}
			}
		}
	}
	for name, b := range outputs {
		scan(name, b)
	}
	for path, b := range files {
		scan(path, b)
	}
	t.Logf("scanned %d outputs and %d files for %d planted secrets: %d hits", len(outputs), len(files), len(secrets), hits)
}

// forms are the ways a secret can show up in text: raw; escaped once or twice by any of
// JSON (with and without HTML escaping) and Go quoting (logrus and %q) — a quoted
// installer line inside a JSON event is escaped twice; and base64 in the standard and URL
// alphabets at each of the three alignments a value can have inside longer encoded data
// (runs of 8 characters or more).
func forms(s string) []string {
	out := []string{s}
	add := func(f string) {
		for _, o := range out {
			if o == f {
				return
			}
		}
		out = append(out, f)
	}
	escapers := []func(string) string{
		func(v string) string { q := strconv.Quote(v); return q[1 : len(q)-1] },
		func(v string) string { return jsonInner(v, true) },
		func(v string) string { return jsonInner(v, false) },
	}
	for _, e1 := range escapers {
		once := e1(s)
		add(once)
		for _, e2 := range escapers {
			add(e2(once))
		}
	}
	for skip := 0; skip < 3; skip++ {
		part := s[skip:]
		part = part[:len(part)/3*3]
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			if e := enc.EncodeToString([]byte(part)); len(e) >= 8 {
				add(e)
			}
		}
	}
	return out
}

// jsonInner is s as encoding/json writes it inside a string, without the quotes.
func jsonInner(s string, escapeHTML bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	if err := enc.Encode(s); err != nil {
		panic(err)
	}
	q := strings.TrimSpace(b.String())
	return q[1 : len(q)-1]
}

// keyForms are the traces an ACME account key leaves: each line of its PEM body and the
// private scalar as a JWK writes it (base64url, no padding).
func keyForms(keyPEM []byte, key *ecdsa.PrivateKey) []string {
	var out []string
	for _, l := range strings.Split(string(keyPEM), "\n") {
		if len(l) >= 16 && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	d := make([]byte, 32)
	key.D.FillBytes(d)
	return append(out, base64.RawURLEncoding.EncodeToString(d), base64.StdEncoding.EncodeToString(d))
}

// rewriteConfig writes the rehearsal's cluster file to path with old, new pairs replaced
// (each must occur).
func rewriteConfig(t *testing.T, r *harness.Rehearsal, path string, edits ...string) string {
	t.Helper()
	b, err := os.ReadFile(r.Config())
	require.NoError(t, err)
	doc := string(b)
	for i := 0; i+1 < len(edits); i += 2 {
		require.Contains(t, doc, edits[i])
		doc = strings.Replace(doc, edits[i], edits[i+1], 1)
	}
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o600))
	return path
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// argoCDDirs are the folders of every Argo CD started on the rehearsal's bed so far.
func argoCDDirs(t *testing.T, r *harness.Rehearsal) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(r.Bed.WorkDir(), "argocd-*"))
	require.NoError(t, err)
	return dirs
}
