// Command cmjudge asks cert-manager's own policies what cert-manager would do with a
// Certificate and the Secret it names: the trigger chain (re-issue, i.e. order?), the
// readiness chain (Ready?) and the post-issuance chain (metadata to fix, no order). It is
// built by e2e/testbin/build.sh inside a writable copy of the cert-manager module
// (internal packages are importable only from within it), so the verdict is cert-manager's
// code, not our reading of it. With -set-ready it writes the Ready condition and the
// notBefore/notAfter/renewalTime status as cert-manager's readiness controller does
// (pkg/controller/certificates/readiness/readiness_controller.go ProcessItem and
// BuildReadyConditionFromChain), playing that controller on the test bed.
//
// Usage: cmjudge -kubeconfig FILE [-set-ready] NAMESPACE/NAME...; prints one JSON object
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

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/clock"

	"github.com/cert-manager/cert-manager/internal/controller/certificates/policies"
	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	cmclient "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned"
	cminformers "github.com/cert-manager/cert-manager/pkg/client/informers/externalversions"
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
	setReady := flag.Bool("set-ready", false, "write the Ready condition as cert-manager's readiness controller")
	flag.Parse()
	if err := run(*kubeconfig, *setReady, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "cmjudge:", err)
		os.Exit(1)
	}
}

func run(kubeconfig string, setReady bool, names []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
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
	for _, n := range names {
		ns, name, ok := strings.Cut(n, "/")
		if !ok {
			return fmt.Errorf("%q: want NAMESPACE/NAME", n)
		}
		crt, err := cm.CertmanagerV1().Certificates(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		in, err := g.DataForCertificate(ctx, crt)
		if err != nil {
			return err
		}
		v := verdict{Certificate: n}
		v.Reason, v.Message, v.Reissue = policies.NewTriggerPolicyChain(clk).Evaluate(in)
		readyReason, readyMsg, notReady := policies.NewReadinessPolicyChain(clk).Evaluate(in)
		v.Ready, v.ReadyReason = string(cmmeta.ConditionTrue), "Ready"
		if notReady {
			v.Ready, v.ReadyReason = string(cmmeta.ConditionFalse), readyReason
		}
		if in.Secret != nil {
			_, v.PostIssuance, _ = policies.NewSecretPostIssuancePolicyChain(false, fieldManager).Evaluate(in)
		}
		if setReady {
			if err := writeReady(ctx, cm, crt, in.Secret, notReady, readyReason, readyMsg); err != nil {
				return err
			}
		}
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	return nil
}

// writeReady sets the Ready condition and the certificate's dates in the status, as the
// readiness controller does.
func writeReady(ctx context.Context, cm cmclient.Interface, crt *cmapi.Certificate, sec *corev1.Secret, notReady bool, reason, msg string) error {
	crt = crt.DeepCopy()
	status, reasonText, message := cmmeta.ConditionTrue, "Ready", "Certificate is up to date and has not expired"
	if notReady {
		status, reasonText, message = cmmeta.ConditionFalse, reason, msg
	}
	apiutil.SetCertificateCondition(crt, crt.Generation, cmapi.CertificateConditionReady, status, reasonText, message)
	if sec != nil {
		if leaf, err := pki.DecodeX509CertificateBytes(sec.Data[corev1.TLSCertKey]); err == nil {
			nb, na := metav1.NewTime(leaf.NotBefore), metav1.NewTime(leaf.NotAfter)
			crt.Status.NotBefore, crt.Status.NotAfter = &nb, &na
			crt.Status.RenewalTime = pki.RenewalTime(leaf.NotBefore, leaf.NotAfter, crt.Spec.RenewBefore, crt.Spec.RenewBeforePercentage)
		}
	}
	_, err := cm.CertmanagerV1().Certificates(crt.Namespace).UpdateStatus(ctx, crt, metav1.UpdateOptions{})
	return err
}
