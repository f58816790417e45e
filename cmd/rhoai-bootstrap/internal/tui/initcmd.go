package tui

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
)

// ErrInitAborted is returned when the user leaves the wizard without writing a file.
var ErrInitAborted = errors.New("init cancelled: no file written")

type initFlags struct {
	out            string
	force          bool
	nonInteractive bool

	name, baseDomain, region string
	zones                    []string
	pullSecret, sshKey       string
	pools                    []string
	googleClientID           string
	secretEnv, secretFile    string
	admins                   []string
	removeKubeadmin          bool
	acme, acmeEmail          string
	gitopsRepo, gitopsRev    string
	gitopsPath               string
}

// NewInitCommand returns `init`: it writes a cluster file, asking step by step on a
// terminal, or building it from flags alone (--non-interactive, stdin not a terminal, or
// CI=true). Either way the answers go through the config API's defaulting and validation.
func NewInitCommand() *cobra.Command {
	f := &initFlags{}
	cmd := &cobra.Command{
		Use:   "init [-o FILE]",
		Short: "Write a cluster file, interactively or from flags",
		Long: "init writes a cluster file (kind: Cluster). On a terminal it asks for each value;\n" +
			"with --non-interactive, when stdin is not a terminal, or when CI=true it builds the\n" +
			"file from flags alone and reports every problem at once. Every question has a flag.\n" +
			"Secrets are never asked for: only where they come from (an environment variable or a file).",
		Example: "  rhoai-bootstrap init -o dev.yaml\n" +
			"  rhoai-bootstrap init -o dev.yaml --non-interactive --name rhoai-dev --base-domain example.com \\\n" +
			"    --region us-west-2 --zones us-west-2a,us-west-2b --pull-secret-file ~/.pull-secret \\\n" +
			"    --gpu-pool name=t4-shared,gpu=T4,access=shared,min=0,max=4 \\\n" +
			"    --acme staging --acme-email ops@example.com",
		Args:         cobra.NoArgs,
		SilenceUsage: true, // a validation report is not a usage error
		RunE:         func(cmd *cobra.Command, _ []string) error { return runInit(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.out, "output", "o", "cluster.yaml", `file to write ("-" for stdout)`)
	fl.BoolVar(&f.force, "force", false, "overwrite the file if it exists")
	fl.BoolVar(&f.nonInteractive, "non-interactive", false, "never prompt; build the file from flags (also when stdin is not a terminal or CI=true)")
	fl.StringVar(&f.name, "name", "", "cluster name (metadata.name); the API becomes api.<name>.<base-domain>")
	fl.StringVar(&f.baseDomain, "base-domain", "", "DNS domain with a Route53 public hosted zone (spec.baseDomain)")
	fl.StringVar(&f.region, "region", "", "AWS region, e.g. us-west-2")
	fl.StringSliceVar(&f.zones, "zones", nil, "availability zones, comma-separated, e.g. us-west-2a,us-west-2b")
	fl.StringVar(&f.pullSecret, "pull-secret-file", "", "pull secret file (spec.openshift.pullSecretFile)")
	fl.StringVar(&f.sshKey, "ssh-public-key-file", "", "SSH public key file for the nodes (optional)")
	fl.StringArrayVar(&f.pools, "gpu-pool", nil, "GPU pool, repeatable: name=t4-shared,gpu=T4,access=shared|private,min=0,max=4,spot=false[,instanceType=g4dn.2xlarge][,zones=us-west-2a:us-west-2b]")
	fl.StringVar(&f.googleClientID, "google-client-id", "", "Google OAuth client ID (enables Google sign-in)")
	fl.StringVar(&f.secretEnv, "google-client-secret-env", "", "environment variable that holds the Google client secret at run time")
	fl.StringVar(&f.secretFile, "google-client-secret-file", "", "file that holds the Google client secret")
	fl.StringSliceVar(&f.admins, "admin", nil, "cluster admin e-mail, repeatable")
	fl.BoolVar(&f.removeKubeadmin, "remove-kubeadmin", false, "remove kubeadmin once an admin can sign in")
	fl.StringVar(&f.acme, "acme", "", `certificates: "production", "staging", an ACME directory URL, or "none"`)
	fl.StringVar(&f.acmeEmail, "acme-email", "", "ACME account e-mail")
	fl.StringVar(&f.gitopsRepo, "gitops-repo", "", "Git repository of the root application")
	fl.StringVar(&f.gitopsRev, "gitops-revision", "", "revision of the root application (default main)")
	fl.StringVar(&f.gitopsPath, "gitops-path", "", "path of the cluster overlay in the repository")
	return cmd
}

// answers turns flags into answers; --gpu-pool values that cannot be read are problems
// reported together with the validation's.
func (f *initFlags) answers() (answers, field.ErrorList) {
	a := answers{
		Name: f.name, BaseDomain: f.baseDomain, Region: f.region, Zones: f.zones,
		PullSecretFile: f.pullSecret, SSHPublicKeyFile: f.sshKey,
		GoogleClientID: f.googleClientID, SecretEnv: f.secretEnv, SecretFile: f.secretFile,
		Admins: f.admins, RemoveKubeadmin: f.removeKubeadmin,
		ACME: f.acme, ACMEEmail: f.acmeEmail,
		GitOpsRepo: f.gitopsRepo, GitOpsRevision: f.gitopsRev, GitOpsPath: f.gitopsPath,
	}
	if a.GitOpsRepo != "" && a.GitOpsRevision == "" {
		a.GitOpsRevision = configs.DefaultRootRevision
	}
	var errs field.ErrorList
	for i, s := range f.pools {
		p, perrs := parsePool(s, i)
		a.Pools = append(a.Pools, p)
		errs = append(errs, perrs...)
	}
	return a, errs
}

func interactive(cmd *cobra.Command, f *initFlags) bool {
	if f.nonInteractive || strings.EqualFold(os.Getenv("CI"), "true") {
		return false
	}
	in, ok := cmd.InOrStdin().(*os.File)
	return ok && term.IsTerminal(in.Fd())
}

func runInit(cmd *cobra.Command, f *initFlags) error {
	if f.out != "-" && !f.force {
		// Say it before any question is asked, not after the last one.
		if _, err := os.Stat(f.out); err == nil {
			return fmt.Errorf("%s already exists: choose another -o FILE, or pass --force to overwrite it", f.out)
		}
	}
	write := func(data []byte) (string, error) { return writeClusterFile(cmd.OutOrStdout(), f.out, data, f.force) }
	a, perrs := f.answers()
	if !interactive(cmd, f) {
		return initFromFlags(cmd.ErrOrStderr(), a, perrs, write)
	}
	if f.out == "-" {
		// The wizard owns the terminal; the YAML would be mixed into its frames.
		return errors.New(`-o - (stdout) needs --non-interactive; the wizard writes to a file`)
	}
	if len(perrs) > 0 {
		return &configs.InvalidError{Source: "init flags", Errs: withFlagHints(perrs)}
	}
	if f.pullSecret == "" {
		a.PullSecretFile = "~/.pull-secret"
	}
	if f.sshKey == "" {
		a.SSHPublicKeyFile = "~/.ssh/id_ed25519.pub"
	}
	noColor := os.Getenv("NO_COLOR") != ""
	w := newWizard(a, f.out, cmd.Flags().Changed, write, noColor)
	opts := []tea.ProgramOption{tea.WithInput(cmd.InOrStdin()), tea.WithOutput(cmd.OutOrStdout())}
	if noColor {
		opts = append(opts, tea.WithColorProfile(colorprofile.Ascii))
	}
	final, err := tea.NewProgram(w, opts...).Run()
	if err != nil {
		return fmt.Errorf("init wizard: %w", err)
	}
	if m, ok := final.(*wizardModel); !ok || m.written == "" {
		return ErrInitAborted
	}
	return nil
}

// initFromFlags is the headless path: every problem at once, or the file.
func initFromFlags(stderr io.Writer, a answers, perrs field.ErrorList, write func([]byte) (string, error)) error {
	if errs := append(perrs, a.validate()...); len(errs) > 0 {
		return &configs.InvalidError{Source: "init flags", Errs: withFlagHints(errs)}
	}
	data, err := a.render()
	if err != nil {
		return err
	}
	where, err := write(data)
	if err != nil {
		return err
	}
	if where != "stdout" {
		fmt.Fprintln(stderr, writtenText(a, where))
	}
	return nil
}

// writeClusterFile writes data to path (0644), refusing to replace a file without force.
// "-" writes to stdout. The data is parsed back first, so a file that `validate` would
// reject is never written.
func writeClusterFile(stdout io.Writer, path string, data []byte, force bool) (string, error) {
	if _, err := configs.Parse(data, path); err != nil {
		return "", fmt.Errorf("the generated file does not validate (this is a bug): %w", err)
	}
	if path == "-" {
		if _, err := stdout.Write(data); err != nil {
			return "", fmt.Errorf("writing the cluster file to stdout: %w", err)
		}
		return "stdout", nil
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	file, err := os.OpenFile(path, flags, 0o644)
	if errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("%s already exists: choose another -o FILE, or pass --force to overwrite it", path)
	}
	if err != nil {
		return "", fmt.Errorf("writing the cluster file: %w", err)
	}
	if _, err := file.Write(data); err != nil {
		file.Close()
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	if err := file.Close(); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		return "", fmt.Errorf("setting the mode of %s: %w", path, err)
	}
	return path, nil
}

// flagFor names the flag that sets a field path, so headless errors say what to change.
var flagFor = []struct{ path, flag string }{
	{"metadata.name", "--name"},
	{"spec.baseDomain", "--base-domain"},
	{"spec.platform.aws.region", "--region"},
	{"spec.platform.aws.zones", "--zones"},
	{"spec.platform.aws", "--region"},
	{"spec.openshift.pullSecretFile", "--pull-secret-file"},
	{"spec.openshift.sshPublicKeyFile", "--ssh-public-key-file"},
	{"spec.oauth.google.clientID", "--google-client-id"},
	{"spec.oauth.google.clientSecret", "--google-client-secret-env or --google-client-secret-file"},
	{"spec.oauth.admins", "--admin"},
	{"spec.oauth.removeKubeadmin", "--remove-kubeadmin"},
	{"spec.certificates.acme.server", "--acme"},
	{"spec.certificates.acme.email", "--acme-email"},
	{"spec.gitops.root.repoURL", "--gitops-repo"},
	{"spec.gitops.root.revision", "--gitops-revision"},
	{"spec.gitops.root.path", "--gitops-path"},
}

func withFlagHints(errs field.ErrorList) field.ErrorList {
	out := make(field.ErrorList, 0, len(errs))
	for _, e := range errs {
		c := *e
		hint := ""
		for _, ff := range flagFor {
			if len(under(field.ErrorList{e}, ff.path)) > 0 {
				hint = ff.flag
				break
			}
		}
		var i int
		if hint == "" {
			if _, err := fmt.Sscanf(e.Field, "spec.gpuPools[%d]", &i); err == nil {
				hint = fmt.Sprintf("--gpu-pool #%d", i+1)
			}
		}
		if hint != "" {
			c.Detail = strings.TrimSpace(c.Detail + " (set with " + hint + ")")
		}
		out = append(out, &c)
	}
	return out
}
