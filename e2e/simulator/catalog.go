package simulator

import (
	"context"
	"sort"
	"strconv"
	"strings"

	configv1 "github.com/openshift/api/config/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var gvrClusterVersion = schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "clusterversions"}

// The simulated operator catalogs: what the default CatalogSources in
// openshift-marketplace offer, per OpenShift minor version, as OLM's package server lists
// them (PackageManifests) and as its resolver installs them (Subscriptions). Channel
// lists follow the products' published lifecycles, read in late 2026; the versions are
// plausible, not a mirror of a real index. Some lists deliberately lack what a cluster file
// or the payload could ask for, as real catalogs do:
//   - OpenShift GitOps: the version channels exist only on the OpenShift versions that
//     release supports (1.16 ends at 4.18; 1.18–1.20 are current on 4.19 and 4.20), and
//     "latest" follows the newest
//     (https://docs.redhat.com/en/documentation/red_hat_openshift_gitops/1.18/html/release_notes/gitops-release-notes#GitOps-compatibility-support-matrix_gitops-release-notes).
//   - OpenShift Data Foundation has one channel per OpenShift minor (stable-4.20 only on
//     4.20).
//   - OpenShift AI 3.x needs OpenShift 4.19 or newer.

// Global catalog namespace: OLM lists its packages in every namespace
// (operator-lifecycle-manager pkg/package-server/provider/registry.go List, globalNamespace).
const catalogNamespace = "openshift-marketplace"

// CatalogSources of a default OpenShift installation, with the display names and publishers
// the package server copies into each PackageManifest.
var catalogSources = map[string][2]string{
	"redhat-operators":    {"Red Hat Operators", "Red Hat"},
	"certified-operators": {"Certified Operators", "Red Hat"},
	"community-operators": {"Community Operators", "Red Hat"},
}

// channelHead is one channel and the version of its head bundle.
type channelHead struct{ name, version string }

// catalogPackage is one package of one catalog.
type catalogPackage struct {
	source, name, defaultChannel, displayName, provider string
	channels                                            []channelHead
	// csvPrefix is how the package names its CSVs; "<pkg>.v" unless it differs (RHOAI's
	// CSVs are "rhods-operator.3.4.1", without the v — code must read installedCSV, not guess).
	csvPrefix string
}

func (p catalogPackage) channel(name string) (channelHead, bool) {
	for _, c := range p.channels {
		if c.name == name {
			return c, true
		}
	}
	return channelHead{}, false
}

func (p catalogPackage) csvName(version string) string {
	prefix := p.csvPrefix
	if prefix == "" {
		prefix = p.name + ".v"
	}
	return prefix + version
}

// catalogFor returns the packages offered to a cluster of OpenShift 4.<minor>.
func catalogFor(minor int) []catalogPackage {
	ch := func(pairs ...string) []channelHead {
		var out []channelHead
		for i := 0; i+1 < len(pairs); i += 2 {
			out = append(out, channelHead{pairs[i], pairs[i+1]})
		}
		// The package server lists channels sorted by name (newPackageManifest).
		sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
		return out
	}
	rh := func(name, display, def string, channels []channelHead) catalogPackage {
		return catalogPackage{source: "redhat-operators", name: name, displayName: display, provider: "Red Hat", defaultChannel: def, channels: channels}
	}
	var gitops, odf, rhoai []channelHead
	switch {
	case minor <= 18:
		gitops = ch("latest", "1.16.4", "gitops-1.14", "1.14.6", "gitops-1.15", "1.15.5", "gitops-1.16", "1.16.4")
		odf = ch("stable-4.18", "4.18.9")
		rhoai = ch("stable", "2.25.2", "eus-2.25", "2.25.2", "fast", "2.25.2")
	case minor == 19:
		gitops = ch("latest", "1.20.1", "gitops-1.18", "1.18.3", "gitops-1.19", "1.19.2", "gitops-1.20", "1.20.1")
		odf = ch("stable-4.19", "4.19.6")
		rhoai = ch("stable-3.x", "3.4.1", "stable-3.4", "3.4.1", "fast-3.x", "3.5.0", "eus-2.25", "2.25.2")
	default:
		gitops = ch("latest", "1.20.1", "gitops-1.18", "1.18.3", "gitops-1.19", "1.19.2", "gitops-1.20", "1.20.1")
		odf = ch("stable-4."+strconv.Itoa(minor), "4."+strconv.Itoa(minor)+".2")
		rhoai = ch("stable-3.x", "3.4.1", "stable-3.4", "3.4.1", "fast-3.x", "3.5.0", "eus-2.25", "2.25.2")
	}
	pkgs := []catalogPackage{
		rh("openshift-gitops-operator", "Red Hat OpenShift GitOps", "latest", gitops),
		rh("odf-operator", "OpenShift Data Foundation", odf[0].name, odf),
		rh("openshift-pipelines-operator-rh", "Red Hat OpenShift Pipelines", "latest",
			ch("latest", "1.21.0", "pipelines-1.19", "1.19.3", "pipelines-1.20", "1.20.2", "pipelines-1.21", "1.21.0")),
		rh("leader-worker-set", "Red Hat build of Leader Worker Set", "stable-v1.0", ch("stable-v1.0", "1.0.0")),
		rh("openshift-cert-manager-operator", "cert-manager Operator for Red Hat OpenShift", "stable-v1",
			ch("stable-v1", "1.17.0", "stable-v1.16", "1.16.1", "stable-v1.17", "1.17.0")),
		rh("serverless-operator", "Red Hat OpenShift Serverless", "stable", ch("stable", "1.37.0", "stable-1.36", "1.36.1", "stable-1.37", "1.37.0")),
		rh("servicemeshoperator", "Red Hat OpenShift Service Mesh 2", "stable", ch("stable", "2.6.11")),
		rh("servicemeshoperator3", "Red Hat OpenShift Service Mesh 3", "stable", ch("stable", "3.1.1", "stable-3.0", "3.0.5", "stable-3.1", "3.1.1")),
		rh("rhcl-operator", "Red Hat Connectivity Link", "stable", ch("stable", "1.2.0")),
		rh("authorino-operator", "Authorino Operator", "stable", ch("stable", "1.2.3")),
		rh("kueue-operator", "Red Hat build of Kueue", "stable-v1.1", ch("stable-v1.0", "1.0.1", "stable-v1.1", "1.1.0")),
		rh("nfd", "Node Feature Discovery Operator", "stable", ch("stable", "4."+strconv.Itoa(max(minor, 18))+".0")),
		rh("cluster-observability-operator", "Cluster Observability Operator", "stable", ch("stable", "1.2.2")),
		rh("opentelemetry-product", "Red Hat build of OpenTelemetry", "stable", ch("stable", "0.135.0-1")),
		{source: "certified-operators", name: "gpu-operator-certified", displayName: "NVIDIA GPU Operator", provider: "NVIDIA Corporation",
			defaultChannel: "stable", channels: ch("stable", "25.10.0", "v24.9", "24.9.2", "v25.3", "25.3.4", "v25.10", "25.10.0")},
		{source: "community-operators", name: "grafana-operator", displayName: "Grafana Operator", provider: "Grafana Labs",
			defaultChannel: "v5", channels: ch("v5", "5.19.1")},
		{source: "community-operators", name: "postgresql", displayName: "Crunchy Postgres for Kubernetes", provider: "Crunchy Data",
			defaultChannel: "v5", channels: ch("v5", "5.8.2")},
	}
	r := rh("rhods-operator", "Red Hat OpenShift AI", "stable-3.x", rhoai)
	if minor <= 18 {
		r.defaultChannel = "stable"
	}
	r.csvPrefix = "rhods-operator."
	return append(pkgs, r)
}

// findPackage looks a package up in one catalog source.
func findPackage(minor int, source, name string) (catalogPackage, bool) {
	for _, p := range catalogFor(minor) {
		if p.name == name && p.source == source {
			return p, true
		}
	}
	return catalogPackage{}, false
}

// openShiftMinor reads the cluster's OpenShift minor version from ClusterVersion "version"
// (status.desired.version, as the catalogs follow the running release); without one, the
// version the simulated cluster operators report.
func (s *Simulator) openShiftMinor(ctx context.Context) int {
	v := OpenShiftVersion
	if cv, err := getAs[configv1.ClusterVersion](ctx, s, gvrClusterVersion, "", "version"); err == nil && cv != nil {
		if desired := cv.Status.Desired.Version; desired != "" {
			v = desired
		}
	}
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return 20
	}
	m, err := strconv.Atoi(parts[1])
	if err != nil {
		return 20
	}
	return m
}
