// Package installer is the generic engine of rhoai-bootstrap: the Phase contract, a DAG
// runner that runs independent phases concurrently, the state store with its lock, the
// event stream every front-end renders, and the plan recorder. It knows nothing of
// OpenShift, AWS or ACME; phases bring that knowledge.
package installer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// Phase is one idempotent step of a bootstrap. The runner calls Check first and Apply only
// when Check says there is work, then Check again to confirm convergence.
type Phase interface {
	// Name is a short, stable identifier used in state, flags and events.
	Name() string
	// DependsOn names the phases that must be done before this one starts.
	DependsOn() []string
	// Check observes the real world and reports whether the phase is done. It must not
	// change anything: `plan` is built from Check alone.
	Check(ctx context.Context, s *Scope) (Status, error)
	// Apply makes the world match. It must be safe to call again after a failure or a
	// kill at any point.
	Apply(ctx context.Context, s *Scope) error
	// Destroy removes what this phase made, and only that (as recorded in its state).
	Destroy(ctx context.Context, s *Scope) error
}

// InputHasher is implemented by phases whose inputs cannot all be observed by Check (a file
// written long ago, an installer run). When the hash differs from the one recorded at the
// last success, the phase applies again even if Check says done.
type InputHasher interface {
	Inputs() any
}

// Status is what Check found.
type Status struct {
	// Done means nothing needs to change.
	Done bool
	// Reason says why the phase is (not) done, in a few words for people.
	Reason string
	// Changes lists what Apply would do. Plans print them.
	Changes []Change
}

// Action is a kind of change.
type Action string

// Actions a plan can show.
const (
	Create Action = "create"
	Update Action = "update"
	Delete Action = "delete"
	Run    Action = "run"
	// Adopt takes an object that exists as it is into the inventory: nothing is written
	// to it, and destroy leaves it.
	Adopt Action = "adopt"
)

// Change is one thing Apply would do.
type Change struct {
	Action Action `json:"action"`
	// Target names the object or resource, e.g. "Subscription openshift-gitops-operator/openshift-gitops-operator".
	Target string `json:"target"`
	// Detail says why, e.g. "channel gitops-1.15 → gitops-1.16".
	Detail string `json:"detail,omitempty"`
}

func (c Change) String() string {
	s := string(c.Action) + " " + c.Target
	if c.Detail != "" {
		s += " (" + c.Detail + ")"
	}
	return s
}

// Done is a convenience for a converged Status.
func Done(reason string) Status { return Status{Done: true, Reason: reason} }

// Pending is a convenience for a Status with work to do.
func Pending(reason string, changes ...Change) Status {
	return Status{Reason: reason, Changes: changes}
}

// ErrNotImplemented marks a phase that exists in the graph but cannot run yet. The runner
// reports it as a failure, never as success.
var ErrNotImplemented = errors.New("not implemented")

// BlockedError is returned by Check when the phase cannot even observe its target yet
// (for example, the cluster does not exist). Plans show it as "blocked".
type BlockedError struct{ Reason string }

func (e *BlockedError) Error() string { return "blocked: " + e.Reason }

// Blocked returns a *BlockedError.
func Blocked(format string, args ...any) error {
	return &BlockedError{Reason: fmt.Sprintf(format, args...)}
}

// HashInputs returns the hex SHA-256 of the JSON form of v ("" for nil).
func HashInputs(v any) (string, error) {
	if v == nil {
		return "", nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("hashing phase inputs: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
