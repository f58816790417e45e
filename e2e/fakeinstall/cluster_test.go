package fakeinstall_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/fakeinstall"
)

// destroy destroys the cluster of w and checks it went.
func destroy(t *testing.T, b *testBed, w workspace, infraID string) result {
	t.Helper()
	res := run(t, b.env(w), "destroy", "cluster", "--dir", w.dir)
	require.Equal(t, 0, res.code, res.stderr)
	assert.Empty(t, b.machineSets(t, infraID))
	return res
}

// addToolManifests writes, next to the installer's manifests, what the tool
// under test adds after `create manifests`: a GPU MachineSet cloned from a
// worker one, a ClusterAutoscaler, a MachineAutoscaler, and a kind the bed
// does not serve.
func addToolManifests(t *testing.T, w workspace, infraID string) string {
	t.Helper()
	ms := readYAML(t, w.path("openshift", "99_openshift-cluster-api_worker-machineset-0.yaml"))
	name := infraID + "-gpu-t4-shared-us-west-2a"
	require.NoError(t, unstructured.SetNestedField(ms, name, "metadata", "name"))
	require.NoError(t, unstructured.SetNestedField(ms, name, "spec", "selector", "matchLabels", "machine.openshift.io/cluster-api-machineset"))
	require.NoError(t, unstructured.SetNestedField(ms, name, "spec", "template", "metadata", "labels", "machine.openshift.io/cluster-api-machineset"))
	require.NoError(t, unstructured.SetNestedField(ms, "g4dn.xlarge", "spec", "template", "spec", "providerSpec", "value", "instanceType"))
	require.NoError(t, unstructured.SetNestedField(ms, int64(0), "spec", "replicas"))
	docs := []map[string]any{ms}
	docs = append(docs, map[string]any{
		"apiVersion": "autoscaling.openshift.io/v1", "kind": "ClusterAutoscaler",
		"metadata": map[string]any{"name": "default"},
		"spec":     map[string]any{"resourceLimits": map[string]any{"gpus": []any{map[string]any{"type": "T4-SHARED", "min": 0, "max": 4}}}},
	}, map[string]any{
		"apiVersion": "autoscaling.openshift.io/v1beta1", "kind": "MachineAutoscaler",
		"metadata": map[string]any{"name": name, "namespace": "openshift-machine-api"},
		"spec": map[string]any{"minReplicas": 0, "maxReplicas": 4,
			"scaleTargetRef": map[string]any{"apiVersion": "machine.openshift.io/v1beta1", "kind": "MachineSet", "name": name}},
	})
	var out []string
	for _, d := range docs {
		data, err := yaml.Marshal(d)
		require.NoError(t, err)
		out = append(out, string(data))
	}
	require.NoError(t, os.WriteFile(w.path("openshift", "99_rhoai-bootstrap_gpu-pools.yaml"), []byte(strings.Join(out, "---\n")), 0o644))
	require.NoError(t, os.WriteFile(w.path("openshift", "99_openshift-machine-api_master-control-plane-machine-set.yaml"),
		[]byte("apiVersion: machine.openshift.io/v1\nkind: ControlPlaneMachineSet\nmetadata: {name: cluster, namespace: openshift-machine-api}\nspec: {}\n"), 0o644))
	return name
}

