// Package graph assembles the bootstrap's phase graph:
//
//	preflight → install-config → cluster ┬→ gpu-pools ───────┐
//	                                      ├→ gitops-operator ─┼→ root-app
//	                                      ├→ certificates ────┘
//	                                      │        └→ certificates-rollout
//	                                      └→ oauth
//
// Each phase's DependsOn says what would break without each of its edges. The phases
// after cluster run concurrently; the hand-off (root-app) waits only for what it needs,
// not for the router, API server and login rollouts, which end the run by themselves.
package graph

import (
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/certificates"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/cluster"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/gitopsoperator"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/gpupools"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/installconfig"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/oauth"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/preflight"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/rootapp"
)

// Options tune phases from the command line.
type Options struct {
	Certificates certificates.Options
}

// Phases returns the graph for a cluster.
func Phases(env *phases.Env, o Options) []installer.Phase {
	return []installer.Phase{
		preflight.New(env, certificates.RateLimitWarning(env)),
		installconfig.New(env),
		cluster.New(env),
		gpupools.New(env),
		gitopsoperator.New(env),
		oauth.New(env),
		certificates.New(env, o.Certificates),
		certificates.NewRollout(env),
		rootapp.New(env),
	}
}
