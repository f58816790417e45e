// Package oauth is the oauth phase: the Google client secret in openshift-config, the
// Google identity provider merged into oauth/cluster (other providers untouched),
// cluster-admin for the listed admins, and — only when asked and only once the admins'
// binding exists and the new login has rolled out — removal of kubeadmin.
package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/kube"
)

// Names of what the phase makes.
const (
	Name           = "oauth"
	SecretName     = "rhoai-bootstrap-google-client-secret"
	ConfigNS       = "openshift-config"
	AdminBinding   = "rhoai-bootstrap-cluster-admins"
	secretKey      = "clientSecret"
	kubeadminNS    = "kube-system"
	kubeadminName  = "kubeadmin"
	authOperatorCO = "authentication"
)

var (
	oauthGVK  = configv1.GroupVersion.WithKind("OAuth")
	coGVK     = configv1.GroupVersion.WithKind("ClusterOperator")
	secretGVK = corev1.SchemeGroupVersion.WithKind("Secret")
)

// Record is what the phase keeps in the state.
type Record struct {
	// SecretDigest identifies the client secret last applied, without holding it.
	SecretDigest string `json:"secretDigest,omitempty"`
	// KubeadminRemoved is set once kubeadmin was removed: it cannot be brought back.
	KubeadminRemoved bool `json:"kubeadminRemoved,omitempty"`
	// Rollout is a change to oauth/cluster whose rollout by the authentication operator
	// is not confirmed yet. It is recorded before the change is sent and cleared only when
	// the rollout is observed, so a run killed or timed out while waiting waits again next
	// time and kubeadmin stays until then.
	Rollout *Rollout `json:"rollout,omitempty"`
	// LoginRolledOut is when the authentication operator was last seen serving a
	// configuration with our identity provider: a rollout observed after our last change,
	// or, when the provider was already in place as we want it, the operator settled.
	LoginRolledOut *time.Time `json:"loginRolledOut,omitempty"`
	// PreviousIdP is what state schemas 1 and 2 recorded of the identity provider entry
	// named like ours before our first change. The inventory replaced it; it is carried
	// over untouched because a phase that ran under those schemas is untracked, destroy
	// leaves its changes, and this is what a person needs to put the entry back by hand.
	PreviousIdP json.RawMessage `json:"previousIdP,omitempty"`
}

// Rollout is a pending rollout of oauth/cluster.
type Rollout struct {
	// Since is when the change was sent (at most): the operator's Progressing condition
	// must move after it.
	Since time.Time `json:"since"`
}

// PhaseName implements installer.Record.
func (Record) PhaseName() string { return Name }

// save changes the phase's record and saves the state at once.
func save(ctx context.Context, s *installer.Scope, change func(*Record)) error {
	return installer.Save(ctx, s, func(r *Record) error { change(r); return nil })
}

type phase struct{ env *phases.Env }

// New returns the oauth phase.
func New(env *phases.Env) installer.Phase { return &phase{env: env} }

func (p *phase) Name() string { return Name }

// DependsOn: it talks to the cluster's API server, which exists (and whose kubeconfig
// we have) only once the cluster phase is done.
func (p *phase) DependsOn() []string { return []string{"cluster"} }

func (p *phase) spec() *configs.OAuth { return p.env.Cluster.Spec.OAuth }

// idp is the identity provider entry we own in oauth/cluster: the whole entry is ours,
// so a live entry of that name is as we want it only when it is equal to this one.
func (p *phase) idp() configv1.IdentityProvider {
	g := p.spec().Google
	return configv1.IdentityProvider{
		Name:          g.Name,
		MappingMethod: configv1.MappingMethodClaim,
		IdentityProviderConfig: configv1.IdentityProviderConfig{
			Type: configv1.IdentityProviderTypeGoogle,
			Google: &configv1.GoogleIdentityProvider{
				ClientID:     g.ClientID,
				ClientSecret: configv1.SecretNameReference{Name: SecretName},
				HostedDomain: g.HostedDomain,
			},
		},
	}
}

