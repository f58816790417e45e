package simulator

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

func subscription(ns, name, pkg, channel string) *unstructured.Unstructured {
	spec := map[string]any{"name": pkg, "source": "redhat-operators", "sourceNamespace": "openshift-marketplace"}
	if channel != "" {
		spec["channel"] = channel
	}
	return obj("operators.coreos.com/v1alpha1", "Subscription", ns, name, spec)
}

func operatorGroup(ns string) *unstructured.Unstructured {
	return obj("operators.coreos.com/v1", "OperatorGroup", ns, ns+"-og", map[string]any{})
}

func csvPhase(b *bed, ns, name string, phase string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		csv, err := b.get(ctx, gvrCSV, ns, name)
		return csv != nil && nestedStr(csv, "status", "phase") == phase, err
	}
}

func TestSubscriptionInstallsThroughInstallPlan(t *testing.T) {
	b := getBed(t)
	ns := "olm-ok"
	b.namespace(t, ns)
	b.mustCreate(t, gvrOperatorGroup, operatorGroup(ns))
	csvs := b.record(t, gvrCSV, ns)
	start := time.Now()
	b.mustCreate(t, gvrSubscription, subscription(ns, "example", "leader-worker-set", "stable-v1.0"))
	csvName := "leader-worker-set.v1.0.0"
	b.eventually(t, 10*time.Second, "CSV Succeeded", csvPhase(b, ns, csvName, "Succeeded"))
	t.Logf("Subscription → CSV Succeeded in %s", time.Since(start).Round(time.Millisecond))

	csvs.waitStates(t, csvName, func(u *unstructured.Unstructured) string { return nestedStr(u, "status", "phase") },
		"Pending", "InstallReady", "Installing", "Succeeded")
	csv := b.mustGet(t, gvrCSV, ns, csvName)
	assert.Equal(t, "InstallSucceeded", nestedStr(csv, "status", "reason"))
	history, _, _ := unstructured.NestedSlice(csv.Object, "status", "conditions")
	assert.Len(t, history, 4, "one condition per phase transition")
	assert.Contains(t, csv.GetLabels(), "operators.coreos.com/leader-worker-set.olm-ok")

	sub := b.mustGet(t, gvrSubscription, ns, "example")
	assert.Equal(t, "AtLatestKnown", nestedStr(sub, "status", "state"))
	assert.Equal(t, csvName, nestedStr(sub, "status", "installedCSV"))
	assert.Equal(t, csvName, nestedStr(sub, "status", "currentCSV"))
	assert.NotEmpty(t, nestedStr(sub, "status", "lastUpdated"))
	assert.Equal(t, "CatalogSourcesUnhealthy=False", condString(sub, "CatalogSourcesUnhealthy"))
	ipName := nestedStr(sub, "status", "installPlanRef", "name")
	require.True(t, strings.HasPrefix(ipName, "install-") && len(ipName) == len("install-")+5, "installplan name %q", ipName)
	assert.Equal(t, ipName, nestedStr(sub, "status", "installplan", "name"))

	ip := b.mustGet(t, gvrInstallPlan, ns, ipName)
	assert.Equal(t, "Automatic", nestedStr(ip, "spec", "approval"))
	approved, _, _ := unstructured.NestedBool(ip.Object, "spec", "approved")
	assert.True(t, approved)
	names, _, _ := unstructured.NestedStringSlice(ip.Object, "spec", "clusterServiceVersionNames")
	assert.Equal(t, []string{csvName}, names)
	assert.Equal(t, "Complete", nestedStr(ip, "status", "phase"))
	require.Len(t, ip.GetOwnerReferences(), 1)
	assert.Equal(t, sub.GetUID(), ip.GetOwnerReferences()[0].UID)
	assert.Contains(t, b.installedPackages(), "leader-worker-set")

	og := b.mustGet(t, gvrOperatorGroup, ns, ns+"-og")
	targets, _, _ := unstructured.NestedStringSlice(og.Object, "status", "namespaces")
	assert.Equal(t, []string{""}, targets, "an OperatorGroup without targets is AllNamespaces")

	// Deleting the CSV under a live Subscription: OLM installs it again.
	oldUID := csv.GetUID()
	b.mustDelete(t, gvrCSV, ns, csvName)
	b.eventually(t, 10*time.Second, "CSV reinstalled", func(ctx context.Context) (bool, error) {
		csv, err := b.get(ctx, gvrCSV, ns, csvName)
		return csv != nil && csv.GetUID() != oldUID && nestedStr(csv, "status", "phase") == "Succeeded", err
	})

	// Deleting the Subscription leaves the operator installed.
	b.mustDelete(t, gvrSubscription, ns, "example")
	time.Sleep(2 * DefaultLatency)
	assert.Equal(t, "Succeeded", nestedStr(b.mustGet(t, gvrCSV, ns, csvName), "status", "phase"))
}

