package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
)

// Pool lends beds to rehearsals, one rehearsal per bed at a time, and rewinds a bed
// when it comes back (testbed.Bed.Reset) so the next rehearsal finds it as new. Starting
// a bed costs ~5 s of CPU on this machine kind even from the CRD snapshot; a rewind,
// well under a second. At most size beds run (NewPool); the first rehearsals start them,
// the rest wait for one.
type Pool struct {
	binDir string
	log    io.Writer

	slots chan struct{}     // one per bed started and not discarded
	idle  chan *testbed.Bed // rewound beds waiting for a rehearsal

	mu      sync.Mutex
	all     []*testbed.Bed
	started []time.Duration
	resets  []testbed.RewindStats
}

// NewPool returns a pool of at most size beds for rehearsals that use the prebuilt
// binaries in binDir. Beds start when first needed. log may be nil.
func NewPool(size int, binDir string, log io.Writer) *Pool {
	size = max(size, 1)
	return &Pool{binDir: binDir, log: log,
		slots: make(chan struct{}, size), idle: make(chan *testbed.Bed, size)}
}

// Start starts a rehearsal on a bed of the pool: an idle one, else a new one while
// fewer than the pool's size run, else the first one given back. o.WorkDir holds the
// rehearsal's own files (state, fake installer registry); the bed's files are the
// pool's.
func (p *Pool) Start(ctx context.Context, o Options) (*Rehearsal, error) {
	root, err := testbed.ModuleRoot()
	if err != nil {
		return nil, err
	}
	if o.WorkDir == "" {
		return nil, errors.New("a pooled rehearsal needs a WorkDir of its own")
	}
	bed, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	r := &Rehearsal{Root: root, WorkDir: o.WorkDir, BinDir: p.binDir, Bed: bed, pool: p, overlay: o.Overlay}
	if o.Log == nil {
		o.Log = p.log
	}
	if o.Log == nil {
		// The simulator's own log, for reading after a failure (Rehearsal.SimulatorLog).
		if f, err := os.Create(filepath.Join(o.WorkDir, "simulator.log")); err == nil {
			o.Log = f
			r.closeLog = f.Close
		}
	}
	if err := r.startSimulator(o); err != nil {
		if r.closeLog != nil {
			_ = r.closeLog()
		}
		return nil, errors.Join(err, p.put(bed))
	}
	return r, nil
}

func (p *Pool) get(ctx context.Context) (*testbed.Bed, error) {
	select {
	case b := <-p.idle:
		return b, nil
	default:
	}
	select {
	case b := <-p.idle:
		return b, nil
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for a test bed: %w", ctx.Err())
	}
	start := time.Now()
	b, err := testbed.Start(ctx, testbed.Options{Log: p.log})
	if err != nil {
		<-p.slots
		return nil, err
	}
	p.mu.Lock()
	p.all = append(p.all, b)
	p.started = append(p.started, time.Since(start))
	p.mu.Unlock()
	return b, nil
}

// put rewinds a bed and makes it available again. A bed that cannot be rewound is
// stopped and its slot freed: the next rehearsal starts a new one.
func (p *Pool) put(b *testbed.Bed) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := b.Reset(ctx)
	if err != nil {
		stopErr := b.Stop()
		<-p.slots
		return errors.Join(fmt.Errorf("rewinding the test bed: %w", err), stopErr)
	}
	p.mu.Lock()
	p.resets = append(p.resets, st)
	p.mu.Unlock()
	p.idle <- b
	return nil
}

// PIDs lists the processes of every bed the pool started.
func (p *Pool) PIDs() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int
	for _, b := range p.all {
		out = append(out, b.PIDs()...)
	}
	return out
}

// Report prints how many beds were started and rewound and what that took.
func (p *Pool) Report(w io.Writer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var start, reset time.Duration
	objects := 0
	for _, d := range p.started {
		start += d
	}
	for _, r := range p.resets {
		reset += r.Took
		objects += r.Restored + r.Deleted
	}
	fmt.Fprintf(w, "test beds: %d started (%s in all), %d rewinds (%s in all, %d objects put back)\n",
		len(p.started), start.Round(100*time.Millisecond), len(p.resets), reset.Round(10*time.Millisecond), objects)
}

// Close stops every bed the pool started. Rehearsals must have been stopped.
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for _, b := range p.all {
		errs = append(errs, b.Stop())
	}
	p.all = nil
	return errors.Join(errs...)
}
