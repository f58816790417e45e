//go:build e2e

package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/fakeinstall"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/harness"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

// TestRemoteStateAcrossRunners plays two CI runners sharing a state in (moto's) S3:
// while runner A installs, runner B is refused with the lock-held exit code naming A;
// A dies (kill -9) after the cluster is up, leaving its lock; B is still refused until
// the stale lock is broken on purpose, then B — fresh work folder, nothing of A's on
// disk — resumes where A stopped: no second cluster, no second certificate.
func TestRemoteStateAcrossRunners(t *testing.T) {
	t.Parallel() // each test borrows a bed of its own from the pool
	r := rehearsal(t)
	ctx := context.Background()
	s3c := s3.NewFromConfig(r.Bed.AWSConfig(), func(o *s3.Options) { o.UsePathStyle = true })
	_, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("ci-state")})
	require.NoError(t, err)
	state := "s3://ci-state/clusters/rhoai-local"
	env := r.Env()
	args := func(workDir string, rest ...string) []string {
		a := append([]string{"install", "-f", r.Config(), "--state", state}, r.Flags(workDir)...)
		return append(a, rest...)
	}

	// Runner A: killed once the cluster phase is done.
	workA := filepath.Join(r.WorkDir, "runner-a")
	a := r.Command(ctx, env, args(workA, "-o", "json")...)
	out, err := a.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, a.Start())
	events := make(chan harness.Event, 256)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 4<<20)
		for sc.Scan() {
			var e harness.Event
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				events <- e
			}
		}
	}()
	lockHeld := false
	for e := range events {
		if !lockHeld && e.Type == "phase-started" {
			// Runner B while A holds the lock: refused at once, naming A.
			res := r.Run(ctx, env, args(filepath.Join(r.WorkDir, "runner-b"))...)
			assert.Equal(t, 3, res.Code, "lock held: exit 3\n%s", res.Stderr)
			assert.Contains(t, res.Stderr, fmt.Sprintf("locked by pid %d", a.Process.Pid))
			assert.Contains(t, res.Stderr, "s3://ci-state/clusters/rhoai-local/state.json")
			lockHeld = true
		}
		if e.Type == "phase-done" && e.Phase == "cluster" {
			require.NoError(t, a.Process.Signal(syscall.SIGKILL))
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	_ = a.Wait()
	require.True(t, lockHeld)

	// Runner B, fresh work folder: the dead runner's lock is not broken silently.
	workB := filepath.Join(r.WorkDir, "runner-b2")
	res := r.Run(ctx, env, args(workB)...)
	require.Equal(t, 3, res.Code, res.Stderr)
	assert.Contains(t, res.Stderr, "state unlock --force")
	unlock, err := r.Command(ctx, env, "state", "unlock", "-f", r.Config(), "--state", state, "--state-dir", workB, "--force").CombinedOutput()
	require.NoError(t, err, string(unlock))
	assert.Contains(t, string(unlock), fmt.Sprintf("broke the lock on %s held by pid %d", state+"/state.json", a.Process.Pid))

	res = r.Run(ctx, env, args(workB)...)
	requireSuccess(t, res)
	// Runner B found A's installation done and did not run the installer again: one
	// `create manifests` and one `create cluster` across both runners, all A's.
	invs, err := fakeinstall.Registry{Dir: r.Registry()}.Invocations()
	require.NoError(t, err)
	runs := map[string]int{}
	for _, inv := range invs {
		runs[inv.Command()]++
		if strings.HasPrefix(inv.Command(), "create") || strings.HasPrefix(inv.Command(), "wait-for") {
			assert.True(t, strings.HasPrefix(inv.Dir, workA), "%s ran in %s, not in runner A's folder", inv.Command(), inv.Dir)
		}
	}
	assert.Equal(t, 1, runs["create manifests"], "%v", runs)
	assert.Equal(t, 1, runs["create cluster"], "%v", runs)
	clusters, err := r.RegistryClusters()
	require.NoError(t, err)
	assert.Len(t, clusters, 1, "one cluster across both runners")

	// The state, the side files and the ledger live in S3 only.
	list, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("ci-state"), Prefix: aws.String("clusters/rhoai-local/")})
	require.NoError(t, err)
	var keys []string
	for _, o := range list.Contents {
		keys = append(keys, strings.TrimPrefix(aws.ToString(o.Key), "clusters/rhoai-local/"))
	}
	assert.Contains(t, keys, "state.json")
	assert.Contains(t, keys, "files/metadata.json")
	assert.Contains(t, keys, "files/auth/kubeconfig")
	assert.NotContains(t, keys, "state.lock", "released at the end of the run")
	obj, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("ci-state"), Key: aws.String("clusters/rhoai-local/state.json")})
	require.NoError(t, err)
	b, err := io.ReadAll(obj.Body)
	obj.Body.Close()
	require.NoError(t, err)
	assert.NotContains(t, string(b), "rehearsal-client-secret-value")
	orders, err := harness.LedgerOrdersIn(b)
	require.NoError(t, err)
	assert.Equal(t, 1, orders, "one ACME order across both runners")
	st, err := installer.DecodeState(b, state)
	require.NoError(t, err)
	for _, name := range []string{"install-config", "cluster"} {
		require.Contains(t, st.Phases, name)
		assert.Equal(t, 1, st.Phases[name].Attempts, "%s was applied once, by runner A", name)
	}

	// Converged from either machine.
	since := time.Now()
	res = r.Run(ctx, env, args(filepath.Join(r.WorkDir, "runner-c"))...)
	requireSuccess(t, res)
	assert.Zero(t, mutatingAuditEvents(t, r, since))
}
