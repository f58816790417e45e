package simulator

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/cert"
)

// OLM's package server is an aggregated API server: kube-apiserver proxies
// packages.operators.coreos.com/v1 to it through the APIService that OLM makes from the
// packageserver CSV (operator-lifecycle-manager deploy/chart/templates/
// _packageserver.clusterserviceversion.yaml, pkg/controller/install/apiservice.go: service
// "<deployment>-service", groupPriorityMinimum 2000, versionPriority 15). The simulator plays
// that server the same way, so clients meet the real path: discovery through the
// aggregator, namespaced read-only PackageManifests, front-proxy authentication, and an
// API that disappears when its backend does.
//
// What it reproduces (operator-lifecycle-manager pkg/package-server/storage/reststorage.go,
// provider/registry.go): get and list only (no watch), in any namespace, where the packages
// of the namespace's catalogs and of the global catalog namespace are listed with the
// requested namespace set; label selectors (the catalog and catalog-namespace labels among
// them) and the metadata.name field selector; get returns the first package of that name.
// Requests must come through the aggregator: a client certificate from the front-proxy CA
// with an allowed name, as kube-apiserver publishes them in
// kube-system/extension-apiserver-authentication (delegated authentication). Not
// reproduced: authorization (SubjectAccessReview), icons, and entries/CSV descriptions
// beyond display name, version and provider.
const (
	packagesGroup   = "packages.operators.coreos.com"
	packagesVersion = "v1"
	olmNamespace    = "openshift-operator-lifecycle-manager"
	packageService  = "packageserver-service"
	apiServiceName  = packagesVersion + "." + packagesGroup
)

var gvrAPIService = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// packageServer is the running aggregated API server.
type packageServer struct {
	s        *Simulator
	server   *http.Server
	port     int
	caBundle []byte
	// front-proxy trust, from extension-apiserver-authentication
	clientCAs    *x509.CertPool
	allowedNames []string
	userHeaders  []string
}

// startPackageServer serves PackageManifests on a free local port and registers the
// APIService (with an ExternalName Service pointing at localhost, which the aggregator
// resolves to that host: k8s.io/apiserver pkg/util/proxy ResolveCluster).
func (s *Simulator) startPackageServer(ctx context.Context) (*packageServer, error) {
	ps := &packageServer{s: s}
	if err := ps.loadFrontProxyTrust(ctx); err != nil {
		return nil, err
	}
	host := packageService + "." + olmNamespace + ".svc"
	certPEM, keyPEM, err := cert.GenerateSelfSignedCertKey(host, nil, []string{"localhost"})
	if err != nil {
		return nil, fmt.Errorf("package server: serving certificate: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("package server: serving certificate: %w", err)
	}
	ps.caBundle = certPEM // the leaf and the CA that signed it
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("package server: listening: %w", err)
	}
	ps.port = l.Addr().(*net.TCPAddr).Port
	ps.server = &http.Server{
		Handler:           http.HandlerFunc(ps.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.VerifyClientCertIfGiven,
			ClientCAs: ps.clientCAs, MinVersion: tls.VersionTLS12},
	}
	go func() { _ = ps.server.ServeTLS(l, "", "") }()
	if err := ps.register(ctx); err != nil {
		_ = ps.server.Close()
		return nil, err
	}
	s.logf("olm: package server on 127.0.0.1:%d registered as APIService %s", ps.port, apiServiceName)
	return ps, nil
}

// loadFrontProxyTrust reads what kube-apiserver publishes for extension API servers.
func (ps *packageServer) loadFrontProxyTrust(ctx context.Context) error {
	cm, err := ps.s.typed.CoreV1().ConfigMaps("kube-system").Get(ctx, "extension-apiserver-authentication", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("package server: reading kube-system/extension-apiserver-authentication: %w", err)
	}
	ca := cm.Data["requestheader-client-ca-file"]
	if ca == "" {
		return errors.New("package server: kube-apiserver runs without --requestheader-client-ca-file, so it cannot proxy to aggregated API servers")
	}
	ps.clientCAs = x509.NewCertPool()
	if !ps.clientCAs.AppendCertsFromPEM([]byte(ca)) {
		return errors.New("package server: requestheader-client-ca-file holds no certificate")
	}
	for key, dst := range map[string]*[]string{"requestheader-allowed-names": &ps.allowedNames, "requestheader-username-headers": &ps.userHeaders} {
		if v := cm.Data[key]; v != "" {
			if err := json.Unmarshal([]byte(v), dst); err != nil {
				return fmt.Errorf("package server: %s: %w", key, err)
			}
		}
	}
	return nil
}

