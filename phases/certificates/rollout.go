package certificates

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/kube"
)

// RolloutName is the phase that puts the certificate in service.
const RolloutName = "certificates-rollout"

// RolloutRecord is what certificates-rollout keeps in the state.
type RolloutRecord struct {
	// Confirmed is the certificates phase's last change (Record.Rollout) whose rollout
	// was seen: while the two differ, there is a rollout to wait for.
	Confirmed *rollout `json:"confirmed,omitempty"`
	// Pending is the rollout this phase is waiting for, saved before it patches the
	// ingress controller or the API server, so a run killed while waiting waits again.
	Pending *rollout `json:"pending,omitempty"`
}

// PhaseName implements installer.Record.
func (RolloutRecord) PhaseName() string { return RolloutName }

type rolloutPhase struct{ env *phases.Env }

// NewRollout returns certificates-rollout: our TLS Secrets made the ingress controller's
// default certificate and the API server's named certificate for api.<cluster>.<domain>,
// and a wait until both operators have rolled them out (the API server's also after a
// renewal that changed only the Secret's content), then a check that our own kubeconfig
// still connects.
func NewRollout(env *phases.Env) installer.Phase { return &rolloutPhase{env: env} }

func (p *rolloutPhase) Name() string { return RolloutName }

// DependsOn: the patches name our Secrets; an ingress controller or API server pointed at
// a Secret that does not exist yet reports Degraded, and the API server keeps serving its
// old certificate (the operators wait for the Secret), so the Secrets come first.
func (p *rolloutPhase) DependsOn() []string { return []string{Name} }

// unconfirmed is the certificates phase's last change when its rollout was not seen yet.
func unconfirmed(change, confirmed *rollout) *rollout {
	if change == nil || (confirmed != nil && confirmed.Serial == change.Serial && confirmed.Since.Equal(change.Since)) {
		return nil
	}
	return change
}

// rolloutView is what the phase observed.
type rolloutView struct {
	changes          []installer.Change
	ingress, apiCert bool // the patches would change
	// wait is the rollout to wait for without patching anything (nil: none).
	wait   *rollout
	change *rollout
	rec    RolloutRecord
}

func (p *rolloutPhase) observe(ctx context.Context, s *installer.Scope, c *kube.Clients) (*rolloutView, error) {
	v := &rolloutView{}
	crec, err := installer.Load[Record](s)
	if err != nil {
		return nil, err
	}
	if v.rec, err = installer.Load[RolloutRecord](s); err != nil {
		return nil, err
	}
	ch, err := c.Diff(ctx, []*kube.Unstructured{ingressPatch(IngressSecret)})
	if err != nil {
		return nil, err
	}
	v.ingress = len(ch) > 0
	v.changes = append(v.changes, ch...)
	as, err := readAPIServer(ctx, c)
	if err != nil {
		return nil, err
	}
	live := namedCertsOf(as)
	if !sameList(live, mergeNamedCerts(live, p.env.Cluster.APIHost())) {
		v.apiCert = true
		v.changes = append(v.changes, installer.Change{Action: installer.Update, Target: "APIServer cluster",
			Detail: "spec.servingCerts.namedCertificates: " + p.env.Cluster.APIHost() + " → secret " + APISecret})
	}
	v.change = unconfirmed(crec.Rollout, v.rec.Confirmed)
	v.wait = merge(v.rec.Pending, v.change)
	if v.wait != nil && len(v.wait.operators()) > 0 {
		v.changes = append(v.changes, installer.Change{Action: installer.Run, Target: "wait for " + strings.Join(v.wait.operators(), " and ") + " to roll out certificate " + v.wait.Serial})
	}
	return v, nil
}

// readAPIServer reads apiserver.config.openshift.io/cluster, which every OpenShift
// cluster has.
func readAPIServer(ctx context.Context, c *kube.Clients) (*configv1.APIServer, error) {
	as, err := c.OpenShift.Config.APIServers().Get(ctx, "cluster", metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, errors.New("apiserver.config.openshift.io/cluster does not exist: is this an OpenShift cluster?")
	case err != nil:
		return nil, fmt.Errorf("reading apiserver.config.openshift.io/cluster: %w", err)
	}
	return as, nil
}

// merge is one rollout that covers both a and b (either may be nil): the operators of
// both, the later start (a rollout that ends after the later change serves both) and the
// later change's certificate.
func merge(a, b *rollout) *rollout {
	switch {
	case a == nil && b == nil:
		return nil
	case a == nil:
		c := *b
		return &c
	case b == nil:
		c := *a
		return &c
	}
	m := *a
	if b.Since.After(a.Since) {
		m.Since, m.Serial = b.Since, b.Serial
	}
	m.Ingress, m.APIServer = a.Ingress || b.Ingress, a.APIServer || b.APIServer
	return &m
}

func (r *rollout) operators() []string {
	var out []string
	if r.Ingress {
		out = append(out, "ingress")
	}
	if r.APIServer {
		out = append(out, "kube-apiserver")
	}
	return out
}

