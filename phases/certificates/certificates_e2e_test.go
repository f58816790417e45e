//go:build e2e

package certificates

// End-to-end tests of the phase on the local test bed: a real kube-apiserver with the
// OpenShift singletons, the cluster simulator playing the ingress and kube-apiserver
// operators, Pebble as the ACME server and moto (behind the bed's proxy, which mirrors
// Route53 TXT records into pebble-challtestsrv's DNS) as Route53.
//
//	go test -tags e2e -run E2E -v ./phases/certificates/
//
// The tests share one bed and run one after the other: they patch the same cluster
// singletons, and each destroys what it installed.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	configv1 "github.com/openshift/api/config/v1"
	operatorv1 "github.com/openshift/api/operator/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/simulator"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/kube"
)

// world is the bed shared by the tests of this file.
type world struct {
	bed    *testbed.Bed
	dyn    dynamic.Interface
	typed  kubernetes.Interface
	pebble *http.Client // trusts Pebble's HTTPS CA
	// caBundle is what a user of a private ACME server configures as caBundleFile: the CA
	// of the server's HTTPS and the root it issues under.
	caBundle string
	root     *x509.Certificate
	inters   *x509.CertPool
	dir      struct{ NewOrder, NewAccount string }
	// Requests lego sent, counted by the transport every test phase gets.
	newOrders, newAccounts atomic.Int64
}

var (
	worldOnce sync.Once
	theWorld  *world
	worldErr  error
	stopWorld = func() {}
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopWorld()
	os.Exit(code)
}

func getWorld(t *testing.T) *world {
	t.Helper()
	worldOnce.Do(func() { theWorld, worldErr = startWorld() })
	require.NoError(t, worldErr, "starting the test bed")
	return theWorld
}

func startWorld() (*world, error) {
	ctx := context.Background()
	begin := time.Now()
	bed, err := testbed.Start(ctx, testbed.Options{})
	if err != nil {
		return nil, err
	}
	simCtx, cancel := context.WithCancel(context.Background())
	simDone := make(chan error, 1)
	stopWorld = func() {
		cancel()
		<-simDone
		if err := bed.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the bed:", err)
		}
	}
	fail := func(err error) (*world, error) {
		stopWorld()
		stopWorld = func() {}
		return nil, err
	}
	sim, err := simulator.New(bed.Config(), simulator.Options{Latencies: simulator.Latencies{IngressRollout: 700 * time.Millisecond, APIServerRollout: time.Second}})
	if err != nil {
		cancel()
		close(simDone)
		return fail(err)
	}
	go func() { simDone <- sim.Run(simCtx) }()

	w := &world{bed: bed}
	if w.dyn, err = dynamic.NewForConfig(bed.Config()); err != nil {
		return fail(err)
	}
	if w.typed, err = kubernetes.NewForConfig(bed.Config()); err != nil {
		return fail(err)
	}
	minica, err := os.ReadFile(bed.ACMECAFile())
	if err != nil {
		return fail(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(minica)
	w.pebble = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	rootPEM, interPEM, err := bed.ACMEIssuers(ctx)
	if err != nil {
		return fail(err)
	}
	block, _ := pem.Decode(rootPEM)
	if block == nil {
		return fail(errors.New("pebble's /roots/0 is not PEM"))
	}
	if w.root, err = x509.ParseCertificate(block.Bytes); err != nil {
		return fail(err)
	}
	w.inters = x509.NewCertPool()
	w.inters.AppendCertsFromPEM(interPEM)
	w.caBundle = filepath.Join(bed.WorkDir(), "acme-ca-bundle.pem")
	if err := os.WriteFile(w.caBundle, slicesConcat(minica, rootPEM), 0o600); err != nil {
		return fail(err)
	}
	resp, err := w.pebble.Get(bed.ACMEDirectoryURL())
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&w.dir); err != nil {
		return fail(fmt.Errorf("reading pebble's directory: %w", err))
	}
	kube.PollInterval = 200 * time.Millisecond
	fmt.Fprintf(os.Stderr, "test bed up in %s\n", time.Since(begin).Round(100*time.Millisecond))
	return w, nil
}

