// Package s3store keeps the bootstrap's state in S3, so that a CI job on an ephemeral
// runner that dies at minute 40 can be resumed by the next job on another machine.
//
// Layout under s3://bucket/prefix:
//
//	prefix/state.json      the state (installer.State)
//	prefix/state.lock      the lock: who holds it, since when, when it last wrote
//	prefix/files/<name>    side files: metadata.json, the kubeconfig, the ACME account key …
//
// Locking uses S3's conditional requests (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-requests.html):
// the lock is created with If-None-Match: *, so of two jobs exactly one gets it; the other
// is told who holds it. A lock whose holder died stays until someone runs `rhoai-bootstrap
// state unlock --force`, which deletes it with If-Match on the ETag it read and showed —
// never broken silently, and not at all if the holder renewed it meanwhile.
//
// Fencing. A holder that was thought dead may be alive; once its lock was broken it must
// not write again. The lock's ETag is the fencing token: every write — the state, a side
// file, a side file's removal — first renews the lock (rewrites it with the time of the
// write) with If-Match on the ETag this run last gave it. A broken lock (deleted, or
// replaced by another run's) fails that renewal, and the write is not made: the store
// returns installer.ErrLockLost and the runner stops. The write itself is conditional
// too, on the object's ETag as this run last read or wrote it (If-None-Match: * when it
// had none), so it never replaces a version written by anyone else. Every object written
// carries the writing lock's ID in its metadata (x-amz-meta-rhoai-bootstrap-lock).
//
// What remains: S3 has no transaction over two objects, so between a renewal and the
// write that follows it (two requests, milliseconds apart) the lock can be broken and
// another run can start. Such a late write still never replaces anything that other run
// wrote (its own condition fails); it can land on an object the other run only read. On
// AWS each conditional request is atomic; moto (5.2.1, the test bed) checks the
// condition and then writes without a lock of its own, which a test cannot tell apart.
//
// With a KMS key set, every object is written with SSE-KMS under that key.
package s3store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

const (
	stateObject = "state.json"
	lockObject  = "state.lock"
	filesDir    = "files/"
	// LockMetadata is the user metadata key (x-amz-meta-…) naming the lock under which
	// an object was written.
	LockMetadata = "rhoai-bootstrap-lock"
)

// API is the part of the S3 client the store uses.
type API interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, opts ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, opts ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
}

// Store is an installer.Store in S3.
type Store struct {
	api    API
	bucket string
	prefix string // without a trailing slash; may be empty
	kmsKey string

	// wmu makes each write (renewal of the lock, then the write) one step: two at once
	// would each renew on an ETag the other just replaced.
	wmu sync.Mutex
	mu  sync.Mutex // guards what follows
	// etags are objects' ETags as this process last read or wrote them; "" means it
	// saw no object. Absent: not looked at yet.
	etags map[string]string
	// lock is this run's lock while it holds it; lockETag its current version.
	lock     *lockRecord
	lockETag string
	// lost is set once a renewal failed: every later write fails the same way.
	lost error
}

// Parse splits s3://bucket/prefix.
func Parse(raw string) (bucket, prefix string, err error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return "", "", fmt.Errorf("state location %q: use s3://bucket/prefix (the state goes to prefix/state.json)", raw)
	}
	return u.Host, strings.Trim(u.Path, "/"), nil
}

// IsURL reports whether a --state value names the S3 backend.
func IsURL(s string) bool { return strings.HasPrefix(s, "s3://") }

// New returns the store at s3://bucket/prefix. kmsKey (an ID, ARN or alias) turns on
// SSE-KMS for everything written; empty leaves the bucket's default encryption.
func New(api API, location, kmsKey string) (*Store, error) {
	bucket, prefix, err := Parse(location)
	if err != nil {
		return nil, err
	}
	return &Store{api: api, bucket: bucket, prefix: prefix, kmsKey: kmsKey, etags: map[string]string{}}, nil
}

func (s *Store) key(name string) string { return path.Join(s.prefix, name) }

func (s *Store) url(name string) string { return "s3://" + s.bucket + "/" + s.key(name) }

// Location implements installer.Store.
func (s *Store) Location() string { return s.url(stateObject) }

