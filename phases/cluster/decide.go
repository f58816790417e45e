package cluster

import (
	"strings"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/cluster/clusterstate"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/installconfig"
)

// Stages of `openshift-install create cluster`, in order, as read from its output.
const (
	StageNone              = ""
	StageInfrastructure    = "infrastructure"
	StageAPI               = "api"
	StageBootstrap         = "bootstrap"
	StageBootstrapComplete = "bootstrap-complete"
	StageInitialize        = "initialize"
	StageComplete          = "complete"
)

var stageRank = map[string]int{StageNone: 0, StageInfrastructure: 1, StageAPI: 2, StageBootstrap: 3, StageBootstrapComplete: 4, StageInitialize: 5, StageComplete: 6}

// Action is what Apply does next.
type Action string

// Actions.
const (
	ActCreate        Action = "create"         // first `create cluster`
	ActWaitBootstrap Action = "wait-bootstrap" // `wait-for bootstrap-complete`, then destroy bootstrap, then install-complete
	// ActDestroyBootstrap is `destroy bootstrap`: bootstrapping completed but nothing removed
	// the bootstrap machine, its SSH rule and ignition bucket yet.
	ActDestroyBootstrap Action = "destroy-bootstrap"
	ActWaitInstall      Action = "wait-install" // `wait-for install-complete`
	ActRecreate         Action = "recreate"     // destroy (when metadata.json exists) and start over with a new infra ID
	ActDone             Action = "done"
	ActFailConfig       Action = "fail-config"
)

// Progress is what the state says about an installation.
type Progress = clusterstate.Progress

// Decide chooses how to continue an installation. It never answers "create" once a create
// has started: a second blind `create cluster` would build a second cluster, or fail on the
// first one's leftovers. Only `create cluster` removes the bootstrap resources by itself
// (openshift/installer cmd/openshift-install/create.go: after bootstrap-complete, before
// waiting for install-complete); an installation resumed through the waits must run
// `destroy bootstrap` (cmd/openshift-install/destroy.go) in its place, once. The rules:
//   - API up and ClusterVersion Available: done, once the bootstrap resources are gone.
//   - exit 3 (config): stop and say so — nothing was built.
//   - exit 4 or 5 (infrastructure, bootstrap): recreate.
//   - exit 0, 6 or 7 (finished, install or operators not settled): destroy bootstrap if
//     that is not recorded as done, else wait for install-complete.
//   - killed or interrupted (8): by the furthest stage seen. Before the installer wrote
//     metadata.json nothing exists: start over. During infrastructure creation the
//     installer cannot resume: destroy and recreate. From waiting-for-the-API on, the
//     bootstrap machine carries on by itself: wait for bootstrap-complete. After bootstrap:
//     destroy bootstrap unless done, then wait for install-complete.
func Decide(p Progress, metadataExists, clusterAvailable bool) Action {
	if !p.CreateStarted {
		return ActCreate
	}
	afterBootstrap := ActWaitInstall
	if !p.BootstrapDestroyed {
		afterBootstrap = ActDestroyBootstrap
	}
	if clusterAvailable {
		if !p.BootstrapDestroyed {
			return ActDestroyBootstrap
		}
		return ActDone
	}
	switch p.LastExit {
	case installconfig.ExitConfig:
		return ActFailConfig
	case installconfig.ExitInfrastructure, installconfig.ExitBootstrap:
		return ActRecreate
	case 0, installconfig.ExitInstall, installconfig.ExitOperators:
		if !metadataExists {
			return ActRecreate
		}
		return afterBootstrap
	}
	// Killed (-1), interrupted (8) or an unknown code.
	if !metadataExists {
		return ActRecreate
	}
	switch r := stageRank[p.Stage]; {
	case r >= stageRank[StageBootstrapComplete]:
		return afterBootstrap
	case r >= stageRank[StageAPI]:
		return ActWaitBootstrap
	default:
		return ActRecreate
	}
}

// bootstrapDestroyedLine is what the installer logs once the bootstrap resources are gone,
// from create cluster and from destroy bootstrap alike
// (pkg/infrastructure/clusterapi/clusterapi.go DestroyBootstrap).
const bootstrapDestroyedLine = "Finished destroying bootstrap resources"

// stageOf maps an installer log message to the stage it starts, or "".
func stageOf(msg string) string {
	switch {
	case strings.Contains(msg, "Creating infrastructure resources"):
		return StageInfrastructure
	case strings.Contains(msg, "for the Kubernetes API at"):
		return StageAPI
	case strings.Contains(msg, "for bootstrapping to complete"):
		return StageBootstrap
	case strings.Contains(msg, "Destroying the bootstrap resources"), strings.Contains(msg, "It is now safe to remove the bootstrap resources"):
		return StageBootstrapComplete
	case strings.Contains(msg, "to initialize"):
		return StageInitialize
	case strings.Contains(msg, "Install complete!"):
		return StageComplete
	}
	return ""
}
