package rootapp

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"sigs.k8s.io/yaml"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// A child Application as Argo CD 3.6 writes it with controller.resource.health.persist
// (the OpenShift GitOps operator's default): the unhealthy resource's health and message
// come from the Subscription health check (here Argo CD's built-in one's message format).
const degradedChild = `
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: operator-nfd, namespace: openshift-gitops}
status:
  sync: {status: Synced}
  health: {status: Degraded, message: "operators.coreos.com/Subscription:openshift-nfd/nfd"}
  resourceHealthSource: inline
  resources:
    - {version: v1, kind: Namespace, name: openshift-nfd, status: Synced}
    - {group: operators.coreos.com, version: v1, kind: OperatorGroup, namespace: openshift-nfd, name: openshift-nfd, status: Synced}
    - group: operators.coreos.com
      version: v1alpha1
      kind: Subscription
      namespace: openshift-nfd
      name: nfd
      status: Synced
      health:
        status: Degraded
        message: "1: InstallPlanFailed | True\n.status.state is 'AtLatestKnown'\n"
`

func decode(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

func TestWhyNamesTheResourceAndArgoCDsMessage(t *testing.T) {
	got := Why(decode(t, degradedChild))
	assert.Equal(t, "operator-nfd: Synced/Degraded: Subscription openshift-nfd/nfd Degraded: 1: InstallPlanFailed | True / .status.state is 'AtLatestKnown'", got)
}

// The conditions come before the resources: they say why the resources are Missing.
func TestWhyReportsConditionsFirst(t *testing.T) {
	app := decode(t, `
metadata: {name: config-maas-platform}
status:
  sync: {status: OutOfSync}
  health: {status: Missing}
  conditions:
    - {type: SyncError, message: "Failed sync attempt: namespaces \"openshift-monitoring\" not found"}
  resources:
    - {version: v1, kind: ConfigMap, namespace: openshift-monitoring, name: a, status: OutOfSync, health: {status: Missing}}
    - {version: v1, kind: ConfigMap, namespace: openshift-monitoring, name: b, status: OutOfSync, health: {status: Missing}}
    - {version: v1, kind: ConfigMap, namespace: openshift-monitoring, name: c, status: OutOfSync, health: {status: Missing}}
    - {version: v1, kind: ConfigMap, namespace: openshift-monitoring, name: d, status: OutOfSync, health: {status: Missing}}
`)
	assert.Equal(t, `config-maas-platform: OutOfSync/Missing: SyncError: Failed sync attempt: namespaces "openshift-monitoring" not found; `+
		"ConfigMap openshift-monitoring/a Missing; ConfigMap openshift-monitoring/b Missing; ConfigMap openshift-monitoring/c Missing; …", Why(app))
}

func TestWhyIsEmptyWhenSyncedAndHealthy(t *testing.T) {
	assert.Empty(t, Why(decode(t, `
metadata: {name: ok}
status: {sync: {status: Synced}, health: {status: Healthy}}
`)))
}

// A child Suspended by design (a stopped model) is settled: the hand-off can end.
func TestWhyIsEmptyWhenSuspended(t *testing.T) {
	assert.Empty(t, Why(decode(t, `
metadata: {name: config-maas}
status: {sync: {status: Synced}, health: {status: Suspended}}
`)))
	assert.False(t, settled("OutOfSync", "Suspended"))
	assert.False(t, settled("Synced", "Progressing"))
}
