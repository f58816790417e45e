package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	ic "github.com/rhoai-bootstrap/rhoai-bootstrap/configs/installconfig"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer/s3store"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/manifests"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/certificates"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/gpupools"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/graph"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/installconfig"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/kube"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/pricing"
)

func newValidateCommand(o *globalOptions) *cobra.Command {
	var showDefaults bool
	cmd := &cobra.Command{
		Use:   "validate -f FILE",
		Short: "Check a cluster file and report every problem with its field path",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.load()
			if err != nil {
				return err
			}
			for _, w := range c.Warnings() {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
			}
			if showDefaults {
				b, err := configs.Marshal(c)
				if err != nil {
					return err
				}
				cmd.OutOrStdout().Write(b)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (cluster %s, %s)\n", o.file, c.Metadata.Name, installer.Plural(len(c.Spec.GPUPools), "GPU pool"))
			return nil
		},
	}
	cmd.Flags().BoolVar(&showDefaults, "show-defaults", false, "print the file with every default filled in")
	return cmd
}

func newRenderCommand(o *globalOptions) *cobra.Command {
	var dir, gitops string
	cmd := &cobra.Command{
		Use:   "render -f FILE --dir DIR [--gitops DIR]",
		Short: "Write install-config.yaml and the day-1 GPU manifests (and optionally the GitOps payload)",
		Long: `render writes DIR/install-config.yaml, with the pull secret and SSH key read from the
files the cluster file names, and the day-1 GPU manifests under DIR/openshift: the
ClusterAutoscaler always; the GPU MachineSets and their MachineAutoscalers when the
installer's worker MachineSet manifests are already in DIR (run
"openshift-install create manifests --dir DIR" on a copy of install-config.yaml first:
the GPU MachineSets are cloned from them).

--gitops DIR writes the GitOps payload tree (manifests/gitops) as the start of your repo,
then prints its models: runtime, GPU pool and instance type, GPUs, whether weights plus
one full-length sequence of KV cache fit those GPUs, and whether the cluster file
declares that pool.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.load()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if dir != "" {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
				if c.Installs() {
					cfg, err := ic.Build(c)
					if err != nil {
						return &exitError{code: ExitConfig, err: err}
					}
					b, err := cfg.Marshal()
					if err != nil {
						return err
					}
					if err := os.WriteFile(filepath.Join(dir, "install-config.yaml"), b, 0o600); err != nil {
						return err
					}
					fmt.Fprintf(out, "wrote %s\n", filepath.Join(dir, "install-config.yaml"))
				}
				workers, err := installconfig.ReadWorkerMachineSets(dir)
				if err != nil {
					return err
				}
				if len(workers) > 0 {
					files, _, err := installconfig.WriteGPUManifests(c, dir, workers)
					if err != nil {
						return err
					}
					for _, f := range files {
						fmt.Fprintf(out, "wrote %s\n", filepath.Join(dir, f))
					}
				} else if len(c.Spec.GPUPools) > 0 {
					ca := gpupools.ClusterAutoscaler(c)
					b, err := kube.EncodeYAML(ca)
					if err != nil {
						return err
					}
					p := filepath.Join(dir, "openshift", "99_rhoai-bootstrap_clusterautoscaler_default.yaml")
					if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
						return err
					}
					if err := os.WriteFile(p, b, 0o644); err != nil {
						return err
					}
					fmt.Fprintf(out, "wrote %s\n", p)
					fmt.Fprintf(cmd.ErrOrStderr(), "note: no worker MachineSet manifests in %s/openshift: GPU MachineSets and MachineAutoscalers are cloned from them; run `openshift-install create manifests --dir %s`, then render again\n", dir, dir)
				}
			}
			if gitops != "" {
				if err := manifests.WriteGitOps(gitops); err != nil {
					return err
				}
				fmt.Fprintf(out, "wrote the GitOps payload to %s\n\n", gitops)
				if err := printModelTable(out, c); err != nil {
					return err
				}
			}
			if dir == "" && gitops == "" {
				return &exitError{code: ExitConfig, err: errors.New("nothing to render: pass --dir DIR and/or --gitops DIR")}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "installer asset folder to write into")
	cmd.Flags().StringVar(&gitops, "gitops", "", "folder to write the GitOps payload tree into")
	return cmd
}

func newPlanCommand(o *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plan -f FILE",
		Short: "Show the machines' cost per hour, then per phase done / would change / blocked, without changing anything",
		Long: `plan first prints what the file's machines cost per hour in its region: the control
plane, the workers and each GPU pool at its min (an idle cluster) and at its max (what
the autoscaler may reach), spot pools with the current spot price range, and the totals.
On-demand prices come from the AWS Price List API (pricing:GetProducts), spot prices from
EC2's spot price history; when the API cannot be asked, from a dated table built into the
binary, and plan says so, why, and how old the table is. With --max-hourly-cost (or
spec.maxHourlyCost) it says whether install would refuse the file.

Then, per phase: done, would change (with the changes), or blocked.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.several() {
				return o.fleet(cmd, "plan", nil, func(cmd *cobra.Command, o *globalOptions, _ *member) error { return plan(cmd, o) })
			}
			return plan(cmd, o)
		},
	}
	o.bindCostLimit(cmd)
	o.bindFleet(cmd)
	return cmd
}