func TestCSVFailsWithoutOperatorGroup(t *testing.T) {
	b := getBed(t)
	ns := "olm-no-og"
	b.namespace(t, ns)
	b.mustCreate(t, gvrSubscription, subscription(ns, "rhods", "rhods-operator", "stable-3.4"))
	csvName := "rhods-operator.3.4.1" // RHOAI's CSVs carry no "v"
	b.eventually(t, 10*time.Second, "CSV Failed", csvPhase(b, ns, csvName, "Failed"))
	csv := b.mustGet(t, gvrCSV, ns, csvName)
	assert.Equal(t, "NoOperatorGroup", nestedStr(csv, "status", "reason"))
	assert.Equal(t, "csv in namespace with no operatorgroups", nestedStr(csv, "status", "message"))

	time.Sleep(3 * DefaultLatency)
	assert.Equal(t, "Failed", nestedStr(b.mustGet(t, gvrCSV, ns, csvName), "status", "phase"), "stays failed without an OperatorGroup")

	b.mustCreate(t, gvrOperatorGroup, operatorGroup(ns))
	b.eventually(t, 10*time.Second, "CSV Succeeded once an OperatorGroup exists", csvPhase(b, ns, csvName, "Succeeded"))
}

func TestUnknownChannelDoesNotResolve(t *testing.T) {
	b := getBed(t)
	ns := "olm-bad-channel"
	b.namespace(t, ns)
	b.mustCreate(t, gvrOperatorGroup, operatorGroup(ns))
	b.mustCreate(t, gvrSubscription, subscription(ns, "gitops", gitopsPackage, "gitops-0.1"))
	b.eventually(t, 10*time.Second, "ResolutionFailed", func(ctx context.Context) (bool, error) {
		sub, err := b.get(ctx, gvrSubscription, ns, "gitops")
		return sub != nil && str(condOf(sub, "ResolutionFailed")["status"]) == "True", err
	})
	sub := b.mustGet(t, gvrSubscription, ns, "gitops")
	assert.Contains(t, condOf(sub, "ResolutionFailed")["message"], "no operators found in channel gitops-0.1")
	ips, err := b.dyn.Resource(gvrInstallPlan).Namespace(ns).List(t.Context(), listAll)
	require.NoError(t, err)
	assert.Empty(t, ips.Items)
}

func TestFailingInstallPlan(t *testing.T) {
	b := getBed(t)
	ns := "olm-broken"
	b.namespace(t, ns)
	b.mustCreate(t, gvrOperatorGroup, operatorGroup(ns))
	b.mustCreate(t, gvrSubscription, subscription(ns, "broken", brokenPackage, ""))
	// Failed only after the retry window (retryWindow) has passed.
	b.eventually(t, 10*time.Second+retryWindow, "InstallPlanFailed", func(ctx context.Context) (bool, error) {
		sub, err := b.get(ctx, gvrSubscription, ns, "broken")
		return sub != nil && str(condOf(sub, "InstallPlanFailed")["status"]) == "True", err
	})
	sub := b.mustGet(t, gvrSubscription, ns, "broken")
	assert.Contains(t, condOf(sub, "InstallPlanFailed")["message"], "widgets.example.com")
	ip := b.mustGet(t, gvrInstallPlan, ns, nestedStr(sub, "status", "installPlanRef", "name"))
	assert.Equal(t, "Failed", nestedStr(ip, "status", "phase"))
	csv, err := b.get(t.Context(), gvrCSV, ns, brokenPackage+".v2.6.11")
	require.NoError(t, err)
	assert.Nil(t, csv, "a failed InstallPlan creates no CSV")
}

