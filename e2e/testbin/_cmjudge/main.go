// Command cmjudge runs cert-manager's own code against a cluster, for the test bed's
// simulated cert-manager. It is built by e2e/testbin/build.sh inside a writable copy of
// the cert-manager module (internal packages are importable only from within it), so
// what it decides and writes is cert-manager's code, not our reading of it.
//
// Without -reconcile it is read-only: for each Certificate it prints what cert-manager's
// trigger chain (re-issue, i.e. order?), readiness chain (Ready?) and post-issuance chain
// (metadata to fix, no order) say about it and the Secret it names.
//
// With -reconcile it first runs, once each and in the order an issuance goes through
// them, cert-manager's certificates controllers and its CertificateRequest approver
// (pkg/controller/certificates/{trigger,keymanager,requestmanager,issuing,readiness,
// revisionmanager} and pkg/controller/certificaterequests/approver, v1.20.3), each
// built exactly as its package's controllerWrapper.Register builds it and given the
// Certificate's key as its work queue would: the trigger sets Issuing, the key manager
// makes the next private key Secret, the request manager the CertificateRequest, the
// approver approves it, the issuing controller writes the Secret from a CertificateRequest
// an issuer has signed (internal/secret.go SecretsManager.UpdateData) and sets
// status.revision, the readiness controller Ready and the certificate's dates. Signing
// the CertificateRequest is the issuer's job, which this command does not play: the
// simulator's ACME issuer does it between two runs.
//
// Usage: cmjudge -kubeconfig FILE [-reconcile] NAMESPACE/NAME...; prints one JSON object
// per Certificate.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/clock"

	"github.com/cert-manager/cert-manager/internal/controller/certificates/policies"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	cmclient "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned"
	cminformers "github.com/cert-manager/cert-manager/pkg/client/informers/externalversions"
	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"
	"github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
)

// fieldManager is cert-manager's controller field manager, as its issuing controller
// checks the Secret's managed fields with.
const fieldManager = "cert-manager-certificates-issuing"

type verdict struct {
	Certificate string `json:"certificate"`
	Reissue     bool   `json:"reissue"`
	Reason      string `json:"reason,omitempty"`
	Message     string `json:"message,omitempty"`
	Ready       string `json:"ready"`
	ReadyReason string `json:"readyReason"`
	// PostIssuance is the first violation of the post-issuance chain ("" if none): cert-manager
	// fixes it by re-applying the Secret's metadata, never by ordering.
	PostIssuance string `json:"postIssuance,omitempty"`
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster")
	reconcile := flag.Bool("reconcile", false, "run cert-manager's certificates controllers once for each Certificate first")
	flag.Parse()
	if err := run(*kubeconfig, *reconcile, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "cmjudge:", err)
		os.Exit(1)
	}
}

func run(kubeconfig string, reconcile bool, names []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	keys := make([]types.NamespacedName, len(names))
	for i, n := range names {
		ns, name, ok := strings.Cut(n, "/")
		if !ok {
			return fmt.Errorf("%q: want NAMESPACE/NAME", n)
		}
		keys[i] = types.NamespacedName{Namespace: ns, Name: name}
	}
	if reconcile {
		for _, key := range keys {
			if err := reconcileCertificate(ctx, kubeconfig, key); err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
		}
	}
	return judge(ctx, kubeconfig, keys)
}