// plan prints one cluster's cost and plan.
func plan(cmd *cobra.Command, o *globalOptions) error {
	s, err := o.session(cmd, "plan", graph.Options{}, nil)
	if err != nil {
		return err
	}
	defer s.close()
	if o.output == "json" {
		s.bus.Add(newJSONSink(cmd.OutOrStdout()))
	} else {
		s.bus.Add(&textSink{w: cmd.OutOrStdout(), verbose: o.verbose})
	}
	cost, verdict := o.estimate(cmd.Context(), s.cluster, s.env)
	msg := pricing.Headline(cost)
	if verdict != nil {
		msg += "; install would refuse: " + verdict.Error()
	}
	s.bus.Emit(installer.Event{Type: installer.CostEstimated, Action: "plan", Message: msg, Cost: &cost})
	_, err = s.runner.Plan(cmd.Context())
	return err
}

func newInstallCommand(o *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "install -f FILE",
		Short: "Bring the cluster to the state the file describes (resumes where it stopped)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.several() {
				// Every file's cost limit is checked before any cluster starts: a refused
				// file stops the command with nothing changed, as alone.
				checkCost := func(cmd *cobra.Command, o *globalOptions, m *member) error {
					var err error
					if m.preface, err = o.costCheck(cmd); err != nil {
						return &exitError{code: codeOf(err), err: fmt.Errorf("%s: %w", m.file, err)}
					}
					return nil
				}
				return o.fleet(cmd, "install", checkCost, func(cmd *cobra.Command, o *globalOptions, m *member) error {
					return run(cmd, o, "install", graph.Options{}, nil, m.preface...)
				})
			}
			preface, err := o.costCheck(cmd)
			if err != nil {
				return err
			}
			return run(cmd, o, "install", graph.Options{}, nil, preface...)
		},
	}
	o.bindCostLimit(cmd)
	o.bindFleet(cmd)
	return cmd
}

// costCheck prices the file's machines when a cost limit is set and refuses (exit 2) a
// file over it; the cost event is returned to be emitted once the front-end listens. It
// runs before the session exists: a refused file leaves no state folder, no lock and no
// log behind.
func (o *globalOptions) costCheck(cmd *cobra.Command) ([]installer.Event, error) {
	c, err := o.load()
	if err != nil || (o.maxHourlyCost == 0 && c.Spec.MaxHourlyCost == nil) {
		return nil, nil // an invalid file is reported by the run, as before
	}
	cost, verdict := o.estimate(cmd.Context(), c, &phases.Env{Cluster: c, AWSLogger: libraryLogs.aws()})
	if verdict != nil {
		return nil, &exitError{code: ExitConfig, err: verdict}
	}
	return []installer.Event{{Type: installer.CostEstimated, Action: "install", Message: pricing.Headline(cost), Cost: &cost}}, nil
}

// bindCostLimit adds --max-hourly-cost to plan and install.
func (o *globalOptions) bindCostLimit(cmd *cobra.Command) {
	cmd.Flags().Float64Var(&o.maxHourlyCost, "max-hourly-cost", 0, "refuse to install when the machines could cost more than this many US dollars per hour at the GPU pools' max (overrides spec.maxHourlyCost)")
}