// A step error inside the retry window is not the end of a plan: OLM retries it (the plan
// stays Installing, "retrying execution due to error: …") and completes once the API server
// answers. Before, the first API server timeout failed the plan and, in CI, the whole
// bootstrap (operator-openshift-ai Degraded for 18 minutes).
func TestInstallPlanRetriesATransientError(t *testing.T) {
	b := getBed(t)
	ns := "olm-flaky"
	b.namespace(t, ns)
	b.mustCreate(t, gvrOperatorGroup, operatorGroup(ns))
	b.mustCreate(t, gvrSubscription, subscription(ns, "flaky", flakyPackage, ""))
	b.eventually(t, 30*time.Second, "CSV Succeeded after retries", csvPhase(b, ns, "serverless-operator.v1.37.0", "Succeeded"))
	sub := b.mustGet(t, gvrSubscription, ns, "flaky")
	ip := b.mustGet(t, gvrInstallPlan, ns, nestedStr(sub, "status", "installPlanRef", "name"))
	assert.Equal(t, "Complete", nestedStr(ip, "status", "phase"))
	assert.Empty(t, nestedStr(ip, "status", "message"), "a completed plan drops the retry message")
	assert.Nil(t, condOf(sub, "InstallPlanFailed"))
	tries := 0
	for _, p := range b.installedPackages() {
		if p == flakyPackage {
			tries++
		}
	}
	assert.Equal(t, flakyAttempts+1, tries, "retried until the install went through, then not again")
}

func TestManualApproval(t *testing.T) {
	b := getBed(t)
	ns := "olm-manual"
	b.namespace(t, ns)
	b.mustCreate(t, gvrOperatorGroup, operatorGroup(ns))
	sub := subscription(ns, "nfd", "nfd", "stable")
	require.NoError(t, unstructured.SetNestedField(sub.Object, "Manual", "spec", "installPlanApproval"))
	b.mustCreate(t, gvrSubscription, sub)
	b.eventually(t, 10*time.Second, "UpgradePending", func(ctx context.Context) (bool, error) {
		sub, err := b.get(ctx, gvrSubscription, ns, "nfd")
		return sub != nil && nestedStr(sub, "status", "state") == "UpgradePending", err
	})
	sub = b.mustGet(t, gvrSubscription, ns, "nfd")
	assert.Equal(t, "InstallPlanPending=True", condString(sub, "InstallPlanPending"))
	ipName := nestedStr(sub, "status", "installPlanRef", "name")
	ip := b.mustGet(t, gvrInstallPlan, ns, ipName)
	assert.Equal(t, "RequiresApproval", nestedStr(ip, "status", "phase"))
	csv, err := b.get(t.Context(), gvrCSV, ns, "nfd.v4.21.0")
	require.NoError(t, err)
	assert.Nil(t, csv, "nothing installs before approval")

	b.mergePatch(t, gvrInstallPlan, ns, ipName, map[string]any{"spec": map[string]any{"approved": true}})
	b.eventually(t, 10*time.Second, "CSV Succeeded after approval", csvPhase(b, ns, "nfd.v4.21.0", "Succeeded"))
	assert.Equal(t, "AtLatestKnown", nestedStr(b.mustGet(t, gvrSubscription, ns, "nfd"), "status", "state"))
}

var gvrPackageManifest = schema.GroupVersionResource{Group: "packages.operators.coreos.com", Version: "v1", Resource: "packagemanifests"}

