package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

// plan prints the machines' cost first: per line and in total, with its source. Without
// AWS credentials that is the built-in table, said with its age.
func TestPlanShowsTheCost(t *testing.T) {
	dir, file, env := newUser(t)
	env = append(env, "AWS_EC2_METADATA_DISABLED=true")
	code, stdout, _ := runMain(t, env, "plan", "-f", file, "--state-dir", filepath.Join(dir, "state"))
	assert.Equal(t, ExitOK, code, stdout)
	for _, want := range []string{
		"cost             $3.46/h at min, $110.79/h at max (on-demand, us-west-2; built-in table of 2026-07-20,",
		"h100-private           0–1 × p5.48xlarge          $0.00      $55.04",
		"l40s-private           0–2 × g6e.12xlarge         $0.00      $20.99\n" + strings.Repeat(" ", 11+29) + "spot: price now unknown, counted at on-demand",
		"total                                             $3.46     $110.79",
		"(the AWS Price List API could not be asked: no AWS credentials)",
	} {
		assert.Contains(t, stdout, want)
	}

	code, stdout, _ = runMain(t, env, "plan", "-f", file, "--state-dir", filepath.Join(dir, "state"), "-o", "json", "--max-hourly-cost", "50")
	assert.Equal(t, ExitOK, code, stdout)
	first, _, _ := strings.Cut(stdout, "\n")
	var e installer.Event
	require.NoError(t, json.Unmarshal([]byte(first), &e))
	require.Equal(t, installer.CostEstimated, e.Type, "the cost comes first")
	require.NotNil(t, e.Cost)
	assert.Equal(t, "built-in-table", e.Cost.Source)
	assert.InDelta(t, 110.79, e.Cost.MaxHourly, 0.005)
	assert.Equal(t, 50.0, e.Cost.Limit)
	assert.Len(t, e.Cost.Lines, 8)
	assert.Contains(t, e.Message, "install would refuse: --max-hourly-cost: the machines could cost $110.79/h")
}

// install refuses a file that could cost more than the limit before anything exists:
// no state folder, no lock, no log; the error names the limit's field and the figures.
func TestInstallRefusesOverTheHourlyLimit(t *testing.T) {
	dir, file, env := newUser(t)
	env = append(env, "AWS_EC2_METADATA_DISABLED=true")
	state := filepath.Join(dir, "state")

	code, stdout, stderr := runMain(t, env, "install", "-f", file, "--state-dir", state, "--max-hourly-cost", "50")
	assert.Equal(t, ExitConfig, code, stdout+stderr)
	assert.Contains(t, stderr, "--max-hourly-cost: the machines could cost $110.79/h at the GPU pools' max, over the limit of $50.00/h")
	assert.Contains(t, stderr, "h100-private 1 × p5.48xlarge $55.04/h")
	assert.NoDirExists(t, state, "refused before anything was made")

	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, []byte(strings.Replace(string(b), "  gpuPools:\n", "  maxHourlyCost: 40\n  gpuPools:\n", 1)), 0o600))
	code, _, stderr = runMain(t, env, "install", "-f", file, "--state-dir", state)
	assert.Equal(t, ExitConfig, code)
	assert.Contains(t, stderr, "spec.maxHourlyCost: the machines could cost $110.79/h at the GPU pools' max, over the limit of $40.00/h")
	assert.Contains(t, stderr, "raise spec.maxHourlyCost")
	assert.NoDirExists(t, state)

	// The flag overrides the file; under the limit the run goes on (and fails in
	// preflight here, with no credentials) after printing the estimate.
	code, stdout, _ = runMain(t, env, "install", "-f", file, "--state-dir", state, "--max-hourly-cost", "120")
	assert.Equal(t, ExitFailed, code)
	sc := bufio.NewScanner(strings.NewReader(stdout))
	require.True(t, sc.Scan())
	assert.Contains(t, sc.Text(), "cost             $3.46/h at min, $110.79/h at max")
	assert.Contains(t, sc.Text(), "limit $120.00/h")
}

func TestValidateRejectsANonPositiveHourlyLimit(t *testing.T) {
	_, file, _ := newUser(t)
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, []byte(strings.Replace(string(b), "  gpuPools:\n", "  maxHourlyCost: 0\n  gpuPools:\n", 1)), 0o600))
	code, out := runCLI(t, "validate", "-f", file)
	assert.Equal(t, ExitConfig, code)
	assert.Contains(t, out, "spec.maxHourlyCost: Invalid value: 0: must be more than 0")
}

// validate works offline: it never asks AWS, for prices or anything else, even with
// credentials and an endpoint at hand (a server here counts every request).
func TestValidateNeverCallsTheNetwork(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	t.Cleanup(srv.Close)
	_, file, env := newUser(t)
	env = append(env, "AWS_ENDPOINT_URL="+srv.URL, "AWS_ACCESS_KEY_ID=AKIAEXAMPLEEXAMPLE00", "AWS_SECRET_ACCESS_KEY=not-a-real-secret-key",
		"AWS_EC2_METADATA_SERVICE_ENDPOINT="+srv.URL)
	code, stdout, stderr := runMain(t, env, "validate", "-f", file)
	assert.Equal(t, ExitOK, code, stdout+stderr)
	assert.Zero(t, calls.Load())

	// The same server does answer: plan (which asks) reaches it.
	runMain(t, env, "plan", "-f", file, "--state-dir", t.TempDir())
	assert.NotZero(t, calls.Load(), "the counting server is reachable")
}
