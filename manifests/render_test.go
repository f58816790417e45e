package manifests_test

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// TestEveryKustomizationRenders builds every kustomization of the tree in-process, with
// no network and plugins (Helm included) disabled. Kustomize Components cannot be built
// alone, so each is built inside a throw-away kustomization on top of clusters/base.
func TestEveryKustomizationRenders(t *testing.T) {
	fsys := payloadFS(t)
	ks := kustomizations(t)
	built := 0
	for _, dir := range sortedKeys(ks) {
		k := ks[dir]
		t.Run(dir, func(t *testing.T) {
			for _, ref := range append(append([]string{}, k.Resources...), k.Components...) {
				assert.NotContains(t, ref, "://", "remote reference in %s", dir)
				assert.False(t, strings.HasPrefix(ref, "github.com/"), "remote reference %s in %s", ref, dir)
			}
			assert.NotContains(t, k.Raw, "helmCharts", "Helm charts would be fetched from the network")
			assert.NotContains(t, k.Raw, "patchesJson6902", "use patches with named targets")
			assert.NotContains(t, k.Raw, "patchesStrategicMerge", "use patches with named targets")
			if k.Kind == "Component" {
				probe := path.Join("clusters", "probe-"+strings.ReplaceAll(dir, "/", "-"))
				rel := strings.Repeat("../", 2) + dir
				require.NoError(t, fsys.WriteFile(path.Join(fsRoot, probe, "kustomization.yaml"), fmt.Appendf(nil,
					"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../base\ncomponents:\n  - %s\n", rel)))
				objs := render(t, fsys, probe)
				t.Logf("%s (component, on top of clusters/base): %d objects", dir, len(objs))
				return
			}
			objs := render(t, fsys, dir)
			assert.NotEmpty(t, objs)
			t.Logf("%s: %d objects", dir, len(objs))
		})
		built++
	}
	t.Logf("%d kustomizations rendered", built)
}

// listIndex matches a JSON pointer segment that is a list position (/0, /12, /-).
var listIndex = regexp.MustCompile(`/(\d+|-)(/|$)`)

// TestPatchesNameTheirTargets keeps environments apart by patches that say what they
// change: every patch has a target naming a kind, and JSON patches never address list
// positions, which silently hit the wrong element when a list is reordered.
func TestPatchesNameTheirTargets(t *testing.T) {
	for dir, k := range kustomizations(t) {
		for i, p := range k.Patches {
			target, _ := p["target"].(map[string]any)
			require.NotNil(t, target, "%s: patch %d has no target", dir, i)
			assert.NotEmpty(t, target["kind"], "%s: patch %d target names no kind", dir, i)
			assert.True(t, target["name"] != nil || target["labelSelector"] != nil || target["annotationSelector"] != nil,
				"%s: patch %d target selects by neither name nor label/annotation", dir, i)
			body, _ := p["patch"].(string)
			require.NotEmpty(t, body, "%s: patch %d is not inline", dir, i)
			var ops []map[string]any
			if err := yaml.Unmarshal([]byte(body), &ops); err == nil {
				for _, op := range ops {
					ptr, _ := op["path"].(string)
					assert.False(t, listIndex.MatchString(ptr), "%s: patch %d addresses a list position: %s", dir, i, ptr)
				}
			}
		}
	}
}

