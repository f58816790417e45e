// Command testbed runs the local test bed until SIGINT or SIGTERM:
//
//	go run ./e2e/cmd/testbed --env-file /tmp/bed.env [--work-dir DIR] [--keep-work-dir]
//	source /tmp/bed.env   # in another shell: KUBECONFIG, AWS_*, RHOAI_BED_*
//
// It prints each component's start-up time, then "ready".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/harness"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/simulator"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "testbed:", err)
		os.Exit(1)
	}
}

func run() error {
	envFile := flag.String("env-file", "", "write the bed's environment (shell export lines) to this file")
	workDir := flag.String("work-dir", "", "work folder for logs, kubeconfig, audit log and etcd data (default: a temporary folder)")
	keep := flag.Bool("keep-work-dir", false, "keep the work folder after stopping")
	flag.Parse()
	// envtest logs through controller-runtime (retries of a failed start).
	ctrllog.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if *envFile == "" {
		return errors.New("--env-file is required")
	}

	// The first SIGINT/SIGTERM cancels start-up or ends the wait; the bed is
	// then stopped in order. A second signal kills the process at once (the
	// children die with it: they carry a parent-death signal).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := stopWithParent(); err != nil {
		return fmt.Errorf("asking for a parent-death signal: %w", err)
	}

	bed, err := testbed.Start(ctx, testbed.Options{WorkDir: *workDir, KeepWorkDir: *keep, Log: os.Stdout})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("testbed: stopping")
		if err := bed.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "testbed: stop:", err)
		}
	}()
	if err := bed.WriteEnvFile(*envFile); err != nil {
		return err
	}

	// The cluster simulator plays the controllers the bed lacks (OLM, the GitOps
	// operator, ingress, kube-apiserver, authentication, machine-api); its GitOps
	// operator starts the real Argo CD. It stops before the bed (defers run in reverse).
	opts, _ := harness.SimulatorOptions(bed, simulator.Latencies{}, func(format string, args ...any) {
		fmt.Printf("%s simulator: "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
	})
	sim, err := simulator.New(bed.Config(), opts)
	if err != nil {
		return err
	}
	simCtx, cancelSim := context.WithCancel(context.Background())
	simDone := make(chan error, 1)
	go func() { simDone <- sim.Run(simCtx) }()
	defer func() { cancelSim(); <-simDone }()

	fmt.Printf("testbed: kubeconfig %s\n", bed.Kubeconfig())
	fmt.Printf("testbed: env file %s\n", *envFile)
	fmt.Printf("testbed: work dir %s\n", bed.WorkDir())
	fmt.Println("ready")
	<-ctx.Done()
	return nil
}