// estimate prices the file's machines (the Price List API, else the built-in table) and
// checks them against --max-hourly-cost or spec.maxHourlyCost; the second result is the
// refusal, naming the limit's field and the figures, or nil.
func (o *globalOptions) estimate(ctx context.Context, c *configs.Cluster, env *phases.Env) (installer.Cost, error) {
	e := pricing.Estimator{}
	if cfg, err := env.AWS(ctx); err == nil {
		e.AWS = &cfg
	}
	cost := e.Estimate(ctx, c)
	limit, field := o.maxHourlyCost, "--max-hourly-cost"
	if limit == 0 && c.Spec.MaxHourlyCost != nil {
		limit, field = *c.Spec.MaxHourlyCost, "spec.maxHourlyCost"
	}
	if limit < 0 {
		return cost, fmt.Errorf("--max-hourly-cost %g: must be more than 0 (US dollars per hour)", limit)
	}
	cost.Limit = limit
	return cost, pricing.CheckLimit(cost, limit, field)
}

// run executes install or destroy with the chosen front-end; preface events (the cost
// estimate) are emitted once the front-end listens, before the run starts.
func run(cmd *cobra.Command, o *globalOptions, action string, gopts graph.Options, configure func(*phases.Env), preface ...installer.Event) error {
	if o.memProfile != "" {
		defer profileHeapPeak(o.memProfile)()
	}
	s, err := o.session(cmd, action, gopts, configure)
	if err != nil {
		return err
	}
	defer s.close()
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	wait := s.frontEnd(o, cmd, action, cancel)
	for _, e := range preface {
		s.bus.Emit(e)
	}
	var sum *installer.Summary
	if action == "destroy" {
		sum, err = s.runner.Destroy(ctx)
	} else {
		sum, err = s.runner.Install(ctx)
	}
	if sum == nil && err != nil {
		// Failed before the run started (lock, selection): the front-end has no summary.
		s.bus.Emit(installer.Event{Type: installer.RunFinished, Action: action, Outcome: installer.OutcomeFailed, Error: err.Error()})
	}
	wait()
	return result(sum, err, o.output != "json")
}

func newStatusCommand(o *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status -f FILE",
		Short: "Show each phase's last outcome from the state file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.several() {
				return o.fleet(cmd, "status", nil, func(cmd *cobra.Command, o *globalOptions, _ *member) error { return status(cmd, o) })
			}
			return status(cmd, o)
		},
	}
	o.bindFleet(cmd)
	return cmd
}

// status prints one cluster's state.
func status(cmd *cobra.Command, o *globalOptions) error {
	c, store, err := o.store(cmd.Context())
	if err != nil {
		return err
	}
	st, err := store.Load(cmd.Context())
	if err != nil {
		return err
	}
	if st == nil {
		st = installer.NewState(c.Metadata.Name, time.Now())
	}
	if o.output == "json" {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"schema": installer.EventSchema, "state": store.Location(), "cluster": st.Cluster, "phases": st.Phases, "updatedAt": st.UpdatedAt})
	}
	s, err := o.session(cmd, "status", graph.Options{}, nil)
	if err != nil {
		return err
	}
	defer s.close()
	names, _ := s.runner.Names()
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "PHASE\tOUTCOME\tATTEMPTS\tFINISHED\tDETAIL\n")
	for _, n := range names {
		r := st.Phase(n)
		fin := "-"
		if r.FinishedAt != nil {
			fin = r.FinishedAt.Local().Format("2006-01-02 15:04:05")
		}
		detail := r.Reason
		if r.Error != "" {
			detail = firstLine(r.Error)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", n, r.Outcome, r.Attempts, fin, detail)
	}
	tw.Flush()
	printInventory(cmd.OutOrStdout(), names, st)
	fmt.Fprintf(cmd.OutOrStdout(), "\nstate: %s\n", store.Location())
	return nil
}

