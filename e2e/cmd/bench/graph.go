package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/simulator"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/graph"
)

// phaseOrder is the graph's phases in the order the binary declares them.
var phaseOrder []string

// graphEdges returns the binary's own phase graph (each phase's DependsOn) for the dev
// example, an installed cluster as on the bed: the lower bound and the model follow the
// code, not a copy of it.
func graphEdges(root string) (map[string][]string, error) {
	c, err := configs.Load(filepath.Join(root, "configs", "examples", "dev.yaml"))
	if err != nil {
		return nil, fmt.Errorf("reading the dev example for the phase graph: %w", err)
	}
	deps := map[string][]string{}
	phaseOrder = nil
	for _, p := range graph.Phases(&phases.Env{Cluster: c}, graph.Options{}) {
		deps[p.Name()] = p.DependsOn()
		phaseOrder = append(phaseOrder, p.Name())
	}
	return deps, nil
}

// longestPath is the critical path: the end time of the last phase when each phase
// starts as soon as all it depends on have ended and takes d[phase].
func longestPath(deps map[string][]string, d map[string]time.Duration) time.Duration {
	end := map[string]time.Duration{}
	var finish func(string) time.Duration
	finish = func(p string) time.Duration {
		if e, ok := end[p]; ok {
			return e
		}
		var start time.Duration
		for _, q := range deps[p] {
			start = max(start, finish(q))
		}
		end[p] = start + d[p]
		return end[p]
	}
	var total time.Duration
	for p := range deps {
		total = max(total, finish(p))
	}
	return total
}

// lowerBound is the critical path of one run's own phase durations: no scheduler can end
// that run's work sooner, whatever it runs concurrently.
func lowerBound(deps map[string][]string, phases map[string]time.Duration) time.Duration {
	return longestPath(deps, phases)
}

// modelled is the real-world bootstrap (scale 1) on the same graph: the installation,
// then the day-2 phases' critical path and their sum, from each phase's slow steps.
func modelled(deps map[string][]string, l simulator.Latencies) (install, day2, serial time.Duration) {
	d := map[string]time.Duration{
		"cluster": simulator.RealInstall,
		// Subscription → CSV Succeeded; the ArgoCD instance's start is not modelled.
		"gitops-operator": l.OperatorInstall,
		"oauth":           l.OAuthRollout,
		// DNS-01: the TXT records propagating dominates an order.
		"certificates": simulator.RealDNSPropagation,
		// Both patches go in together; the phase waits for the longer rollout.
		"certificates-rollout": max(l.IngressRollout, l.APIServerRollout),
		"root-app":             simulator.RealHandOff,
	}
	day2Deps := map[string][]string{}
	for p, ds := range deps {
		if p == "preflight" || p == "install-config" || p == "cluster" {
			continue
		}
		for _, q := range ds {
			if q != "cluster" {
				day2Deps[p] = append(day2Deps[p], q)
			}
		}
		if _, ok := day2Deps[p]; !ok {
			day2Deps[p] = nil
		}
		serial += d[p]
	}
	return d["cluster"], longestPath(day2Deps, d), serial
}

func fmtRatios(rs []float64) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%.2f", r)
	}
	return strings.Join(parts, ", ")
}