// put writes an object, tagged with the lock it is written under.
func (s *Store) put(ctx context.Context, name string, body []byte, lockID string, mod func(*s3.PutObjectInput)) (*s3.PutObjectOutput, error) {
	in := &s3.PutObjectInput{
		Bucket:      aws.String(s.bucket),
		Key:         aws.String(s.key(name)),
		Body:        bytes.NewReader(body),
		ContentType: aws.String("application/octet-stream"),
		Metadata:    map[string]string{LockMetadata: lockID},
	}
	if s.kmsKey != "" {
		in.ServerSideEncryption = types.ServerSideEncryptionAwsKms
		in.SSEKMSKeyId = aws.String(s.kmsKey)
	}
	if mod != nil {
		mod(in)
	}
	return s.api.PutObject(ctx, in)
}

// get returns an object's bytes and ETag; fs.ErrNotExist when there is none.
func (s *Store) get(ctx context.Context, name string) ([]byte, string, error) {
	out, err := s.api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.key(name))})
	if err != nil {
		if notFound(err) {
			return nil, "", fs.ErrNotExist
		}
		return nil, "", fmt.Errorf("reading %s: %w", s.url(name), err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, "", fmt.Errorf("reading %s: %w", s.url(name), err)
	}
	return b, aws.ToString(out.ETag), nil
}

func notFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var ae smithy.APIError
	return errors.As(err, &ae) && (ae.ErrorCode() == "NoSuchKey" || ae.ErrorCode() == "NotFound")
}

// conditionFailed reports a lost conditional request: 412, or 409 when two conditional
// writes to one key race ("ConditionalRequestConflict", PutObject's If-Match docs).
func conditionFailed(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "PreconditionFailed", "ConditionalRequestConflict":
		return true
	}
	return false
}

// sameETag compares ETags with or without their quotes.
func sameETag(a, b string) bool { return strings.Trim(a, `"`) == strings.Trim(b, `"`) }

// lockRecord is the lock object's content.
type lockRecord struct {
	installer.LockInfo
	// ID tells this lock from a later one taken after a forced unlock.
	ID string `json:"id"`
}

// Lock implements installer.Store: create state.lock if it does not exist.
func (s *Store) Lock(ctx context.Context, holder installer.LockInfo) (installer.Unlocker, error) {
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	rec := &lockRecord{LockInfo: holder, ID: hex.EncodeToString(id)}
	rec.LastWrite = holder.Started
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	out, err := s.put(ctx, lockObject, b, rec.ID, func(in *s3.PutObjectInput) { in.IfNoneMatch = aws.String("*") })
	if err == nil {
		s.mu.Lock()
		s.lock, s.lockETag, s.lost = rec, aws.ToString(out.ETag), nil
		s.mu.Unlock()
		return &unlocker{s: s}, nil
	}
	if !conditionFailed(err) {
		return nil, fmt.Errorf("taking the lock %s: %w", s.url(lockObject), err)
	}
	held, herr := s.Holder(ctx)
	if herr != nil {
		return nil, herr
	}
	if held == nil { // released between our write and our read: the next run gets it
		held = &installer.LockInfo{Command: "(released just now: run again)"}
	}
	return nil, &installer.LockedError{Location: s.Location(), Holder: *held}
}

// Held is a lock as `state unlock` shows it.
type Held struct {
	installer.LockInfo
	// ETag is the lock object's version: `state unlock --force` breaks exactly this one.
	ETag string
}

// Current returns the lock as it is now, or nil when nobody holds it.
func (s *Store) Current(ctx context.Context) (*Held, error) {
	b, etag, err := s.get(ctx, lockObject)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec lockRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return &Held{LockInfo: installer.LockInfo{Command: "(unreadable lock: " + err.Error() + ")"}, ETag: etag}, nil
	}
	return &Held{LockInfo: rec.LockInfo, ETag: etag}, nil
}

// Holder returns who holds the lock, or nil when nobody does.
func (s *Store) Holder(ctx context.Context) (*installer.LockInfo, error) {
	h, err := s.Current(ctx)
	if h == nil || err != nil {
		return nil, err
	}
	return &h.LockInfo, nil
}