func (p *phase) binding() *kube.Unstructured {
	crb := rbacv1ac.ClusterRoleBinding(AdminBinding).
		WithLabels(map[string]string{"app.kubernetes.io/managed-by": "rhoai-bootstrap"}).
		WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup("rbac.authorization.k8s.io").WithKind("ClusterRole").WithName("cluster-admin"))
	for _, a := range p.spec().Admins {
		crb.WithSubjects(rbacv1ac.Subject().WithAPIGroup("rbac.authorization.k8s.io").WithKind("User").WithName(a))
	}
	return kube.MustApply(crb)
}

// secretDigest identifies the secret value without storing it.
func secretDigest(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:8])
}

type observed struct {
	changes   []installer.Change
	oauth     *configv1.OAuth
	kubeadmin bool
}

func (p *phase) observe(ctx context.Context, s *installer.Scope, c *kube.Clients) (*observed, string, error) {
	o := &observed{}
	var secret string
	if g := p.spec().Google; g != nil {
		v, err := g.ClientSecret.Resolve()
		if err != nil {
			return nil, "", fmt.Errorf("spec.oauth.google.clientSecret: %w", err)
		}
		s.Redactor().Add(v)
		secret = v
		live, err := c.Core.Secrets(ConfigNS).Get(ctx, SecretName, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			o.changes = append(o.changes, installer.Change{Action: installer.Create, Target: "Secret " + ConfigNS + "/" + SecretName})
		case err != nil:
			return nil, "", fmt.Errorf("reading the client secret: %w", err)
		case string(live.Data[secretKey]) != v:
			o.changes = append(o.changes, installer.Change{Action: installer.Update, Target: "Secret " + ConfigNS + "/" + SecretName, Detail: "client secret changed"})
		}
		oa, err := c.OpenShift.Config.OAuths().Get(ctx, "cluster", metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil, "", fmt.Errorf("oauth.config.openshift.io/cluster does not exist: is this an OpenShift cluster?")
		case err != nil:
			return nil, "", fmt.Errorf("reading oauth.config.openshift.io/cluster: %w", err)
		}
		o.oauth = oa
		if cur := findIdP(oa.Spec.IdentityProviders, g.Name); cur == nil {
			o.changes = append(o.changes, installer.Change{Action: installer.Update, Target: "OAuth cluster", Detail: "add identity provider " + g.Name})
		} else if !reflect.DeepEqual(*cur, p.idp()) {
			o.changes = append(o.changes, installer.Change{Action: installer.Update, Target: "OAuth cluster", Detail: "identity provider " + g.Name + " differs"})
		}
	}
	if len(p.spec().Admins) > 0 {
		ch, err := c.Diff(ctx, []*kube.Unstructured{p.binding()})
		if err != nil {
			return nil, "", err
		}
		o.changes = append(o.changes, ch...)
	}
	rec, err := installer.Load[Record](s)
	if err != nil {
		return nil, "", err
	}
	if rec.Rollout != nil {
		o.changes = append(o.changes, installer.Change{Action: installer.Run, Target: "ClusterOperator " + authOperatorCO,
			Detail: "wait for the rollout of the change made at " + rec.Rollout.Since.Format(time.RFC3339) + " (not confirmed yet)"})
	}
	if p.spec().RemoveKubeadmin {
		_, err := c.Core.Secrets(kubeadminNS).Get(ctx, kubeadminName, metav1.GetOptions{})
		if err == nil {
			o.kubeadmin = true
			o.changes = append(o.changes, installer.Change{Action: installer.Delete, Target: "Secret kube-system/kubeadmin", Detail: "after the admins can log in"})
		} else if !apierrors.IsNotFound(err) {
			return nil, "", err
		}
	}
	return o, secret, nil
}