// register creates the namespace, the Service and the APIService, pointing at this server.
func (ps *packageServer) register(ctx context.Context) error {
	s := ps.s
	if _, err := s.typed.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: olmNamespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("package server: namespace: %w", err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: packageService, Namespace: olmNamespace},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost",
			Ports: []corev1.ServicePort{{Name: "https", Port: int32(ps.port)}}},
	}
	svcs := s.typed.CoreV1().Services(olmNamespace)
	if old, err := svcs.Get(ctx, packageService, metav1.GetOptions{}); err == nil {
		svc.ResourceVersion = old.ResourceVersion
		if _, err := svcs.Update(ctx, svc, metav1.UpdateOptions{FieldManager: mgrOLM}); err != nil {
			return fmt.Errorf("package server: service: %w", err)
		}
	} else if _, err := svcs.Create(ctx, svc, metav1.CreateOptions{FieldManager: mgrOLM}); err != nil {
		return fmt.Errorf("package server: service: %w", err)
	}
	apiSvc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": apiServiceName},
		"spec": map[string]any{
			"group": packagesGroup, "version": packagesVersion,
			"groupPriorityMinimum": int64(2000), "versionPriority": int64(15),
			"service":  map[string]any{"namespace": olmNamespace, "name": packageService, "port": int64(ps.port)},
			"caBundle": ps.caBundle,
		},
	}}
	data, err := json.Marshal(apiSvc.Object)
	if err != nil {
		return err
	}
	force := true
	if _, err := s.dyn.Resource(gvrAPIService).Patch(ctx, apiServiceName, "application/apply-patch+yaml", data,
		metav1.PatchOptions{FieldManager: mgrOLM, Force: &force}); err != nil {
		return fmt.Errorf("package server: APIService: %w", err)
	}
	return nil
}

// stop unregisters the APIService (so discovery does not report a dead group) and stops serving.
func (ps *packageServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = ps.s.dyn.Resource(gvrAPIService).Delete(ctx, apiServiceName, metav1.DeleteOptions{})
	_ = ps.server.Close()
}

// authenticated reports whether r came through the aggregator: a verified front-proxy
// client certificate with an allowed common name, and a user header.
func (ps *packageServer) authenticated(r *http.Request) bool {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return false
	}
	cn := r.TLS.VerifiedChains[0][0].Subject.CommonName
	if len(ps.allowedNames) > 0 && !slices.Contains(ps.allowedNames, cn) {
		return false
	}
	for _, h := range ps.userHeaders {
		if r.Header.Get(h) != "" {
			return true
		}
	}
	return len(ps.userHeaders) == 0
}

func (ps *packageServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
		_, _ = w.Write([]byte("ok"))
		return
	}
	if !ps.authenticated(r) {
		writeStatus(w, &apierrors.NewUnauthorized("Unauthorized").ErrStatus)
		return
	}
	base := "/apis/" + packagesGroup + "/" + packagesVersion
	rest, ok := strings.CutPrefix(r.URL.Path, base)
	if !ok {
		// /apis, /openapi/v2, /openapi/v3: the aggregator falls back to the group-version
		// discovery document (kube-aggregator handler_discovery.go).
		writeStatus(w, &apierrors.NewNotFound(schema.GroupResource{}, r.URL.Path).ErrStatus)
		return
	}
	gr := schema.GroupResource{Group: packagesGroup, Resource: "packagemanifests"}
	if r.Method != http.MethodGet {
		writeStatus(w, &apierrors.NewMethodNotSupported(gr, strings.ToLower(r.Method)).ErrStatus)
		return
	}
	if rest == "" || rest == "/" {
		writeJSON(w, &metav1.APIResourceList{
			TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
			GroupVersion: packagesGroup + "/" + packagesVersion,
			APIResources: []metav1.APIResource{
				{Name: "packagemanifests", SingularName: "packagemanifest", Namespaced: true, Kind: "PackageManifest", Verbs: []string{"get", "list"}},
				{Name: "packagemanifests/icon", SingularName: "", Namespaced: true, Kind: "PackageManifest", Verbs: []string{"get"}},
			},
		})
		return
	}
	if r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1" {
		writeStatus(w, &apierrors.NewMethodNotSupported(gr, "watch").ErrStatus)
		return
	}
	ns, name := "", ""
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	switch {
	case len(parts) == 1 && parts[0] == "packagemanifests":
	case len(parts) == 3 && parts[0] == "namespaces" && parts[2] == "packagemanifests":
		ns = parts[1]
	case len(parts) == 4 && parts[0] == "namespaces" && parts[2] == "packagemanifests":
		ns, name = parts[1], parts[3]
	default:
		writeStatus(w, &apierrors.NewNotFound(gr, rest).ErrStatus)
		return
	}
	sel, err := labels.Parse(r.URL.Query().Get("labelSelector"))
	if err != nil {
		writeStatus(w, &apierrors.NewBadRequest(err.Error()).ErrStatus)
		return
	}
	items := ps.list(r.Context(), ns, sel)
	if name != "" {
		for _, pm := range items {
			if pm.Metadata.Name == name {
				writeJSON(w, pm)
				return
			}
		}
		writeStatus(w, &apierrors.NewNotFound(gr, name).ErrStatus)
		return
	}
	if fs := r.URL.Query().Get("fieldSelector"); fs != "" {
		f, err := fields.ParseSelector(fs)
		if err != nil {
			writeStatus(w, &apierrors.NewBadRequest(err.Error()).ErrStatus)
			return
		}
		only, found := f.RequiresExactMatch("metadata.name")
		if !found {
			writeStatus(w, &apierrors.NewBadRequest("field label not supported: "+f.Requirements()[0].Field).ErrStatus)
			return
		}
		items = slices.DeleteFunc(items, func(pm packageManifest) bool { return pm.Metadata.Name != only })
	}
	writeJSON(w, packageManifestList{
		TypeMeta: metav1.TypeMeta{Kind: "PackageManifestList", APIVersion: packagesGroup + "/" + packagesVersion},
		Items:    items,
	})
}

