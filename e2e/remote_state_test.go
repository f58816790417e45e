//go:build e2e

package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/fakeinstall"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/harness"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer/s3store"
)

// TestRemoteStateAcrossRunners plays two CI runners sharing a state in (moto's) S3:
// while runner A installs, runner B is refused with the lock-held exit code naming A;
// A dies (kill -9) after the cluster is up, leaving its lock; B is still refused until
// the stale lock is broken on purpose, then B — fresh work folder, nothing of A's on
// disk — resumes where A stopped: no second cluster, no second certificate.
func TestRemoteStateAcrossRunners(t *testing.T) {
	t.Parallel() // each test borrows a bed of its own from the pool
	r := rehearsal(t, testbed.BedOverlay)
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
	events := startWithEvents(t, a)
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
	go func() {
		for range events { // keep reading its stdout until it exits
		}
	}()
	_ = a.Wait()
	require.True(t, lockHeld)

	// Runner B, fresh work folder: the dead runner's lock is not broken silently.
	workB := filepath.Join(r.WorkDir, "runner-b2")
	res := r.Run(ctx, env, args(workB)...)
	require.Equal(t, 3, res.Code, res.Stderr)
	assert.Contains(t, res.Stderr, "state unlock --force")
	// Look first: who holds it, when it last wrote, which version of the lock it is.
	show := r.Command(ctx, env, "state", "unlock", "-f", r.Config(), "--state", state, "--state-dir", workB)
	shown, err := show.CombinedOutput()
	require.Error(t, err)
	assert.Equal(t, 3, show.ProcessState.ExitCode(), string(shown))
	assert.Contains(t, string(shown), fmt.Sprintf("%s/state.json is locked by pid %d", state, a.Process.Pid))
	m := regexp.MustCompile(`state unlock --force --etag '([^']+)'`).FindStringSubmatch(string(shown))
	require.Len(t, m, 2, string(shown))
	// Then break exactly that version.
	unlock, err := r.Command(ctx, env, "state", "unlock", "-f", r.Config(), "--state", state, "--state-dir", workB, "--force", "--etag", m[1]).CombinedOutput()
	require.NoError(t, err, string(unlock))
	assert.Contains(t, string(unlock), fmt.Sprintf("broke the lock on %s held by pid %d", state+"/state.json", a.Process.Pid))
	assert.Contains(t, string(unlock), m[1])

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

// objectVersion is one version of an object under the state's prefix.
type objectVersion struct{ key, id string }

// versions lists every object version under prefix (the bucket is versioned).
func versions(t *testing.T, s3c *s3.Client, bucket, prefix string) []objectVersion {
	t.Helper()
	var out []objectVersion
	p := s3.NewListObjectVersionsPaginator(s3c, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		require.NoError(t, err)
		for _, v := range page.Versions {
			out = append(out, objectVersion{aws.ToString(v.Key), aws.ToString(v.VersionId)})
		}
	}
	return out
}

// TestBrokenLockStopsTheRunnerAtItsNextWrite: runner A's lock is broken (`state unlock
// --force`) while A is inside `openshift-install create cluster`; runner B takes over.
// A, alive after all, stops at its next write with a clear message and exit 3, and
// stops its installer; not one object version under the state's prefix is A's from the
// break on, so nothing of B's was overwritten. B finishes the installation.
func TestBrokenLockStopsTheRunnerAtItsNextWrite(t *testing.T) {
	t.Parallel()
	r := rehearsal(t, testbed.BedOverlay)
	ctx := context.Background()
	s3c := s3.NewFromConfig(r.Bed.AWSConfig(), func(o *s3.Options) { o.UsePathStyle = true })
	const bucket, prefix = "fenced-state", "clusters/rhoai-local/"
	_, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	require.NoError(t, err)
	_, err = s3c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(bucket),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}})
	require.NoError(t, err)
	state := "s3://" + bucket + "/" + strings.TrimSuffix(prefix, "/")
	args := func(workDir string) []string {
		return append([]string{"install", "-f", r.Config(), "--state", state}, r.Flags(workDir)...)
	}
	lockOf := func(key, version string) string {
		in := &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
		if version != "" {
			in.VersionId = aws.String(version)
		}
		head, err := s3c.HeadObject(ctx, in)
		require.NoError(t, err, "%s %s", key, version)
		return head.Metadata[s3store.LockMetadata]
	}

	// Runner A: its installer dwells 5 s in each stage, so A is between two writes when
	// its lock is broken and B has started before A's next write.
	a := r.Command(ctx, r.Env("FAKE_OPENSHIFT_INSTALL_STAGE_DELAY=5s"), append(args(filepath.Join(r.WorkDir, "runner-a")), "-o", "json")...)
	var stderrA strings.Builder
	a.Stderr = &stderrA
	events := startWithEvents(t, a)
	inCreate := false
	for e := range events {
		// The cluster phase copied metadata.json: `create cluster` is building.
		if e.Phase == "cluster" && strings.HasPrefix(e.Message, "infrastructure ID ") {
			inCreate = true
			break
		}
	}
	require.True(t, inCreate, "runner A reached create cluster; stderr: %s", stderrA.String())
	aLock := lockOf(prefix+"state.lock", "")
	require.NotEmpty(t, aLock)
	before := map[objectVersion]bool{}
	for _, v := range versions(t, s3c, bucket, prefix) {
		before[v] = true
	}

	unlock, err := r.Command(ctx, r.Env(), "state", "unlock", "-f", r.Config(), "--state", state, "--state-dir", filepath.Join(r.WorkDir, "operator"), "--force").CombinedOutput()
	require.NoError(t, err, string(unlock))
	assert.Contains(t, string(unlock), fmt.Sprintf("broke the lock on %s/state.json held by pid %d", state, a.Process.Pid))

	// Runner B takes over from a fresh folder while A is still inside its installer.
	bDone := make(chan harness.Result, 1)
	go func() { bDone <- r.Run(ctx, r.Env(), args(filepath.Join(r.WorkDir, "runner-b"))...) }()

	var aEvents []harness.Event
	for e := range events {
		aEvents = append(aEvents, e)
	}
	require.Error(t, a.Wait())
	assert.Equal(t, 3, a.ProcessState.ExitCode(), "a run that lost its lock exits 3; stderr: %s", stderrA.String())
	assert.Contains(t, stderrA.String(), "this run no longer holds the state lock")
	assert.Contains(t, stderrA.String(), "this run stops and writes nothing more")
	var clusterErr, finished string
	for _, e := range aEvents {
		switch {
		case e.Type == "phase-failed" && e.Phase == "cluster":
			clusterErr = e.Error
		case e.Type == "run-finished":
			finished = e.Error
		case e.Type == "phase-done":
			t.Errorf("runner A finished phase %s after its lock was broken", e.Phase)
		}
	}
	assert.Contains(t, clusterErr, "recording the installation's stage", "A stopped at its next write: the next stage")
	assert.Contains(t, clusterErr, "openshift-install was stopped")
	assert.Contains(t, finished, "was broken (`state unlock --force`) or taken by another run")

	res := <-bDone
	requireSuccess(t, res)

	// Every object version made since the break is B's; A's writes after it all failed.
	var mine int
	for _, v := range versions(t, s3c, bucket, prefix) {
		if before[v] {
			continue
		}
		owner := lockOf(v.key, v.id)
		assert.NotEqual(t, aLock, owner, "runner A wrote %s after its lock was broken", v.key)
		if owner != "" && owner != aLock {
			mine++
		}
	}
	assert.Positive(t, mine, "runner B wrote the state after taking over")
	raw, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(prefix + "state.json")})
	require.NoError(t, err)
	b, err := io.ReadAll(raw.Body)
	raw.Body.Close()
	require.NoError(t, err)
	st, err := installer.DecodeState(b, state)
	require.NoError(t, err)
	assert.Equal(t, installer.OutcomeDone, st.Phases["cluster"].Outcome)
	assert.NotEqual(t, aLock, lockOf(prefix+"state.json", ""))
}

// startWithEvents starts a `-o json` run and streams the events it prints; the channel
// closes when its stdout does.
func startWithEvents(t *testing.T, cmd *exec.Cmd) <-chan harness.Event {
	t.Helper()
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
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
	return events
}