func slicesConcat(a, b []byte) []byte { return append(append([]byte{}, a...), b...) }

// countingTransport counts lego's new-order and new-account requests.
type countingTransport struct {
	w    *world
	next http.RoundTripper
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost {
		switch r.URL.String() {
		case c.w.dir.NewOrder:
			c.w.newOrders.Add(1)
		case c.w.dir.NewAccount:
			c.w.newAccounts.Add(1)
		}
	}
	return c.next.RoundTrip(r)
}

// doneElsewhere stands for the cluster phase, another engineer's: the state records it
// done (as after an install), and the runner never selects it here.
type doneElsewhere struct{ name string }

func (d doneElsewhere) Name() string        { return d.name }
func (d doneElsewhere) DependsOn() []string { return nil }
func (d doneElsewhere) Check(context.Context, *installer.Scope) (installer.Status, error) {
	return installer.Status{}, errors.New("not run in these tests")
}
func (d doneElsewhere) Apply(context.Context, *installer.Scope) error {
	return errors.New("not run in these tests")
}
func (d doneElsewhere) Destroy(context.Context, *installer.Scope) error {
	return errors.New("not run in these tests")
}

// run is one state folder: a bootstrap of "a cluster" whose API server is the bed's.
type run struct {
	t      *testing.T
	w      *world
	dir    string
	store  *installer.LocalStore
	events []installer.Event
	mu     sync.Mutex
	// onEvent, when set, sees every event (tests cancel runs with it).
	onEvent func(installer.Event)
}

func newRun(t *testing.T, w *world) *run {
	t.Helper()
	ctx := context.Background()
	r := &run{t: t, w: w, dir: t.TempDir()}
	var err error
	r.store, err = installer.NewLocalStore(r.dir)
	require.NoError(t, err)
	kc, err := os.ReadFile(w.bed.Kubeconfig())
	require.NoError(t, err)
	require.NoError(t, r.store.PutFile(ctx, phases.KubeconfigFile, kc))
	st := installer.NewState("bed", time.Now().UTC())
	st.Phase("cluster").Outcome = installer.OutcomeDone
	require.NoError(t, r.store.Save(ctx, st))
	return r
}

// cluster is a cluster file for the bed with the given name and ACME server.
func (r *run) cluster(name, server string) *configs.Cluster {
	c := &configs.Cluster{APIVersion: configs.APIVersion, Kind: configs.Kind, Metadata: configs.ObjectMeta{Name: name},
		Spec: configs.ClusterSpec{
			BaseDomain: r.w.bed.BaseDomain(),
			Platform:   configs.Platform{AWS: &configs.AWSPlatform{Region: "us-east-1", Zones: []string{"us-east-1a"}}},
			Certificates: &configs.Certificates{ACME: configs.ACME{
				Server: server, Email: "ops@" + r.w.bed.BaseDomain(), CABundleFile: r.w.caBundle,
				Resolvers: []string{r.w.bed.DNSResolver()}, DisableAuthoritativeNSCheck: true, PropagationTimeout: "1m",
				// No hostedZoneID: found by ListHostedZonesByName, as for most users.
			}},
		}}
	c.Default()
	for _, e := range c.Validate() { // the rest of the file (pull secret...) is not ours to fill
		assert.NotContains(r.t, e.Field, "spec.certificates", e.Error())
	}
	return c
}

// env is the phases' environment for cluster c; Counter counts mutating API requests.
func (r *run) env(c *configs.Cluster) *phases.Env {
	return &phases.Env{Cluster: c, WorkDir: r.dir, Timeouts: phases.DefaultTimeouts.Scale(0.01), Counter: &kube.Counter{},
		AWSConfig: func(context.Context) (aws.Config, error) { return r.w.bed.AWSConfig(), nil }}
}

