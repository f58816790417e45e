package installconfig

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

// openshift-install's exit codes (cmd/openshift-install in the installer repository).
const (
	ExitConfig         = 3
	ExitInfrastructure = 4
	ExitBootstrap      = 5
	ExitInstall        = 6
	ExitOperators      = 7
	ExitInterrupted    = 8
)

// ExitError is a non-zero exit of openshift-install, with its last error lines.
type ExitError struct {
	Args []string
	Code int
	Last string
}

func (e *ExitError) Error() string {
	what := map[int]string{
		ExitConfig:         "install-config is invalid",
		ExitInfrastructure: "creating the infrastructure failed",
		ExitBootstrap:      "bootstrapping failed",
		ExitInstall:        "the cluster did not finish installing",
		ExitOperators:      "cluster operators are not stable",
		ExitInterrupted:    "it was interrupted",
	}[e.Code]
	if what == "" {
		what = "it failed"
	}
	msg := fmt.Sprintf("openshift-install %s exited %d: %s", strings.Join(e.Args, " "), e.Code, what)
	if e.Last != "" {
		msg += ": " + e.Last
	}
	return msg
}

// logLine is compiled on first use, not at start-up (guarded by cmd/rhoai-bootstrap's TestOwnPackagesDoNoWorkAtInit).
var logLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`level=(\w+)\s+msg=(.*)$`) })

// Line is one parsed line of the installer's output.
type Line struct {
	Level, Msg string
}

// Run runs openshift-install in dir, streaming its output as events (info and above as
// progress, the rest as debug lines). Cancelling ctx sends SIGINT, which the installer
// handles by stopping cleanly (exit 8); it is killed if it has not stopped 30 s later.
// If this process dies, the installer gets SIGINT too (no orphan keeps building a cluster
// nobody tracks). onStart gets the child's PID; onLine sees every parsed line. The
// kubeadmin password the installer prints at the end (and keeps in auth/kubeadmin-password)
// is registered with the redactor before its line becomes an event.
func Run(ctx context.Context, s *installer.Scope, bin, dir string, onStart func(pid int), onLine func(Line), args ...string) error {
	args = append(args, "--dir", dir)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT}
	cmd.Env = os.Environ()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s (set spec.openshift.installer to its path): %w", bin, err)
	}
	if onStart != nil {
		onStart(cmd.Process.Pid)
	}
	var last string
	password := newRedactPassword(s.Redactor(), dir)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			text := sc.Text()
			password.line(text)
			l := Line{Level: "info", Msg: text}
			if m := logLine().FindStringSubmatch(text); m != nil {
				l = Line{Level: m[1], Msg: strings.Trim(m[2], `"`)}
			}
			switch l.Level {
			case "debug", "trace":
				s.Debugf("openshift-install: %s", l.Msg)
			default:
				s.Progress("openshift-install: %s", l.Msg)
			}
			if l.Level == "error" || l.Level == "fatal" {
				last = l.Msg
			}
			if onLine != nil {
				onLine(l)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	err := cmd.Wait()
	pw.Close()
	wg.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if code < 0 && ctx.Err() != nil {
			code = ExitInterrupted
		}
		return &ExitError{Args: args[:len(args)-2], Code: code, Last: last}
	}
	if err != nil {
		return fmt.Errorf("running openshift-install: %w", err)
	}
	return nil
}

// ExitCode returns the installer exit code in err, or 0.
func ExitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return 0
}
