//go:build e2e

package s3store_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer/s3store"
)

// The store's tests run against moto's S3 (the bed without Kubernetes).
var client *s3.Client

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	bed, err := testbed.Start(ctx, testbed.Options{NoKube: true})
	cancel()
	if err != nil {
		panic(err)
	}
	client = s3.NewFromConfig(bed.AWSConfig(), func(o *s3.Options) { o.UsePathStyle = true })
	_, err = client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("ci-state")})
	if err != nil {
		bed.Stop()
		panic(err)
	}
	code := m.Run()
	bed.Stop()
	os.Exit(code)
}

func newStore(t *testing.T, prefix string) *s3store.Store {
	t.Helper()
	s, err := s3store.New(client, "s3://ci-state/"+prefix, "")
	require.NoError(t, err)
	return s
}

func TestParse(t *testing.T) {
	b, p, err := s3store.Parse("s3://bucket/clusters/dev/")
	require.NoError(t, err)
	assert.Equal(t, "bucket", b)
	assert.Equal(t, "clusters/dev", p)
	_, _, err = s3store.Parse("s3:///nobucket")
	assert.ErrorContains(t, err, "use s3://bucket/prefix")
	_, _, err = s3store.Parse("/local/dir")
	assert.Error(t, err)
}

// Of two jobs taking the lock at once exactly one gets it; the other is told who holds it.
func TestLockIsExclusive(t *testing.T) {
	ctx := context.Background()
	a, b := newStore(t, "exclusive"), newStore(t, "exclusive")
	var wg sync.WaitGroup
	var unlockers []installer.Unlocker
	var locked []*installer.LockedError
	var mu sync.Mutex
	for i, s := range []*s3store.Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := installer.LockInfo{PID: 100 + i, Host: "runner-" + string(rune('a'+i)), Command: "install", Started: time.Now().UTC()}
			u, err := s.Lock(ctx, h)
			mu.Lock()
			defer mu.Unlock()
			var le *installer.LockedError
			switch {
			case err == nil:
				unlockers = append(unlockers, u)
			case errors.As(err, &le):
				locked = append(locked, le)
			default:
				t.Errorf("lock: %v", err)
			}
		}()
	}
	wg.Wait()
	require.Len(t, unlockers, 1, "exactly one job holds the lock")
	require.Len(t, locked, 1)
	assert.Contains(t, locked[0].Error(), "runner-", "the refusal names the holder")
	assert.Contains(t, locked[0].Location, "s3://ci-state/exclusive/state.json")

	require.NoError(t, unlockers[0].Unlock())
	u, err := a.Lock(ctx, installer.CurrentHolder("again"))
	require.NoError(t, err, "free again once released")
	require.NoError(t, u.Unlock())
}

// A lock whose holder died stays until it is broken on purpose; the dead holder's late
// unlock does not remove the new holder's lock, and its late save does not overwrite.
func TestStaleLockIsBrokenOnlyOnPurpose(t *testing.T) {
	ctx := context.Background()
	dead, next := newStore(t, "stale"), newStore(t, "stale")
	_, err := dead.Load(ctx)
	require.NoError(t, err)
	deadLock, err := dead.Lock(ctx, installer.LockInfo{PID: 1, Host: "gone-runner", Command: "install"})
	require.NoError(t, err)
	require.NoError(t, dead.Save(ctx, &installer.State{Version: installer.StateVersion, Cluster: "c"}))

	_, err = next.Lock(ctx, installer.CurrentHolder("install"))
	var le *installer.LockedError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, "gone-runner", le.Holder.Host)

	held, err := next.ForceUnlock(ctx, "")
	require.NoError(t, err)
	require.NotNil(t, held)
	assert.Equal(t, "gone-runner", held.Host)
	nextLock, err := next.Lock(ctx, installer.CurrentHolder("install"))
	require.NoError(t, err)
	st, err := next.Load(ctx)
	require.NoError(t, err)
	st.Cluster = "c2"
	require.NoError(t, next.Save(ctx, st))

	// The "dead" run was alive after all: its write is refused, the state stays next's.
	err = dead.Save(ctx, &installer.State{Version: installer.StateVersion, Cluster: "stale"})
	require.ErrorIs(t, err, installer.ErrLockLost)
	assert.ErrorContains(t, err, "this run stops and writes nothing more")
	st, err = newStore(t, "stale").Load(ctx)
	require.NoError(t, err)
	assert.Equal(t, "c2", st.Cluster)
	require.NoError(t, deadLock.Unlock(), "not ours any more: left alone")
	h, err := next.Holder(ctx)
	require.NoError(t, err)
	require.NotNil(t, h, "the new holder keeps its lock")
	require.NoError(t, nextLock.Unlock())
	h, err = next.Holder(ctx)
	require.NoError(t, err)
	assert.Nil(t, h)
}