// findIdP returns the identity provider of that name (nil: none).
func findIdP(idps []configv1.IdentityProvider, name string) *configv1.IdentityProvider {
	for i := range idps {
		if idps[i].Name == name {
			return &idps[i]
		}
	}
	return nil
}

func (p *phase) Check(ctx context.Context, s *installer.Scope) (installer.Status, error) {
	if p.spec() == nil {
		return installer.Done("spec.oauth not set"), nil
	}
	c, err := p.env.Kube(ctx, s)
	if err != nil {
		return installer.Status{}, err
	}
	o, _, err := p.observe(ctx, s, c)
	if err != nil {
		return installer.Status{}, err
	}
	if len(o.changes) > 0 {
		return installer.Pending(installer.Plural(len(o.changes), "change"), o.changes...), nil
	}
	return installer.Done("Google login, " + installer.Plural(len(p.spec().Admins), "admin")), nil
}

func (p *phase) Apply(ctx context.Context, s *installer.Scope) error {
	c, err := p.env.Kube(ctx, s)
	if err != nil {
		return err
	}
	o, secret, err := p.observe(ctx, s, c)
	if err != nil {
		return err
	}
	if g := p.spec().Google; g != nil {
		sec, err := kube.FromApply(corev1ac.Secret(SecretName, ConfigNS).
			WithLabels(map[string]string{"app.kubernetes.io/managed-by": "rhoai-bootstrap"}).
			WithType(corev1.SecretTypeOpaque).
			WithData(map[string][]byte{secretKey: []byte(secret)}))
		if err != nil {
			// Not wrapped: the error could quote the value.
			return fmt.Errorf("encoding the client secret object")
		}
		if err := c.Apply(ctx, s, sec); err != nil {
			return err
		}
		if err := save(ctx, s, func(r *Record) { r.SecretDigest = secretDigest(secret) }); err != nil {
			return err
		}
		if err := p.mergeIdP(ctx, s, c); err != nil {
			return err
		}
	}
	if len(p.spec().Admins) > 0 {
		if err := c.Apply(ctx, s, p.binding()); err != nil {
			return err
		}
	}
	if p.spec().Google != nil {
		if err := p.confirmRollout(ctx, s, c); err != nil {
			return err
		}
	}
	if p.spec().RemoveKubeadmin && o.kubeadmin {
		return p.removeKubeadmin(ctx, s, c)
	}
	return nil
}

// confirmRollout waits until the authentication operator serves our identity provider:
// the recorded pending rollout observed (no grace: an operator that shows nothing is not
// taken at its word), or — when the provider was in place before any change of ours —
// the operator settled (Available, not Progressing). Either way it records when, which
// is what removing kubeadmin requires.
func (p *phase) confirmRollout(ctx context.Context, s *installer.Scope, c *kube.Clients) error {
	rec, err := installer.Load[Record](s)
	if err != nil {
		return err
	}
	if rec.Rollout != nil {
		if err := c.WaitRollout(ctx, s, authOperatorCO, rec.Rollout.Since, p.env.Timeouts.Rollout, 0); err != nil {
			return fmt.Errorf("the Google login is not confirmed rolled out, so kubeadmin stays: %w", err)
		}
	} else if rec.LoginRolledOut == nil {
		settle := []kube.Watch{{GVK: coGVK, Name: authOperatorCO}}
		err := c.WaitWatching(ctx, s, "ClusterOperator "+authOperatorCO+" to settle", p.env.Timeouts.Rollout, settle, func(ctx context.Context) (bool, string, error) {
			co, err := c.OpenShift.Config.ClusterOperators().Get(ctx, authOperatorCO, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				return false, "not found", nil
			case err != nil:
				return false, "", fmt.Errorf("reading ClusterOperator %s: %w", authOperatorCO, err)
			}
			settled, status := kube.OperatorSettled(co)
			return settled, status, nil
		})
		if err != nil {
			return fmt.Errorf("the Google login is not confirmed rolled out, so kubeadmin stays: %w", err)
		}
	} else {
		return nil
	}
	now := time.Now().UTC()
	return save(ctx, s, func(r *Record) { r.Rollout, r.LoginRolledOut = nil, &now })
}

