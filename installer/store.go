package installer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Store keeps a cluster's state and its side files (the ACME account key, copies of
// metadata.json and install-config.yaml). The local store is a folder; other backends
// (S3) implement the same contract.
type Store interface {
	// Lock takes the exclusive lock or fails at once with a *LockedError naming the holder.
	Lock(ctx context.Context, holder LockInfo) (Unlocker, error)
	// Load returns the saved state, or nil when there is none yet.
	Load(ctx context.Context) (*State, error)
	// Save replaces the saved state atomically.
	Save(ctx context.Context, s *State) error
	// PutFile stores a side file (mode 0600 where the backend has modes).
	PutFile(ctx context.Context, name string, data []byte) error
	// GetFile reads a side file; fs.ErrNotExist when absent.
	GetFile(ctx context.Context, name string) ([]byte, error)
	// DeleteFile removes a side file; absent is not an error.
	DeleteFile(ctx context.Context, name string) error
	// Location is where the state lives, for messages ("/home/me/.rhoai/state.json").
	Location() string
}

// Unlocker releases a lock.
type Unlocker interface{ Unlock() error }

// LockInfo says who holds the lock.
type LockInfo struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Started time.Time `json:"started"`
	Command string    `json:"command"`
	// LastWrite is when the holder last wrote the state or a side file (remote locks,
	// which are renewed at every write): a holder that wrote a minute ago is alive.
	LastWrite time.Time `json:"lastWrite,omitzero"`
}

// ErrLockLost is returned by a store's writes once this run's lock was broken (`state
// unlock --force`): another run may hold the state now, so this one must write nothing
// more and stop. Backends wrap it with where and what to do.
var ErrLockLost = errors.New("this run no longer holds the state lock")

// CurrentHolder describes this process.
func CurrentHolder(command string) LockInfo {
	h, _ := os.Hostname()
	return LockInfo{PID: os.Getpid(), Host: h, Started: time.Now().UTC(), Command: command}
}

// LockedError is returned when another run holds the lock.
type LockedError struct {
	Location string
	Holder   LockInfo
}

func (e *LockedError) Error() string {
	last := ""
	if !e.Holder.LastWrite.IsZero() {
		last = ", last write " + e.Holder.LastWrite.Format(time.RFC3339)
	}
	return fmt.Sprintf("state %s is locked by pid %d on %s (%q, started %s%s): wait for it to finish, or stop it; "+
		"if that process is gone on a remote backend, run `rhoai-bootstrap state unlock --force`",
		e.Location, e.Holder.PID, e.Holder.Host, e.Holder.Command, e.Holder.Started.Format(time.RFC3339), last)
}

// LocalStore keeps state in a folder: state.json, state.lock and side files, all 0600.
type LocalStore struct {
	Dir string
	// beforeRename is a test hook called between writing the temp file and renaming it.
	beforeRename func(tmp string) error
}

// NewLocalStore creates the folder (0700) if needed.
func NewLocalStore(dir string) (*LocalStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating state folder: %w", err)
	}
	return &LocalStore{Dir: dir}, nil
}

// Location implements Store.
func (l *LocalStore) Location() string { return filepath.Join(l.Dir, "state.json") }

type flockUnlocker struct{ f *os.File }

func (u flockUnlocker) Unlock() error {
	defer u.f.Close()
	return syscall.Flock(int(u.f.Fd()), syscall.LOCK_UN)
}

// Lock implements Store with flock(2): the kernel drops the lock when the holder dies, even
// by kill -9, so a local lock is never stale.
func (l *LocalStore) Lock(_ context.Context, holder LockInfo) (Unlocker, error) {
	path := filepath.Join(l.Dir, "state.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			var h LockInfo
			b, _ := os.ReadFile(path)
			_ = json.Unmarshal(b, &h)
			return nil, &LockedError{Location: l.Location(), Holder: h}
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	b, _ := json.Marshal(holder)
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(b, 0)
		_ = f.Sync()
	}
	return flockUnlocker{f}, nil
}

