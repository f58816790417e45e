package tui

import (
	"crypto/ed25519"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
)

var (
	enter     = tea.KeyPressMsg{Code: tea.KeyEnter}
	down      = tea.KeyPressMsg{Code: tea.KeyDown}
	space     = tea.KeyPressMsg{Code: tea.KeySpace, Text: " "}
	backspace = tea.KeyPressMsg{Code: tea.KeyBackspace}
	esc       = tea.KeyPressMsg{Code: tea.KeyEscape}
	clearLine = tea.KeyPressMsg{Code: 'u', Mod: tea.ModCtrl}
)

func fileWriter(path string) func([]byte) (string, error) {
	return func(data []byte) (string, error) { return writeClusterFile(io.Discard, path, data, false) }
}

// answer types text and presses enter.
func answer(tm *teatest.TestModel, text string) {
	tm.Type(text)
	tm.Send(enter)
}

func waitScreen(t *testing.T, tm *teatest.TestModel, want string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return strings.Contains(ansi.Strip(string(b)), want) },
		teatest.WithDuration(5*time.Second))
}

// The whole wizard by keystrokes, as a person would: a wrong name first, two GPU pools,
// Google sign-in, the proposed production certificates, a GitOps root; the file must then load.
func TestWizardWritesValidFile(t *testing.T) {
	t.Setenv("HOME", userFiles(t))
	path := filepath.Join(t.TempDir(), "dev.yaml")
	w := newWizard(answers{}, path, nil, fileWriter(path), true)
	tm := teatest.NewTestModel(t, w, teatest.WithInitialTermSize(80, 24))

	waitScreen(t, tm, "Cluster name")
	answer(tm, "Bad_Name")
	// Only the problems of this question are shown, not the ones of questions to come.
	waitScreen(t, tm, "metadata.name: Invalid value")
	tm.Send(clearLine)
	answer(tm, "rhoai-dev")
	answer(tm, "example.com")
	answer(tm, "us-west-2") // filters the region list down to one
	tm.Send(space)          // us-west-2a
	tm.Send(down)
	tm.Send(space) // us-west-2b
	tm.Send(enter)
	answer(tm, "~/.pull-secret")
	answer(tm, "") // no SSH key

	// Pool 1: T4, shared, 0..4, on-demand.
	answer(tm, "T4")
	tm.Send(enter) // shared
	tm.Send(enter) // name t4-shared (suggested)
	tm.Send(enter) // min 0
	tm.Send(backspace)
	answer(tm, "4") // max 4
	tm.Send(enter)  // no spot
	// Pool 2: L40S, private, 0..2, spot.
	answer(tm, "L40S")
	tm.Send(down)
	tm.Send(enter) // private
	tm.Send(enter) // l40s-private
	tm.Send(enter) // min 0
	tm.Send(backspace)
	answer(tm, "2")
	tm.Send(down)
	tm.Send(enter) // spot
	waitScreen(t, tm, "pool l40s-private: L40S, private, 0–2, spot")
	tm.Send(enter) // no more pools

	answer(tm, "123456789012-abc.apps.googleusercontent.com")
	tm.Send(enter) // secret from an environment variable
	tm.Send(enter) // GOOGLE_CLIENT_SECRET (suggested)
	answer(tm, "alice@example.com, bob@example.com")
	tm.Send(enter) // keep kubeadmin (the default "no")
	waitScreen(t, tm, "Proposed: production, the only choice whose certificates browsers")
	tm.Send(enter) // production, the proposal
	answer(tm, "ops@example.com")
	answer(tm, "https://github.com/org/platform")
	tm.Send(enter) // revision main
	tm.Send(enter) // manifests/gitops/clusters/overlays/rhoai-dev
	waitScreen(t, tm, "Review — the file to be written")
	tm.Send(enter)

	final := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*wizardModel)
	require.Empty(t, final.errs)
	require.Equal(t, path, final.written)

	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())
	c, err := configs.Load(path)
	require.NoError(t, err)
	assert.Equal(t, "rhoai-dev", c.Metadata.Name)
	assert.Equal(t, []string{"us-west-2a", "us-west-2b"}, c.Spec.Platform.AWS.Zones)
	require.Len(t, c.Spec.GPUPools, 2)
	assert.Equal(t, configs.GPUPool{Name: "t4-shared", GPU: "T4", Access: configs.AccessShared, InstanceType: "g4dn.xlarge", Min: 0, Max: 4,
		Zones: []string{"us-west-2a", "us-west-2b"}}, c.Spec.GPUPools[0])
	assert.Equal(t, configs.GPUPool{Name: "l40s-private", GPU: "L40S", Access: configs.AccessPrivate, InstanceType: "g6e.xlarge", Min: 0, Max: 2, Spot: true,
		Zones: []string{"us-west-2a", "us-west-2b"}}, c.Spec.GPUPools[1])
	assert.Equal(t, "GOOGLE_CLIENT_SECRET", c.Spec.OAuth.Google.ClientSecret.Env)
	assert.Equal(t, []string{"alice@example.com", "bob@example.com"}, c.Spec.OAuth.Admins)
	assert.Equal(t, "letsencrypt", c.Spec.Certificates.ACME.Server, "init proposes production Let's Encrypt")
	assert.Equal(t, "manifests/gitops/clusters/overlays/rhoai-dev", c.Spec.GitOps.Root.Path)

	out, err := io.ReadAll(tm.FinalOutput(t))
	require.NoError(t, err)
	assert.Contains(t, ansi.Strip(string(out)), "Export GOOGLE_CLIENT_SECRET before running install.")
}

