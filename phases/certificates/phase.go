// Package certificates is two phases: certificates — one Let's Encrypt (or any ACME)
// order, by DNS-01 on Route53, for api.<cluster>.<domain> and *.apps.<cluster>.<domain>,
// written into the two TLS Secrets — and certificates-rollout (rollout.go), which puts
// those Secrets in service on the ingress controller and the API server and waits for both
// operators to roll them out.
//
// Two phases, because what the hand-off needs and what takes long are different steps: the
// root application must come after the Secrets exist (cert-manager adopts them instead of
// ordering, see handoff.go), but not after the kube-apiserver rollout, which takes 10–20
// minutes on a real cluster and which Argo CD does not need. The graph can then let the
// hand-off start as soon as the Secrets are written, and "done" still means both rollouts
// were seen.
//
// One order with both names, not one per endpoint: Let's Encrypt's duplicate-certificate
// limit (5 per exact set of names per week) then has one bucket to watch instead of two,
// each run solves one set of DNS-01 challenges, renewal follows one certificate, and both
// endpoints always present the same, consistent chain. The cost — the API host name is
// visible in the apps certificate and the other way round — is nil: both names are public
// DNS names of the same cluster.
//
// It never orders needlessly. Check reads the certificate the cluster serves (our TLS
// secret) and reuses it while the names match, it chains to the configured CA and it is
// not due (the ACME server's renewal information, else a third of its lifetime left); a
// plan shows that decision. An order is refused when the ledger of past orders (kept in
// the state) shows Let's Encrypt would refuse it too.
//
// Kill-safety: an issued certificate and its key are written to a 0600 side file,
// acme/pending.pem, before anything else happens; a run killed between the order and the
// end of the install finds it and installs it instead of ordering again. The key never
// goes into the state (only serials, names and dates do); the ACME account key lives in
// acme/account.key (0600) and is registered once.
package certificates

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-acme/lego/v5/acme/api"
	"github.com/go-acme/lego/v5/lego"
	configv1 "github.com/openshift/api/config/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/kube"
)

// Names of what the phase makes.
const (
	Name          = "certificates"
	IngressNS     = "openshift-ingress"
	IngressSecret = "rhoai-bootstrap-ingress-tls"
	ConfigNS      = "openshift-config"
	APISecret     = "rhoai-bootstrap-api-tls"
	operatorNS    = "openshift-ingress-operator"
	// rolloutGrace is how long an operator may show no reaction to a change before we take
	// it that there was nothing to roll out (a renewed secret's content is hot-reloaded).
	rolloutGrace = time.Minute
)

// Record is what the phase keeps in the state: public facts only (serials, names, dates,
// the names of secrets), never a key.
type Record struct {
	// Ledger is every order made for this cluster; it outlives destroy.
	Ledger Ledger `json:"ledger,omitempty"`
	// Installed is the certificate in service.
	Installed *installedRecord `json:"installed,omitempty"`
	// Rollout is the last change this phase made to the Secrets' content, saved before
	// the write: which operators serve the changed Secrets and since when. The
	// certificates-rollout phase confirms it (RolloutRecord.Confirmed); this phase only
	// replaces it with its next change. (Releases before the split cleared it once the
	// rollouts were seen; one left set by a run killed while waiting is confirmed by
	// certificates-rollout the same way.)
	Rollout *rollout `json:"rollout,omitempty"`
	// HandedOff is set once cert-manager renews our Secrets (handoff.go).
	HandedOff *handOffRecord `json:"handedOff,omitempty"`
	// Previous is what state schemas 1 and 2 recorded of the ingress controller's and the
	// API server's certificates before ours. The inventory replaced it; it is carried over
	// untouched because a phase that ran under those schemas is untracked, destroy leaves
	// its changes, and this is what a person needs to put them back by hand.
	Previous json.RawMessage `json:"previous,omitempty"`
}

// PhaseName implements installer.Record.
func (Record) PhaseName() string { return Name }

