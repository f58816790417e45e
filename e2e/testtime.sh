#!/usr/bin/env bash
# make testtime: runs the suite as `make test` does (the arguments are go test's), with
# -json, and prints where its time went: the run's wall and CPU time, the load average
# around it, each package's wall time and the slowest tests with the durations they logged
# (e2e/cmd/testtime). The machine is shared, so the load average is printed with every
# figure. TESTTIME_JSON keeps the event stream (default: a temporary file, removed).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x /usr/bin/time ]] || { echo "testtime needs GNU time at /usr/bin/time (Debian package time)"; exit 1; }
json=${TESTTIME_JSON:-}
if [[ -z $json ]]; then
  json=$(mktemp /tmp/testtime.XXXXXX.json)
fi
# Every bed child (kube-apiserver, etcd, Argo CD, moto…) and binary under test appends
# its CPU seconds here when it is stopped (e2e/cpulog), for the per-process
# table; go test's own time(1) line goes to gotime, for what compiling and linking cost.
work=$(mktemp -d /tmp/testtime.XXXXXX)
trap 'rm -rf "$work"; [[ -n ${TESTTIME_JSON:-} ]] || rm -f "$json"' EXIT
export RHOAI_TESTBED_CPU_LOG=$work/cpu.log
: >"$RHOAI_TESTBED_CPU_LOG"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
# Each test binary runs under time(1) too: its CPU seconds include every process it started
# and reaped (beds, Argo CDs, the binaries under test), which is what a package costs the
# machine. On 2 cores a run can end no sooner than its CPU seconds / 2.
/usr/bin/time -o "$work/gotime" -f 'go test: %e s wall, %U s user + %S s system CPU (builds, tests and what they started)' \
  go test -json -exec '/usr/bin/time -f testtime-cpu:%U+%S' "$@" >"$json" || status=$?
cat "$work/gotime"
echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg)"
go run ./e2e/cmd/testtime -cpulog "$work/cpu.log" -gotime "$work/gotime" "$json"
exit "$status"