// runner runs only the two certificates phases (order, rollout), with the test's
// transport on lego's client.
func (r *run) runner(env *phases.Env, opts Options) *installer.Runner {
	opts.wrapACME = func(next http.RoundTripper) http.RoundTripper { return countingTransport{w: r.w, next: next} }
	bus := installer.NewBus(nil, installer.SinkFunc(func(e installer.Event) {
		r.mu.Lock()
		r.events = append(r.events, e)
		f := r.onEvent
		r.mu.Unlock()
		if f != nil {
			f(e)
		}
	}))
	return &installer.Runner{Phases: []installer.Phase{doneElsewhere{"cluster"}, New(env, opts), NewRollout(env)}, Store: r.store, Bus: bus,
		Cluster: "bed", Command: "test", Only: []string{Name, RolloutName}}
}

// plan returns the certificates phase's plan entry.
func (r *run) plan(env *phases.Env, opts Options) installer.PlanEntry {
	r.t.Helper()
	return r.planOf(env, opts, Name)
}

// planOf returns one phase's plan entry.
func (r *run) planOf(env *phases.Env, opts Options, phase string) installer.PlanEntry {
	r.t.Helper()
	entries, err := r.runner(env, opts).Plan(context.Background())
	require.NoError(r.t, err)
	for _, e := range entries {
		if e.Phase == phase {
			return e
		}
	}
	r.t.Fatal("no plan entry for the phase")
	return installer.PlanEntry{}
}

// result is what one install did.
type result struct {
	err                    error
	took                   time.Duration
	orders, accounts, muts int64
}

func (r *run) install(ctx context.Context, env *phases.Env, opts Options) result {
	r.t.Helper()
	o, a, m := r.w.newOrders.Load(), r.w.newAccounts.Load(), env.Counter.Count()
	start := time.Now()
	_, err := r.runner(env, opts).Install(ctx)
	return result{err: err, took: time.Since(start), orders: r.w.newOrders.Load() - o, accounts: r.w.newAccounts.Load() - a, muts: env.Counter.Count() - m}
}

func (r *run) destroy(env *phases.Env) {
	r.t.Helper()
	_, err := r.runner(env, Options{}).Destroy(context.Background())
	require.NoError(r.t, err)
}

func (r *run) ledger() Ledger {
	r.t.Helper()
	st, err := r.store.Load(context.Background())
	require.NoError(r.t, err)
	rec, err := installer.RecordIn[Record](st)
	require.NoError(r.t, err)
	return rec.Ledger
}

// served reads a TLS secret's chain: leaf, rest.
func (w *world) served(t *testing.T, ns, name string) (*x509.Certificate, []*x509.Certificate) {
	t.Helper()
	sec, err := w.typed.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, corev1.SecretTypeTLS, sec.Type)
	leaf, issuers, err := bundle{Key: sec.Data[corev1.TLSPrivateKeyKey], Chain: sec.Data[corev1.TLSCertKey]}.parse()
	require.NoError(t, err)
	return leaf, issuers
}

// requireIssuedByPebble verifies the served certificate against Pebble's issuing root
// (fetched from /roots/0) for both endpoints' names.
func (w *world) requireIssuedByPebble(t *testing.T, c *configs.Cluster) *x509.Certificate {
	t.Helper()
	leaf, chain := w.served(t, IngressNS, IngressSecret)
	apiLeaf, _ := w.served(t, ConfigNS, APISecret)
	assert.Equal(t, leaf.Raw, apiLeaf.Raw, "one certificate for both endpoints")
	roots := x509.NewCertPool()
	roots.AddCert(w.root)
	inters := w.inters.Clone()
	for _, c := range chain {
		inters.AddCert(c)
	}
	for _, host := range []string{c.APIHost(), "console-openshift-console." + c.AppsDomain()} {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, DNSName: host})
		require.NoError(t, err, "%s chains to Pebble's issuing root", host)
	}
	return leaf
}

var (
	icGVR = schema.GroupVersionResource{Group: "operator.openshift.io", Version: "v1", Resource: "ingresscontrollers"}
	asGVR = schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "apiservers"}
)

func (w *world) ingressCert(t *testing.T) string {
	t.Helper()
	u, err := w.dyn.Resource(icGVR).Namespace(operatorNS).Get(context.Background(), "default", metav1.GetOptions{})
	require.NoError(t, err)
	var ic operatorv1.IngressController
	require.NoError(t, kube.Into(u, &ic))
	return ingressCertOf(&ic)
}

