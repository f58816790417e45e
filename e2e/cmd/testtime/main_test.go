package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A go test -json stream in test2json's shape: two packages, one with a time(1) CPU line
// and the e2e pool's report, a parallel test that logged durations, and a failed one.
const stream = `{"Time":"2026-11-30T21:00:00Z","Action":"start","Package":"m/a"}
{"Time":"2026-11-30T21:00:01Z","Action":"run","Package":"m/a","Test":"TestSlow"}
{"Time":"2026-11-30T21:00:02Z","Action":"output","Package":"m/a","Test":"TestSlow","Output":"    x_test.go:10: install exited 0 in 1m2.5s\n"}
{"Time":"2026-11-30T21:00:02Z","Action":"output","Package":"m/a","Test":"TestSlow","Output":"    x_test.go:11: no duration here\n"}
{"Time":"2026-11-30T21:01:10Z","Action":"pass","Package":"m/a","Test":"TestSlow","Elapsed":69}
{"Time":"2026-11-30T21:01:11Z","Action":"run","Package":"m/a","Test":"TestFast"}
{"Time":"2026-11-30T21:01:12Z","Action":"fail","Package":"m/a","Test":"TestFast","Elapsed":1.5}
{"Time":"2026-11-30T21:01:12Z","Action":"output","Package":"m/a","Output":"test beds: 3 started (1m0s in all), 2 rewinds (1s in all, 9 objects put back)\n"}
{"Time":"2026-11-30T21:01:12Z","Action":"output","Package":"m/a","Output":"testtime-cpu:100.50+20.25\n"}
{"Time":"2026-11-30T21:01:13Z","Action":"fail","Package":"m/a","Elapsed":73}
not json: a build error line
{"Time":"2026-11-30T21:00:30Z","Action":"run","Package":"m/b","Test":"TestB"}
{"Time":"2026-11-30T21:00:40Z","Action":"pass","Package":"m/b","Test":"TestB","Elapsed":10}
{"Time":"2026-11-30T21:00:41Z","Action":"pass","Package":"m/b","Elapsed":11}
`

func TestReport(t *testing.T) {
	var out strings.Builder
	binCPU, err := report(&out, strings.NewReader(stream), 2, 5)
	require.NoError(t, err)
	assert.InDelta(t, 120.75, binCPU, 0.001)
	got := out.String()
	assert.Contains(t, got, "run: 1m13s wall")
	lines := strings.Split(got, "\n")
	// Packages by wall time, slowest first, with CPU, start and end on the run's clock.
	var a, b int
	for i, l := range lines {
		switch {
		case strings.HasSuffix(strings.TrimSpace(l), " m/a"):
			a = i
			assert.Regexp(t, `^\s*73\.0\s+121\s+0\s+73\s+2\s+fail\s+m/a$`, strings.TrimSpace(l))
		case strings.HasSuffix(strings.TrimSpace(l), " m/b"):
			b = i
			assert.Regexp(t, `^\s*11\.0\s+-\s+30\s+41\s+1\s+pass\s+m/b$`, strings.TrimSpace(l))
		}
	}
	require.NotZero(t, a)
	require.NotZero(t, b)
	assert.Less(t, a, b, "slowest package first")
	assert.Contains(t, got, "test binaries' CPU: 121 s in all (2 cores: no run of these can take less than 60 s)")
	assert.Contains(t, got, "m/a: test beds: 3 started")
	// The two slowest tests only, each with the logged lines that carry a duration.
	assert.Contains(t, got, "slowest 2 tests")
	assert.Regexp(t, `69\.0  pass m/a TestSlow\n\s+x_test.go:10: install exited 0 in 1m2.5s\n`, got)
	assert.NotContains(t, got, "no duration here")
	assert.Contains(t, got, "10.0  pass m/b TestB")
	assert.NotContains(t, got, "TestFast", "only the top 2")
}

func TestReportNeedsEvents(t *testing.T) {
	_, err := report(&strings.Builder{}, strings.NewReader("no events\n"), 5, 5)
	assert.Error(t, err)
}

// The bed's CPU log is summed per process kind, largest first; what the log does not
// cover is split into the test binaries' remainder and go test's own build time.
func TestCPUReport(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "cpu.log")
	require.NoError(t, os.WriteFile(log, []byte(`{"proc":"etcd","own":10.5,"children":0}
{"proc":"kube-apiserver","own":40,"children":0}
{"proc":"kube-apiserver","own":20,"children":0}
{"proc":"argocd-repo-server","own":5,"children":15}
not json
`), 0o600))
	gotime := filepath.Join(dir, "gotime")
	require.NoError(t, os.WriteFile(gotime, []byte("go test: 500.00 s wall, 250.00 s user + 50.00 s system CPU (builds, tests and what they started)\n"), 0o600))
	var out strings.Builder
	require.NoError(t, cpuReport(&out, log, gotime, 200))
	got := out.String()
	lines := strings.Split(got, "\n")
	var idx []int
	for _, want := range []string{
		`^60\s+60\s+0\s+2\s+kube-apiserver$`,
		`^20\s+5\s+15\s+1\s+argocd-repo-server$`,
		`^10\s+10\s+0\s+1\s+etcd$`,
		`^110\s+test binaries themselves`,
		`^100\s+go test itself`,
	} {
		i := slices.IndexFunc(lines, func(l string) bool { return regexp.MustCompile(want).MatchString(strings.TrimSpace(l)) })
		require.GreaterOrEqual(t, i, 0, "no line matching %s in\n%s", want, got)
		idx = append(idx, i)
	}
	assert.True(t, slices.IsSorted(idx), "largest consumer first:\n%s", got)
}