// Load implements Store.
func (l *LocalStore) Load(_ context.Context) (*State, error) {
	b, err := os.ReadFile(l.Location())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading state: %w", err)
	}
	return DecodeState(b, l.Location())
}

// DecodeState decodes a saved state, refusing a corrupt one and one written by a newer
// binary, and migrates an older one to StateVersion (saved as such at the next write).
// Every backend reads state through it.
func DecodeState(b []byte, location string) (*State, error) {
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("state file %s is corrupt (%v): restore it from a backup or move it away to start over", location, err)
	}
	if s.Version > StateVersion {
		return nil, fmt.Errorf("state file %s has version %d, newer than this binary understands (%d): upgrade rhoai-bootstrap", location, s.Version, StateVersion)
	}
	if err := migrate(&s); err != nil {
		return nil, fmt.Errorf("state file %s (version %d): %w: restore it from a backup or move it away to start over", location, s.Version, err)
	}
	return &s, nil
}

// migrate brings a decoded state up to StateVersion.
//
// Version 1 → 2: version 1 kept each phase's facts as a map of keys to values; version 2
// keeps the phase's typed Record, whose JSON field names are those keys. The bytes carry
// over unchanged; what has to hold is that each phase's data is a JSON object (a record),
// which version 1's map always was.
func migrate(s *State) error {
	if s.Version < 2 {
		for name, r := range s.Phases {
			if r == nil {
				delete(s.Phases, name)
				continue
			}
			if r.empty() {
				r.Data = nil
				continue
			}
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(r.Data, &obj); err != nil {
				return fmt.Errorf("phase %s: data is not an object: %w", name, err)
			}
		}
		s.Version = 2
	}
	// Version 2 → 3: inventories start now. A phase that ran before has made objects no
	// inventory lists; it is marked so destroy can say so rather than leave them silently.
	if s.Version < 3 {
		for _, r := range s.Phases {
			if r.Attempts > 0 || r.Outcome == OutcomeDone {
				r.Untracked = true
			}
		}
		s.Version = 3
	}
	return nil
}

// EncodeState is the bytes every backend saves.
func EncodeState(s *State) ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding state: %w", err)
	}
	return append(b, '\n'), nil
}

// Save implements Store.
func (l *LocalStore) Save(_ context.Context, s *State) error {
	b, err := EncodeState(s)
	if err != nil {
		return err
	}
	return l.writeAtomic(l.Location(), b)
}

func (l *LocalStore) sidePath(name string) (string, error) {
	if name == "" || strings.Contains(name, "..") || filepath.IsAbs(name) || name == "state.json" || name == "state.lock" {
		return "", fmt.Errorf("invalid side file name %q", name)
	}
	return filepath.Join(l.Dir, filepath.FromSlash(name)), nil
}

// PutFile implements Store.
func (l *LocalStore) PutFile(_ context.Context, name string, data []byte) error {
	p, err := l.sidePath(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("creating folder for %s: %w", name, err)
	}
	return l.writeAtomic(p, data)
}

// GetFile implements Store.
func (l *LocalStore) GetFile(_ context.Context, name string) ([]byte, error) {
	p, err := l.sidePath(name)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

// DeleteFile implements Store.
func (l *LocalStore) DeleteFile(_ context.Context, name string) error {
	p, err := l.sidePath(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", name, err)
	}
	return nil
}

// writeAtomic writes a temp file in the same folder, fsyncs it, renames it over the target
// and fsyncs the folder: a crash at any point leaves either the old or the new file.
func (l *LocalStore) writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	cleanup := func(e error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, e)
	}
	if err := f.Chmod(0o600); err != nil {
		return cleanup(err)
	}
	if _, err := f.Write(data); err != nil {
		return cleanup(err)
	}
	if err := f.Sync(); err != nil {
		return cleanup(err)
	}
	if err := f.Close(); err != nil {
		return cleanup(err)
	}
	if l.beforeRename != nil {
		if err := l.beforeRename(tmp); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