// Check observes the two patches and whether a rollout is still to be seen.
func (p *rolloutPhase) Check(ctx context.Context, s *installer.Scope) (installer.Status, error) {
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
	if len(v.changes) > 0 {
		return installer.Pending("certificate not in service yet", v.changes...), nil
	}
	return installer.Done("served by the router and the API server"), nil
}

// Apply records the rollout it is about to cause, patches, and waits for both operators.
func (p *rolloutPhase) Apply(ctx context.Context, s *installer.Scope) error {
	c, err := p.env.Kube(ctx, s)
	if err != nil {
		return err
	}
	v, err := p.observe(ctx, s, c)
	if err != nil {
		return err
	}
	var r rollout
	if v.wait != nil {
		r = *v.wait
	}
	if r.Serial == "" {
		if crec, err := installer.Load[Record](s); err == nil && crec.Installed != nil {
			r.Serial = crec.Installed.Serial
		}
	}
	if v.ingress || v.apiCert {
		// A patch now: only a rollout that moves from now on is this one.
		r.Since = time.Now().UTC()
		r.Ingress = r.Ingress || v.ingress
		r.APIServer = r.APIServer || v.apiCert
	}
	if r.Ingress || r.APIServer {
		if err := installer.Save(ctx, s, func(rec *RolloutRecord) error { rec.Pending = &r; return nil }); err != nil {
			return err
		}
	}
	if v.ingress {
		if err := c.Apply(ctx, s, ingressPatch(IngressSecret)); err != nil {
			return err
		}
	}
	if v.apiCert {
		if err := p.mergeNamedCert(ctx, s, c); err != nil {
			return err
		}
	}
	if r.Ingress {
		if err := c.WaitRollout(ctx, s, "ingress", r.Since, p.env.Timeouts.Rollout, rolloutGrace); err != nil {
			return err
		}
	}
	if r.APIServer {
		if err := c.WaitRollout(ctx, s, "kube-apiserver", r.Since, p.env.Timeouts.Rollout, rolloutGrace); err != nil {
			return err
		}
		if err := p.verifyAccess(ctx, s); err != nil {
			return err
		}
	}
	return installer.Save(ctx, s, func(rec *RolloutRecord) error {
		if v.change != nil {
			rec.Confirmed = v.change
		}
		rec.Pending = nil
		return nil
	})
}

// Destroy puts the ingress controller's and the API server's certificates back as they
// were before us (the inventory); the Secrets are the certificates phase's, destroyed
// after this phase.
func (p *rolloutPhase) Destroy(ctx context.Context, s *installer.Scope) error {
	c, gone, err := p.env.KubeForDestroy(ctx, s)
	if err != nil || gone {
		return err
	}
	if err := c.DestroyInventory(ctx, s, p.env.Timeouts.Finalizers, p.env.StripFinalizers); err != nil {
		return err
	}
	return installer.Save(ctx, s, func(rec *RolloutRecord) error { *rec = RolloutRecord{}; return nil })
}

// verifyAccess makes sure our own kubeconfig still reaches the API server now that it
// serves the new certificate: fresh clients, one request.
func (p *rolloutPhase) verifyAccess(ctx context.Context, s *installer.Scope) error {
	p.env.ResetKube()
	c, err := p.env.Kube(ctx, s)
	if err != nil {
		return err
	}
	if _, err := c.Discovery.ServerVersion(); err != nil {
		hint := "the saved kubeconfig should trust the new certificate's root; run again"
		if !p.env.Cluster.Installs() {
			hint = "add the new certificate's root to the certificate-authority-data of " + p.env.Cluster.Spec.Platform.Existing.Kubeconfig
		}
		return fmt.Errorf("after installing the API server certificate our kubeconfig no longer connects (%s): %w", hint, err)
	}
	return nil
}

// mergeNamedCert puts our entry into apiserver/cluster's namedCertificates and keeps the
// others (kube.EditList: the list is atomic for server-side apply, which would take
// ownership of everyone's entries; each entry we add, change or take a name out of is
// recorded in the inventory, so destroy puts exactly those back).
func (p *rolloutPhase) mergeNamedCert(ctx context.Context, s *installer.Scope, c *kube.Clients) error {
	host := p.env.Cluster.APIHost()
	changed, err := kube.EditTypedList(ctx, c, s, kube.TypedListEdit[configv1.APIServerNamedServingCert]{
		GVK: asGVK, Name: "cluster", Path: []string{"spec", "servingCerts", "namedCertificates"}, Key: "servingCertificate.name",
		Edit: func(live []configv1.APIServerNamedServingCert) []configv1.APIServerNamedServingCert {
			return mergeNamedCerts(live, host)
		},
	})
	if err != nil {
		return err
	}
	if changed {
		s.Changed(installer.Change{Action: installer.Update, Target: "APIServer cluster", Detail: "named certificate for " + host})
	}
	return nil
}