func TestWizardPerQuestionValidation(t *testing.T) {
	w := newWizard(answers{}, "x.yaml", nil, nil, true)
	w.Update(tea.KeyPressMsg{Code: 'X', Text: "X"})
	w.Update(enter)
	require.Equal(t, "name", w.cur.id, "an invalid answer keeps the question")
	require.Len(t, w.errs, 1)
	assert.Contains(t, w.errs[0], "metadata.name")

	// Zones must belong to the region; the check is the config API's.
	a := answers{Name: "c", BaseDomain: "example.com", Region: "us-east-1"}
	w = newWizard(a, "x.yaml", nil, nil, true)
	w.goTo("zones")
	w.Update(enter) // nothing selected
	assert.Equal(t, "zones", w.cur.id)
	require.NotEmpty(t, w.errs)
	assert.Contains(t, w.errs[0], "spec.platform.aws.zones: Required value")

	// A pool whose max is below its min is refused at the max question.
	a.Zones = []string{"us-east-1a"}
	w = newWizard(a, "x.yaml", nil, nil, true)
	w.goTo("poolGPU")
	w.Update(tea.KeyPressMsg{Code: 'h', Text: "H"})
	w.Update(tea.KeyPressMsg{Code: '1', Text: "1"})
	w.Update(enter)
	assert.Equal(t, "poolAccess", w.cur.id)
	w.Update(enter)
	w.Update(enter)
	w.Update(backspace)
	w.Update(tea.KeyPressMsg{Code: '3', Text: "3"})
	w.Update(enter) // min 3
	w.Update(backspace)
	w.Update(tea.KeyPressMsg{Code: '2', Text: "2"})
	w.Update(enter) // max 2
	assert.Equal(t, "poolMax", w.cur.id)
	require.Len(t, w.errs, 1)
	assert.Contains(t, w.errs[0], "spec.gpuPools[0].max: Invalid value: 2: must not be less than min (3)")

	// esc goes back one question and restores the answers of that point.
	w.Update(esc)
	assert.Equal(t, "poolMin", w.cur.id)
	w.Update(esc)
	w.Update(esc)
	w.Update(esc)
	assert.Equal(t, "poolGPU", w.cur.id)
	assert.Empty(t, w.a.Pools)
}

// Questions answered by valid flags are not asked; an invalid flag value is asked again
// with its problem shown.
func TestWizardSkipsFlagAnswers(t *testing.T) {
	given := map[string]bool{"name": true, "base-domain": true, "region": true, "zones": true, "pull-secret-file": true, "gpu-pool": true}
	a := answers{Name: "rhoai-dev", BaseDomain: "example.com", Region: "us-west-2", Zones: []string{"us-west-2a"}, PullSecretFile: "ps.json",
		Pools: []configs.GPUPool{{Name: "t4-shared", GPU: "T4", Access: configs.AccessShared, Max: 2}}}
	w := newWizard(a, "x.yaml", func(n string) bool { return given[n] }, nil, true)
	assert.Equal(t, "sshKey", w.cur.id)
	w.Update(enter)
	assert.Equal(t, "oauthClientID", w.cur.id, "the pools came from --gpu-pool")

	a.Zones = []string{"eu-west-1a"}
	w = newWizard(a, "x.yaml", func(n string) bool { return given[n] }, nil, true)
	assert.Equal(t, "zones", w.cur.id)
	require.NotEmpty(t, w.errs)
	assert.Contains(t, w.errs[0], `not a zone of region "us-west-2"`)
}

