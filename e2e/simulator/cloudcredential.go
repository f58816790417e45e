package simulator

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
)

// The simulated cloud-credential operator, AWS in passthrough mode only, as
// openshift/cloud-credential-operator pkg/aws/actuator/actuator.go plays it: for a
// CredentialsRequest whose providerSpec is an AWSProviderSpec, the root credentials in
// kube-system/aws-creds (annotated cloudcredential.openshift.io/mode: passthrough by the
// operator's secret annotator; the bed seeds them as the installer leaves them) are copied
// into spec.secretRef as aws_access_key_id and aws_secret_access_key, annotated
// cloudcredential.openshift.io/credentials-request (syncPassthrough, syncAccessKeySecret),
// and status.provisioned becomes true with lastSyncGeneration. A missing target namespace
// is waited for (the operator requeues); root credentials in another mode (mint:
// an IAM user per request) or missing are reported as a CredentialsProvisionFailure
// condition. The statement entries' permissions are not enforced (moto does not either).

var gvrCredentialsRequest = schema.GroupVersionResource{Group: "cloudcredential.openshift.io", Version: "v1", Resource: "credentialsrequests"}

const (
	mgrCloudCredential = "cloud-credential-operator"
	ccoModeAnnotation  = "cloudcredential.openshift.io/mode"
	ccoRequestAnnot    = "cloudcredential.openshift.io/credentials-request"
	ccoPolicyAnnot     = "cloudcredential.openshift.io/aws-policy-last-applied"
)

// syncCredentialsRequest provisions one CredentialsRequest (key namespace/name).
func (s *Simulator) syncCredentialsRequest(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	cr, err := s.get(ctx, gvrCredentialsRequest, ns, name)
	if err != nil || cr == nil || cr.GetDeletionTimestamp() != nil {
		return 0, err
	}
	if nestedStr(cr, "spec", "providerSpec", "kind") != "AWSProviderSpec" {
		return 0, nil
	}
	targetNS, targetName := nestedStr(cr, "spec", "secretRef", "namespace"), nestedStr(cr, "spec", "secretRef", "name")
	root, err := s.get(ctx, gvrSecret, "kube-system", "aws-creds")
	if err != nil {
		return 0, err
	}
	var failure string
	switch {
	case root == nil:
		failure = "unable to fetch root cloud cred secret: secrets \"aws-creds\" not found"
	case root.GetAnnotations()[ccoModeAnnotation] != "passthrough":
		failure = fmt.Sprintf("the simulated cloud-credential operator plays passthrough mode only, the root credentials are in mode %q", root.GetAnnotations()[ccoModeAnnotation])
	}
	if failure != "" {
		return 30 * time.Second, s.setProvisioned(ctx, cr, false, failure)
	}
	if nsObj, err := s.get(ctx, gvrNamespace, "", targetNS); err != nil || nsObj == nil {
		return 5 * time.Second, err // the operator retries until the target namespace exists
	}
	id, err := secretValue(root, "aws_access_key_id")
	if err != nil {
		return 0, err
	}
	secret, err := secretValue(root, "aws_secret_access_key")
	if err != nil {
		return 0, err
	}
	data := map[string]any{
		"aws_access_key_id":     base64.StdEncoding.EncodeToString([]byte(id)),
		"aws_secret_access_key": base64.StdEncoding.EncodeToString([]byte(secret)),
	}
	annotations := map[string]any{ccoRequestAnnot: ns + "/" + name, ccoPolicyAnnot: ""}
	existing, err := s.get(ctx, gvrSecret, targetNS, targetName)
	if err != nil {
		return 0, err
	}
	if existing == nil {
		sec := objWith("v1", "Secret", targetNS, targetName)
		sec.Object["metadata"].(map[string]any)["annotations"] = annotations
		sec.Object["data"] = data
		if _, err := s.create(ctx, gvrSecret, mgrCloudCredential, sec); err != nil {
			return 0, err
		}
		s.logf("cloud-credential operator: %s/%s provisioned into Secret %s/%s (passthrough)", ns, name, targetNS, targetName)
	} else if err := s.update(ctx, mgrCloudCredential, gvrSecret, targetNS, targetName, false, func(u *unstructured.Unstructured) (bool, error) {
		before := fingerprint(u.Object)
		for k, v := range data {
			_ = unstructured.SetNestedField(u.Object, v, "data", k)
		}
		a := u.GetAnnotations()
		if a == nil {
			a = map[string]string{}
		}
		for k, v := range annotations {
			a[k] = v.(string)
		}
		u.SetAnnotations(a)
		return fingerprint(u.Object) != before, nil
	}); err != nil {
		return 0, err
	}
	return 0, s.setProvisioned(ctx, cr, true, "")
}

// setProvisioned writes the CredentialsRequest's status as the operator's controller does
// (pkg/operator/credentialsrequest/credentialsrequest_controller.go: provisioned,
// lastSyncGeneration, lastSyncTimestamp, the CredentialsProvisionFailure condition).
func (s *Simulator) setProvisioned(ctx context.Context, cr *unstructured.Unstructured, ok bool, failure string) error {
	return s.update(ctx, mgrCloudCredential, gvrCredentialsRequest, cr.GetNamespace(), cr.GetName(), true, func(u *unstructured.Unstructured) (bool, error) {
		st, _, _ := unstructured.NestedMap(u.Object, "status")
		if st == nil {
			st = map[string]any{}
		}
		before := fingerprint(withoutTimes(st))
		st["provisioned"] = ok
		st["lastSyncGeneration"] = u.GetGeneration()
		c := cond{Type: "CredentialsProvisionFailure", Status: "False", Reason: "CredentialsProvisionSuccess", Message: "successfully granted credentials request"}
		if !ok {
			c = cond{Type: "CredentialsProvisionFailure", Status: "True", Reason: "CredentialsProvisionFailure", Message: failure}
		}
		setConds(st, []string{"conditions"}, c)
		if fingerprint(withoutTimes(st)) == before {
			return false, nil
		}
		st["lastSyncTimestamp"] = now()
		u.Object["status"] = st
		return true, nil
	})
}