func (w *world) namedCerts(t *testing.T) namedCerts {
	t.Helper()
	u, err := w.dyn.Resource(asGVR).Get(context.Background(), "cluster", metav1.GetOptions{})
	require.NoError(t, err)
	var as configv1.APIServer
	require.NoError(t, kube.Into(u, &as))
	return namedCertsOf(&as)
}

// seedAdminCertificates gives the cluster what an admin may have configured before the
// bootstrap: a custom default ingress certificate and a named certificate for another
// host. Destroy must give both back.
func (w *world) seedAdminCertificates(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	admin := newCA(t, "Admin CA").issue(t, time.Now().Add(-time.Hour), 365, "api-internal.example.com")
	for _, ns := range []string{IngressNS, ConfigNS} {
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "admin-cert", Namespace: ns}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: admin.Chain, corev1.TLSPrivateKeyKey: admin.Key}}
		_, err := w.typed.CoreV1().Secrets(ns).Create(ctx, sec, metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) {
			require.NoError(t, err)
		}
	}
	_, err := w.dyn.Resource(icGVR).Namespace(operatorNS).Patch(ctx, "default", "application/merge-patch+json",
		[]byte(`{"spec":{"defaultCertificate":{"name":"admin-cert"}}}`), metav1.PatchOptions{FieldManager: "admin"})
	require.NoError(t, err)
	_, err = w.dyn.Resource(asGVR).Patch(ctx, "cluster", "application/merge-patch+json",
		[]byte(`{"spec":{"servingCerts":{"namedCertificates":[{"names":["api-internal.example.com"],"servingCertificate":{"name":"admin-cert"}}]}}}`),
		metav1.PatchOptions{FieldManager: "admin"})
	require.NoError(t, err)
}

// setRenewalWindow makes Pebble answer renewal information for cert with a window that
// opened an hour ago, as Let's Encrypt does for a certificate it is about to revoke.
func (w *world) setRenewalWindow(t *testing.T, cert *x509.Certificate) {
	t.Helper()
	now := time.Now().UTC()
	ari, err := json.Marshal(map[string]any{"suggestedWindow": map[string]any{
		"start": now.Add(-2 * time.Hour).Format(time.RFC3339), "end": now.Add(-time.Hour).Format(time.RFC3339)}})
	require.NoError(t, err)
	body, err := json.Marshal(map[string]string{"Certificate": string(pemCert(cert)), "ARIResponse": string(ari)})
	require.NoError(t, err)
	resp, err := w.pebble.Post(w.bed.ACMEManagementURL()+"/set-renewal-info/", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(msg))
}

// requireNoSecretLeak checks that no private key reached the state or the events.
func (r *run) requireNoSecretLeak(keys ...[]byte) {
	r.t.Helper()
	state, err := os.ReadFile(r.store.Location())
	require.NoError(r.t, err)
	r.mu.Lock()
	events, err := json.Marshal(r.events)
	r.mu.Unlock()
	require.NoError(r.t, err)
	for _, where := range map[string][]byte{"state.json": state, "events": events} {
		assert.NotContains(r.t, string(where), "PRIVATE KEY")
		assert.NotContains(r.t, string(where), "[REDACTED]", "nothing even tried to leave")
		for _, k := range keys {
			for line := range strings.SplitSeq(string(k), "\n") {
				if len(line) > 20 && !strings.HasPrefix(line, "-----") {
					assert.NotContains(r.t, string(where), line)
				}
			}
		}
	}
}

func (r *run) sideFile(name string) ([]byte, os.FileMode) {
	r.t.Helper()
	path := filepath.Join(r.dir, name)
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0
	}
	require.NoError(r.t, err)
	b, err := os.ReadFile(path)
	require.NoError(r.t, err)
	return b, fi.Mode().Perm()
}

// doneMessages are the phase's closing lines, one per run that converged.
func (r *run) doneMessages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.Type == installer.PhaseDone && e.Phase == Name {
			out = append(out, e.Message)
		}
	}
	return out
}