// printInventory lists what each phase's inventory holds, and what destroy does with it.
func printInventory(w io.Writer, names []string, st *installer.State) {
	what := map[installer.InventoryAction]string{
		installer.Created:  "destroy deletes it",
		installer.Modified: "destroy restores the fields",
		installer.Adopted:  "destroy leaves it",
	}
	header := false
	for _, n := range names {
		r, ok := st.Phases[n]
		if !ok {
			continue
		}
		if r.Untracked {
			if !header {
				fmt.Fprintf(w, "\nINVENTORY\n")
				header = true
			}
			fmt.Fprintf(w, "  %-16s ran before inventories were kept: what it made then is not listed\n", n)
		}
		for _, e := range r.Inventory {
			if !header {
				fmt.Fprintf(w, "\nINVENTORY\n")
				header = true
			}
			fmt.Fprintf(w, "  %-16s %s — %s\n", n, e, what[e.Action])
		}
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

func newDestroyCommand(o *globalOptions) *cobra.Command {
	var yes, strip, revoke bool
	cmd := &cobra.Command{
		Use:   "destroy -f FILE [--yes]",
		Short: "Remove what the bootstrap made, in reverse order, then the cluster",
		Long: `destroy walks the phase graph backwards: the root application (Argo CD cascades to its
children), Argo CD and the GitOps operator, our OAuth and certificate changes (restoring
what was there), the GPU pools, then "openshift-install destroy cluster" from the saved
metadata.json. It removes only what the state says the bootstrap made; clusters given
with platform.existing are never destroyed. An object stuck on a finalizer is named and
left in place unless --strip-finalizers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !yes && !confirmTTY(cmd.InOrStdin()) {
				return &exitError{code: ExitConfig, err: errors.New("destroy needs --yes when stdin is not a terminal")}
			}
			in := bufio.NewReader(cmd.InOrStdin()) // one reader: each answer is one line of it
			destroy := func(cmd *cobra.Command, o *globalOptions, _ *member) error {
				return run(cmd, o, "destroy", graph.Options{}, func(e *phases.Env) { e.StripFinalizers, e.Revoke = strip, revoke })
			}
			if o.several() {
				// Each cluster is confirmed as alone, all before any starts; one not
				// confirmed is left as it is (exit 2) and the others go ahead.
				confirm := func(cmd *cobra.Command, _ *globalOptions, m *member) error {
					if !yes && !confirmDestroy(cmd.OutOrStdout(), in, m.name, " ("+m.file+")") {
						m.skip = &exitError{code: ExitConfig, err: errors.New("not confirmed: nothing was changed")}
					}
					return nil
				}
				return o.fleet(cmd, "destroy", confirm, destroy)
			}
			if !yes {
				c, err := o.load()
				if err != nil {
					return err
				}
				if !confirmDestroy(cmd.OutOrStdout(), in, c.Metadata.Name, "") {
					return &exitError{code: ExitConfig, err: errors.New("not confirmed: nothing was changed")}
				}
			}
			return destroy(cmd, o, nil)
		},
	}
	o.bindFleet(cmd)
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&strip, "strip-finalizers", false, "remove finalizers of objects still stuck after the timeout")
	cmd.Flags().BoolVar(&revoke, "revoke", false, "also revoke the certificates at the ACME server")
	return cmd
}

// confirmDestroy asks for the cluster's name, as typed confirmation.
func confirmDestroy(out io.Writer, in *bufio.Reader, name, from string) bool {
	fmt.Fprintf(out, "Destroy cluster %s%s and everything the bootstrap made? Type the cluster name to confirm: ", name, from)
	line, _ := in.ReadString('\n')
	return strings.TrimSpace(line) == name
}

func newCertificatesCommand(o *globalOptions) *cobra.Command {
	certs := &cobra.Command{Use: "certificates", Short: "Manage the Let's Encrypt certificates"}
	var force bool
	renew := &cobra.Command{
		Use:   "renew -f FILE",
		Short: "Renew the certificates when due (ARI, else a third of the lifetime left); --force renews now",
		Long: `renew runs only the certificates phases (order, then rollout). It orders a new certificate when the installed
one is due — from the ACME server's renewal information when offered, else when less
than a third of its lifetime is left — or with --force. Mind Let's Encrypt's limit of 5
certificates per set of names per week: the state keeps a ledger and renew refuses to
go over it.

Once the GitOps payload's cert-manager Certificates for the API and *.apps Secrets are
Ready, cert-manager renews them and renew refuses, naming them; --force orders from the
bootstrap anyway (cert-manager accepts the result as its own and keeps renewing).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.only = []string{certificates.Name, certificates.RolloutName}
			return run(cmd, o, "install", graph.Options{Certificates: certificates.Options{Renew: true, ForceRenew: force}}, nil)
		},
	}
	renew.Flags().BoolVar(&force, "force", false, "renew even if not due, or handed off to cert-manager")
	certs.AddCommand(renew)
	return certs
}

func newStateCommand(o *globalOptions) *cobra.Command {
	st := &cobra.Command{Use: "state", Short: "Inspect the state"}
	var force bool
	var etag string
	unlock := &cobra.Command{
		Use:   "unlock -f FILE [--force [--etag ETAG]]",
		Short: "Show who holds the state lock; with --force, break a stale S3 lock",
		Long: `unlock tells whether the state is locked, and by whom.

The local state's lock is a flock(2) that the kernel releases when its holder exits,
even by kill -9, so it is never stale and --force does nothing to it: stop the holder.

An S3 lock (--state s3://…) outlives a CI runner that died; it is never broken
silently. unlock shows its holder, when the holder last wrote (a live run renews the
lock at every write) and the lock's ETag. When you know the holder is gone, --force
deletes the lock on the condition that it is still that version: --etag ETAG breaks
exactly the lock you looked at, else the one read now. If the holder was alive after
all, its next write of any kind fails and it stops without writing (the lock's ETag is
its fencing token) instead of overwriting the state of the run that takes over.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, store, err := o.store(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if remote, ok := store.(*s3store.Store); ok {
				return unlockRemote(cmd.Context(), out, remote, force, etag)
			}
			if etag != "" {
				return &exitError{code: ExitConfig, err: errors.New("--etag: only for an S3 state (--state s3://bucket/prefix)")}
			}
			u, err := store.Lock(cmd.Context(), installer.CurrentHolder("state unlock"))
			if err != nil {
				return err
			}
			if err := u.Unlock(); err != nil {
				return err
			}
			fmt.Fprintf(out, "%s is not locked\n", store.Location())
			return nil
		},
	}
	unlock.Flags().BoolVar(&force, "force", false, "break an S3 lock whose holder is gone")
	unlock.Flags().StringVar(&etag, "etag", "", "with --force: break the lock only if it is still this version (as unlock showed it)")
	st.AddCommand(unlock)
	return st
}

// unlockRemote shows an S3 lock and, with force, breaks it (see `state unlock --help`).
func unlockRemote(ctx context.Context, out io.Writer, store *s3store.Store, force bool, etag string) error {
	if etag != "" && !force {
		return &exitError{code: ExitConfig, err: errors.New("--etag goes with --force")}
	}
	describe := func(h *s3store.Held) string {
		last := "never"
		if !h.LastWrite.IsZero() {
			last = h.LastWrite.Format(time.RFC3339)
		}
		return fmt.Sprintf("pid %d on %s (%q, started %s, last write %s; lock ETag %s)",
			h.PID, h.Host, h.Command, h.Started.Format(time.RFC3339), last, h.ETag)
	}
	if !force {
		held, err := store.Current(ctx)
		if err != nil {
			return err
		}
		if held == nil {
			fmt.Fprintf(out, "%s is not locked\n", store.Location())
			return nil
		}
		fmt.Fprintf(out, "%s is locked by %s\n", store.Location(), describe(held))
		fmt.Fprintf(out, "if that run is gone: rhoai-bootstrap state unlock --force --etag '%s' (with the same -f and --state)\n", held.ETag)
		return &exitError{code: ExitLocked, err: &installer.LockedError{Location: store.Location(), Holder: held.LockInfo}}
	}
	held, err := store.ForceUnlock(ctx, etag)
	if err != nil {
		return &exitError{code: ExitLocked, err: err}
	}
	if held == nil {
		fmt.Fprintf(out, "%s is not locked\n", store.Location())
		return nil
	}
	fmt.Fprintf(out, "broke the lock on %s held by %s\n", store.Location(), describe(held))
	return nil
}