// PackageManifests reach clients the way OLM's package server serves them: through the
// aggregator (discovery, front-proxy authentication), read-only, visible from any
// namespace, with the catalog labels; and the resolver agrees with them.
func TestPackageManifestsThroughTheAggregator(t *testing.T) {
	b := getBed(t)
	pms := func(ns string) dynamic.ResourceInterface { return b.dyn.Resource(gvrPackageManifest).Namespace(ns) }
	b.eventually(t, 30*time.Second, "the PackageManifest API served through the aggregator", func(ctx context.Context) (bool, error) {
		_, err := pms("openshift-marketplace").Get(ctx, "openshift-gitops-operator", metav1.GetOptions{})
		return err == nil, nil
	})
	pm := b.mustGetNS(t, pms("openshift-marketplace"), "openshift-gitops-operator")
	assert.Equal(t, "latest", nestedStr(pm, "status", "defaultChannel"))
	assert.Equal(t, "redhat-operators", nestedStr(pm, "status", "catalogSource"))
	assert.Equal(t, "openshift-marketplace", nestedStr(pm, "status", "catalogSourceNamespace"))
	assert.Equal(t, []string{"gitops-1.18", "gitops-1.19", "gitops-1.20", "latest"}, channelNames(pm),
		"gitops-1.16 supports OpenShift up to 4.18 only")
	assert.Equal(t, "redhat-operators", pm.GetLabels()["catalog"])

	// Any namespace sees the global catalog, under its own namespace.
	b.namespace(t, "pm-reader")
	pm = b.mustGetNS(t, pms("pm-reader"), "rhods-operator")
	assert.Equal(t, "pm-reader", pm.GetNamespace())
	assert.Contains(t, channelNames(pm), "stable-3.4")

	list, err := pms("pm-reader").List(t.Context(), metav1.ListOptions{LabelSelector: "catalog=certified-operators"})
	require.NoError(t, err)
	require.Len(t, list.Items, 1)
	assert.Equal(t, "gpu-operator-certified", list.Items[0].GetName())
	list, err = pms("openshift-marketplace").List(t.Context(), metav1.ListOptions{FieldSelector: "metadata.name=nfd"})
	require.NoError(t, err)
	require.Len(t, list.Items, 1)

	_, err = pms("openshift-marketplace").Get(t.Context(), "no-such-operator", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "%v", err)
	_, err = pms("openshift-marketplace").Create(t.Context(), obj("packages.operators.coreos.com/v1", "PackageManifest", "openshift-marketplace", "mine", nil), metav1.CreateOptions{})
	assert.True(t, apierrors.IsMethodNotSupported(err), "read-only: %v", err)

	// Only the aggregator may call the package server directly.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // a test of the server's client authentication
	resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/apis/packages.operators.coreos.com/v1/namespaces/openshift-marketplace/packagemanifests", b.sim.PackageServerPort()))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// A package a catalog does not have does not resolve.
	ns := "olm-unknown-package"
	b.namespace(t, ns)
	b.mustCreate(t, gvrOperatorGroup, operatorGroup(ns))
	b.mustCreate(t, gvrSubscription, subscription(ns, "nope", "no-such-operator", "stable"))
	b.eventually(t, 10*time.Second, "ResolutionFailed", func(ctx context.Context) (bool, error) {
		sub, err := b.get(ctx, gvrSubscription, ns, "nope")
		return sub != nil && str(condOf(sub, "ResolutionFailed")["status"]) == "True", err
	})
	assert.Contains(t, condOf(b.mustGet(t, gvrSubscription, ns, "nope"), "ResolutionFailed")["message"], "no operators found in package no-such-operator")
}

func channelNames(pm *unstructured.Unstructured) []string {
	chs, _, _ := unstructured.NestedSlice(pm.Object, "status", "channels")
	var out []string
	for _, c := range chs {
		out = append(out, str(c.(map[string]any)["name"]))
	}
	return out
}

func (b *bed) mustGetNS(t *testing.T, ri dynamic.ResourceInterface, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := ri.Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return u
}

// FailInstall makes a package's InstallPlan fail with the given message, which OLM copies
// into the Subscription's InstallPlanFailed condition. The package must be one the
// simulated catalog offers (else it never resolves to an InstallPlan).
func TestInjectedInstallFailure(t *testing.T) {
	b := getBed(t)
	ns := "olm-injected"
	const msg = "bundle unpacking failed: image pull timed out"
	b.sim.FailInstall("authorino-operator", msg)
	t.Cleanup(func() { b.sim.FailInstall("authorino-operator", "") })
	b.namespace(t, ns)
	b.mustCreate(t, gvrOperatorGroup, operatorGroup(ns))
	b.mustCreate(t, gvrSubscription, subscription(ns, "injected", "authorino-operator", ""))
	b.eventually(t, 10*time.Second, "InstallPlanFailed", func(ctx context.Context) (bool, error) {
		sub, err := b.get(ctx, gvrSubscription, ns, "injected")
		return sub != nil && str(condOf(sub, "InstallPlanFailed")["status"]) == "True", err
	})
	sub := b.mustGet(t, gvrSubscription, ns, "injected")
	assert.Equal(t, msg, condOf(sub, "InstallPlanFailed")["message"])
	ip := b.mustGet(t, gvrInstallPlan, ns, nestedStr(sub, "status", "installPlanRef", "name"))
	assert.Equal(t, "Failed", nestedStr(ip, "status", "phase"))
}
