package fakeinstall

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// Main runs the fake with os.Args and returns its exit code. SIGINT and
// SIGTERM cancel the current stage, which then exits 8 after logging, as
// the real installer does; a second signal exits 8 at once.
func Main() int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		cancel(errInterrupted)
		<-sigs
		os.Exit(ExitInterrupted)
	}()
	return Run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
}

// Run executes one invocation with args (without the program name) and
// returns the exit code. getenv supplies the FAKE_OPENSHIFT_INSTALL_*
// settings.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	now := time.Now
	in := &installer{args: args, now: now, start: now(), log: newLogger(stderr, levelInfo, now)}
	defer in.log.close()
	var opts struct {
		dir, logLevel string
		ready, record bool
	}
	root := &cobra.Command{
		Use:           "openshift-install",
		Short:         "Creates OpenShift clusters",
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			lv, err := parseLevel(opts.logLevel)
			if err != nil {
				return fmt.Errorf("invalid log-level: %w", err)
			}
			in.log.threshold = lv
			in.dirArg = opts.dir
			if in.dir, err = filepath.Abs(opts.dir); err != nil {
				return fmt.Errorf("resolving --dir: %w", err)
			}
			if in.settings, err = readSettings(getenv); err != nil {
				return err
			}
			in.reg = Registry{Dir: in.settings.registryDir}
			if in.reg.Dir == "" {
				in.reg.Dir = filepath.Join(in.dir, "..", ".fake-aws")
			}
			opts.ready = true
			if cmd.Name() == "version" || cmd.HasSubCommands() {
				return nil // prints only: no log file, no invocation record
			}
			opts.record = true
			if err := in.log.openFile(in.dir); err != nil {
				return err
			}
			in.log.Debugf("OpenShift Installer %s", in.settings.version)
			in.log.Debugf("Built from commit %s", builtFromCommit)
			return nil
		},
	}
	root.PersistentFlags().StringVar(&opts.dir, "dir", ".", "assets directory")
	root.PersistentFlags().StringVar(&opts.logLevel, "log-level", "info", `log level (e.g. "debug | info | warn | error")`)

	leaf := func(use, short string, run func(context.Context) error) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd.Context()) },
		}
	}
	group := func(use, short string, children ...*cobra.Command) *cobra.Command {
		c := &cobra.Command{Use: use, Short: short, RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
		c.AddCommand(children...)
		return c
	}
	clusterCmd := leaf("cluster", "Create an OpenShift cluster", in.createCluster)
	clusterCmd.Flags().BoolVar(&in.skipPasswordPrint, "skip-password-print", false, "Do not print the generated user password.")
	root.AddCommand(
		&cobra.Command{
			Use: "version", Short: "Print version information", Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error {
				_, err := fmt.Fprintf(stdout, "openshift-install %s\nbuilt from commit %s\nrelease image %s\nrelease architecture amd64\n",
					in.settings.version, builtFromCommit, in.settings.releaseImage)
				return err
			},
		},
		group("create", "Create part of an OpenShift cluster",
			leaf("install-config", "Generates the Install Config asset", func(context.Context) error { return in.createInstallConfig() }),
			leaf("manifests", "Generates the Kubernetes manifests", in.createManifests),
			clusterCmd,
		),
		group("wait-for", "Wait for install-time events",
			leaf("bootstrap-complete", "Wait until cluster bootstrapping has completed", func(ctx context.Context) error {
				return in.waitFor(ctx, modeWaitBootstrap)
			}),
			leaf("install-complete", "Wait until the cluster is ready", func(ctx context.Context) error {
				return in.waitFor(ctx, modeWaitInstall)
			}),
		),
		group("destroy", "Destroy part of an OpenShift cluster",
			leaf("bootstrap", "Destroy the bootstrap resources", in.destroyBootstrap),
			leaf("cluster", "Destroy an OpenShift cluster", in.destroyCluster),
		),
	)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)

	err := root.ExecuteContext(ctx)
	if opts.record && !in.recorded {
		if rerr := in.recordInvocation(""); rerr != nil {
			in.log.Debugf("recording the invocation: %v", rerr)
		}
	}
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if errors.Is(context.Cause(ctx), errInterrupted) {
		in.log.Warnf("Received interrupt signal")
		return ExitInterrupted
	}
	if opts.ready {
		in.log.Fatalf("%v", err)
	} else {
		in.log.Fatalf("Error executing openshift-install: %v", err)
	}
	return ExitError
}