// State and side files round-trip; a store on "another machine" sees them.
func TestStateAndFilesTravel(t *testing.T) {
	ctx := context.Background()
	s, err := s3store.New(client, "s3://ci-state/travel", "alias/rhoai-state")
	require.NoError(t, err)
	st, err := s.Load(ctx)
	require.NoError(t, err)
	assert.Nil(t, st)
	require.ErrorContains(t, s.Save(ctx, &installer.State{Version: installer.StateVersion, Cluster: "dev"}), "without holding its lock")
	u, err := s.Lock(ctx, installer.CurrentHolder("travel"))
	require.NoError(t, err)
	defer u.Unlock()
	require.NoError(t, s.Save(ctx, &installer.State{Version: installer.StateVersion, Cluster: "dev"}))
	require.NoError(t, s.PutFile(ctx, "acme/account.key", []byte("key")))
	require.NoError(t, s.PutFile(ctx, "metadata.json", []byte(`{"infraID":"dev-x"}`)))

	other := newStore(t, "travel")
	st, err = other.Load(ctx)
	require.NoError(t, err)
	require.NotNil(t, st)
	assert.Equal(t, "dev", st.Cluster)
	b, err := other.GetFile(ctx, "metadata.json")
	require.NoError(t, err)
	assert.JSONEq(t, `{"infraID":"dev-x"}`, string(b))
	require.NoError(t, u.Unlock())
	ou, err := other.Lock(ctx, installer.CurrentHolder("other machine"))
	require.NoError(t, err)
	defer ou.Unlock()
	require.NoError(t, other.DeleteFile(ctx, "acme/account.key"))
	_, err = s.GetFile(ctx, "acme/account.key")
	assert.ErrorIs(t, err, fs.ErrNotExist)
	require.NoError(t, other.DeleteFile(ctx, "never-there"))
	_, err = other.GetFile(ctx, "../escape")
	assert.Error(t, err)

	head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("ci-state"), Key: aws.String("travel/files/metadata.json")})
	require.NoError(t, err)
	assert.Equal(t, "aws:kms", string(head.ServerSideEncryption), "written with SSE-KMS")
	assert.Equal(t, "alias/rhoai-state", aws.ToString(head.SSEKMSKeyId))

	// A corrupt state is refused with a next step, not overwritten.
	_, err = client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("ci-state"), Key: aws.String("travel/state.json"), Body: stringsReader("{not json")})
	require.NoError(t, err)
	_, err = other.Load(ctx)
	assert.ErrorContains(t, err, "corrupt")
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

// lockOf is the lock ID an object version was written under (its metadata).
func lockOf(t *testing.T, key string) string {
	t.Helper()
	head, err := client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("ci-state"), Key: aws.String(key)})
	require.NoError(t, err)
	return head.Metadata[s3store.LockMetadata]
}

// A run whose lock was broken stops at its next write of any kind — state, side file,
// removal — and none of them lands, before or after another run took over.
func TestBrokenLockFencesEveryWrite(t *testing.T) {
	ctx := context.Background()
	a := newStore(t, "fenced")
	_, err := a.Load(ctx)
	require.NoError(t, err)
	ua, err := a.Lock(ctx, installer.LockInfo{PID: 1, Host: "runner-a", Command: "install", Started: time.Now().UTC()})
	require.NoError(t, err)
	require.NoError(t, a.Save(ctx, &installer.State{Version: installer.StateVersion, Cluster: "a"}))
	require.NoError(t, a.PutFile(ctx, "metadata.json", []byte("a's")))
	require.NoError(t, a.PutFile(ctx, "auth/kubeconfig", []byte("a's")))
	aLock := lockOf(t, "fenced/state.lock")
	require.NotEmpty(t, aLock)
	assert.Equal(t, aLock, lockOf(t, "fenced/files/metadata.json"), "objects carry the lock they were written under")
	h, err := a.Holder(ctx)
	require.NoError(t, err)
	assert.False(t, h.LastWrite.IsZero(), "writes renew the lock with their time")

	// Broken, nobody took over yet: every kind of write is refused, and stays refused.
	op := newStore(t, "fenced")
	held, err := op.ForceUnlock(ctx, "")
	require.NoError(t, err)
	require.NotNil(t, held)
	for _, write := range []func() error{
		func() error { return a.PutFile(ctx, "metadata.json", []byte("late")) },
		func() error { return a.DeleteFile(ctx, "auth/kubeconfig") },
		func() error { return a.Save(ctx, &installer.State{Version: installer.StateVersion, Cluster: "late"}) },
	} {
		require.ErrorIs(t, write(), installer.ErrLockLost)
	}
	b, err := op.GetFile(ctx, "auth/kubeconfig")
	require.NoError(t, err, "the refused removal removed nothing")
	assert.Equal(t, "a's", string(b))

	// B takes over and writes; A still writes nothing, and its release leaves B's lock.
	bs := newStore(t, "fenced")
	ub, err := bs.Lock(ctx, installer.LockInfo{PID: 2, Host: "runner-b", Command: "install", Started: time.Now().UTC()})
	require.NoError(t, err)
	_, err = bs.Load(ctx)
	require.NoError(t, err)
	require.NoError(t, bs.Save(ctx, &installer.State{Version: installer.StateVersion, Cluster: "b"}))
	require.NoError(t, bs.PutFile(ctx, "metadata.json", []byte("b's")))
	bLock := lockOf(t, "fenced/state.lock")
	require.ErrorIs(t, a.PutFile(ctx, "metadata.json", []byte("late")), installer.ErrLockLost)
	require.ErrorIs(t, a.Save(ctx, &installer.State{Version: installer.StateVersion, Cluster: "late"}), installer.ErrLockLost)
	require.NoError(t, ua.Unlock())
	assert.Equal(t, bLock, lockOf(t, "fenced/state.lock"), "B keeps its lock")
	assert.Equal(t, bLock, lockOf(t, "fenced/state.json"))
	assert.Equal(t, bLock, lockOf(t, "fenced/files/metadata.json"))
	st, err := newStore(t, "fenced").Load(ctx)
	require.NoError(t, err)
	assert.Equal(t, "b", st.Cluster)
	require.NoError(t, ub.Unlock())
	h, err = bs.Holder(ctx)
	require.NoError(t, err)
	assert.Nil(t, h)
}

