package certificates

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// A change of the Secrets is waited for until certificates-rollout confirmed that very
// change (same certificate, same start); a pending patch rollout and a newer change merge
// into one wait that starts at the later of the two and covers both operators.
func TestRolloutWaitsForUnconfirmedChanges(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	change := &rollout{Since: t0, Serial: "a1", APIServer: true}
	assert.Same(t, change, unconfirmed(change, nil), "never confirmed")
	assert.Nil(t, unconfirmed(change, &rollout{Since: t0, Serial: "a1", APIServer: true}), "confirmed")
	assert.Same(t, change, unconfirmed(change, &rollout{Since: t0.Add(-time.Hour), Serial: "a0", APIServer: true}), "an older change was confirmed, not this one")
	assert.Nil(t, unconfirmed(nil, nil), "no change recorded")

	pending := &rollout{Since: t0.Add(time.Minute), Serial: "a1", Ingress: true}
	m := merge(pending, change)
	assert.Equal(t, rollout{Since: t0.Add(time.Minute), Serial: "a1", Ingress: true, APIServer: true}, *m)
	renewed := &rollout{Since: t0.Add(time.Hour), Serial: "b2", APIServer: true}
	m = merge(pending, renewed)
	assert.Equal(t, rollout{Since: t0.Add(time.Hour), Serial: "b2", Ingress: true, APIServer: true}, *m, "the later change's start and certificate")
	assert.Nil(t, merge(nil, nil))
	m = merge(nil, change)
	assert.NotSame(t, change, m, "a copy: the wait never changes the record it came from")
}