// orderTimes are the "ordered in" durations the phase reported, one per order.
func (r *run) orderTimes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		for _, c := range e.Changes {
			if _, took, ok := strings.Cut(c.Detail, "ordered in "); ok && e.Type == installer.Progress {
				out = append(out, took)
			}
		}
	}
	return out
}

// requireRolledOutBeforeDone: the ClusterOperator's Progressing condition went back to
// False after the certificates phase started (a rollout happened) and no later than
// certificates-rollout said it was done. Whether the phase also printed a waiting line depends on
// whether the rollout was still going at its first look, which a loaded machine decides.
func (w *world) requireRolledOutBeforeDone(t *testing.T, r *run, operator, msg string) {
	t.Helper()
	co, err := w.dyn.Resource(schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "clusteroperators"}).
		Get(context.Background(), operator, metav1.GetOptions{})
	require.NoError(t, err)
	status, _, _ := kube.Condition(co, "Progressing")
	require.Equal(t, "False", status, "%s: %s is no longer progressing", msg, operator)
	var settled time.Time
	conds, _, _ := unstructured.NestedSlice(co.Object, "status", "conditions")
	for _, c := range conds {
		if m, _ := c.(map[string]any); m["type"] == "Progressing" {
			settled, _ = time.Parse(time.RFC3339, m["lastTransitionTime"].(string))
		}
	}
	var started, done time.Time
	r.mu.Lock()
	for _, e := range r.events {
		switch {
		case e.Type == installer.PhaseStarted && e.Phase == Name:
			started = e.Time
		case e.Type == installer.PhaseDone && e.Phase == RolloutName:
			done = e.Time
		}
	}
	r.mu.Unlock()
	require.False(t, done.IsZero(), "the phase finished")
	// lastTransitionTime has whole seconds.
	assert.False(t, settled.Before(started.Truncate(time.Second)), "%s: %s went through a rollout during the phase (Progressing settled at %s, the phase started at %s)", msg, operator, settled, started)
	assert.False(t, settled.After(done.Truncate(time.Second)), "%s: %s settled at %s, the phase was done at %s", msg, operator, settled, done)
}