// `state unlock --force` breaks only the lock version it showed: a holder that wrote
// since (it renewed its lock, so it is alive) keeps it.
func TestForceUnlockBreaksOnlyTheVersionShown(t *testing.T) {
	ctx := context.Background()
	a := newStore(t, "shown")
	_, err := a.Load(ctx)
	require.NoError(t, err)
	ua, err := a.Lock(ctx, installer.CurrentHolder("install"))
	require.NoError(t, err)
	op := newStore(t, "shown")
	shown, err := op.Current(ctx)
	require.NoError(t, err)
	require.NotNil(t, shown)
	require.NoError(t, a.PutFile(ctx, "acme/account.key", []byte("k"))) // alive: it renewed its lock

	_, err = op.ForceUnlock(ctx, shown.ETag)
	require.ErrorContains(t, err, "it is no longer version")
	require.NoError(t, a.PutFile(ctx, "acme/account.key", []byte("k2")), "the holder goes on")
	now, err := op.Current(ctx)
	require.NoError(t, err)
	held, err := op.ForceUnlock(ctx, strings.Trim(now.ETag, `"`)) // quotes or not
	require.NoError(t, err)
	require.NotNil(t, held)
	require.ErrorIs(t, a.PutFile(ctx, "acme/account.key", []byte("k3")), installer.ErrLockLost)
	require.NoError(t, ua.Unlock())
	held, err = op.ForceUnlock(ctx, "")
	require.NoError(t, err)
	assert.Nil(t, held, "nothing left to break")
}

// A side file changed behind this run's back (another run, a person) is not overwritten.
func TestSideFileWritesAreConditional(t *testing.T) {
	ctx := context.Background()
	a := newStore(t, "conditional")
	_, err := a.Load(ctx)
	require.NoError(t, err)
	ua, err := a.Lock(ctx, installer.CurrentHolder("install"))
	require.NoError(t, err)
	defer ua.Unlock()
	require.NoError(t, a.PutFile(ctx, "auth/kubeconfig", []byte("v1")))
	_, err = client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("ci-state"), Key: aws.String("conditional/files/auth/kubeconfig"), Body: stringsReader("edited")})
	require.NoError(t, err)
	require.ErrorContains(t, a.PutFile(ctx, "auth/kubeconfig", []byte("v2")), "another run changed it")
	require.ErrorContains(t, a.DeleteFile(ctx, "auth/kubeconfig"), "another run changed it")
	b, err := a.GetFile(ctx, "auth/kubeconfig")
	require.NoError(t, err)
	assert.Equal(t, "edited", string(b))
	require.NoError(t, a.PutFile(ctx, "auth/kubeconfig", []byte("v3")), "once read, it may be replaced")
	// A file this run never looked at is looked at (HEAD) first, then replaced on that version.
	_, err = client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("ci-state"), Key: aws.String("conditional/files/new"), Body: stringsReader("someone's")})
	require.NoError(t, err)
	require.NoError(t, a.PutFile(ctx, "new", []byte("ours")))
	require.NoError(t, a.DeleteFile(ctx, "new"))
}
