// Command rhoai-bootstrap turns one cluster file into an OpenShift cluster on AWS running
// OpenShift AI, managed by GitOps. This package only parses flags, picks the front-end
// (TUI, text, JSON) and maps outcomes to exit codes; the phases do the work.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/cmd/rhoai-bootstrap/internal/tui"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/kube"
	"runtime/debug"
)

// Exit codes (documented in the README).
const (
	ExitOK          = 0
	ExitFailed      = 1 // a phase failed; the same command resumes
	ExitConfig      = 2 // invalid cluster file or command line, or over the hourly cost limit; nothing was changed
	ExitLocked      = 3 // another run holds the state lock (or took it from this one)
	ExitInterrupted = 4 // Ctrl-C / SIGTERM; state saved, the same command resumes
)

// runRedactor is the redactor of the command's run, once a session has one: an error
// printed after the run (as a workflow command too) goes through it once more.
var runRedactor *installer.Redactor

// Set with -ldflags "-X main.version=…".
var version = "dev"

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
	// shown: the front-end printed err where it happened; main prints it no more.
	shown bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func codeOf(err error) int {
	var ee *exitError
	var inv *configs.InvalidError
	var le *installer.LockedError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &inv):
		return ExitConfig
	case errors.As(err, &le), errors.Is(err, installer.ErrLockLost):
		return ExitLocked
	case errors.Is(err, installer.ErrInterrupted), errors.Is(err, context.Canceled):
		return ExitInterrupted
	}
	return ExitFailed
}

// memoryLimit is the Go runtime's soft memory limit unless GOMEMLIMIT says otherwise. The
// bootstrap's live heap is tens of MiB, but its allocations come in bursts (a discovery
// refresh decodes every API group of a cluster with a hundred CRDs; the GitOps payload
// is decoded for its checks), and with the default GOGC the heap may grow to twice the
// live size before the collector runs: the limit makes the collector run sooner instead,
// keeping the process's peak RSS (bench: `make bench`) under 150 MiB on a machine it
// shares with the installer and CI jobs.
const memoryLimit = 96 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	libraryLogs.route()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCommand()
	err := root.ExecuteContext(ctx)
	printError(os.Stderr, err, root)
	os.Exit(codeOf(err))
}

func newRootCommand() *cobra.Command {
	o := &globalOptions{}
	root := &cobra.Command{
		Use:   "rhoai-bootstrap",
		Short: "Bootstrap OpenShift AI on AWS from one cluster file, managed by GitOps",
		Long: `rhoai-bootstrap turns one declarative cluster file into an OpenShift cluster on AWS
running Red Hat OpenShift AI, handed over to an Argo CD root application.

Every phase is idempotent: run the same command again after a failure, a Ctrl-C or a kill,
and it resumes from what the cluster and the state file say.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// --version, as people try first; the version command says the same. Cobra's own
		// wording ("rhoai-bootstrap version X"), not SetVersionTemplate: executing any
		// text/template makes the linker keep every exported method of every reachable type
		// (reflect MethodByName), which took the binary from 37 to 90 MiB (the AWS SDK's
		// clients alone); TestLinkerDropsUnusedMethods guards it.
		Version: version,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			kube.PollInterval = o.pollInterval // once: a fleet's clusters share it
			return o.resolveFiles()
		},
	}
	o.bind(root)
	root.AddCommand(
		newValidateCommand(o),
		newRenderCommand(o),
		newPlanCommand(o),
		newInstallCommand(o),
		newStatusCommand(o),
		newDestroyCommand(o),
		newCertificatesCommand(o),
		newStateCommand(o),
		tui.NewInitCommand(),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Args:  cobra.NoArgs,
			Run: func(cmd *cobra.Command, _ []string) {
				fmt.Fprintln(cmd.OutOrStdout(), "rhoai-bootstrap version", version)
			},
		},
	)
	return root
}

// printError prints a command's error once: not at all when the front-end already showed
// it, with the raw causes behind the words only with -v.
func printError(w io.Writer, err error, root *cobra.Command) {
	verbose, _ := root.PersistentFlags().GetBool("verbose")
	reportError(w, w, "rhoai-bootstrap", err, runRedactor.Redact, verbose)
}

// reportError prints err on w once — not when the front-end already showed it (a shown
// exitError) — with its details only when verbose. On GitHub Actions the part no phase
// line annotated is also a workflow command titled title, on raw (a workflow command must
// start its line), passed through redact first (the run's githubSink annotated the phase
// failures already).
func reportError(w, raw io.Writer, title string, err error, redact func(string) string, verbose bool) {
	var ee *exitError
	if err == nil || (errors.As(err, &ee) && ee.shown) {
		return
	}
	if onGitHubActions() {
		inner := err
		if ee != nil {
			inner = ee.err
		}
		if rest := notShown(inner); rest != nil {
			workflowCommand(raw, "error", title, redact(rest.Error()))
		}
	}
	fmt.Fprintln(w, "error:", err)
	var d interface{ Details() string }
	if verbose && errors.As(err, &d) && d.Details() != "" {
		fmt.Fprintln(w, "  details:", d.Details())
	}
}