// TestE2EOrderReuseRenewDestroy: one order on the first run, installed on both endpoints
// with both patches; nothing on a re-run; renewal when the ACME server's renewal window
// opens, when the clock says a third of the lifetime is left, and when forced; destroy
// gives the admin's certificates back.
func TestE2EOrderReuseRenewDestroy(t *testing.T) {
	w := getWorld(t)
	ctx := context.Background()
	w.seedAdminCertificates(t)
	r := newRun(t, w)
	c := r.cluster(w.bed.ClusterName(), w.bed.ACMEDirectoryURL())
	env := r.env(c)

	p := r.plan(env, Options{})
	assert.Equal(t, "would-change", p.State)
	assert.Equal(t, "order: no certificate installed", p.Reason)
	assert.Zero(t, w.newOrders.Load()+w.newAccounts.Load(), "a plan orders nothing and registers nothing")

	first := r.install(ctx, env, Options{})
	require.NoError(t, first.err)
	t.Logf("first run: %s, %d new-order request(s), %d new-account request(s), %d mutating API requests", first.took.Round(10*time.Millisecond), first.orders, first.accounts, first.muts)
	assert.EqualValues(t, 1, first.orders, "exactly one order")
	assert.EqualValues(t, 1, first.accounts, "one account")
	require.Len(t, r.ledger(), 1)
	leaf := w.requireIssuedByPebble(t, c)
	assert.Equal(t, serialOf(leaf), r.ledger()[0].Serial)
	require.Len(t, r.doneMessages(), 1)
	assert.Regexp(t, `^issued certificate `+serialOf(leaf)+`, valid until \d{4}-\d\d-\d\d; renewal window opens in 5\d days$`, r.doneMessages()[0],
		"the run that ordered says so, not what the next run will do")
	assert.Equal(t, IngressSecret, w.ingressCert(t))
	assert.Equal(t, namedCerts{entry("admin-cert", "api-internal.example.com"), namedCert(c.APIHost())}, w.namedCerts(t), "merged: the admin's named certificate is kept")
	w.requireRolledOutBeforeDone(t, r, "ingress", "both rollouts were waited for")
	w.requireRolledOutBeforeDone(t, r, "kube-apiserver", "both rollouts were waited for")

	key, mode := r.sideFile(accountKeyFile)
	assert.NotEmpty(t, key)
	assert.Equal(t, os.FileMode(0o600), mode)
	acct, _ := r.sideFile(accountFile)
	pending, _ := r.sideFile(pendingFile)
	assert.Nil(t, pending, "the pending certificate is gone once installed")
	kc, _ := r.sideFile(phases.KubeconfigFile)
	cfg, err := clientcmd.Load(kc)
	require.NoError(t, err)
	for _, cl := range cfg.Clusters {
		assert.Contains(t, string(cl.CertificateAuthorityData), string(pemCert(w.root)), "our kubeconfig trusts the new root")
	}
	sec, err := w.typed.CoreV1().Secrets(IngressNS).Get(ctx, IngressSecret, metav1.GetOptions{})
	require.NoError(t, err)
	r.requireNoSecretLeak(key, sec.Data[corev1.TLSPrivateKeyKey])

	// A re-run orders nothing and changes nothing.
	p = r.plan(env, Options{})
	assert.Equal(t, "done", p.State)
	assert.Regexp(t, `^reuse, due in 5\d days \(ACME renewal information\)$`, p.Reason)
	again := r.install(ctx, env, Options{})
	require.NoError(t, again.err)
	assert.Regexp(t, `^reuse, due in 5\d days \(ACME renewal information\)$`, r.doneMessages()[1], "a run that reused says so")
	t.Logf("re-run: %s, %d new-order request(s), %d mutating API requests", again.took.Round(10*time.Millisecond), again.orders, again.muts)
	assert.Zero(t, again.orders)
	assert.Zero(t, again.accounts)
	assert.Zero(t, again.muts, "a converged re-run makes no mutating request")
	assert.Len(t, r.ledger(), 1)

	// Due by ARI: the ACME server opens the renewal window now.
	w.setRenewalWindow(t, leaf)
	p = r.plan(env, Options{})
	assert.Contains(t, p.Reason, "order: due (the ACME server's renewal window opened")
	ari := r.install(ctx, env, Options{})
	require.NoError(t, ari.err)
	t.Logf("renewal (ARI window open): %s, %d new-order request(s)", ari.took.Round(10*time.Millisecond), ari.orders)
	assert.EqualValues(t, 1, ari.orders)
	assert.Zero(t, ari.accounts, "the saved account is reused")
	acctAfter, _ := r.sideFile(accountFile)
	assert.Equal(t, acct, acctAfter)
	renewed := w.requireIssuedByPebble(t, c)
	assert.NotEqual(t, leaf.SerialNumber, renewed.SerialNumber)
	require.Len(t, r.ledger(), 2)

	// Due by the clock: 70 days on, the renewal window of a 90-day certificate is open.
	var offset atomic.Int64
	offset.Store(int64(70 * 24 * time.Hour))
	clock := Options{Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }}
	clock.afterOrder = func() error { offset.Store(0); return nil } // the new certificate is judged today
	p = r.plan(env, clock)
	assert.Contains(t, p.Reason, "order: due")
	due := r.install(ctx, env, clock)
	require.NoError(t, due.err)
	assert.EqualValues(t, 1, due.orders)
	require.Len(t, r.ledger(), 3)
	byClock := w.requireIssuedByPebble(t, c)
	assert.NotEqual(t, renewed.SerialNumber, byClock.SerialNumber)

	// Forced: once, and the run converges.
	forced := r.install(ctx, env, Options{ForceRenew: true})
	require.NoError(t, forced.err)
	assert.EqualValues(t, 1, forced.orders)
	require.Len(t, r.ledger(), 4)

	t.Logf("orders: %d in the ledger, %d new-order requests seen by lego's transport; time per order: %s",
		len(r.ledger()), first.orders+again.orders+ari.orders+due.orders+forced.orders, strings.Join(r.orderTimes(), ", "))
	t.Logf("run times: first %s, re-run %s, ARI renewal %s, clock renewal %s, forced %s",
		first.took.Round(10*time.Millisecond), again.took.Round(10*time.Millisecond), ari.took.Round(10*time.Millisecond),
		due.took.Round(10*time.Millisecond), forced.took.Round(10*time.Millisecond))

	// Destroy: the admin's certificates are back, ours are gone, the ledger stays.
	r.destroy(env)
	assert.Equal(t, "admin-cert", w.ingressCert(t))
	assert.Equal(t, namedCerts{entry("admin-cert", "api-internal.example.com")}, w.namedCerts(t))
	for _, ref := range [][2]string{{IngressNS, IngressSecret}, {ConfigNS, APISecret}} {
		_, err := w.typed.CoreV1().Secrets(ref[0]).Get(ctx, ref[1], metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "%s/%s deleted", ref[0], ref[1])
	}
	assert.Len(t, r.ledger(), 4, "the ledger outlives destroy")
	r.requireNoSecretLeak(key)
	w.clearAdminCertificates(t)
}

