// Package s3store keeps the bootstrap's state in S3, so that a CI job on an ephemeral
// runner that dies at minute 40 can be resumed by the next job on another machine.
//
// Layout under s3://bucket/prefix:
//
//	prefix/state.json      the state (installer.State)
//	prefix/state.lock      the lock: who holds it, since when
//	prefix/files/<name>    side files: metadata.json, the kubeconfig, the ACME account key …
//
// Locking uses S3's conditional writes: the lock is created with If-None-Match: *, so of
// two jobs exactly one gets it; the other is told who holds it. A lock whose holder died
// stays until someone runs `rhoai-bootstrap state unlock --force` — never broken
// silently. The state itself is written with If-Match on the ETag this process last read
// or wrote: if the lock was broken and another run wrote the state meanwhile, our next
// save fails instead of overwriting it.
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

	mu sync.Mutex
	// etag is the state object's ETag as this process last read or wrote it; known says
	// whether we have looked at all (absent: etag "").
	etag  string
	known bool
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
	return &Store{api: api, bucket: bucket, prefix: prefix, kmsKey: kmsKey}, nil
}

func (s *Store) key(name string) string { return path.Join(s.prefix, name) }

// Location implements installer.Store.
func (s *Store) Location() string { return "s3://" + s.bucket + "/" + s.key(stateObject) }

func (s *Store) put(ctx context.Context, name string, body []byte, mod func(*s3.PutObjectInput)) (*s3.PutObjectOutput, error) {
	in := &s3.PutObjectInput{
		Bucket:      aws.String(s.bucket),
		Key:         aws.String(s.key(name)),
		Body:        bytes.NewReader(body),
		ContentType: aws.String("application/octet-stream"),
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
		return nil, "", fmt.Errorf("reading s3://%s/%s: %w", s.bucket, s.key(name), err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, "", fmt.Errorf("reading s3://%s/%s: %w", s.bucket, s.key(name), err)
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

// preconditionFailed reports a lost conditional write (412, or 409 when two conditional
// writes to one key race).
func preconditionFailed(err error) bool {
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
	rec := lockRecord{LockInfo: holder, ID: hex.EncodeToString(id)}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	_, err = s.put(ctx, lockObject, b, func(in *s3.PutObjectInput) { in.IfNoneMatch = aws.String("*") })
	if err == nil {
		return &unlocker{s: s, id: rec.ID}, nil
	}
	if !preconditionFailed(err) {
		return nil, fmt.Errorf("taking the lock s3://%s/%s: %w", s.bucket, s.key(lockObject), err)
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

// Holder returns who holds the lock, or nil when nobody does.
func (s *Store) Holder(ctx context.Context) (*installer.LockInfo, error) {
	b, _, err := s.get(ctx, lockObject)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec lockRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return &installer.LockInfo{Command: "(unreadable lock: " + err.Error() + ")"}, nil
	}
	return &rec.LockInfo, nil
}

// ForceUnlock removes the lock whoever holds it and returns who did. Only for a holder
// that is known to be gone (`state unlock --force`): a live holder's next state save then
// fails rather than overwriting a newer state.
func (s *Store) ForceUnlock(ctx context.Context) (*installer.LockInfo, error) {
	held, err := s.Holder(ctx)
	if err != nil || held == nil {
		return held, err
	}
	if _, err := s.api.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.key(lockObject))}); err != nil {
		return nil, fmt.Errorf("removing the lock s3://%s/%s: %w", s.bucket, s.key(lockObject), err)
	}
	return held, nil
}

type unlocker struct {
	s  *Store
	id string
}

// Unlock removes the lock if it is still ours: after a forced unlock another run may
// hold a new one, which must stay.
func (u *unlocker) Unlock() error {
	ctx := context.Background()
	b, _, err := u.s.get(ctx, lockObject)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var rec lockRecord
	if json.Unmarshal(b, &rec) == nil && rec.ID != u.id {
		return nil
	}
	_, err = u.s.api.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(u.s.bucket), Key: aws.String(u.s.key(lockObject))})
	if err != nil {
		return fmt.Errorf("releasing the lock s3://%s/%s: %w", u.s.bucket, u.s.key(lockObject), err)
	}
	return nil
}

// Load implements installer.Store.
func (s *Store) Load(ctx context.Context) (*installer.State, error) {
	b, etag, err := s.get(ctx, stateObject)
	s.mu.Lock()
	defer s.mu.Unlock()
	if errors.Is(err, fs.ErrNotExist) {
		s.etag, s.known = "", true
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s.etag, s.known = etag, true
	return installer.DecodeState(b, s.Location())
}

// Save implements installer.Store: a conditional write on the ETag last seen.
func (s *Store) Save(ctx context.Context, st *installer.State) error {
	b, err := installer.EncodeState(st)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.known {
		head, err := s.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.key(stateObject))})
		switch {
		case err == nil:
			s.etag = aws.ToString(head.ETag)
		case notFound(err):
			s.etag = ""
		default:
			return fmt.Errorf("reading %s: %w", s.Location(), err)
		}
		s.known = true
	}
	etag := s.etag
	out, err := s.put(ctx, stateObject, b, func(in *s3.PutObjectInput) {
		if etag == "" {
			in.IfNoneMatch = aws.String("*")
		} else {
			in.IfMatch = aws.String(etag)
		}
	})
	if preconditionFailed(err) {
		return fmt.Errorf("saving %s: another run changed it since this one read it (was the lock broken with `state unlock --force` while this run was alive?): stop this run and start it again", s.Location())
	}
	if err != nil {
		return fmt.Errorf("saving %s: %w", s.Location(), err)
	}
	s.etag = aws.ToString(out.ETag)
	return nil
}

func fileName(name string) (string, error) {
	if name == "" || strings.Contains(name, "..") || strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("invalid side file name %q", name)
	}
	return filesDir + name, nil
}

// PutFile implements installer.Store.
func (s *Store) PutFile(ctx context.Context, name string, data []byte) error {
	n, err := fileName(name)
	if err != nil {
		return err
	}
	if _, err := s.put(ctx, n, data, nil); err != nil {
		return fmt.Errorf("saving %s to s3://%s/%s: %w", name, s.bucket, s.key(n), err)
	}
	return nil
}

// GetFile implements installer.Store.
func (s *Store) GetFile(ctx context.Context, name string) ([]byte, error) {
	n, err := fileName(name)
	if err != nil {
		return nil, err
	}
	b, _, err := s.get(ctx, n)
	return b, err
}

// DeleteFile implements installer.Store.
func (s *Store) DeleteFile(ctx context.Context, name string) error {
	n, err := fileName(name)
	if err != nil {
		return err
	}
	if _, err := s.api.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.key(n))}); err != nil && !notFound(err) {
		return fmt.Errorf("removing s3://%s/%s: %w", s.bucket, s.key(n), err)
	}
	return nil
}

var _ installer.Store = (*Store)(nil)