// save changes the phase's record and saves the state at once.
func save(ctx context.Context, s *installer.Scope, change func(*Record)) error {
	return installer.Save(ctx, s, func(r *Record) error { change(r); return nil })
}

var (
	asGVK     = configv1.GroupVersion.WithKind("APIServer")
	secretGVK = corev1.SchemeGroupVersion.WithKind("Secret")
)

// Options tune the phase from the command line.
type Options struct {
	// ForceRenew orders once in this run even when the installed certificate is not due
	// or cert-manager renews it (`rhoai-bootstrap certificates renew --force`).
	ForceRenew bool
	// Renew is set by `certificates renew`: once cert-manager renews the certificates it
	// refuses (without ForceRenew) instead of quietly doing nothing.
	Renew bool
	// Now is the clock certificates are judged by (time.Now when nil); tests move it.
	Now func() time.Time

	// afterOrder is a test hook run right after a certificate was obtained and saved.
	afterOrder func() error
	// wrapACME wraps the ACME client's HTTP transport (tests count requests).
	wrapACME func(http.RoundTripper) http.RoundTripper
}

type phase struct {
	env  *phases.Env
	opts Options
	// ordered is set once this process has ordered: --force renews once, so the Check after
	// Apply finds the phase converged.
	ordered atomic.Bool
	// placed is the certificate this process put in service (a placement), for the
	// closing line.
	placed atomic.Pointer[placement]
}

// placement is a certificate Apply put in service, and how it came.
type placement struct {
	serial string
	step   Step
}

// New returns the certificates phase.
func New(env *phases.Env, opts Options) installer.Phase { return &phase{env: env, opts: opts} }

func (p *phase) Name() string { return Name }

// DependsOn: the reuse decision reads the Secrets the cluster serves, and the Secrets are
// written there; both need the cluster's API server.
func (p *phase) DependsOn() []string { return []string{"cluster"} }

func (p *phase) acme() configs.ACME { return p.env.Cluster.Spec.Certificates.ACME }

func (p *phase) now() time.Time {
	if p.opts.Now != nil {
		return p.opts.Now()
	}
	return time.Now()
}

// rollout records a change operators must roll out — which ones, since when, for which
// certificate — before the change is made, so a run killed while waiting waits again next
// time instead of calling the rollout done.
type rollout struct {
	Since     time.Time `json:"since"`
	Serial    string    `json:"serial"`
	Ingress   bool      `json:"ingress,omitempty"`
	APIServer bool      `json:"apiServer,omitempty"`
}

// installedRecord is what the state keeps of the certificate in service.
type installedRecord struct {
	Serial   string    `json:"serial"`
	Names    []string  `json:"names"`
	NotAfter time.Time `json:"notAfter"`
	Server   string    `json:"server"`
}

// view is what observe found, and what Choose made of it.
type view struct {
	names  []string
	trust  trust
	ledger Ledger
	choice Choice
	// served is the certificate in our secret (nil: none or unreadable).
	served     *bundle
	servedLeaf *x509.Certificate
	// saved is acme/pending.pem, ordered by an interrupted run (nil: none or unreadable).
	saved *bundle
	// handOff is what cert-manager's Certificates say; handOffRecorded whether the state
	// knows; cmOrders are certificates cert-manager put in our Secrets that the ledger
	// does not know yet.
	handOff         *HandOff
	handOffRecorded bool
	cmOrders        []Order
	rollout         *rollout
	changes         []installer.Change
}