// TestApplications checks the app-of-apps contract of each environment.
func TestApplications(t *testing.T) {
	fsys := payloadFS(t)
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			root := render(t, fsys, overlay)
			projects := map[string]bool{}
			for _, p := range ofKind(root, "AppProject") {
				projects[nameOf(p)] = true
				assert.Equal(t, "openshift-gitops", str(p, "metadata", "namespace"))
			}
			apps := ofKind(root, "Application")
			require.NotEmpty(t, apps)
			maxOperatorWave, minInstanceWave := -1000, 1000
			for _, a := range apps {
				name := nameOf(a)
				assert.Equal(t, "argoproj.io/v1alpha1", str(a, "apiVersion"), name)
				assert.Equal(t, "openshift-gitops", str(a, "metadata", "namespace"), name)
				assert.Contains(t, list(a, "metadata", "finalizers"), "resources-finalizer.argocd.argoproj.io", "%s: cascade delete needs the finalizer", name)
				assert.True(t, projects[str(a, "spec", "project")], "%s: project %q is not rendered", name, str(a, "spec", "project"))
				assert.Equal(t, "https://kubernetes.default.svc", str(a, "spec", "destination", "server"), name)
				assert.NotEmpty(t, str(a, "spec", "destination", "namespace"), name)
				assert.Equal(t, true, get(a, "spec", "syncPolicy", "automated", "selfHeal"), "%s: selfHeal", name)
				wave, err := strconv.Atoi(str(a, "metadata", "annotations", "argocd.argoproj.io/sync-wave"))
				require.NoError(t, err, "%s: sync-wave", name)
				opts := list(a, "spec", "syncPolicy", "syncOptions")
				switch layer := str(a, "metadata", "labels", "rhoai-bootstrap.io/layer"); layer {
				case "operators":
					maxOperatorWave = max(maxOperatorWave, wave)
				case "instances":
					minInstanceWave = min(minInstanceWave, wave)
					assert.Contains(t, opts, "SkipDryRunOnMissingResource=true", "%s: its kinds come from an operator", name)
					assert.Equal(t, false, get(a, "spec", "syncPolicy", "automated", "prune"), "%s: instances are never pruned", name)
				case "configs":
					assert.Contains(t, opts, "SkipDryRunOnMissingResource=true", name)
					assert.Greater(t, wave, 2, "%s: configuration comes after the operators", name)
				default:
					t.Errorf("%s: unknown layer %q", name, layer)
				}
				if len(list(a, "spec", "ignoreDifferences")) > 0 {
					assert.Contains(t, opts, "RespectIgnoreDifferences=true", "%s: ignoreDifferences must also hold during sync", name)
				}
			}
			assert.Less(t, maxOperatorWave, minInstanceWave, "every operator application must come before every instance application")
		})
	}
}

// TestMachineSetReplicasIgnored keeps Argo CD from fighting the cluster autoscaler.
func TestMachineSetReplicasIgnored(t *testing.T) {
	fsys := payloadFS(t)
	for _, overlay := range overlays {
		r := renderEnv(t, fsys, overlay)
		app := r.apps["config-autoscaling"]
		require.NotNil(t, app, overlay)
		var found bool
		for _, d := range list(app, "spec", "ignoreDifferences") {
			m := d.(map[string]any)
			if m["group"] == "machine.openshift.io" && m["kind"] == "MachineSet" {
				assert.Contains(t, m["jsonPointers"], "/spec/replicas")
				found = true
			}
		}
		assert.True(t, found, "%s: config-autoscaling must ignore MachineSet /spec/replicas", overlay)
	}
}