// The wizard frames fit 80 columns too.
func TestWizardFits80Columns(t *testing.T) {
	a := answers{Name: "c", BaseDomain: "example.com", Region: "us-east-1", Zones: []string{"us-east-1a"}, PullSecretFile: "p"}
	w := newWizard(a, "x.yaml", nil, nil, true)
	for _, id := range []string{"name", "region", "zones", "poolGPU", "acme", reviewStep} {
		w.goTo(id)
		v := w.View().Content
		lines := strings.Split(v, "\n")
		assert.Len(t, lines, 23, "%s: every step has the same height, one short of the screen", id)
		for _, l := range lines {
			assert.LessOrEqual(t, ansi.StringWidth(l), 80, "%s: %q", id, l)
		}
	}
}

// userFiles makes a home folder with a pull secret and an SSH key pair where the wizard
// proposes them.
func userFiles(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(home, ".pull-secret"), []byte(`{"auths":{"registry.example.invalid":{"auth":"eDp5"}}}`), 0o600))
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".ssh"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n"), 0o600))
	pub, _, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	sshPub, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519.pub"), ssh.MarshalAuthorizedKey(sshPub), 0o644))
	return home
}

// The wizard reads the files it is given when they are given: a pull secret that is not
// there and a private key given for the public one are said at once, and may be kept
// anyway (the file may be right on the machine that will run the bootstrap).
func TestWizardChecksFiles(t *testing.T) {
	t.Setenv("HOME", userFiles(t))
	a := answers{Name: "c", BaseDomain: "example.com", Region: "us-east-1", Zones: []string{"us-east-1a"}}
	path := filepath.Join(t.TempDir(), "c.yaml")
	w := newWizard(a, path, func(n string) bool { return n != "pull-secret-file" && n != "ssh-public-key-file" }, nil, true)
	tm := teatest.NewTestModel(t, w, teatest.WithInitialTermSize(100, 30))

	waitScreen(t, tm, "Pull secret file")
	tm.Send(clearLine)
	answer(tm, "~/pull-secret.txt")
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		screen := strings.Join(strings.Fields(ansi.Strip(string(b))), " ")
		return strings.Contains(screen, "✗ ~/pull-secret.txt does not exist: download it from console.redhat.com") &&
			strings.Contains(screen, "(enter again to keep it anyway, or change it)")
	}, teatest.WithDuration(5*time.Second))
	tm.Send(enter) // keep it anyway
	waitScreen(t, tm, "SSH public key file (optional)")

	tm.Send(clearLine)
	answer(tm, "~/.ssh/id_ed25519")
	waitScreen(t, tm, "~/.ssh/id_ed25519 is a private key: give its public half")
	tm.Send(clearLine)
	answer(tm, "~/.ssh/id_ed25519.pub") // the right one: accepted at once
	waitScreen(t, tm, "Review — the file to be written")
	tm.Send(tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl})

	final := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*wizardModel)
	assert.Equal(t, "~/pull-secret.txt", final.a.PullSecretFile, "kept anyway")
	assert.Equal(t, "~/.ssh/id_ed25519.pub", final.a.SSHPublicKeyFile)
}

// The review screen shows, below the file, what its machines cost per hour: from the
// built-in table, since init works offline, and saying so.
func TestReviewShowsTheCost(t *testing.T) {
	w := newWizard(answers{}, "x.yaml", nil, nil, true)
	w.a.Name, w.a.BaseDomain, w.a.Region, w.a.Zones = "rhoai-dev", "example.com", "us-east-1", []string{"us-east-1a"}
	w.a.Pools = []configs.GPUPool{{Name: "h100-private", GPU: "H100", Access: configs.AccessPrivate, Min: 0, Max: 1}}
	w.enterReview()
	content := w.review.GetContent()
	assert.Contains(t, content, "Cost per hour (not written to the file): $3.46/h at min, $58.50/h at max (on-demand, us-east-1; built-in table of 2026-07-20")
	assert.Contains(t, content, "h100-private           0–1 × p5.48xlarge          $0.00      $55.04")
	assert.Contains(t, content, "(offline: plan asks the AWS Price List API)")
	assert.Contains(t, string(w.data), "h100-private", "the file itself")
	assert.NotContains(t, string(w.data), "Cost per hour", "the cost is not written to the file")
}
