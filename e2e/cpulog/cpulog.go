// Package cpulog records how much CPU each process the tests start uses, by kind
// (kube-apiserver, etcd, Argo CD, moto, the binaries under test…), for make testtime: the
// suite is CPU-bound on 2 cores, and a test binary's own time(1) figure lumps all of them
// together. When the environment variable Env names a file, every stopped process appends
// one JSON line (Sample) to it; e2e/cmd/testtime sums them. Unset (make test), nothing is
// written.
package cpulog

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Env names the file the samples are appended to (e2e/testtime.sh sets it).
const Env = "RHOAI_TESTBED_CPU_LOG"

// Sample is one line of the Env file.
type Sample struct {
	// Proc is the process kind: the bed's name for it (kube-apiserver, etcd,
	// argocd-repo-server, moto_server…).
	Proc string `json:"proc"`
	// Own is the process's user+system CPU seconds; Children that of the children it
	// reaped (the repo-server's git and kustomize, the installer's openshift-install).
	Own      float64 `json:"own"`
	Children float64 `json:"children"`
}

// userHZ is the unit of /proc/<pid>/stat's times: USER_HZ, 100 on every Linux ABI
// (man 5 proc: "measured in clock ticks (divide by sysconf(_SC_CLK_TCK))").
const userHZ = 100

var mu sync.Mutex

// Live appends the CPU a live process has used so far, read from /proc/<pid>/stat, to
// the Env file. Callers call it just before stopping the
// process (envtest keeps the handles of etcd and kube-apiserver to itself, so
// their rusage at exit is out of reach); what the process spends shutting down is not
// counted. Errors are ignored: this is a measurement, never a reason to fail a test.
func Live(name string, pid int) {
	if os.Getenv(Env) == "" {
		return
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return
	}
	// After the command name: state(3) ... utime(14) stime(15) cutime(16) cstime(17).
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return
	}
	ticks := func(j int) float64 {
		v, _ := strconv.ParseFloat(f[j], 64)
		return v / userHZ
	}
	write(Sample{Proc: name, Own: ticks(11) + ticks(12), Children: ticks(13) + ticks(14)})
}

// Exited appends the CPU a reaped child used (its rusage, children included) to the Env
// file, under the kind name: for processes whose handle the caller holds.
func Exited(name string, ps *os.ProcessState) {
	if ps == nil || os.Getenv(Env) == "" {
		return
	}
	write(Sample{Proc: name, Own: (ps.UserTime() + ps.SystemTime()).Seconds()})
}

func write(s Sample) {
	line, err := json.Marshal(s)
	if err != nil {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	f, err := os.OpenFile(os.Getenv(Env), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	// One write of one short line with O_APPEND: lines of concurrent test binaries
	// do not interleave.
	fmt.Fprintf(f, "%s\n", line)
}
