package testbed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/cpulog"
)

// stopGrace is how long a process gets between SIGTERM and SIGKILL.
const stopGrace = 5 * time.Second

// controlPlaneStopGrace is stopGrace for kube-apiserver and etcd. kube-apiserver drains its
// in-flight requests on SIGTERM (its graceful termination), which took longer than 5 s
// under make test's load at 22; envtest then SIGKILLs it and reports the stop as failed,
// failing a package whose tests had all passed. Only a slow stop waits this long.
const controlPlaneStopGrace = 30 * time.Second

// proc is a child process started by the bed.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has been reaped
	err     error         // exit status, valid after done
}

// startProcess starts bin with its output in <workDir>/<name>.log. The child
// gets its own process group (a terminal's Ctrl-C reaches only the parent,
// which then stops children in order) and SIGKILL when the parent dies, so
// nothing outlives a SIGKILLed test binary. (Linux sends that signal when
// the OS thread that forked the child exits; the Go runtime keeps its
// threads for the life of the process unless a goroutine exits while locked
// to one, which the bed never does.)
func startProcess(workDir, name string, env []string, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(workDir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating the log of %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = workDir
	cmd.Env = env
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = childSysProcAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// diedError describes a process that ended during start-up, with the end of
// its log, which usually names the cause.
func (p *proc) diedError() error {
	return fmt.Errorf("%s exited during start-up (%v); end of %s:\n%s", p.name, p.err, p.logPath, tail(p.logPath, 2048))
}

// stop sends SIGTERM, then SIGKILL after the grace period, and waits until
// the process is reaped.
func (p *proc) stop() error {
	if p.exited() {
		return nil
	}
	cpulog.Live(p.name, p.cmd.Process.Pid)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stopping %s: %w", p.name, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(stopGrace):
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("killing %s: %w", p.name, err)
	}
	<-p.done
	return nil
}

// waitReady polls check until it succeeds, the process dies or the timeout
// passes.
func (p *proc) waitReady(ctx context.Context, timeout time.Duration, check func(context.Context) bool) error {
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if p.exited() {
			return false, p.diedError()
		}
		return check(ctx), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %s: %w (log: %s)", p.name, err, p.logPath)
	}
	return nil
}

// httpAnswers reports whether url answers at all (any status): the server
// is listening and serving.
func httpAnswers(client *http.Client, url string) func(context.Context) bool {
	return httpProbe(client, url, func(int) bool { return true })
}

// httpProbe reports whether a GET of url gets a response whose status ok accepts.
func httpProbe(client *http.Client, url string, ok func(code int) bool) func(context.Context) bool {
	return func(ctx context.Context) bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false
		}
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return ok(resp.StatusCode)
	}
}

// freePort asks the kernel for an unused port on 127.0.0.1. Another process
// could take it before ours binds it, but on a test machine that window is
// harmless and far better than fixed ports.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// retryOnPortClash runs start up to three times while it fails because a port we chose
// was taken before the process bound it: a free port is only free until somebody —
// another bed starting at the same time, any client's ephemeral port — takes it. start
// must choose new ports each time; a process that failed has exited already.
func retryOnPortClash(start func() error) error {
	var err error
	for range 3 {
		if err = start(); err == nil || !strings.Contains(strings.ToLower(err.Error()), "address already in use") {
			return err
		}
	}
	return err
}

// freePorts returns n distinct free ports; the listeners stay open until all
// are chosen so the kernel does not hand out the same port twice.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// ourChild reports whether pid is alive and a child of this process. Stop
// uses it before signalling a PID it learnt from a PID file, so a recycled
// PID never gets signalled.
func ourChild(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return false
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 2 || fields[0] == "Z" {
		return false
	}
	ppid, err := strconv.Atoi(fields[1])
	return err == nil && ppid == os.Getpid()
}

// Alive reports whether a process with this PID exists and is not a zombie.
// Tests use it to prove that Stop left nothing behind.
func Alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return false
	}
	fields := strings.Fields(s[i+1:])
	return len(fields) > 0 && fields[0] != "Z"
}
