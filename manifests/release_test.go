package manifests_test

import (
	"fmt"
	"path"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// release35Overlay writes a throw-away overlay: an environment plus the release-3.5
// component, the way a user switches an environment to OpenShift AI 3.5 or later.
func release35Overlay(t *testing.T, fsys filesys.FileSystem, env string) string {
	t.Helper()
	dir := "clusters/overlays/" + env + "-3.5"
	data, err := fsys.ReadFile(path.Join(fsRoot, "clusters/overlays", env, "kustomization.yaml"))
	require.NoError(t, err)
	out := strings.Replace(string(data), "components:\n", "components:\n  - ../../../components/argocd/optional/release-3.5\n", 1)
	require.NotEqual(t, string(data), out)
	require.NoError(t, fsys.WriteFile(path.Join(fsRoot, dir, "kustomization.yaml"), []byte(out)))
	src, err := fsys.ReadFile(path.Join(fsRoot, "clusters/overlays", env, "source.yaml"))
	require.NoError(t, err)
	require.NoError(t, fsys.WriteFile(path.Join(fsRoot, dir, "source.yaml"), src))
	return dir
}

// TestReleaseConsistency pins what each OpenShift AI release needs: 3.4 (the default
// overlays) switches MaaS on with kserve.modelsAsService and keeps the components 3.4
// supports; the release-3.5 component uses aigateway.modelsAsAService, manages nothing
// obsolete or deprecated, moves maas-db-config to the AI gateway infrastructure
// namespace and configures MaasTenantConfig instead of Tenant. In every release,
// monitoring is fully provided: DSCI monitoring.metrics with both operators it needs.
func TestReleaseConsistency(t *testing.T) {
	fsys := payloadFS(t)
	one := func(t *testing.T, objs []obj, kind string) obj {
		t.Helper()
		l := ofKind(objs, kind)
		require.Len(t, l, 1, kind)
		return l[0]
	}
	for _, env := range []string{"dev", "prod"} {
		r34 := renderEnv(t, fsys, "clusters/overlays/"+env)
		r35 := renderEnv(t, fsys, release35Overlay(t, fsys, env))
		for _, tc := range []struct {
			release string
			r       rendered
		}{{"3.4", r34}, {"3.5", r35}} {
			t.Run(fmt.Sprintf("%s/%s", env, tc.release), func(t *testing.T) {
				dsc := one(t, tc.r.children["instance-openshift-ai"], "DataScienceCluster")
				comp := func(c string, f ...string) string {
					return str(dsc, append([]string{"spec", "components", c}, f...)...)
				}
				sub := one(t, tc.r.children["operator-openshift-ai"], "Subscription")
				if tc.release == "3.4" {
					assert.Equal(t, "stable-3.4", str(sub, "spec", "channel"))
					assert.Equal(t, "Managed", comp("kserve", "modelsAsService", "managementState"))
					assert.Nil(t, get(dsc, "spec", "components", "aigateway"), "3.4 has no aigateway component")
				} else {
					assert.Equal(t, "stable-3.x", str(sub, "spec", "channel"))
					assert.Equal(t, "Managed", comp("aigateway", "modelsAsAService", "managementState"))
					assert.Nil(t, get(dsc, "spec", "components", "kserve", "modelsAsService"), "the 3.4 field is deprecated from 3.5")
					assert.Equal(t, "Removed", comp("trainingoperator", "managementState"), "obsolete from 3.6")
					assert.Equal(t, "Removed", comp("llamastackoperator", "managementState"), "deprecated from 3.5")
				}
				for _, o := range tc.r.all() {
					assert.NotEqual(t, "RawDeployment", str(o, "metadata", "annotations", "serving.kserve.io/deploymentMode"), nameOf(o))
				}

				job := one(t, tc.r.children["config-maas-platform"], "Job")
				wantNS := map[string]string{"3.4": "redhat-ods-applications", "3.5": "redhat-ai-gateway-infra"}[tc.release]
				assert.Equal(t, wantNS, str(job, "metadata", "namespace"), "maas-db-config is written next to maas-api")
				rb := one(t, tc.r.children["config-maas-platform"], "RoleBinding")
				assert.Equal(t, wantNS, str(list(rb, "subjects")[0].(map[string]any), "namespace"))
				gw := one(t, tc.r.children["config-maas-platform"], "Gateway")
				assert.Equal(t, "maas-default-gateway", nameOf(gw))
				assert.Equal(t, "openshift-ingress", str(gw, "metadata", "namespace"))
				tenantKind := map[string]string{"3.4": "Tenant", "3.5": "MaasTenantConfig"}[tc.release]
				one(t, tc.r.children["config-maas-access"], tenantKind)

				dsci := one(t, tc.r.children["instance-openshift-ai"], "DSCInitialization")
				assert.NotNil(t, get(dsci, "spec", "monitoring", "metrics"), "monitoring on")
				for _, pkg := range []string{"cluster-observability-operator", "opentelemetry-product"} {
					found := false
					for _, children := range tc.r.children {
						for _, s := range ofKind(children, "Subscription") {
							found = found || str(s, "spec", "name") == pkg
						}
					}
					assert.True(t, found, "DSCI monitoring.metrics needs the %s operator subscribed", pkg)
				}
			})
		}
	}
}