// ForceUnlock removes the lock and returns what it removed (nil: there was none). Only
// for a holder known to be gone (`state unlock --force`). The delete is conditional on
// the lock's ETag — etag when given (as `state unlock` showed it), else the one just
// read and returned — so a lock its holder renewed meanwhile (it wrote: it is alive), or
// one another run took since, is left alone with an error saying so. A holder that was
// alive after all stops at its next write (see the package documentation).
func (s *Store) ForceUnlock(ctx context.Context, etag string) (*Held, error) {
	cur, err := s.Current(ctx)
	if err != nil || cur == nil {
		return nil, err
	}
	if etag != "" && !sameETag(etag, cur.ETag) {
		return nil, fmt.Errorf("not breaking the lock %s: it is no longer version %s but %s, held by pid %d on %s (last write %s): its holder is alive, or another run took it; look again with `rhoai-bootstrap state unlock`",
			s.url(lockObject), etag, cur.ETag, cur.PID, cur.Host, cur.LastWrite.Format(time.RFC3339))
	}
	_, err = s.api.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.key(lockObject)), IfMatch: aws.String(cur.ETag)})
	switch {
	case err == nil:
		return cur, nil
	case conditionFailed(err):
		return nil, fmt.Errorf("not breaking the lock %s: it changed while being broken (its holder wrote just now, so it is alive, or another run took it); look again with `rhoai-bootstrap state unlock`", s.url(lockObject))
	case notFound(err):
		return nil, nil // released meanwhile
	}
	return nil, fmt.Errorf("removing the lock %s: %w", s.url(lockObject), err)
}

type unlocker struct{ s *Store }

// Unlock removes the lock if it is still ours (If-Match on the ETag we gave it): after a
// forced unlock another run may hold a new one, which must stay.
func (u *unlocker) Unlock() error {
	s := u.s
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	rec, etag, lost := s.lock, s.lockETag, s.lost
	s.lock = nil
	s.mu.Unlock()
	if rec == nil || lost != nil {
		return nil
	}
	_, err := s.api.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.key(lockObject)), IfMatch: aws.String(etag)})
	if err == nil || conditionFailed(err) || notFound(err) {
		return nil // released, or not ours any more
	}
	return fmt.Errorf("releasing the lock %s: %w", s.url(lockObject), err)
}

// renew rewrites our lock with the time of a write, on the condition that it is still
// the version we gave it: the fence every write passes first. Called with wmu held.
func (s *Store) renew(ctx context.Context) (string, error) {
	s.mu.Lock()
	rec, etag, lost := s.lock, s.lockETag, s.lost
	s.mu.Unlock()
	if lost != nil {
		return "", lost
	}
	if rec == nil {
		return "", fmt.Errorf("writing to %s without holding its lock (a bug; please report it)", s.Location())
	}
	next := *rec
	next.LastWrite = time.Now().UTC()
	b, err := json.Marshal(next)
	if err != nil {
		return "", err
	}
	out, err := s.put(ctx, lockObject, b, rec.ID, func(in *s3.PutObjectInput) { in.IfMatch = aws.String(etag) })
	if conditionFailed(err) || notFound(err) {
		lost := fmt.Errorf("%w: %s was broken (`state unlock --force`) or taken by another run since this one took it at %s; this run stops and writes nothing more — if another run took over, let it finish",
			installer.ErrLockLost, s.url(lockObject), rec.Started.Format(time.RFC3339))
		s.mu.Lock()
		s.lost = lost
		s.mu.Unlock()
		return "", lost
	}
	if err != nil {
		return "", fmt.Errorf("renewing the lock %s before a write: %w", s.url(lockObject), err)
	}
	s.mu.Lock()
	s.lock, s.lockETag = &next, aws.ToString(out.ETag)
	s.mu.Unlock()
	return rec.ID, nil
}