// mergeIdP adds or replaces our identity provider in oauth/cluster, keeping every other
// provider (kube.EditList: an update guarded by resourceVersion, recorded in the inventory
// entry by entry, so destroy puts back exactly what was under our name before). A
// provider already as we want it is left alone (oauth/cluster is then adopted).
func (p *phase) mergeIdP(ctx context.Context, s *installer.Scope, c *kube.Clients) error {
	name := p.spec().Google.Name
	changed, err := kube.EditTypedList(ctx, c, s, kube.TypedListEdit[configv1.IdentityProvider]{
		GVK: oauthGVK, Name: "cluster", Path: []string{"spec", "identityProviders"}, Key: "name",
		Edit: func(idps []configv1.IdentityProvider) []configv1.IdentityProvider {
			if cur := findIdP(idps, name); cur != nil {
				*cur = p.idp()
				return idps
			}
			return append(idps, p.idp())
		},
		// The pending rollout is recorded before the change is sent: a kill right after
		// the update must still find it.
		BeforeWrite: func() error {
			since := time.Now().UTC()
			return save(ctx, s, func(r *Record) { r.Rollout = &Rollout{Since: since} })
		},
	})
	if err != nil {
		return err
	}
	if changed {
		s.Changed(installer.Change{Action: installer.Update, Target: "OAuth cluster", Detail: "identity provider " + name})
	}
	return nil
}

func (p *phase) removeKubeadmin(ctx context.Context, s *installer.Scope, c *kube.Clients) error {
	_, err := c.RBAC.ClusterRoleBindings().Get(ctx, AdminBinding, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading ClusterRoleBinding %s: %w", AdminBinding, err)
	}
	if apierrors.IsNotFound(err) || p.spec().Google == nil {
		return fmt.Errorf("not removing kubeadmin: the admins' ClusterRoleBinding %s or the Google login is missing, so nobody could log in", AdminBinding)
	}
	rec, err := installer.Load[Record](s)
	if err != nil {
		return err
	}
	if rec.Rollout != nil || rec.LoginRolledOut == nil {
		return fmt.Errorf("not removing kubeadmin: the authentication operator was not seen rolling out the Google login yet; run the same command again")
	}
	if _, err := c.Delete(ctx, secretGVK, kubeadminNS, kubeadminName, metav1.DeletePropagationBackground); err != nil {
		return fmt.Errorf("removing kubeadmin: %w", err)
	}
	s.Changed(installer.Change{Action: installer.Delete, Target: "Secret kube-system/kubeadmin"})
	return save(ctx, s, func(r *Record) { r.KubeadminRemoved = true })
}

// Destroy undoes what the inventory records: our identity provider out of oauth/cluster
// (what was under its name before put back; a provider that was there as we want it
// before the bootstrap stays), the admins' binding and the client secret we created. A
// removed kubeadmin cannot be brought back.
func (p *phase) Destroy(ctx context.Context, s *installer.Scope) error {
	c, gone, err := p.env.KubeForDestroy(ctx, s)
	if err != nil || gone {
		return err
	}
	if err := c.DestroyInventory(ctx, s, p.env.Timeouts.Finalizers, p.env.StripFinalizers); err != nil {
		return err
	}
	rec, err := installer.Load[Record](s)
	if err != nil {
		return err
	}
	if rec.KubeadminRemoved {
		s.Progress("kubeadmin was removed at install and cannot be restored; log in with an admin account")
	}
	return save(ctx, s, func(r *Record) { r.Rollout, r.LoginRolledOut = nil, nil })
}
