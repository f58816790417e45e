package installer

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWalkVisitsInDependencyOrderWithinTheLimit(t *testing.T) {
	w := newWorld()
	order := diamond(w)
	deps := map[string][]string{}
	for _, p := range order {
		deps[p.Name()] = p.DependsOn()
	}
	for _, limit := range []int{0, 1, 2} {
		var mu sync.Mutex
		var visited []string
		var running, peak atomic.Int32
		results, failures := walk(order, deps, limit, func(p Phase, before map[string]Outcome) (Outcome, error) {
			n := running.Add(1)
			defer running.Add(-1)
			for {
				if old := peak.Load(); n <= old || peak.CompareAndSwap(old, n) {
					break
				}
			}
			mu.Lock()
			for _, d := range p.DependsOn() {
				assert.Contains(t, visited, d, "%s visited before its dependency %s", p.Name(), d)
				if d != "c" {
					assert.Equal(t, OutcomeDone, before[d])
				}
			}
			visited = append(visited, p.Name())
			mu.Unlock()
			time.Sleep(100 * time.Millisecond)
			if p.Name() == "c" {
				return OutcomeFailed, errors.New("c failed")
			}
			if p.Name() == "e" {
				assert.Equal(t, OutcomeFailed, before["c"])
			}
			return OutcomeDone, nil
		})
		assert.Len(t, visited, 5, "limit %d", limit)
		assert.Equal(t, OutcomeFailed, results["c"])
		require.Len(t, failures, 1)
		assert.Equal(t, "c", failures[0].Phase)
		switch limit {
		case 0:
			assert.EqualValues(t, 3, peak.Load(), "b, c, d together")
		case 1:
			assert.Equal(t, []string{"a", "b", "c", "d", "e"}, visited, "sequential in the declared order")
			assert.EqualValues(t, 1, peak.Load())
		default:
			assert.EqualValues(t, limit, peak.Load())
		}
	}
}

// Failures are reported in graph order, whichever finished first, so a run's error
// message does not depend on timing.
func TestRunErrorListsFailuresInGraphOrder(t *testing.T) {
	w := newWorld()
	phases := diamond(w)
	phases[1].(*fakePhase).applyFn = func(context.Context, *Scope) error {
		time.Sleep(150 * time.Millisecond)
		return errors.New("b broke")
	}
	phases[3].(*fakePhase).applyFn = func(context.Context, *Scope) error { return errors.New("d broke") }
	r, _, _ := newRunner(t, phases)
	_, err := r.Install(context.Background())
	var re *RunError
	require.ErrorAs(t, err, &re)
	require.Len(t, re.Failed, 2)
	assert.Equal(t, "b", re.Failed[0].Phase)
	assert.Equal(t, "d", re.Failed[1].Phase)
	assert.Equal(t, "phase b: b broke; phase d: d broke", err.Error())
}

// With --max-parallel 1 destroy is sequential too: the reverse of the install order.
func TestDestroySequentialOrder(t *testing.T) {
	w := newWorld()
	r, _, _ := newRunner(t, diamond(w))
	_, err := r.Install(context.Background())
	require.NoError(t, err)
	w.order = nil
	r.MaxParallel = 1
	_, err = r.Destroy(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{"-e", "-b", "-c", "-d", "-a"}, w.order)
}
