// Package clusterstate is the cluster phase's record in the state. It lives apart from the
// cluster phase because install-config reads it (has `create cluster` started?) and the
// cluster phase imports install-config.
package clusterstate

import "time"

// Phase is the cluster phase's name.
const Phase = "cluster"

// Record is what the cluster phase keeps in the state: what cannot be observed about an
// `openshift-install` run once the process is gone.
type Record struct {
	// Progress is the installation's furthest stage and last exit code; nil before the
	// first `create cluster`.
	Progress *Progress `json:"progress,omitempty"`
	// InstallerPID is the running installer's process, so a run that was killed can stop
	// the installer it left behind before deciding anything.
	InstallerPID int `json:"installerPID,omitempty"`
	// InfraID and ClusterID come from metadata.json, copied on first sight.
	InfraID   string `json:"infraID,omitempty"`
	ClusterID string `json:"clusterID,omitempty"`
	// Installed is set once `create cluster` (or a wait-for) finished and the kubeconfig
	// was saved: from then on the cluster is never installed again.
	Installed bool `json:"installed,omitempty"`
	// Recreations counts automatic destroy-and-recreate cycles.
	Recreations int `json:"recreations,omitempty"`
	// DestroyedInfraID is the infra ID `destroy` removed last, for people reading the state.
	DestroyedInfraID string `json:"destroyedInfraID,omitempty"`
	// FailedAttempts are the folders of failed installer attempts kept for people to read
	// (the newest last; at most three exist).
	FailedAttempts []FailedAttempt `json:"failedAttempts,omitempty"`
}

// FailedAttempt is what one failed attempt left: paths only. The folder keeps the
// installer's log and, after a bootstrap failure, the log bundle it gathered.
type FailedAttempt struct {
	At        time.Time `json:"at"`
	Exit      int       `json:"exit"`
	InfraID   string    `json:"infraID,omitempty"`
	Folder    string    `json:"folder"`
	LogBundle string    `json:"logBundle,omitempty"`
}

// PhaseName implements installer.Record.
func (Record) PhaseName() string { return Phase }

// CreateStarted reports whether `create cluster` was ever started for the current infra
// ID: from then on the install-config is consumed.
func (r Record) CreateStarted() bool { return r.Progress != nil && r.Progress.CreateStarted }

// Progress is what the state says about an installation.
type Progress struct {
	CreateStarted bool   `json:"createStarted"`
	Stage         string `json:"stage,omitempty"`
	// LastExit is the last installer exit code; -1 when the run ended without one (killed).
	LastExit int `json:"lastExit"`
	// BootstrapDestroyed records that the bootstrap resources were removed: by `create
	// cluster` itself (it says "Finished destroying bootstrap resources") or by our
	// `destroy bootstrap`. It cannot be observed from the cluster, and `destroy bootstrap`
	// fails when run a second time, so it must be remembered.
	BootstrapDestroyed bool `json:"bootstrapDestroyed,omitempty"`
}