// judge prints cert-manager's verdicts on each Certificate, changing nothing.
func judge(ctx context.Context, kubeconfig string, keys []types.NamespacedName) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	cm, err := cmclient.NewForConfig(cfg)
	if err != nil {
		return err
	}
	kf := kubeinformers.NewSharedInformerFactory(kube, 0)
	cf := cminformers.NewSharedInformerFactory(cm, 0)
	secrets := kf.Core().V1().Secrets().Lister()
	requests := cf.Certmanager().V1().CertificateRequests().Lister()
	kf.Start(ctx.Done())
	cf.Start(ctx.Done())
	for typ, ok := range kf.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("informer %v did not sync", typ)
		}
	}
	for typ, ok := range cf.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("informer %v did not sync", typ)
		}
	}
	g := &policies.Gatherer{CertificateRequestLister: requests, SecretLister: secrets}
	clk := clock.RealClock{}
	enc := json.NewEncoder(os.Stdout)
	for _, key := range keys {
		crt, err := cm.CertmanagerV1().Certificates(key.Namespace).Get(ctx, key.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		in, err := g.DataForCertificate(ctx, crt)
		if err != nil {
			return err
		}
		v := verdict{Certificate: key.String()}
		v.Reason, v.Message, v.Reissue = policies.NewTriggerPolicyChain(clk).Evaluate(in)
		readyReason, _, notReady := policies.NewReadinessPolicyChain(clk).Evaluate(in)
		v.Ready, v.ReadyReason = string(cmmeta.ConditionTrue), "Ready"
		if notReady {
			v.Ready, v.ReadyReason = string(cmmeta.ConditionFalse), readyReason
		}
		if in.Secret != nil {
			_, v.PostIssuance, _ = policies.NewSecretPostIssuancePolicyChain(false, fieldManager).Evaluate(in)
		}
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	return nil
}

// processor is what every cert-manager controller implements for its work queue.
type processor interface {
	ProcessItem(ctx context.Context, key types.NamespacedName) error
}

// step is one of cert-manager's controllers, constructed as its controllerWrapper.Register
// does (the arguments each package's Register passes to its NewController).
type step struct {
	name string
	// build returns the controller and the informers it must have synced.
	build func(log logr.Logger, c *controllerpkg.Context) (processor, []cache.InformerSynced, error)
	// requests: the controller's queue holds CertificateRequests (the approver), so it is
	// given each CertificateRequest of the Certificate instead of the Certificate.
	requests bool
}

// steps are the controllers an issuance goes through, in that order. The key manager runs
// again after the issuing controller: it deletes the next private key Secret once the
// issuance is over.
var steps = []step{
	{name: trigger.ControllerName, build: func(log logr.Logger, c *controllerpkg.Context) (processor, []cache.InformerSynced, error) {
		p, _, synced, err := trigger.NewController(log, c, policies.NewTriggerPolicyChain(c.Clock).Evaluate)
		return p, synced, err
	}},
	{name: keymanager.ControllerName, build: func(log logr.Logger, c *controllerpkg.Context) (processor, []cache.InformerSynced, error) {
		p, _, synced, err := keymanager.NewController(log, c)
		return p, synced, err
	}},
	{name: requestmanager.ControllerName, build: func(log logr.Logger, c *controllerpkg.Context) (processor, []cache.InformerSynced, error) {
		p, _, synced, err := requestmanager.NewController(log, c)
		return p, synced, err
	}},
	{name: approver.ControllerName, requests: true, build: func(_ logr.Logger, c *controllerpkg.Context) (processor, []cache.InformerSynced, error) {
		a := new(approver.Controller)
		_, synced, err := a.Register(c)
		return a, synced, err
	}},
	{name: issuing.ControllerName, build: func(log logr.Logger, c *controllerpkg.Context) (processor, []cache.InformerSynced, error) {
		p, _, synced, err := issuing.NewController(log, c)
		return p, synced, err
	}},
	{name: keymanager.ControllerName, build: func(log logr.Logger, c *controllerpkg.Context) (processor, []cache.InformerSynced, error) {
		p, _, synced, err := keymanager.NewController(log, c)
		return p, synced, err
	}},
	{name: readiness.ControllerName, build: func(log logr.Logger, c *controllerpkg.Context) (processor, []cache.InformerSynced, error) {
		p, _, synced, err := readiness.NewController(log, c, policies.NewReadinessPolicyChain(c.Clock), pki.RenewalTime, readiness.BuildReadyConditionFromChain)
		return p, synced, err
	}},
	{name: revisionmanager.ControllerName, build: func(log logr.Logger, c *controllerpkg.Context) (processor, []cache.InformerSynced, error) {
		p, _, synced, err := revisionmanager.NewController(log, c)
		return p, synced, err
	}},
}

// options are cert-manager's controller defaults where these controllers read them
// (internal/apis/config/controller/v1alpha1/defaults.go), with the cluster resource
// namespace of the cert-manager Operator for Red Hat OpenShift.
func options(kubeconfig string) controllerpkg.ContextOptions {
	return controllerpkg.ContextOptions{
		Kubeconfig:         kubeconfig,
		KubernetesAPIQPS:   20,
		KubernetesAPIBurst: 50,
		IssuerOptions:      controllerpkg.IssuerOptions{ClusterResourceNamespace: "cert-manager"},
		CertificateOptions: controllerpkg.CertificateOptions{
			CopiedAnnotationPrefixes:                 []string{"*", "-kubectl.kubernetes.io/", "-fluxcd.io/", "-argocd.argoproj.io/"},
			CertificateRequestMinimumBackoffDuration: time.Hour,
		},
	}
}

// reconcileCertificate runs each step once for the Certificate key. Every step gets its
// own informers, listed after the previous step's writes, as a controller whose informers
// have caught up would see them.
func reconcileCertificate(ctx context.Context, kubeconfig string, key types.NamespacedName) error {
	for _, s := range steps {
		if err := runStep(ctx, kubeconfig, s, key); err != nil {
			return fmt.Errorf("cert-manager's %s controller: %w", s.name, err)
		}
	}
	return nil
}

func runStep(ctx context.Context, kubeconfig string, s step, key types.NamespacedName) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	factory, err := controllerpkg.NewContextFactory(ctx, options(kubeconfig))
	if err != nil {
		return err
	}
	c, err := factory.Build(s.name)
	if err != nil {
		return err
	}
	p, synced, err := s.build(logf.FromContext(ctx, s.name), c)
	if err != nil {
		return err
	}
	c.KubeSharedInformerFactory.Start(ctx.Done())
	c.SharedInformerFactory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("informers did not sync")
	}
	if !s.requests {
		return p.ProcessItem(ctx, key)
	}
	// The CertificateRequests the Certificate owns (requestmanager names them after it
	// and sets itself as their controller).
	reqs, err := c.CMClient.CertmanagerV1().CertificateRequests(key.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, r := range reqs.Items {
		owner := metav1.GetControllerOf(&r)
		if owner == nil || owner.Kind != "Certificate" || owner.Name != key.Name {
			continue
		}
		if err := p.ProcessItem(ctx, types.NamespacedName{Namespace: r.Namespace, Name: r.Name}); err != nil {
			return err
		}
	}
	return nil
}