func TestCreateCluster(t *testing.T) {
	b := requireBed(t)
	w := newWorkspace(t)
	infraID := w.manifests(t, "rhoai-dev", b.env(w))
	gpu := addToolManifests(t, w, infraID)

	res := run(t, b.env(w), "create", "cluster", "--dir", w.dir)
	require.Equal(t, 0, res.code, res.stderr)
	t.Cleanup(func() { destroy(t, b, w, infraID) })

	// The real installer's progress lines, in order.
	api := "https://api.rhoai-dev.example.com:6443"
	pw, err := os.ReadFile(w.path("auth", "kubeadmin-password"))
	require.NoError(t, err)
	assert.Regexp(t, `^[A-Za-z0-9]{5}(-[A-Za-z0-9]{5}){3}$`, string(pw))
	want := []string{
		"level=info msg=Consuming Worker Machines from target directory",
		"level=info msg=Consuming Common Manifests from target directory",
		"level=info msg=Creating infrastructure resources...",
		"level=info msg=Waiting up to 20m0s (until ",
		" for the Kubernetes API at " + api + "...",
		"level=info msg=API v1.37.2 up",
		"level=info msg=Waiting up to 45m0s (until ",
		") for bootstrapping to complete...",
		"level=info msg=Destroying the bootstrap resources...",
		"level=info msg=Waiting up to 5m0s (until ",
		") for bootstrap machine deletion openshift-cluster-api-guests/" + infraID + "-bootstrap...",
		"level=info msg=Finished destroying bootstrap resources",
		"level=info msg=Waiting up to 40m0s (until ",
		") for the cluster at " + api + " to initialize...",
		"level=info msg=All cluster operators have completed progressing",
		"level=info msg=Install complete!",
		"level=info msg=To access the cluster as the system:admin user when using 'oc', run\n",
		"level=info msg=    export KUBECONFIG=" + w.path("auth", "kubeconfig") + "\n",
		"level=info msg=Access the OpenShift web-console here: https://console-openshift-console.apps.rhoai-dev.example.com\n",
		`level=info msg=Login to the console with user: "kubeadmin", and password: "` + string(pw) + `"`,
		"level=info msg=Time elapsed: ",
	}
	rest := res.stderr
	for _, line := range want {
		i := strings.Index(rest, line)
		require.GreaterOrEqual(t, i, 0, "missing (or out of order) %q in:\n%s", line, res.stderr)
		rest = rest[i+len(line):]
	}
	assert.Regexp(t, `\(until \d{1,2}:\d{2}(AM|PM) \S+\)`, res.stderr)
	assert.NotContains(t, res.stderr, "level=debug", "debug lines only at --log-level debug")

	log, err := os.ReadFile(w.path(".openshift_install.log"))
	require.NoError(t, err)
	assert.Contains(t, string(log), `level=info msg="Install complete!"`)
	assert.Contains(t, string(log), "level=debug msg=\"Skipping ControlPlaneMachineSet", "unserved kinds are skipped at debug level")

	// Files: consumed inputs gone, outputs in the real layout.
	assert.NoDirExists(t, w.path("manifests"))
	assert.NoDirExists(t, w.path("openshift"))
	var md map[string]any
	data, err := os.ReadFile(w.path("metadata.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &md))
	clusterID := str(t, md, "clusterID")
	assert.Equal(t, "rhoai-dev", str(t, md, "clusterName"))
	assert.Equal(t, infraID, str(t, md, "infraID"))
	assert.Equal(t, "us-west-2", str(t, md, "aws", "region"))
	assert.JSONEq(t, `[{"kubernetes.io/cluster/`+infraID+`":"owned"},{"openshiftClusterID":"`+clusterID+`"}]`, str(t, md, "aws", "identifier"))
	server := kubeconfigServer(t, w, "rhoai-dev")
	assert.Equal(t, strings.TrimSuffix(b.control.Config.Host, "/"), strings.TrimSuffix(server, "/"))
	assert.True(t, apiUp(t, w))

	// The bed now holds what the installer applied.
	sets := b.machineSets(t, infraID)
	var names []string
	for _, ms := range sets {
		names = append(names, ms.GetName())
		managers := map[string]bool{}
		for _, mf := range ms.GetManagedFields() {
			managers[mf.Manager] = true
		}
		assert.True(t, managers[fakeinstall.FieldManager], "%s applied with field manager %s", ms.GetName(), fakeinstall.FieldManager)
	}
	assert.ElementsMatch(t, []string{infraID + "-worker-us-west-2a", infraID + "-worker-us-west-2b", infraID + "-worker-us-west-2c", gpu}, names)
	assert.True(t, b.exists(t, machineGVR, "openshift-machine-api", infraID+"-master-0"))
	assert.True(t, b.exists(t, machineAutoscalerGVR, "openshift-machine-api", gpu))
	assert.True(t, b.exists(t, clusterAutoscalerGVR, "", "default"))
	infra, err := b.dyn.Resource(infrastructureGVR).Get(context.Background(), "cluster", metav1.GetOptions{})
	require.NoError(t, err)
	name, _, _ := unstructured.NestedString(infra.Object, "status", "infrastructureName")
	assert.Equal(t, infraID, name)
	cv, err := b.dyn.Resource(clusterVersionGVR).Get(context.Background(), "version", metav1.GetOptions{})
	require.NoError(t, err)
	id, _, _ := unstructured.NestedString(cv.Object, "spec", "clusterID")
	assert.Equal(t, clusterID, id, "cvo-overrides.yaml sets the cluster ID")
	assert.Equal(t, "True", b.cvCondition(t, "Available"))
	assert.Equal(t, "False", b.cvCondition(t, "Progressing"))
	assert.Equal(t, "False", b.cvCondition(t, "Failing"))
	history, _, _ := unstructured.NestedSlice(cv.Object, "status", "history")
	require.Len(t, history, 1)
	assert.Equal(t, "Completed", history[0].(map[string]any)["state"])

	rec := w.record(t, infraID)
	assert.Equal(t, fakeinstall.StageOperators, rec.Stage)
	assert.Empty(t, rec.InProgress)
	assert.Nil(t, rec.LastFailure)
	assert.Empty(t, rec.BootstrapLeft(), "create cluster removes the bootstrap resources itself")
	assert.Equal(t, 1, rec.CreateClusterInvocations)
	assert.Equal(t, server, rec.APIServer)
	assert.Contains(t, rec.Applied, fakeinstall.ObjectRef{Group: "machine.openshift.io", Version: "v1beta1", Resource: "machinesets",
		Kind: "MachineSet", Namespace: "openshift-machine-api", Name: gpu})

	// The cluster is installed: wait-for install-complete just confirms.
	res = run(t, b.env(w), "wait-for", "install-complete", "--dir", w.dir)
	require.Equal(t, 0, res.code, res.stderr)
	assert.Contains(t, res.stderr, "level=info msg=Install complete!")
	assert.Equal(t, 1, w.record(t, infraID).CreateClusterInvocations)
}

func TestCreateClusterInjectedFailures(t *testing.T) {
	b := requireBed(t)
	tests := []struct {
		fail     string
		code     int
		want     []string
		stage    string // registry stage after the failure ("" = no record)
		metadata bool
		apiUp    bool
		cv       map[string]string // ClusterVersion conditions afterwards
		// bootstrapLeft: the bootstrap resources are still there afterwards
		bootstrapLeft bool
	}{
		{
			fail: "manifests", code: 3,
			want: []string{`level=error msg=failed to fetch Metadata: failed to load asset "Install Config": invalid "install-config.yaml" file: platform.aws.region: Invalid value: "us-west-2": injected failure`},
		},
		{
			fail: "infrastructure", code: 4, stage: fakeinstall.StageManifests, metadata: true,
			want: []string{`level=error msg=failed to fetch Cluster: failed to generate asset "Cluster": failed to create cluster: failed provisioning resources`},
		},
		{
			fail: "bootstrap", code: 5, stage: fakeinstall.StageInfrastructure, metadata: true,
			want: []string{
				`level=error msg=Bootstrap failed to complete: Get "https://127.0.0.1:`,
				"connect: connection refused (injected by FAKE_OPENSHIFT_INSTALL_FAIL=bootstrap)",
				"level=error msg=Failed waiting for Kubernetes API. This error usually happens when there is a problem on the bootstrap host",
			},
		},
		{
			fail: "install", code: 6, stage: fakeinstall.StageBootstrap, metadata: true, apiUp: true,
			want: []string{
				"level=error msg=Cluster initialization failed because one or more operators are not functioning properly.\n",
				"level=error msg=The 'wait-for install-complete' subcommand can then be used to continue the installation\n",
				"level=error msg=failed to initialize the cluster: Cluster operators authentication, console, ingress are not available",
			},
			cv: map[string]string{"Available": "False", "Failing": "True", "Progressing": "True"},
		},
		{
			fail: "operators", code: 7, stage: fakeinstall.StageInstall, metadata: true, apiUp: true,
			want: []string{`level=error msg=Error checking cluster operator Progressing status: "context deadline exceeded"`,
				"level=error msg=These cluster operators were not stable: [authentication, console, ingress]"},
			cv: map[string]string{"Available": "True", "Failing": "False", "Progressing": "False"},
		},
		{
			fail: "interrupted", code: 8, stage: fakeinstall.StageBootstrap, metadata: true, apiUp: true,
			want: []string{"level=warning msg=Received interrupt signal"},
			cv:   map[string]string{"Available": "False", "Progressing": "True"},
		},
		{
			// SIGINT between bootstrapping and the removal of its resources: they stay.
			fail: fakeinstall.FailInterruptedBootstrapComplete, code: 8, stage: fakeinstall.StageBootstrap, metadata: true, apiUp: true,
			want: []string{"level=warning msg=Received interrupt signal"},
			cv:   map[string]string{"Available": "False", "Progressing": "True"}, bootstrapLeft: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.fail, func(t *testing.T) {
			w := newWorkspace(t)
			name := "fail-" + tt.fail
			infraID := ""
			if tt.fail == "manifests" {
				w.writeInstallConfig(t, installConfig(name)) // create cluster generates the manifests itself
			} else {
				infraID = w.manifests(t, name, b.env(w))
			}
			res := run(t, b.env(w, "FAKE_OPENSHIFT_INSTALL_FAIL="+tt.fail), "create", "cluster", "--dir", w.dir)
			require.Equal(t, tt.code, res.code, res.stderr)
			for _, s := range tt.want {
				assert.Contains(t, res.stderr, s)
			}
			assert.NotContains(t, res.stderr, "Install complete!")
			if !tt.metadata {
				assert.NoFileExists(t, w.path("metadata.json"))
				assert.FileExists(t, w.path("install-config.yaml"))
				return
			}
			assert.FileExists(t, w.path("metadata.json"))
			assert.FileExists(t, w.path("auth", "kubeadmin-password"))
			assert.Equal(t, tt.apiUp, apiUp(t, w), "API reachable through auth/kubeconfig")
			rec := w.record(t, infraID)
			assert.Equal(t, tt.stage, rec.Stage)
			require.NotNil(t, rec.LastFailure)
			assert.Equal(t, tt.code, rec.LastFailure.ExitCode)
			assert.Empty(t, rec.InProgress)
			if tt.apiUp {
				assert.Len(t, b.machineSets(t, infraID), 3)
			}
			bundles, _ := filepath.Glob(w.path("log-bundle-*.tar.gz"))
			if tt.code == 5 {
				// The real create cluster gathers the bootstrap logs on exit 5 and names the bundle last.
				require.Len(t, bundles, 1)
				assert.Regexp(t, `/log-bundle-\d{14}\.tar\.gz$`, bundles[0])
				assert.Contains(t, res.stderr, `level=info msg=Bootstrap gather logs captured here "`+bundles[0]+`"`)
				assert.Contains(t, tarNames(t, bundles[0]), "bootstrap/journals/bootkube.log")
				assert.NotEmpty(t, rec.BootstrapLeft(), "a failed bootstrap is not destroyed")
			} else {
				assert.Empty(t, bundles)
			}
			if tt.bootstrapLeft {
				assert.NotEmpty(t, rec.BootstrapLeft())
				assert.NotContains(t, res.stderr, "Destroying the bootstrap resources")
			}
			for typ, status := range tt.cv {
				assert.Equal(t, status, b.cvCondition(t, typ), "ClusterVersion %s", typ)
			}
			log, err := os.ReadFile(w.path(".openshift_install.log"))
			require.NoError(t, err)
			assert.Contains(t, string(log), "level="+map[bool]string{true: "warning", false: "error"}[tt.code == 8])

			res = destroy(t, b, w, infraID)
			assert.Contains(t, res.stderr, "level=info msg=Deleted arn=arn:aws:ec2:us-west-2:")
			assert.True(t, w.record(t, infraID).Destroyed)
		})
	}
}

func TestFailOnceLetsARetrySucceed(t *testing.T) {
	b := requireBed(t)
	tests := []struct {
		fail  string
		code  int
		retry func(t *testing.T, w workspace, env []string) (string, result)
	}{
		{fail: "install", code: 6, retry: waitForInstallComplete},
		{fail: "operators", code: 7, retry: waitForInstallComplete},
		{fail: "interrupted", code: 8, retry: waitForInstallComplete},
		{
			// A bootstrap failure calls for destroy and re-create, which makes
			// a new infraID: the one-shot failure is per cluster, so it is
			// not injected again.
			fail: "bootstrap", code: 5,
			retry: func(t *testing.T, w workspace, env []string) (string, result) {
				res := run(t, env, "destroy", "cluster", "--dir", w.dir)
				require.Equal(t, 0, res.code, res.stderr)
				infraID := w.manifests(t, "once-bootstrap", env)
				return infraID, run(t, env, "create", "cluster", "--dir", w.dir)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.fail, func(t *testing.T) {
			w := newWorkspace(t)
			env := b.env(w, "FAKE_OPENSHIFT_INSTALL_FAIL="+tt.fail, "FAKE_OPENSHIFT_INSTALL_FAIL_ONCE=1")
			first := w.manifests(t, "once-"+tt.fail, env)
			res := run(t, env, "create", "cluster", "--dir", w.dir)
			require.Equal(t, tt.code, res.code, res.stderr)

			infraID, res := tt.retry(t, w, env)
			require.Equal(t, 0, res.code, res.stderr)
			assert.Contains(t, res.stderr, "level=info msg=Install complete!")
			assert.Equal(t, "True", b.cvCondition(t, "Available"))
			rec := w.record(t, infraID)
			assert.Equal(t, fakeinstall.StageOperators, rec.Stage)
			assert.Equal(t, 1, rec.CreateClusterInvocations)
			if infraID != first {
				assert.True(t, w.record(t, first).Destroyed)
			}
			destroy(t, b, w, infraID)
		})
	}
}

func waitForInstallComplete(t *testing.T, w workspace, env []string) (string, result) {
	infraID, err := fakeinstall.InfraIDFromState(w.dir)
	require.NoError(t, err)
	return infraID, run(t, env, "wait-for", "install-complete", "--dir", w.dir)
}

func TestKillDuringCreateCluster(t *testing.T) {
	b := requireBed(t)
	tests := []struct {
		stage string
		// exit codes of wait-for bootstrap-complete and install-complete afterwards
		bootstrapCode, installCode int
		want                       string
	}{
		// The waits have no exit codes of their own: logrus.Fatal, exit 1 (waitfor.go).
		{stage: fakeinstall.StageInfrastructure, bootstrapCode: 1, installCode: 1, want: "level=fatal msg=failed to initialize the cluster: "},
		{stage: fakeinstall.StageBootstrap, bootstrapCode: 0, installCode: 0, want: "level=info msg=Install complete!"},
		{stage: fakeinstall.StageInstall, bootstrapCode: 0, installCode: 0, want: "level=info msg=Install complete!"},
	}
	for _, tt := range tests {
		t.Run(tt.stage, func(t *testing.T) {
			w := newWorkspace(t)
			infraID := w.manifests(t, "killed-in-"+tt.stage, b.env(w))
			cmd, _ := start(t, b.env(w, "FAKE_OPENSHIFT_INSTALL_STAGE_DELAY=4s"), "create", "cluster", "--dir", w.dir)
			w.waitForStage(t, infraID, tt.stage)
			require.NoError(t, syscall.Kill(cmd.Process.Pid, syscall.SIGKILL))
			_ = cmd.Wait()
			rec := w.record(t, infraID) // parses: the kill tore nothing
			assert.Equal(t, tt.stage, rec.InProgress, "a kill leaves the stage in progress")

			res := run(t, b.env(w), "wait-for", "bootstrap-complete", "--dir", w.dir)
			require.Equal(t, tt.bootstrapCode, res.code, res.stderr)
			if tt.bootstrapCode != 0 {
				assert.Contains(t, res.stderr, "level=info msg=openshift-install gather bootstrap --help")
				assert.Contains(t, res.stderr, "level=fatal msg=Bootstrap failed to complete\n")
			}
			if tt.bootstrapCode == 0 {
				assert.Contains(t, res.stderr, "level=info msg=It is now safe to remove the bootstrap resources")
				assert.True(t, w.record(t, infraID).Reached(fakeinstall.StageBootstrap))
			}
			res = run(t, b.env(w), "wait-for", "install-complete", "--dir", w.dir)
			require.Equal(t, tt.installCode, res.code, res.stderr)
			assert.Contains(t, res.stderr, tt.want)
			rec = w.record(t, infraID)
			assert.Equal(t, 1, rec.CreateClusterInvocations)
			invs, err := w.reg().Invocations()
			require.NoError(t, err)
			var creates int
			for _, inv := range invs {
				if inv.Command() == "create cluster" {
					creates++
					assert.Equal(t, infraID, inv.InfraID)
				}
			}
			assert.Equal(t, 1, creates, "create cluster ran once")
			if tt.installCode == 0 {
				assert.Equal(t, fakeinstall.StageOperators, rec.Stage)
				assert.True(t, apiUp(t, w))
				assert.Equal(t, "True", b.cvCondition(t, "Available"))
				assert.Len(t, b.machineSets(t, infraID), 3)
			}
			destroy(t, b, w, infraID)
		})
	}
}

func TestDestroyCluster(t *testing.T) {
	b := requireBed(t)
	w := newWorkspace(t)
	infraID := w.manifests(t, "doomed", b.env(w))
	res := run(t, b.env(w), "create", "cluster", "--dir", w.dir)
	require.Equal(t, 0, res.code, res.stderr)

	// A day-2 GPU pool made on the live cluster, not by the installer: the
	// cluster's destruction takes it too.
	day2 := b.machineSets(t, infraID)[0]
	day2.SetName(infraID + "-gpu-day2-us-west-2a")
	day2.SetResourceVersion("")
	day2.SetUID("")
	day2.SetManagedFields(nil)
	_, err := b.dyn.Resource(machineSetGVR).Namespace("openshift-machine-api").Create(context.Background(), &day2, metav1.CreateOptions{})
	require.NoError(t, err)
	ma := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "autoscaling.openshift.io/v1beta1", "kind": "MachineAutoscaler",
		"metadata": map[string]any{"name": day2.GetName(), "namespace": "openshift-machine-api"},
		"spec": map[string]any{"minReplicas": int64(0), "maxReplicas": int64(2),
			"scaleTargetRef": map[string]any{"apiVersion": "machine.openshift.io/v1beta1", "kind": "MachineSet", "name": day2.GetName()}},
	}}
	_, err = b.dyn.Resource(machineAutoscalerGVR).Namespace("openshift-machine-api").Create(context.Background(), ma, metav1.CreateOptions{})
	require.NoError(t, err)
	metadata, err := os.ReadFile(w.path("metadata.json"))
	require.NoError(t, err)

	res = run(t, b.env(w), "destroy", "cluster", "--dir", w.dir)
	require.Equal(t, 0, res.code, res.stderr)
	assert.Contains(t, res.stderr, "level=info msg=Deleted machineset=openshift-machine-api/"+day2.GetName())
	assert.Contains(t, res.stderr, "level=info msg=Deleted machineautoscaler=openshift-machine-api/"+day2.GetName())
	assert.Contains(t, res.stderr, "level=info msg=Deleted arn=arn:aws:iam::123456789012:role/"+infraID+"-master-role")
	assert.Regexp(t, `level=info msg=Time elapsed: \d+s\n$`, res.stderr)
	assert.Empty(t, b.machineSets(t, infraID))
	assert.False(t, b.exists(t, machineGVR, "openshift-machine-api", infraID+"-master-0"))
	assert.False(t, b.exists(t, machineAutoscalerGVR, "openshift-machine-api", day2.GetName()))
	assert.NoFileExists(t, w.path("metadata.json"))
	assert.NoFileExists(t, w.path(".openshift_install_state.json"))
	assert.NoDirExists(t, w.path("auth"))
	assert.FileExists(t, w.path(".openshift_install.log"))
	rec := w.record(t, infraID)
	assert.True(t, rec.Destroyed)
	assert.NotNil(t, rec.DestroyedAt)

	// Again: nothing to read, like the real one.
	res = run(t, b.env(w), "destroy", "cluster", "--dir", w.dir)
	assert.Equal(t, 1, res.code)
	assert.Contains(t, res.stderr, "metadata.json: no such file or directory")

	// A metadata.json of a destroyed cluster: a no-op that succeeds, and
	// the cluster cannot be waited for.
	require.NoError(t, os.WriteFile(w.path("metadata.json"), metadata, 0o640))
	require.NoError(t, os.MkdirAll(w.path("auth"), 0o755))
	require.NoError(t, os.WriteFile(w.path("auth", "kubeconfig"), []byte("apiVersion: v1\nkind: Config\n"), 0o600))
	res = run(t, b.env(w), "wait-for", "install-complete", "--dir", w.dir)
	assert.Equal(t, 1, res.code)
	assert.Contains(t, res.stderr, "level=fatal msg=failed waiting for Kubernetes API: ")
	assert.Contains(t, res.stderr, "does not exist")
	res = run(t, b.env(w), "destroy", "cluster", "--dir", w.dir)
	assert.Equal(t, 0, res.code, res.stderr)
	assert.NotContains(t, res.stderr, "Deleted")
	assert.NoFileExists(t, w.path("metadata.json"))
}

// tarNames lists the file names in a .tar.gz, each without its first folder.
func tarNames(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	gz, err := gzip.NewReader(f)
	require.NoError(t, err)
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		require.NoError(t, err)
		_, rest, _ := strings.Cut(h.Name, "/")
		names = append(names, rest)
	}
}