// TestGitOpsSource checks that one file per overlay decides where every child
// application reads from, and that the root application can override it with a patch.
func TestGitOpsSource(t *testing.T) {
	fsys := payloadFS(t)
	ks := kustomizations(t)
	assert.Equal(t, ks[overlays[0]].Replacements, ks[overlays[1]].Replacements, "the overlays' replacements must be identical")
	check := func(t *testing.T, objs []obj, repo, rev string) {
		t.Helper()
		for _, o := range objs {
			assert.NotEqual(t, "GitOpsSource", kindOf(o), "the GitOpsSource must not be rendered")
		}
		for _, a := range ofKind(objs, "Application") {
			assert.Equal(t, repo, str(a, "spec", "source", "repoURL"), nameOf(a))
			assert.Equal(t, rev, str(a, "spec", "source", "targetRevision"), nameOf(a))
		}
		for _, p := range ofKind(objs, "AppProject") {
			assert.Equal(t, []any{repo}, list(p, "spec", "sourceRepos"), nameOf(p))
		}
	}
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			data, err := fsys.ReadFile(path.Join(fsRoot, overlay, "source.yaml"))
			require.NoError(t, err)
			var src obj
			require.NoError(t, yaml.Unmarshal(data, &src))
			check(t, render(t, fsys, overlay), str(src, "spec", "repoURL"), str(src, "spec", "targetRevision"))

			// What Argo CD does with a root application's spec.source.kustomize.patches:
			// it appends them to the overlay's kustomization before building.
			kfile := path.Join(fsRoot, overlay, "kustomization.yaml")
			orig, err := fsys.ReadFile(kfile)
			require.NoError(t, err)
			var k map[string]any
			require.NoError(t, yaml.Unmarshal(orig, &k))
			patches, _ := k["patches"].([]any)
			k["patches"] = append(patches, map[string]any{
				"target": map[string]any{"kind": "GitOpsSource", "name": "payload"},
				"patch":  "[{\"op\":\"replace\",\"path\":\"/spec/repoURL\",\"value\":\"https://git.example.com/fork/platform.git\"},{\"op\":\"replace\",\"path\":\"/spec/targetRevision\",\"value\":\"v1.2.3\"}]",
			})
			patched, err := yaml.Marshal(k)
			require.NoError(t, err)
			require.NoError(t, fsys.WriteFile(kfile, patched))
			defer func() { require.NoError(t, fsys.WriteFile(kfile, orig)) }()
			check(t, render(t, fsys, overlay), "https://git.example.com/fork/platform.git", "v1.2.3")
		})
	}
}

// TestEnvironmentsDiffer pins what makes dev and prod different, so an edit that
// accidentally makes them equal (or drops a difference) is noticed.
func TestEnvironmentsDiffer(t *testing.T) {
	fsys := payloadFS(t)
	dev, prod := renderEnv(t, fsys, "clusters/overlays/dev"), renderEnv(t, fsys, "clusters/overlays/prod")
	banner := func(r rendered) string {
		n := ofKind(r.children["config-console"], "ConsoleNotification")
		require.Len(t, n, 1)
		return str(n[0], "spec", "text")
	}
	assert.True(t, strings.HasPrefix(banner(dev), "DEV"), banner(dev))
	assert.True(t, strings.HasPrefix(banner(prod), "PROD"), banner(prod))
	assert.Contains(t, dev.apps, "operators-extra")
	assert.NotContains(t, prod.apps, "operators-extra")
	assert.Contains(t, prod.apps, "instance-odf")
	assert.NotContains(t, dev.apps, "instance-odf")
	for _, a := range prod.apps {
		if str(a, "metadata", "labels", "rhoai-bootstrap.io/layer") == "operators" {
			assert.Equal(t, false, get(a, "spec", "syncPolicy", "automated", "prune"), "prod operator application %s must not prune", nameOf(a))
		}
	}
	stopped := func(r rendered) (names []string) {
		for _, m := range ofKind(r.children["config-maas"], "LLMInferenceService") {
			if n, ok := get(m, "spec", "replicas").(float64); ok && n == 0 {
				names = append(names, nameOf(m))
			} else if n, ok := get(m, "spec", "replicas").(int); ok && n == 0 {
				names = append(names, nameOf(m))
			}
		}
		return names
	}
	assert.ElementsMatch(t, []string{"llama-4-scout-17b-16e-instruct", "mistral-small-3-1-24b-instruct", "llama-3-3-70b-instruct",
		"llama-4-maverick-17b-128e-instruct"}, stopped(dev), "dev runs no private-pool model")
	assert.Empty(t, stopped(prod))
	assert.Contains(t, dev.apps, "config-maas-analytics", "dev has the Grafana operator, so the usage dashboards")
	for _, env := range []rendered{dev, prod} {
		t.Logf("%d root objects (%d applications), %d objects in all", len(env.root), len(env.apps), len(env.all()))
	}
}
