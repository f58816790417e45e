package fakeinstall_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/fakeinstall"
)

var infraIDPattern = regexp.MustCompile(`^[a-z0-9-]{1,21}-[bcdfghjklmnpqrstvwxz2456789]{5}$`)

func TestVersion(t *testing.T) {
	tests := []struct {
		name  string
		env   []string
		first string
	}{
		{name: "default", first: "openshift-install 4.20.8"},
		{name: "overridden", env: []string{"FAKE_OPENSHIFT_INSTALL_VERSION=4.19.3"}, first: "openshift-install 4.19.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := run(t, tt.env, "version")
			require.Equal(t, 0, res.code, res.stderr)
			lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
			require.Len(t, lines, 4, res.stdout)
			assert.Equal(t, tt.first, lines[0])
			assert.Regexp(t, `^built from commit [0-9a-f]{40}$`, lines[1])
			assert.Regexp(t, `^release image \S+/ocp-release@sha256:[0-9a-f]{64}$`, lines[2])
			assert.Equal(t, "release architecture amd64", lines[3])
		})
	}
}

// readYAML decodes a file of w into a generic object.
func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var obj map[string]any
	require.NoError(t, yaml.Unmarshal(data, &obj))
	return obj
}

func str(t *testing.T, obj map[string]any, fields ...string) string {
	t.Helper()
	v, found, err := unstructured.NestedFieldNoCopy(obj, fields...)
	require.NoError(t, err)
	require.True(t, found, "%s missing", strings.Join(fields, "."))
	return strings.TrimSpace(strings.Trim(jsonString(t, v), `"`))
}