// precondition returns what name is expected to be: its ETag, or "" for no object. An
// object this run has not looked at yet is looked at now.
func (s *Store) precondition(ctx context.Context, name string) (string, error) {
	s.mu.Lock()
	etag, ok := s.etags[name]
	s.mu.Unlock()
	if ok {
		return etag, nil
	}
	head, err := s.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.key(name))})
	switch {
	case err == nil:
		return aws.ToString(head.ETag), nil
	case notFound(err):
		return "", nil
	}
	return "", fmt.Errorf("reading %s: %w", s.url(name), err)
}

func (s *Store) seen(name, etag string) {
	s.mu.Lock()
	s.etags[name] = etag
	s.mu.Unlock()
}

// changed is the error of a write whose object another run changed since this one saw it.
func (s *Store) changed(name string) error {
	return fmt.Errorf("not writing %s: another run changed it since this one read it (was the lock broken with `state unlock --force` while this run was alive?): stop this run and start it again", s.url(name))
}

// write renews the lock, then writes name on the condition that it is as this run last
// saw it.
func (s *Store) write(ctx context.Context, name string, body []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	id, err := s.renew(ctx)
	if err != nil {
		return err
	}
	etag, err := s.precondition(ctx, name)
	if err != nil {
		return err
	}
	out, err := s.put(ctx, name, body, id, func(in *s3.PutObjectInput) {
		if etag == "" {
			in.IfNoneMatch = aws.String("*")
		} else {
			in.IfMatch = aws.String(etag)
		}
	})
	if conditionFailed(err) || (etag != "" && notFound(err)) {
		return s.changed(name)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", s.url(name), err)
	}
	s.seen(name, aws.ToString(out.ETag))
	return nil
}

// remove renews the lock, then deletes name on the condition that it is as this run
// last saw it. An object that is not there is not an error.
func (s *Store) remove(ctx context.Context, name string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if _, err := s.renew(ctx); err != nil {
		return err
	}
	etag, err := s.precondition(ctx, name)
	if err != nil || etag == "" {
		return err
	}
	_, err = s.api.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.key(name)), IfMatch: aws.String(etag)})
	switch {
	case err == nil:
	case conditionFailed(err):
		return s.changed(name)
	case !notFound(err):
		return fmt.Errorf("removing %s: %w", s.url(name), err)
	}
	s.seen(name, "")
	return nil
}

// Load implements installer.Store.
func (s *Store) Load(ctx context.Context) (*installer.State, error) {
	b, etag, err := s.get(ctx, stateObject)
	if errors.Is(err, fs.ErrNotExist) {
		s.seen(stateObject, "")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s.seen(stateObject, etag)
	return installer.DecodeState(b, s.Location())
}

// Save implements installer.Store: fenced, and conditional on the state last seen.
func (s *Store) Save(ctx context.Context, st *installer.State) error {
	b, err := installer.EncodeState(st)
	if err != nil {
		return err
	}
	if err := s.write(ctx, stateObject, b); err != nil {
		return fmt.Errorf("saving the state: %w", err)
	}
	return nil
}

func fileName(name string) (string, error) {
	if name == "" || strings.Contains(name, "..") || strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("invalid side file name %q", name)
	}
	return filesDir + name, nil
}

// PutFile implements installer.Store: fenced, and conditional on the file last seen.
func (s *Store) PutFile(ctx context.Context, name string, data []byte) error {
	n, err := fileName(name)
	if err != nil {
		return err
	}
	if err := s.write(ctx, n, data); err != nil {
		return fmt.Errorf("saving %s: %w", name, err)
	}
	return nil
}

// GetFile implements installer.Store.
func (s *Store) GetFile(ctx context.Context, name string) ([]byte, error) {
	n, err := fileName(name)
	if err != nil {
		return nil, err
	}
	b, etag, err := s.get(ctx, n)
	switch {
	case err == nil:
		s.seen(n, etag)
	case errors.Is(err, fs.ErrNotExist):
		s.seen(n, "")
	}
	return b, err
}

// DeleteFile implements installer.Store: fenced, and conditional on the file last seen.
func (s *Store) DeleteFile(ctx context.Context, name string) error {
	n, err := fileName(name)
	if err != nil {
		return err
	}
	if err := s.remove(ctx, n); err != nil {
		return fmt.Errorf("removing %s: %w", name, err)
	}
	return nil
}

var _ installer.Store = (*Store)(nil)
