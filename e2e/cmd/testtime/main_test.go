package main

import (
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
	require.NoError(t, report(&out, strings.NewReader(stream), 2, 5))
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
	assert.Error(t, report(&strings.Builder{}, strings.NewReader("no events\n"), 5, 5))
}