func jsonString(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestCreateManifests(t *testing.T) {
	w := newWorkspace(t)
	w.writeInstallConfig(t, installConfig("rhoai-dev"))
	res := run(t, w.env(), "create", "manifests", "--dir", w.dir)
	require.Equal(t, 0, res.code, res.stderr)
	assert.Contains(t, res.stderr, "level=info msg=Consuming Install Config from target directory\n")
	assert.Contains(t, res.stderr, "level=info msg=Manifests created in: "+w.path("manifests")+" and "+w.path("openshift"))
	assert.NoFileExists(t, w.path("install-config.yaml"), "the installer consumes install-config.yaml")

	infraID, err := fakeinstall.InfraIDFromState(w.dir)
	require.NoError(t, err)
	assert.Regexp(t, infraIDPattern, infraID)
	assert.True(t, strings.HasPrefix(infraID, "rhoai-dev-"))
	var st map[string]map[string]any
	data, err := os.ReadFile(w.path(".openshift_install_state.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &st))
	assert.Regexp(t, `^[0-9a-f-]{36}$`, st["*installconfig.ClusterID"]["UUID"])
	assert.Equal(t, "rhoai-dev", str(t, st["*installconfig.InstallConfig"], "config", "metadata", "name"))

	cm := readYAML(t, w.path("manifests", "cluster-config.yaml"))
	assert.Equal(t, "cluster-config-v1", str(t, cm, "metadata", "name"))
	assert.NotContains(t, str(t, cm, "data", "install-config"), "dXNlcjpwYXNz", "cluster-config-v1 carries no pull secret")
	infra := readYAML(t, w.path("manifests", "cluster-infrastructure-02-config.yml"))
	assert.Equal(t, infraID, str(t, infra, "status", "infrastructureName"))
	assert.Equal(t, "us-west-2", str(t, infra, "status", "platformStatus", "aws", "region"))

	for i := range 3 {
		m := readYAML(t, w.path("openshift", "99_openshift-cluster-api_master-machines-"+string(rune('0'+i))+".yaml"))
		assert.Equal(t, "Machine", str(t, m, "kind"))
		assert.Equal(t, "master", str(t, m, "metadata", "labels", "machine.openshift.io/cluster-api-machine-role"))
		assert.Equal(t, "m6i.2xlarge", str(t, m, "spec", "providerSpec", "value", "instanceType"))
	}

	wantReplicas := []string{"2", "2", "1"} // 5 workers over 3 zones
	for i, zone := range []string{"us-west-2a", "us-west-2b", "us-west-2c"} {
		ms := readYAML(t, w.path("openshift", "99_openshift-cluster-api_worker-machineset-"+string(rune('0'+i))+".yaml"))
		name := infraID + "-worker-" + zone
		assert.Equal(t, "machine.openshift.io/v1beta1", str(t, ms, "apiVersion"))
		assert.Equal(t, "MachineSet", str(t, ms, "kind"))
		assert.Equal(t, name, str(t, ms, "metadata", "name"))
		assert.Equal(t, "openshift-machine-api", str(t, ms, "metadata", "namespace"))
		assert.Equal(t, infraID, str(t, ms, "metadata", "labels", "machine.openshift.io/cluster-api-cluster"))
		assert.Equal(t, wantReplicas[i], str(t, ms, "spec", "replicas"))
		assert.Equal(t, name, str(t, ms, "spec", "selector", "matchLabels", "machine.openshift.io/cluster-api-machineset"))
		assert.Equal(t, infraID, str(t, ms, "spec", "selector", "matchLabels", "machine.openshift.io/cluster-api-cluster"))
		labels := []string{"spec", "template", "metadata", "labels"}
		assert.Equal(t, name, str(t, ms, append(labels, "machine.openshift.io/cluster-api-machineset")...))
		assert.Equal(t, "worker", str(t, ms, append(labels, "machine.openshift.io/cluster-api-machine-role")...))
		assert.Equal(t, "worker", str(t, ms, append(labels, "machine.openshift.io/cluster-api-machine-type")...))
		ps := []string{"spec", "template", "spec", "providerSpec", "value"}
		f := func(fields ...string) string { return str(t, ms, append(slicesClone(ps), fields...)...) }
		assert.Equal(t, "AWSMachineProviderConfig", f("kind"))
		assert.Equal(t, "machine.openshift.io/v1beta1", f("apiVersion"))
		assert.Equal(t, "ami-0a1b2c3d4e5f", f("ami", "id"))
		assert.Equal(t, "m6i.4xlarge", f("instanceType"))
		assert.Equal(t, zone, f("placement", "availabilityZone"))
		assert.Equal(t, "us-west-2", f("placement", "region"))
		assert.JSONEq(t, `[{"name":"tag:Name","values":["`+infraID+`-subnet-private-`+zone+`"]}]`, f("subnet", "filters"))
		assert.JSONEq(t, `[{"filters":[{"name":"tag:Name","values":["`+infraID+`-node"]}]},{"filters":[{"name":"tag:Name","values":["`+infraID+`-lb"]}]}]`, f("securityGroups"))
		assert.Equal(t, infraID+"-worker-profile", f("iamInstanceProfile", "id"))
		assert.JSONEq(t, `[{"name":"kubernetes.io/cluster/`+infraID+`","value":"owned"}]`, f("tags"))
		assert.Equal(t, "worker-user-data", f("userDataSecret", "name"))
		assert.Equal(t, "aws-cloud-credentials", f("credentialsSecret", "name"))
		assert.JSONEq(t, `[{"ebs":{"encrypted":true,"kmsKey":{"arn":""},"volumeSize":120,"volumeType":"gp3"}}]`, f("blockDevices"))
	}
	assert.NoFileExists(t, w.path("openshift", "99_openshift-cluster-api_worker-machineset-3.yaml"))

	rec := w.record(t, infraID)
	assert.Equal(t, fakeinstall.StageManifests, rec.Stage)
	assert.Equal(t, 0, rec.CreateClusterInvocations)
	invs, err := w.reg().Invocations()
	require.NoError(t, err)
	require.Len(t, invs, 1)
	assert.Equal(t, "create manifests", invs[0].Command())
	assert.Equal(t, infraID, invs[0].InfraID)
	log, err := os.ReadFile(w.path(".openshift_install.log"))
	require.NoError(t, err)
	assert.Contains(t, string(log), `level=info msg="Consuming Install Config from target directory"`)
	assert.Contains(t, string(log), `level=debug msg="OpenShift Installer 4.20.8"`)
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

func TestCreateManifestsAgain(t *testing.T) {
	tests := []struct {
		name        string
		second      func(t *testing.T, w workspace)
		sameInfraID bool
		workerFiles int
	}{
		{
			name:        "without install-config is a no-op that keeps added files",
			second:      func(*testing.T, workspace) {},
			sameInfraID: true,
			workerFiles: 3,
		},
		{
			name:        "with the same install-config keeps the infraID",
			second:      func(t *testing.T, w workspace) { w.writeInstallConfig(t, installConfig("again")) },
			sameInfraID: true,
			workerFiles: 3,
		},
		{
			name: "with a changed install-config regenerates without stale files",
			second: func(t *testing.T, w workspace) {
				cfg := installConfig("again")
				cfg["compute"] = []any{map[string]any{"name": "worker", "replicas": 2,
					"platform": map[string]any{"aws": map[string]any{"zones": []any{"us-west-2a", "us-west-2b"}}}}}
				w.writeInstallConfig(t, cfg)
			},
			workerFiles: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorkspace(t)
			first := w.manifests(t, "again", w.env())
			added := w.path("openshift", "99_gpu-pool-machineset.yaml")
			require.NoError(t, os.WriteFile(added, []byte("kind: MachineSet\n"), 0o644))
			before, err := os.ReadFile(w.path("openshift", "99_openshift-cluster-api_worker-machineset-0.yaml"))
			require.NoError(t, err)

			tt.second(t, w)
			res := run(t, w.env(), "create", "manifests", "--dir", w.dir)
			require.Equal(t, 0, res.code, res.stderr)
			second, err := fakeinstall.InfraIDFromState(w.dir)
			require.NoError(t, err)
			assert.FileExists(t, added, "files the tool added are left alone")
			workers, _ := filepath.Glob(w.path("openshift", "99_openshift-cluster-api_worker-machineset-*.yaml"))
			assert.Len(t, workers, tt.workerFiles)
			assert.NoFileExists(t, w.path("install-config.yaml"))
			if tt.sameInfraID {
				assert.Equal(t, first, second)
				after, err := os.ReadFile(w.path("openshift", "99_openshift-cluster-api_worker-machineset-0.yaml"))
				require.NoError(t, err)
				assert.Equal(t, string(before), string(after))
			} else {
				assert.NotEqual(t, first, second)
			}
		})
	}
}

func TestCreateManifestsRejectsBadInstallConfig(t *testing.T) {
	const prefix = `level=error msg=failed to fetch Master Machines: failed to load asset "Install Config": `
	tests := []struct {
		name string
		edit func(cfg map[string]any)
		raw  string // used instead of cfg when set
		want string
	}{
		{
			name: "region missing",
			edit: func(cfg map[string]any) { cfg["platform"] = map[string]any{"aws": map[string]any{}} },
			want: prefix + `invalid "install-config.yaml" file: platform.aws.region: Required value`,
		},
		{
			name: "pull secret not JSON",
			edit: func(cfg map[string]any) { cfg["pullSecret"] = "{auths" },
			want: prefix + `invalid "install-config.yaml" file: pullSecret: Invalid value: "<redacted>": invalid character`,
		},
		{
			name: "pull secret without auths",
			edit: func(cfg map[string]any) { cfg["pullSecret"] = `{"credsStore":"x"}` },
			want: prefix + `invalid "install-config.yaml" file: pullSecret: Invalid value: "<redacted>": auths required`,
		},
		{
			name: "wrong apiVersion",
			edit: func(cfg map[string]any) { cfg["apiVersion"] = "v2" },
			want: prefix + `invalid "install-config.yaml" file: apiVersion: Invalid value: "v2"`,
		},
		{
			name: "several problems",
			edit: func(cfg map[string]any) { delete(cfg, "baseDomain"); cfg["metadata"] = map[string]any{} },
			want: prefix + `invalid "install-config.yaml" file: [metadata.name: Required value: cluster name required, baseDomain: Required value]`,
		},
		{
			name: "compute pool misnamed",
			edit: func(cfg map[string]any) {
				cfg["compute"] = []any{map[string]any{"name": "infra", "replicas": 1}}
			},
			want: prefix + `invalid "install-config.yaml" file: compute[0].name: Unsupported value: "infra"`,
		},
		{
			name: "not YAML",
			raw:  "apiVersion: v1\nmetadata: [unclosed\n",
			want: prefix + "failed to unmarshal install-config.yaml: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorkspace(t)
			if tt.raw != "" {
				require.NoError(t, os.WriteFile(w.path("install-config.yaml"), []byte(tt.raw), 0o600))
			} else {
				cfg := installConfig("bad")
				tt.edit(cfg)
				w.writeInstallConfig(t, cfg)
			}
			res := run(t, w.env(), "create", "manifests", "--dir", w.dir)
			assert.Equal(t, 3, res.code)
			assert.Contains(t, res.stderr, tt.want)
			assert.NotContains(t, res.stderr, "dXNlcjpwYXNz")
			assert.FileExists(t, w.path("install-config.yaml"), "a rejected install-config is not consumed")
			assert.NoFileExists(t, w.path(".openshift_install_state.json"))
			assert.NoDirExists(t, w.path("openshift"))
		})
	}

	t.Run("no install-config at all", func(t *testing.T) {
		w := newWorkspace(t)
		res := run(t, w.env(), "create", "manifests", "--dir", w.dir)
		assert.Equal(t, 1, res.code)
		assert.Contains(t, res.stderr, "level=fatal msg=failed to fetch Master Machines")
		assert.Contains(t, res.stderr, "needs a terminal")
	})
}

func TestCreateInstallConfig(t *testing.T) {
	w := newWorkspace(t)
	res := run(t, w.env(), "create", "install-config", "--dir", w.dir)
	assert.Equal(t, 1, res.code)
	assert.Contains(t, res.stderr, "needs a terminal")

	w.writeInstallConfig(t, installConfig("interactive"))
	res = run(t, w.env(), "create", "install-config", "--dir", w.dir)
	assert.Equal(t, 0, res.code, res.stderr)
	assert.FileExists(t, w.path("install-config.yaml"))

	cfg := installConfig("interactive")
	delete(cfg, "pullSecret")
	w.writeInstallConfig(t, cfg)
	res = run(t, w.env(), "create", "install-config", "--dir", w.dir)
	assert.Equal(t, 3, res.code)
	assert.Contains(t, res.stderr, "pullSecret: Required value")
}

func TestSecondCreateClusterIsRefused(t *testing.T) {
	w := newWorkspace(t)
	infraID := w.manifests(t, "twice", w.env())
	// No API server for the bed: the first run stops at bootstrap.
	res := run(t, w.env(), "create", "cluster", "--dir", w.dir)
	require.Equal(t, 5, res.code, res.stderr)

	res = run(t, w.env(), "create", "cluster", "--dir", w.dir)
	assert.Equal(t, 4, res.code, res.stderr)
	assert.Contains(t, res.stderr, `level=error msg=failed to fetch Cluster: failed to generate asset "Cluster": failed to create cluster: infrastructure of cluster `+infraID+` already exists`)
	rec := w.record(t, infraID)
	assert.Equal(t, 2, rec.CreateClusterInvocations)
	assert.Equal(t, fakeinstall.StageInfrastructure, rec.Stage, "the refused run changed nothing")
	invs, err := w.reg().Invocations()
	require.NoError(t, err)
	var creates int
	for _, inv := range invs {
		if inv.Command() == "create cluster" && inv.InfraID == infraID {
			creates++
		}
	}
	assert.Equal(t, 2, creates)
	all, err := w.reg().Clusters()
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, infraID, all[0].InfraID)
}

func TestSignalsExitWithCode8(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			w := newWorkspace(t)
			infraID := w.manifests(t, "signalled", w.env())
			cmd, stderr := start(t, w.env("FAKE_OPENSHIFT_INSTALL_STAGE_DELAY=30s"), "create", "cluster", "--dir", w.dir)
			w.waitForStage(t, infraID, fakeinstall.StageInfrastructure)
			require.NoError(t, cmd.Process.Signal(sig))
			_ = cmd.Wait()
			assert.Equal(t, 8, cmd.ProcessState.ExitCode(), stderr.String())
			assert.Contains(t, stderr.String(), "level=warning msg=Received interrupt signal")
			rec := w.record(t, infraID)
			require.NotNil(t, rec.LastFailure)
			assert.Equal(t, 8, rec.LastFailure.ExitCode)
			assert.Equal(t, fakeinstall.StageInfrastructure, rec.LastFailure.Stage)
			assert.Empty(t, rec.InProgress)
			assert.FileExists(t, w.path("metadata.json"), "metadata.json is written before the infrastructure")
		})
	}
}