// Only create cluster removes the bootstrap resources. A create cluster interrupted
// while bootstrapping leaves them to whoever resumes: wait-for bootstrap-complete does not
// remove them, destroy bootstrap does, and a second destroy bootstrap fails as the real one
// does once the installer's Cluster API objects are gone.
func TestDestroyBootstrapAfterResume(t *testing.T) {
	b := requireBed(t)
	w := newWorkspace(t)
	infraID := w.manifests(t, "resumed", b.env(w))
	res := run(t, b.env(w, "FAKE_OPENSHIFT_INSTALL_FAIL="+fakeinstall.FailInterruptedBootstrap), "create", "cluster", "--dir", w.dir)
	require.Equal(t, 8, res.code, res.stderr)
	assert.NotContains(t, res.stderr, "Destroying the bootstrap resources")
	left := w.record(t, infraID).BootstrapLeft()
	require.Len(t, left, 3)
	assert.Contains(t, left[0], "("+infraID+"-bootstrap)")
	assert.Equal(t, `security group rule "Bootstrap SSH Access" on `+infraID+"-controlplane", left[1])
	assert.Equal(t, "S3 bucket openshift-bootstrap-data-"+infraID, left[2])

	res = run(t, b.env(w), "wait-for", "bootstrap-complete", "--dir", w.dir)
	require.Equal(t, 0, res.code, res.stderr)
	assert.Contains(t, res.stderr, "level=info msg=It is now safe to remove the bootstrap resources")
	assert.Len(t, w.record(t, infraID).BootstrapLeft(), 3, "wait-for never removes the bootstrap resources")

	res = run(t, b.env(w), "destroy", "bootstrap", "--dir", w.dir)
	require.Equal(t, 0, res.code, res.stderr)
	assert.Contains(t, res.stderr, "level=info msg=Finished destroying bootstrap resources")
	assert.Empty(t, w.record(t, infraID).BootstrapLeft())

	res = run(t, b.env(w), "destroy", "bootstrap", "--dir", w.dir)
	assert.Equal(t, 1, res.code, "destroy bootstrap is not idempotent")
	assert.Contains(t, res.stderr, `level=fatal msg=error destroying bootstrap resources failed during the destroy bootstrap hook`)

	res = run(t, b.env(w), "wait-for", "install-complete", "--dir", w.dir)
	require.Equal(t, 0, res.code, res.stderr)
	invs, err := w.reg().Invocations()
	require.NoError(t, err)
	var cmds []string
	for _, inv := range invs {
		cmds = append(cmds, inv.Command())
	}
	assert.Equal(t, []string{"create manifests", "create cluster", "wait-for bootstrap-complete", "destroy bootstrap", "destroy bootstrap", "wait-for install-complete"}, cmds)
	destroy(t, b, w, infraID)
}