// observe reads the cluster, the state and the side files, and decides with Choose.
// Reads only: GETs to the API server and, for renewal information, to the ACME server.
func (p *phase) observe(ctx context.Context, s *installer.Scope, c *kube.Clients) (*view, error) {
	a := p.acme()
	v := &view{names: Names(p.env.Cluster)}
	var err error
	if v.trust, err = trustFor(a); err != nil {
		return nil, err
	}
	rec, err := installer.Load[Record](s)
	if err != nil {
		return nil, err
	}
	v.ledger, v.rollout, v.handOffRecorded = rec.Ledger, rec.Rollout, rec.HandedOff != nil
	f := Facts{Now: p.now(), Names: v.names, Directory: a.ACMEDirectory(), Ledger: v.ledger,
		Force: p.opts.ForceRenew && !p.ordered.Load()}
	if v.handOff, err = readHandOff(ctx, c, v.names); err != nil {
		return nil, err
	}
	f.HandOff = v.handOff
	live, err := p.readSecrets(ctx, c)
	if err != nil {
		return nil, err
	}
	v.cmOrders = certManagerOrders(v.ledger, live, v.names, f.Directory)

	switch data, err := s.GetFile(ctx, pendingFile); {
	case err == nil:
		f.SavedFile = true
		if b, err := splitPEM(data); err == nil {
			if leaf, _, err := b.parse(); err == nil {
				v.saved, f.Saved = &b, leaf
			}
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("reading %s: %w", pendingFile, err)
	}

	if v.served, err = p.readServed(ctx, c); err != nil {
		return nil, err
	}
	if v.served != nil {
		leaf, issuers, _ := v.served.parse()
		v.servedLeaf, f.Served = leaf, leaf
		f.ServedVerifies = v.trust.verify(leaf, issuers, f.Now) != nil
		f.ServedSignedByIssuer = len(issuers) > 0 && leaf.CheckSignatureFrom(issuers[0]) == nil
	}
	if f.NeedsRenewalInfo() {
		if lc, err := p.readClient(s); err != nil {
			s.Debugf("renewal information unavailable (%v): using the lifetime rule", err)
		} else {
			f.RenewalWindow = renewalWindow(ctx, s, lc, f.Served)
		}
	}
	v.choice = Choose(f)
	if v.choice.Step == StepHandedOff && p.opts.Renew && !p.opts.ForceRenew {
		return nil, renewRefusal(v.handOff)
	}

	for _, o := range v.cmOrders {
		v.changes = append(v.changes, installer.Change{Action: installer.Update, Target: "ledger",
			Detail: "record certificate " + o.Serial + ", ordered by cert-manager (it counts against the same rate limit)"})
	}
	secretsTarget := "TLS secrets " + IngressNS + "/" + IngressSecret + ", " + ConfigNS + "/" + APISecret
	switch v.choice.Step {
	case StepHandedOff:
		// cert-manager owns the Secrets' content now: nothing of ours to compare.
		if !v.handOffRecorded {
			v.changes = append(v.changes, installer.Change{Action: installer.Update, Target: "state",
				Detail: "record the hand-off to cert-manager (" + strings.Join(v.handOff.Certificates, ", ") + ")"})
		}
	case StepInstallSaved:
		v.changes = append(v.changes, installer.Change{Action: installer.Update, Target: secretsTarget, Detail: v.choice.Reason})
	case StepOrder, StepRenew:
		v.changes = append(v.changes,
			installer.Change{Action: installer.Run, Target: "ACME order for " + strings.Join(v.names, ", "), Detail: v.choice.Reason},
			installer.Change{Action: installer.Update, Target: secretsTarget, Detail: "the new certificate"})
	default:
		ch, err := c.Diff(ctx, secrets(*v.served))
		if err != nil {
			return nil, err
		}
		v.changes = append(v.changes, ch...)
	}
	return v, nil
}

// readSecrets reads our two TLS Secrets as they are (nil where missing).
func (p *phase) readSecrets(ctx context.Context, c *kube.Clients) ([]*corev1.Secret, error) {
	var out []*corev1.Secret
	for _, ref := range secretRefs {
		sec, err := c.Core.Secrets(ref[0]).Get(ctx, ref[1], metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			out = append(out, nil)
		case err != nil:
			return nil, fmt.Errorf("reading secret %s/%s: %w", ref[0], ref[1], err)
		default:
			out = append(out, sec)
		}
	}
	return out, nil
}

// readServed reads our TLS secret: the ingress one, else the API one. An unreadable
// secret counts as none (a new certificate replaces it).
func (p *phase) readServed(ctx context.Context, c *kube.Clients) (*bundle, error) {
	for _, ref := range [][2]string{{IngressNS, IngressSecret}, {ConfigNS, APISecret}} {
		sec, err := c.Core.Secrets(ref[0]).Get(ctx, ref[1], metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading secret %s/%s: %w", ref[0], ref[1], err)
		}
		b := bundle{Key: sec.Data[corev1.TLSPrivateKeyKey], Chain: sec.Data[corev1.TLSCertKey]}
		if _, _, err := b.parse(); err == nil {
			return &b, nil
		}
	}
	return nil, nil
}

// Check observes the served certificate and the patches; plans show its decision.
func (p *phase) Check(ctx context.Context, s *installer.Scope) (installer.Status, error) {
	if p.env.Cluster.Spec.Certificates == nil {
		return installer.Done("spec.certificates not set: the cluster keeps its own certificates"), nil
	}
	c, err := p.env.Kube(ctx, s)
	if err != nil {
		return installer.Status{}, err
	}
	v, err := p.observe(ctx, s, c)
	if err != nil {
		return installer.Status{}, err
	}
	if len(v.changes) == 0 {
		return installer.Done(p.doneReason(v)), nil
	}
	return installer.Pending(v.choice.Reason, v.changes...), nil
}

// doneReason is what a converged Check says. Right after Apply put a new certificate in
// service, the confirming Check's decision ("reuse, due in 58 days") is what the next run
// will do; the run's last line says what this one did instead.
func (p *phase) doneReason(v *view) string {
	pl := p.placed.Load()
	if pl == nil || v.choice.Step != StepReuse || v.servedLeaf == nil || serialOf(v.servedLeaf) != pl.serial {
		return v.choice.Reason
	}
	what := "issued"
	if pl.step == StepInstallSaved {
		what = "installed (ordered by an interrupted run)"
	}
	return fmt.Sprintf("%s certificate %s, valid until %s; renewal window opens in %s",
		what, pl.serial, v.servedLeaf.NotAfter.UTC().Format(time.DateOnly), human(v.choice.Decision.DueAt.Sub(p.now())))
}

// Apply orders when needed (or takes the pending certificate), then writes it into both
// Secrets. Putting them in service is certificates-rollout's.
func (p *phase) Apply(ctx context.Context, s *installer.Scope) error {
	c, err := p.env.Kube(ctx, s)
	if err != nil {
		return err
	}
	v, err := p.observe(ctx, s, c)
	if err != nil {
		return err
	}
	if v.choice.DropSaved {
		if err := s.DeleteFile(ctx, pendingFile); err != nil {
			return err
		}
	}
	if len(v.cmOrders) > 0 {
		v.ledger = append(v.ledger, v.cmOrders...)
		if err := save(ctx, s, func(r *Record) { r.Ledger = v.ledger }); err != nil {
			return fmt.Errorf("recording cert-manager's certificates in the ledger: %w", err)
		}
	}
	var b bundle
	switch {
	case v.choice.Step == StepHandedOff:
		return p.standDown(ctx, s, v)
	case v.choice.Step == StepInstallSaved:
		b = *v.saved
		redactPEM(s, b.Key)
		if err := p.recordOrder(ctx, s, v, b); err != nil {
			return err
		}
		s.Progress("%s", v.choice.Reason)
	case v.choice.Step == StepOrder || v.choice.Step == StepRenew:
		s.Progress("%s", v.choice.Reason)
		if b, err = p.order(ctx, s, v); err != nil {
			return err
		}
	default:
		b = *v.served
	}
	if err := p.install(ctx, s, v, b); err != nil {
		return err
	}
	if v.choice.Step != StepReuse {
		if leaf, _, err := b.parse(); err == nil {
			p.placed.Store(&placement{serial: serialOf(leaf), step: v.choice.Step})
		}
	}
	return nil
}

// standDown is Apply once cert-manager renews: it records the hand-off; the Secrets are
// cert-manager's (certificates-rollout keeps the patches that serve them in place).
func (p *phase) standDown(ctx context.Context, s *installer.Scope, v *view) error {
	if v.handOffRecorded {
		return nil
	}
	h := handOffRecord{Since: p.now().UTC(), Certificates: v.handOff.Certificates}
	if err := save(ctx, s, func(r *Record) { r.HandedOff = &h }); err != nil {
		return fmt.Errorf("recording the hand-off to cert-manager: %w", err)
	}
	s.Progress("handed off to cert-manager: %s renew the certificates from now on", strings.Join(h.Certificates, " and "))
	return nil
}

// order obtains a certificate and saves it, key included, in the pending side file before
// anything else, then records it in the ledger.
func (p *phase) order(ctx context.Context, s *installer.Scope, v *view) (bundle, error) {
	dir := p.acme().ACMEDirectory()
	if err := checkRateLimit(v.ledger, v.names, dir, p.now()); err != nil {
		return bundle{}, err
	}
	lc, err := p.accountClient(ctx, s, true)
	if err != nil {
		return bundle{}, err
	}
	// A renewal of our own certificate says which one it replaces (RFC 9773): Let's
	// Encrypt then counts it as a renewal. lego drops the field if the server refuses it.
	replaces := ""
	if l := v.servedLeaf; l != nil && SameNames(l.DNSNames, v.names) && v.ledger.has(serialOf(l), dir) {
		replaces, _ = api.MakeARICertID(l)
	}
	start := time.Now()
	res, err := p.obtain(ctx, s, lc, v.names, replaces)
	if err != nil {
		return bundle{}, err
	}
	b := bundle{Key: res.PrivateKey, Chain: res.Certificate}
	redactPEM(s, b.Key)
	if err := s.PutFile(ctx, pendingFile, b.pemFile()); err != nil {
		return bundle{}, fmt.Errorf("saving the new certificate: %w", err)
	}
	p.ordered.Store(true)
	leaf, _, err := b.parse()
	if err != nil {
		return bundle{}, fmt.Errorf("the ACME server returned an unusable certificate: %w", err)
	}
	s.Changed(installer.Change{Action: installer.Create, Target: "certificate " + serialOf(leaf),
		Detail: fmt.Sprintf("%s, valid until %s, ordered in %s", strings.Join(leaf.DNSNames, ", "), stamp(leaf.NotAfter), time.Since(start).Round(100*time.Millisecond))})
	if err := p.recordOrder(ctx, s, v, b); err != nil {
		return bundle{}, err
	}
	if p.opts.afterOrder != nil {
		if err := p.opts.afterOrder(); err != nil {
			return bundle{}, err
		}
	}
	return b, nil
}

// recordOrder adds a certificate to the ledger unless it is there (a pending certificate
// whose run was killed between saving it and recording it).
func (p *phase) recordOrder(ctx context.Context, s *installer.Scope, v *view, b bundle) error {
	leaf, issuers, err := b.parse()
	if err != nil {
		return err
	}
	dir := p.acme().ACMEDirectory()
	if v.ledger.has(serialOf(leaf), dir) {
		return nil
	}
	o := Order{Time: p.now().UTC(), Names: v.names, Serial: serialOf(leaf), NotAfter: leaf.NotAfter.UTC(), Server: dir}
	if len(issuers) > 0 {
		o.Issuer = issuers[0].Subject.CommonName
	}
	v.ledger = append(v.ledger, o)
	if err := save(ctx, s, func(r *Record) { r.Ledger = v.ledger }); err != nil {
		return fmt.Errorf("recording the order in the ledger: %w", err)
	}
	return nil
}

// install writes b into both Secrets, after our kubeconfig trusts its root. The change
// is recorded first (Record.Rollout: which operators serve a changed Secret, since when),
// so certificates-rollout waits for it even when this run is killed right after the write.
func (p *phase) install(ctx context.Context, s *installer.Scope, v *view, b bundle) error {
	leaf, issuers, err := b.parse()
	if err != nil {
		return err
	}
	// Our own kubeconfig must trust the new chain before the API server serves it, or we
	// lose the cluster in the middle of waiting for the rollout. (The API server serves a
	// renewed Secret as soon as its operator rolls it out.)
	root := v.trust.verify(leaf, issuers, p.now())
	if root == nil && len(issuers) > 0 {
		root = issuers[len(issuers)-1] // the top of the chain we have: a trust anchor too
	}
	if err := p.trustInKubeconfig(ctx, s, root); err != nil {
		return err
	}
	c, err := p.env.Kube(ctx, s)
	if err != nil {
		return err
	}

	// Which Secrets are about to change decides which operators must roll out.
	ingressCh, err := c.Diff(ctx, []*kube.Unstructured{tlsSecret(IngressNS, IngressSecret, b)})
	if err != nil {
		return err
	}
	apiCh, err := c.Diff(ctx, []*kube.Unstructured{tlsSecret(ConfigNS, APISecret, b)})
	if err != nil {
		return err
	}
	r := rollout{Since: time.Now().UTC(), Serial: serialOf(leaf)}
	if v.rollout != nil && v.rollout.Serial == r.Serial {
		r = *v.rollout // a run killed around the write: the change started back then
	}
	r.Ingress = r.Ingress || len(ingressCh) > 0
	r.APIServer = r.APIServer || len(apiCh) > 0
	if len(ingressCh) > 0 || len(apiCh) > 0 {
		if err := save(ctx, s, func(rec *Record) { rec.Rollout = &r }); err != nil {
			return err
		}
	}
	if err := c.Apply(ctx, s, secrets(b)...); err != nil {
		return err
	}
	in := installedRecord{Serial: serialOf(leaf), Names: leaf.DNSNames, NotAfter: leaf.NotAfter.UTC(), Server: p.acme().ACMEDirectory()}
	if err := save(ctx, s, func(r *Record) { r.Installed = &in }); err != nil {
		return err
	}
	return s.DeleteFile(ctx, pendingFile)
}

// trustInKubeconfig adds root to the saved kubeconfig (and to the installer's copy people
// use), then drops the cached clients. Only for clusters we installed: a kubeconfig given
// in platform.existing is the user's.
func (p *phase) trustInKubeconfig(ctx context.Context, s *installer.Scope, root *x509.Certificate) error {
	if !p.env.Cluster.Installs() || root == nil {
		return nil
	}
	raw, err := s.GetFile(ctx, phases.KubeconfigFile)
	if err != nil {
		return fmt.Errorf("reading the saved kubeconfig: %w", err)
	}
	out, changed, err := trustRoot(raw, root)
	if err != nil || !changed {
		return err
	}
	if err := s.PutFile(ctx, phases.KubeconfigFile, out); err != nil {
		return fmt.Errorf("saving the kubeconfig: %w", err)
	}
	copyPath := filepath.Join(p.env.InstallerDir(), "auth", "kubeconfig")
	if _, err := os.Stat(copyPath); err == nil {
		if err := os.WriteFile(copyPath, out, 0o600); err != nil {
			return fmt.Errorf("updating %s: %w", copyPath, err)
		}
	}
	p.env.ResetKube()
	s.Progress("the kubeconfig now also trusts %q, the root of the new certificate", root.Subject.CommonName)
	return nil
}

// Destroy undoes what the inventory records — the ingress controller's and the API
// server's certificates as they were before us, our secrets removed (last: they were
// recorded first) — and, with --revoke, revokes our certificates. The ledger and the ACME
// account stay: rate limits outlive the cluster.
func (p *phase) Destroy(ctx context.Context, s *installer.Scope) error {
	c, gone, err := p.env.KubeForDestroy(ctx, s)
	if err != nil || gone {
		return err
	}
	if p.env.Revoke && p.env.Cluster.Spec.Certificates != nil {
		if err := p.revoke(ctx, s, c); err != nil {
			return err
		}
	}
	rec, err := installer.Load[Record](s)
	if err != nil {
		return err
	}
	// Secrets cert-manager took over are its own since the hand-off (their certificates
	// are its orders): they leave the inventory and stay.
	for _, ref := range [][2]string{{IngressNS, IngressSecret}, {ConfigNS, APISecret}} {
		owned, err := p.certManagerOwns(ctx, c, rec, ref)
		if err != nil {
			return err
		}
		if !owned {
			continue
		}
		if _, tracked := s.Tracked(kube.EntryID(secretGVK, ref[0], ref[1])); tracked {
			if err := s.Untrack(ctx, kube.EntryID(secretGVK, ref[0], ref[1])); err != nil {
				return err
			}
		}
		s.Progress("left Secret %s/%s: cert-manager owns it since the hand-off", ref[0], ref[1])
	}
	if err := c.DestroyInventory(ctx, s, p.env.Timeouts.Finalizers, p.env.StripFinalizers); err != nil {
		return err
	}
	if err := save(ctx, s, func(r *Record) { r.Installed, r.Rollout = nil, nil }); err != nil {
		return err
	}
	if err := s.DeleteFile(ctx, pendingFile); err != nil {
		return err
	}
	return nil
}

// certManagerOwns reports whether a Secret of ours is cert-manager's now: the state
// recorded the hand-off, or one of cert-manager's controllers has written to it.
func (p *phase) certManagerOwns(ctx context.Context, c *kube.Clients, rec Record, ref [2]string) (bool, error) {
	if rec.HandedOff != nil {
		return true, nil
	}
	sec, err := c.Core.Secrets(ref[0]).Get(ctx, ref[1], metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading secret %s/%s: %w", ref[0], ref[1], err)
	}
	return managedByCertManager(sec), nil
}

// revoke revokes the certificates we ordered that are still around (served or pending),
// as our ACME account, with reason cessationOfOperation.
func (p *phase) revoke(ctx context.Context, s *installer.Scope, c *kube.Clients) error {
	rec, err := installer.Load[Record](s)
	if err != nil {
		return err
	}
	ledger := rec.Ledger
	var found []bundle
	if b, err := p.readServed(ctx, c); err != nil {
		return err
	} else if b != nil {
		found = append(found, *b)
	}
	if data, err := s.GetFile(ctx, pendingFile); err == nil {
		if b, err := splitPEM(data); err == nil {
			found = append(found, b)
		}
	}
	dir := p.acme().ACMEDirectory()
	var lc *lego.Client
	for _, b := range found {
		leaf, _, err := b.parse()
		if err != nil || !ledger.ours(serialOf(leaf), dir) || !p.now().Before(leaf.NotAfter) {
			continue // not ours (none of cert-manager's either), or expired: nothing to revoke
		}
		if lc == nil {
			if lc, err = p.accountClient(ctx, s, false); err != nil {
				return err
			}
			if lc == nil {
				s.Progress("no ACME account saved: certificate %s cannot be revoked by us", serialOf(leaf))
				return nil
			}
		}
		reason := uint(5) // cessationOfOperation (RFC 5280)
		if err := lc.Certificate.RevokeWithReason(ctx, b.Chain, &reason); err != nil {
			return fmt.Errorf("revoking certificate %s at %s: %w", serialOf(leaf), dir, err)
		}
		s.Changed(installer.Change{Action: installer.Delete, Target: "certificate " + serialOf(leaf), Detail: "revoked at the ACME server"})
	}
	return nil
}