func TestWaitForWithoutACluster(t *testing.T) {
	for _, target := range []string{"bootstrap-complete", "install-complete"} {
		t.Run(target, func(t *testing.T) {
			w := newWorkspace(t)
			res := run(t, w.env(), "wait-for", target, "--dir", w.dir)
			assert.Equal(t, 1, res.code)
			assert.Contains(t, res.stderr, "level=fatal msg=loading kubeconfig: stat "+w.path("auth", "kubeconfig")+": no such file or directory")
		})
	}
}

func TestDestroyWithoutMetadata(t *testing.T) {
	w := newWorkspace(t)
	res := run(t, w.env(), "destroy", "cluster", "--dir", w.dir)
	assert.Equal(t, 1, res.code)
	assert.Contains(t, res.stderr, "level=fatal msg=Failed while preparing to destroy cluster: open "+w.path("metadata.json")+": no such file or directory")
}

// kubeconfigServer returns the server of auth/kubeconfig and checks the
// layout the installer uses.
func kubeconfigServer(t *testing.T, w workspace, clusterName string) string {
	t.Helper()
	kc, err := clientcmd.LoadFromFile(w.path("auth", "kubeconfig"))
	require.NoError(t, err)
	assert.Equal(t, "admin", kc.CurrentContext)
	require.Contains(t, kc.Clusters, clusterName)
	require.Contains(t, kc.AuthInfos, "admin")
	assert.Equal(t, clusterName, kc.Contexts["admin"].Cluster)
	assert.NotEmpty(t, kc.Clusters[clusterName].CertificateAuthorityData)
	return kc.Clusters[clusterName].Server
}

// apiUp reports whether auth/kubeconfig reaches an API server.
func apiUp(t *testing.T, w workspace) bool {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", w.path("auth", "kubeconfig"))
	require.NoError(t, err)
	cfg.Timeout = 5 * time.Second
	client, err := discovery.NewDiscoveryClientForConfig(cfg)
	require.NoError(t, err)
	_, err = client.ServerVersion()
	return err == nil
}
