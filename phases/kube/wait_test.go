package kube

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A check whose request fails because the deadline is upon it (the rate limiter's "would
// exceed context deadline") ends the wait as a timeout, so the caller can report what was
// still awaited; an error earlier on is returned as it is.
func TestWaitTimesOutWhenTheDeadlineFailsTheCheck(t *testing.T) {
	old := PollInterval
	PollInterval = 20 * time.Millisecond
	t.Cleanup(func() { PollInterval = old })
	start := time.Now()
	timeout := 200 * time.Millisecond
	err := Wait(context.Background(), nil, "the thing", timeout, func(context.Context) (bool, string, error) {
		if time.Since(start) > timeout-PollInterval/2 {
			return false, "", errors.New("client rate limiter Wait returned an error: rate: Wait(n=1) would exceed context deadline")
		}
		return false, "still pending", nil
	})
	var te *TimeoutError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, "still pending", te.Last)

	boom := errors.New("forbidden")
	err = Wait(context.Background(), nil, "the thing", time.Second, func(context.Context) (bool, string, error) {
		return false, "", boom
	})
	assert.ErrorIs(t, err, boom)
}