func (w *world) clearAdminCertificates(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	_, err := w.dyn.Resource(icGVR).Namespace(operatorNS).Patch(ctx, "default", "application/merge-patch+json",
		[]byte(`{"spec":{"defaultCertificate":null}}`), metav1.PatchOptions{FieldManager: "admin"})
	require.NoError(t, err)
	_, err = w.dyn.Resource(asGVR).Patch(ctx, "cluster", "application/merge-patch+json",
		[]byte(`{"spec":{"servingCerts":null}}`), metav1.PatchOptions{FieldManager: "admin"})
	require.NoError(t, err)
}

// TestE2ENamesAndBadServer: another cluster name orders anew; a bad ACME server URL is a
// clear error and changes nothing in the cluster.
func TestE2ENamesAndBadServer(t *testing.T) {
	w := getWorld(t)
	ctx := context.Background()
	r := newRun(t, w)
	a := r.cluster("names-a", w.bed.ACMEDirectoryURL())
	envA := r.env(a)
	res := r.install(ctx, envA, Options{})
	require.NoError(t, res.err)
	assert.EqualValues(t, 1, res.orders)
	w.requireIssuedByPebble(t, a)

	// A run killed after saving the account key but before recording the registration:
	// registering the same key again finds the same account.
	acct, _ := r.sideFile(accountFile)
	require.NoError(t, os.Remove(filepath.Join(r.dir, accountFile)))

	b := r.cluster("names-b", w.bed.ACMEDirectoryURL())
	envB := r.env(b)
	p := r.plan(envB, Options{})
	assert.Equal(t, "order: names changed (*.apps.names-a.bed.example.com, api.names-a.bed.example.com → *.apps.names-b.bed.example.com, api.names-b.bed.example.com)", p.Reason)
	res = r.install(ctx, envB, Options{})
	require.NoError(t, res.err)
	assert.EqualValues(t, 1, res.orders, "names changed: a new order")
	again, _ := r.sideFile(accountFile)
	assert.JSONEq(t, string(acct), string(again), "the same account, not a second one")
	leaf := w.requireIssuedByPebble(t, b)
	assert.ElementsMatch(t, Names(b), leaf.DNSNames)
	assert.Equal(t, namedCerts{namedCert(b.APIHost())}, w.namedCerts(t), "our entry follows the new name")
	require.Len(t, r.ledger(), 2)

	// A server that does not answer.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	badURL := "https://" + l.Addr().String() + "/dir"
	require.NoError(t, l.Close())
	bad := r.cluster("names-c", badURL)
	envBad := r.env(bad)
	res = r.install(ctx, envBad, Options{})
	require.Error(t, res.err)
	t.Logf("bad ACME server: %v", res.err)
	assert.Contains(t, res.err.Error(), "connecting to the ACME server "+badURL)
	assert.Zero(t, res.muts, "no partial change")
	assert.Zero(t, res.orders)
	after, _ := w.served(t, IngressNS, IngressSecret)
	assert.Equal(t, leaf.SerialNumber, after.SerialNumber)
	assert.Equal(t, namedCerts{namedCert(b.APIHost())}, w.namedCerts(t))
	assert.Len(t, r.ledger(), 2)

	r.destroy(envB)
	assert.Empty(t, w.ingressCert(t))
	assert.Empty(t, w.namedCerts(t))
}

