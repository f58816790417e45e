package cluster

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDecide(t *testing.T) {
	started := func(stage string, exit int) Progress {
		return Progress{CreateStarted: true, Stage: stage, LastExit: exit}
	}
	destroyed := func(stage string, exit int) Progress {
		p := started(stage, exit)
		p.BootstrapDestroyed = true
		return p
	}
	cases := []struct {
		name      string
		p         Progress
		meta, api bool
		want      Action
	}{
		{"fresh", Progress{}, false, false, ActCreate},
		{"fresh even with a reachable API", Progress{}, false, true, ActCreate},
		{"finished", destroyed(StageComplete, 0), true, true, ActDone},
		{"available, bootstrap left", started(StageComplete, 0), true, true, ActDestroyBootstrap},
		{"killed during bootstrap, available now, bootstrap left", started(StageBootstrap, -1), true, true, ActDestroyBootstrap},
		{"config error", started(StageNone, 3), false, false, ActFailConfig},
		{"infrastructure failed", started(StageInfrastructure, 4), true, false, ActRecreate},
		{"bootstrap failed", started(StageBootstrap, 5), true, false, ActRecreate},
		{"install failed", destroyed(StageInitialize, 6), true, false, ActWaitInstall},
		{"operators unstable", destroyed(StageInitialize, 7), true, false, ActWaitInstall},
		{"exited 0 but not recorded", destroyed(StageComplete, 0), true, false, ActWaitInstall},
		{"exited 0, bootstrap preserved", started(StageComplete, 0), true, false, ActDestroyBootstrap},
		{"wait-for bootstrap-complete done, killed before destroy bootstrap", started(StageBootstrapComplete, 0), true, false, ActDestroyBootstrap},
		{"destroy bootstrap killed", started(StageBootstrapComplete, -1), true, false, ActDestroyBootstrap},
		{"destroy bootstrap failed", started(StageBootstrapComplete, 1), true, false, ActDestroyBootstrap},
		{"killed before metadata.json", started(StageNone, -1), false, false, ActRecreate},
		{"killed during infrastructure", started(StageInfrastructure, -1), true, false, ActRecreate},
		{"interrupted during infrastructure", started(StageInfrastructure, 8), true, false, ActRecreate},
		{"killed waiting for the API", started(StageAPI, -1), true, false, ActWaitBootstrap},
		{"killed during bootstrap", started(StageBootstrap, -1), true, false, ActWaitBootstrap},
		{"interrupted during bootstrap", started(StageBootstrap, 8), true, false, ActWaitBootstrap},
		{"killed after bootstrap and its destruction", destroyed(StageBootstrapComplete, -1), true, false, ActWaitInstall},
		{"killed after bootstrap, before its destruction", started(StageBootstrapComplete, -1), true, false, ActDestroyBootstrap},
		{"interrupted while initializing", destroyed(StageInitialize, 8), true, false, ActWaitInstall},
		{"metadata lost after install failure", started(StageInitialize, 6), false, false, ActRecreate},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, Decide(tc.p, tc.meta, tc.api))
		})
	}
}

func TestStageOf(t *testing.T) {
	assert.Equal(t, StageInfrastructure, stageOf("Creating infrastructure resources..."))
	assert.Equal(t, StageAPI, stageOf("Waiting up to 20m0s (until 10:32AM UTC) for the Kubernetes API at https://api.x.example.com:6443..."))
	assert.Equal(t, StageBootstrap, stageOf("Waiting up to 45m0s (until 11:02AM UTC) for bootstrapping to complete..."))
	assert.Equal(t, StageBootstrapComplete, stageOf("Destroying the bootstrap resources..."))
	assert.Equal(t, StageInitialize, stageOf("Waiting up to 40m0s (until 11:40AM UTC) for the cluster at https://api.x:6443 to initialize..."))
	assert.Equal(t, StageComplete, stageOf("Install complete!"))
	assert.Equal(t, "", stageOf("Consuming Install Config from target directory"))
}
