package manifests_test

import (
	"io/fs"
	"path"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/manifests"
)

// fsRoot is where the embedded payload is mounted in the in-memory file system, so
// paths in Applications ("manifests/gitops/...") resolve as they do in the repository.
const fsRoot = "/repo/manifests/gitops"

// repoPrefix is how Applications' spec.source.path names the payload root.
const repoPrefix = "manifests/gitops/"

// obj is one rendered Kubernetes object.
type obj = map[string]any

// payloadFS copies the embedded payload into an in-memory file system. Rendering from
// the embedded copy proves the tree that the binary ships is complete on its own: a
// reference outside it, or a remote base, cannot load.
func payloadFS(t testing.TB) filesys.FileSystem {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	err := fs.WalkDir(manifests.GitOps, manifests.GitOpsRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := manifests.GitOps.ReadFile(p)
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, manifests.GitOpsRoot+"/")
		return mem.WriteFile(path.Join(fsRoot, rel), data)
	})
	require.NoError(t, err)
	return mem
}

// kustomization is the part of a kustomization.yaml the tests look at.
type kustomization struct {
	Kind         string           `json:"kind"`
	Resources    []string         `json:"resources"`
	Components   []string         `json:"components"`
	Patches      []map[string]any `json:"patches"`
	Replacements []map[string]any `json:"replacements"`
	Raw          map[string]any   `json:"-"`
}

// kustomizations returns every folder (relative to the payload root) that holds a
// kustomization.yaml, with its parsed content.
func kustomizations(t testing.TB) map[string]kustomization {
	t.Helper()
	out := map[string]kustomization{}
	err := fs.WalkDir(manifests.GitOps, manifests.GitOpsRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "kustomization.yaml" {
			return err
		}
		data, err := manifests.GitOps.ReadFile(p)
		if err != nil {
			return err
		}
		var k kustomization
		if err := yaml.Unmarshal(data, &k); err != nil {
			return err
		}
		if err := yaml.Unmarshal(data, &k.Raw); err != nil {
			return err
		}
		dir := strings.TrimPrefix(path.Dir(p), manifests.GitOpsRoot)
		out[strings.TrimPrefix(dir, "/")] = k
		return nil
	})
	require.NoError(t, err)
	require.NotEmpty(t, out)
	return out
}

// render builds the kustomization in dir (relative to the payload root) from fsys.
func render(t testing.TB, fsys filesys.FileSystem, dir string) []obj {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(fsys, path.Join(fsRoot, dir))
	require.NoError(t, err, "kustomize build %s", dir)
	var out []obj
	for _, r := range m.Resources() {
		o, err := r.Map()
		require.NoError(t, err)
		out = append(out, o)
	}
	return out
}

// overlays are the environments a root application can point at.
var overlays = []string{"clusters/overlays/dev", "clusters/overlays/prod"}

// rendered is an environment's full payload: the root overlay's objects and, per child
// Application, the objects its source path renders to.
type rendered struct {
	root     []obj
	children map[string][]obj // by Application name
	apps     map[string]obj
}

// all returns the root's and every child's objects.
func (r rendered) all() []obj {
	out := append([]obj(nil), r.root...)
	for _, name := range sortedKeys(r.children) {
		out = append(out, r.children[name]...)
	}
	return out
}

// renderEnv renders an overlay and every child application it declares, the way Argo
// CD would (each child's spec.source.path is a kustomization in the same repository).
func renderEnv(t testing.TB, fsys filesys.FileSystem, overlay string) rendered {
	t.Helper()
	r := rendered{root: render(t, fsys, overlay), children: map[string][]obj{}, apps: map[string]obj{}}
	for _, o := range r.root {
		if kindOf(o) != "Application" {
			continue
		}
		name := nameOf(o)
		p := str(o, "spec", "source", "path")
		require.True(t, strings.HasPrefix(p, repoPrefix), "application %s: path %q is not inside %s", name, p, repoPrefix)
		r.apps[name] = o
		r.children[name] = render(t, fsys, strings.TrimPrefix(p, repoPrefix))
	}
	require.NotEmpty(t, r.apps, "%s declares no applications", overlay)
	return r
}

func kindOf(o obj) string { return str(o, "kind") }
func nameOf(o obj) string { return str(o, "metadata", "name") }

// str returns the string at a field path, or "".
func str(o obj, fields ...string) string {
	v, _ := get(o, fields...).(string)
	return v
}

// get returns the value at a field path, or nil.
func get(o obj, fields ...string) any {
	var cur any = o
	for _, f := range fields {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[f]
	}
	return cur
}

func list(o obj, fields ...string) []any {
	l, _ := get(o, fields...).([]any)
	return l
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ofKind returns the objects of a kind.
func ofKind(objs []obj, kind string) []obj {
	var out []obj
	for _, o := range objs {
		if kindOf(o) == kind {
			out = append(out, o)
		}
	}
	return out
}