// TestE2EKillSafety: a run that dies right after the order installs nothing, and the next
// one installs that certificate without ordering again; a run interrupted while waiting
// for a rollout waits again next time.
func TestE2EKillSafety(t *testing.T) {
	w := getWorld(t)
	ctx := context.Background()
	r := newRun(t, w)
	c := r.cluster(w.bed.ClusterName(), w.bed.ACMEDirectoryURL())
	env := r.env(c)

	crash := Options{afterOrder: func() error { return errors.New("killed right after the order (test)") }}
	res := r.install(ctx, env, crash)
	require.ErrorContains(t, res.err, "killed right after the order")
	assert.EqualValues(t, 1, res.orders)
	assert.Zero(t, res.muts, "nothing reached the cluster")
	pending, mode := r.sideFile(pendingFile)
	require.NotNil(t, pending)
	assert.Equal(t, os.FileMode(0o600), mode)
	saved, err := splitPEM(pending)
	require.NoError(t, err)
	savedLeaf, _, err := saved.parse()
	require.NoError(t, err)
	require.Len(t, r.ledger(), 1)
	assert.Equal(t, serialOf(savedLeaf), r.ledger()[0].Serial)

	p := r.plan(env, Options{})
	assert.Equal(t, "install certificate "+serialOf(savedLeaf)+", ordered by an interrupted run", p.Reason)

	// Interrupt the next run while it waits for the ingress rollout.
	runCtx, cancel := context.WithCancel(ctx)
	r.onEvent = func(e installer.Event) {
		if e.Type == installer.WaitingOn && strings.Contains(e.Message, "ClusterOperator ingress") {
			cancel()
		}
	}
	res = r.install(runCtx, env, Options{})
	cancel()
	r.onEvent = nil
	require.Error(t, res.err)
	assert.Zero(t, res.orders, "the saved certificate is installed, not ordered again")
	assert.Equal(t, "done", r.plan(env, Options{}).State, "the Secrets were written before the wait")
	p = r.planOf(env, Options{}, RolloutName)
	assert.Equal(t, "would-change", p.State)
	require.NotEmpty(t, p.Changes)
	assert.Contains(t, p.Changes[len(p.Changes)-1].Target, "to roll out certificate "+serialOf(savedLeaf))

	res = r.install(ctx, env, Options{})
	require.NoError(t, res.err)
	assert.Zero(t, res.orders)
	leaf := w.requireIssuedByPebble(t, c)
	assert.Equal(t, savedLeaf.SerialNumber, leaf.SerialNumber, "the certificate ordered by the killed run is the one installed")
	gone, _ := r.sideFile(pendingFile)
	assert.Nil(t, gone)
	assert.Len(t, r.ledger(), 1)
	assert.Equal(t, "done", r.plan(env, Options{}).State)
	assert.Equal(t, "done", r.planOf(env, Options{}, RolloutName).State)

	// Destroy with --revoke revokes it at the ACME server, as our account.
	env.Revoke = true
	r.destroy(env)
	status, reason := w.certStatus(t, leaf)
	assert.Equal(t, "Revoked", status)
	assert.EqualValues(t, 5, reason, "cessationOfOperation")
}

// certStatus asks Pebble's management API whether a certificate is revoked.
func (w *world) certStatus(t *testing.T, cert *x509.Certificate) (string, uint) {
	t.Helper()
	resp, err := w.pebble.Get(w.bed.ACMEManagementURL() + "/cert-status-by-serial/" + serialOf(cert))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var st struct {
		Status string
		Reason *uint
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	if st.Reason == nil {
		return st.Status, 0
	}
	return st.Status, *st.Reason
}
