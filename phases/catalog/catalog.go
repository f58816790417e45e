// Package catalog reads what a cluster's operator catalogs offer, so a Subscription is
// checked before it is created instead of sitting in ResolutionFailed: a channel we
// remember (or a payload pins) may not exist on the cluster's OpenShift version.
//
// The source is OLM's package server: packages.operators.coreos.com/v1 PackageManifests,
// an aggregated, namespaced, read-only API that lists each catalog's packages with their
// channels (operator-lifecycle-manager pkg/package-server/apis/operators/v1/
// packagemanifest_types.go: status.catalogSource, status.channels[].name,
// status.defaultChannel). Packages of the same name can come from several catalogs, and a
// plain get returns the first one (provider/registry.go Get), so a package is looked up
// with the catalog labels the server sets (catalog, catalog-namespace) and a metadata.name
// field selector.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/kube"
)

var packageManifestGVK = kube.GVK("packages.operators.coreos.com/v1", "PackageManifest")

// packageManifest is the part of a PackageManifest we read. Its Go type lives in
// operator-lifecycle-manager (pkg/package-server/apis/operators/v1/
// packagemanifest_types.go: PackageManifestStatus.CatalogSource, DefaultChannel,
// Channels[].Name), a module not importable here, and not in operator-framework/api
// (whose pkg/manifests PackageManifest is the on-disk bundle format): these are its
// fields with the same JSON names.
type packageManifest struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Status            struct {
		CatalogSource  string `json:"catalogSource"`
		DefaultChannel string `json:"defaultChannel"`
		Channels       []struct {
			Name string `json:"name"`
		} `json:"channels"`
	} `json:"status"`
}

// servedWithin is how long Lookup waits for the package server's API to be served.
const servedWithin = 30 * time.Second

// Package is what one catalog offers of one package.
type Package struct {
	Name, Source, SourceNamespace string
	DefaultChannel                string
	Channels                      []string
}

// Offers reports whether channel is offered; "" means the default channel.
func (p *Package) Offers(channel string) bool {
	if channel == "" {
		return p.DefaultChannel != "" || len(p.Channels) == 1
	}
	for _, c := range p.Channels {
		if c == channel {
			return true
		}
	}
	return false
}

// Offered renders the channel list for people: "gitops-1.18, latest (default latest)".
func (p *Package) Offered() string {
	s := strings.Join(p.Channels, ", ")
	if p.DefaultChannel != "" {
		s += " (default " + p.DefaultChannel + ")"
	}
	return s
}

// Lookup returns what the catalog source in sourceNamespace offers of package name, or
// nil when it offers no such package.
func Lookup(ctx context.Context, c *kube.Clients, source, sourceNamespace, name string) (*Package, error) {
	// OLM's package server is an aggregated API: right after it (re)starts, discovery may
	// not list it for a few seconds (its APIService is not Available yet), and a real
	// cluster shows the same while the packageserver pods roll. Wait briefly for it before
	// calling the catalog unreadable.
	var last error
	if err := wait.PollUntilContextTimeout(ctx, time.Second, servedWithin, true, func(context.Context) (bool, error) {
		_, last = c.Resource(packageManifestGVK, sourceNamespace)
		if last != nil && meta.IsNoMatchError(errors.Unwrap(last)) {
			return false, nil // not listed by discovery yet
		}
		return true, last
	}); err != nil {
		if last == nil {
			last = err
		}
		return nil, notServed(last)
	}
	list, err := kube.ListAs[packageManifest](ctx, c, packageManifestGVK, sourceNamespace, metav1.ListOptions{
		LabelSelector: "catalog=" + source + ",catalog-namespace=" + sourceNamespace,
		FieldSelector: "metadata.name=" + name,
	})
	if err != nil {
		return nil, notServed(err)
	}
	for _, pm := range list {
		if pm.Name != name || pm.Status.CatalogSource != source {
			continue
		}
		p := &Package{Name: name, Source: source, SourceNamespace: sourceNamespace, DefaultChannel: pm.Status.DefaultChannel}
		for _, ch := range pm.Status.Channels {
			if ch.Name != "" {
				p.Channels = append(p.Channels, ch.Name)
			}
		}
		sort.Strings(p.Channels)
		return p, nil
	}
	return nil, nil
}

func notServed(err error) error {
	return fmt.Errorf("cannot read the cluster's operator catalog (PackageManifests, packages.operators.coreos.com/v1, served by OLM's package server): %w; "+
		"check that OLM runs: oc get apiservice v1.packages.operators.coreos.com", err)
}

// Want is a Subscription to check: where it comes from (for messages) and what it asks.
type Want struct {
	Where, Package, Channel, Source, SourceNamespace string
}

// Problem returns "" when w resolves in its catalog, else one sentence that names the
// Subscription, what it asks and what the catalog offers.
func Problem(ctx context.Context, c *kube.Clients, w Want) (string, error) {
	p, err := Lookup(ctx, c, w.Source, w.SourceNamespace, w.Package)
	if err != nil {
		return "", err
	}
	switch {
	case p == nil:
		return fmt.Sprintf("%s: package %s is not in the catalog %s (%s)", w.Where, w.Package, w.Source, w.SourceNamespace), nil
	case !p.Offers(w.Channel):
		return fmt.Sprintf("%s: channel %q of %s is not offered by the catalog %s; it offers %s", w.Where, w.Channel, w.Package, w.Source, p.Offered()), nil
	}
	return "", nil
}