// list returns the packages visible in ns: those of catalogs in ns and in the global
// catalog namespace (all of them for ns ""), each with the request's namespace.
func (ps *packageServer) list(ctx context.Context, ns string, sel labels.Selector) []packageManifest {
	if ns != "" && ns != catalogNamespace && !ps.namespaceExists(ctx, ns) {
		return nil
	}
	var out []packageManifest
	for _, p := range catalogFor(ps.s.openShiftMinor(ctx)) {
		pm := newPackageManifest(p)
		if ns != "" {
			pm.Metadata.Namespace = ns
		}
		if sel.Matches(labels.Set(pm.Metadata.Labels)) {
			out = append(out, pm)
		}
	}
	return out
}

func (ps *packageServer) namespaceExists(ctx context.Context, ns string) bool {
	_, err := ps.s.typed.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	return err == nil
}

// packageManifest is packages.operators.coreos.com/v1 PackageManifest as JSON, field for
// field from operator-lifecycle-manager pkg/package-server/apis/operators/v1/
// packagemanifest_types.go (the parts the simulator fills).
type packageManifest struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta     `json:"metadata"`
	Spec            struct{}              `json:"spec"`
	Status          packageManifestStatus `json:"status"`
}

type packageManifestStatus struct {
	CatalogSource            string           `json:"catalogSource"`
	CatalogSourceDisplayName string           `json:"catalogSourceDisplayName"`
	CatalogSourcePublisher   string           `json:"catalogSourcePublisher"`
	CatalogSourceNamespace   string           `json:"catalogSourceNamespace"`
	Provider                 appLink          `json:"provider,omitempty"`
	PackageName              string           `json:"packageName"`
	Channels                 []packageChannel `json:"channels"`
	DefaultChannel           string           `json:"defaultChannel"`
}

type appLink struct {
	Name string `json:"name,omitempty"`
	URL  string `json:"url,omitempty"`
}

type packageChannel struct {
	Name           string         `json:"name"`
	CurrentCSV     string         `json:"currentCSV"`
	CurrentCSVDesc csvDescription `json:"currentCSVDesc,omitempty"`
	Entries        []channelEntry `json:"entries"`
}

type csvDescription struct {
	DisplayName string  `json:"displayName,omitempty"`
	Version     string  `json:"version,omitempty"`
	Provider    appLink `json:"provider,omitempty"`
}

type channelEntry struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

type packageManifestList struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ListMeta   `json:"metadata"`
	Items           []packageManifest `json:"items"`
}

// newPackageManifest renders one catalog package the way the package server does
// (provider/registry.go newPackageManifest): named after the package, in its catalog's
// namespace, labelled with catalog, catalog-namespace, provider and the default os/arch
// labels, channels sorted by name.
func newPackageManifest(p catalogPackage) packageManifest {
	src := catalogSources[p.source]
	pm := packageManifest{
		TypeMeta: metav1.TypeMeta{Kind: "PackageManifest", APIVersion: packagesGroup + "/" + packagesVersion},
		Metadata: metav1.ObjectMeta{
			Name: p.name, Namespace: catalogNamespace,
			CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
			Labels: map[string]string{
				"catalog": p.source, "catalog-namespace": catalogNamespace,
				"provider": p.provider, "provider-url": "",
				"operatorframework.io/os.linux": "supported", "operatorframework.io/arch.amd64": "supported",
			},
		},
		Status: packageManifestStatus{
			CatalogSource: p.source, CatalogSourceDisplayName: src[0], CatalogSourcePublisher: src[1],
			CatalogSourceNamespace: catalogNamespace, Provider: appLink{Name: p.provider},
			PackageName: p.name, DefaultChannel: p.defaultChannel,
		},
	}
	for _, c := range p.channels {
		csv := p.csvName(c.version)
		pm.Status.Channels = append(pm.Status.Channels, packageChannel{
			Name: c.name, CurrentCSV: csv,
			CurrentCSVDesc: csvDescription{DisplayName: p.displayName, Version: c.version, Provider: appLink{Name: p.provider}},
			Entries:        []channelEntry{{Name: csv, Version: c.version}},
		})
	}
	return pm
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeStatus(w http.ResponseWriter, st *metav1.Status) {
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(st.Code))
	_ = json.NewEncoder(w).Encode(st)
}

// PackageServerPort is the port the simulated package server listens on (0 before Run).
func (s *Simulator) PackageServerPort() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pkgServer == nil {
		return 0
	}
	return s.pkgServer.port
}
