package simulator

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"
)

// resolve picks the CSV a Subscription gets from the catalog it names, as OLM's resolver
// does: the head of the asked channel (the package's default channel when none is asked).
// A package the catalog does not have, or a channel the package does not offer, does not
// resolve; the message is the resolver's (operator-lifecycle-manager
// pkg/controller/registry/resolver: "no operators found in channel C of package P in the
// catalog referenced by subscription S").
func resolve(minor int, source, pkg, channel, subName string) (csvName, version, failure string) {
	p, ok := findPackage(minor, source, pkg)
	if !ok {
		return "", "", fmt.Sprintf("constraints not satisfiable: no operators found in package %s in the catalog referenced by subscription %s, subscription %s exists", pkg, subName, subName)
	}
	if channel == "" {
		channel = p.defaultChannel
	}
	head, ok := p.channel(channel)
	if !ok {
		return "", "", fmt.Sprintf("constraints not satisfiable: no operators found in channel %s of package %s in the catalog referenced by subscription %s, subscription %s exists", channel, pkg, subName, subName)
	}
	return p.csvName(head.version), head.version, ""
}

const (
	olmAPIVersion = "operators.coreos.com/v1alpha1"
	mgrCatalog    = "catalog-operator"
	mgrOLM        = "olm-operator"
)

// syncSubscription is the catalog operator: resolve, create an InstallPlan, execute it
// (install the bundle's CRDs, create the CSV) and report on the Subscription.
func (s *Simulator) syncSubscription(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	if name == allKey {
		return 0, s.enqueueAll(ctx, s.subs, gvrSubscription, ns)
	}
	sub, err := s.get(ctx, gvrSubscription, ns, name)
	if err != nil || sub == nil || sub.GetDeletionTimestamp() != nil {
		return 0, err
	}
	pkg, channel := nestedStr(sub, "spec", "name"), nestedStr(sub, "spec", "channel")
	csvName, version, failure := resolve(s.openShiftMinor(ctx), nestedStr(sub, "spec", "source"), pkg, channel, name)
	if failure != "" {
		return 0, s.setSubscriptionStatus(ctx, ns, name, map[string]any{"state": ""},
			cond{Type: "ResolutionFailed", Status: "True", Reason: "ConstraintsNotSatisfiable", Message: failure})
	}
	if nestedStr(sub, "status", "installedCSV") == csvName {
		csv, err := s.get(ctx, gvrCSV, ns, csvName)
		if err != nil || csv != nil {
			return 0, err
		}
		// The CSV was deleted under a live Subscription: OLM resolves and installs it again.
	}
	clock := "sub/" + string(sub.GetUID()) + "/" + csvName
	if wait := s.after(clock, s.lat().OperatorInstall/2); wait > 0 {
		return wait, nil
	}

	ip, err := s.ensureInstallPlan(ctx, sub, csvName)
	if err != nil {
		return 0, err
	}
	if approved, _, _ := unstructured.NestedBool(ip.Object, "spec", "approved"); !approved {
		if err := s.setInstallPlanPhase(ctx, ip, "RequiresApproval", ""); err != nil {
			return 0, err
		}
		return 0, s.setSubscriptionStatus(ctx, ns, name, map[string]any{
			"state": "UpgradePending", "currentCSV": csvName, "installPlanRef": planRef(ip), "installplan": planLink(ip),
			"installPlanGeneration": int64(1)},
			cond{Type: "InstallPlanPending", Status: "True", Reason: "RequiresApproval"})
	}
	switch nestedStr(ip, "status", "phase") {
	case "Complete":
	case "Failed":
		return 0, s.setSubscriptionStatus(ctx, ns, name, map[string]any{"state": "", "currentCSV": csvName,
			"installPlanRef": planRef(ip), "installplan": planLink(ip), "installPlanGeneration": int64(1)},
			cond{Type: "InstallPlanFailed", Status: "True", Reason: "InstallComponentFailed", Message: nestedStr(ip, "status", "message")})
	default:
		if err := s.executeInstallPlan(ctx, ip, pkg); err != nil {
			return 0, err
		}
		if ip, err = s.get(ctx, gvrInstallPlan, ns, ip.GetName()); err != nil || ip == nil {
			return 0, err
		}
		if nestedStr(ip, "status", "phase") != "Complete" {
			s.subs.add(key)
			return 0, nil
		}
	}
	if err := s.ensureCSV(ctx, ns, pkg, csvName, version); err != nil {
		return 0, err
	}
	s.done(clock)
	s.logf("olm: subscription %s installed %s via %s", key, csvName, ip.GetName())
	return 0, s.setSubscriptionStatus(ctx, ns, name, map[string]any{
		"state": "AtLatestKnown", "currentCSV": csvName, "installedCSV": csvName,
		"installPlanRef": planRef(ip), "installplan": planLink(ip), "installPlanGeneration": int64(1)},
		cond{Type: "CatalogSourcesUnhealthy", Status: "False", Reason: "AllCatalogSourcesHealthy", Message: "all available catalogsources are healthy"})
}

// ensureInstallPlan finds the InstallPlan this Subscription owns for csvName or creates one.
func (s *Simulator) ensureInstallPlan(ctx context.Context, sub *unstructured.Unstructured, csvName string) (*unstructured.Unstructured, error) {
	ips, err := s.list(ctx, gvrInstallPlan, sub.GetNamespace())
	if err != nil {
		return nil, err
	}
	for i := range ips {
		ip := &ips[i]
		names, _, _ := unstructured.NestedStringSlice(ip.Object, "spec", "clusterServiceVersionNames")
		owned := slices.ContainsFunc(ip.GetOwnerReferences(), func(o metav1.OwnerReference) bool { return o.UID == sub.GetUID() })
		if owned && slices.Contains(names, csvName) {
			return ip, nil
		}
	}
	approval := nestedStr(sub, "spec", "installPlanApproval")
	if approval == "" {
		approval = "Automatic"
	}
	ip := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": olmAPIVersion, "kind": "InstallPlan",
		"metadata": map[string]any{
			"generateName": "install-", "namespace": sub.GetNamespace(),
			"ownerReferences": []any{map[string]any{"apiVersion": olmAPIVersion, "kind": "Subscription",
				"name": sub.GetName(), "uid": string(sub.GetUID()), "blockOwnerDeletion": false, "controller": false}},
		},
		"spec": map[string]any{
			"approval": approval, "approved": approval == "Automatic",
			"clusterServiceVersionNames": []any{csvName}, "generation": int64(1),
			"source": nestedStr(sub, "spec", "source"), "sourceNamespace": nestedStr(sub, "spec", "sourceNamespace"),
		},
	}}
	out, err := s.res(gvrInstallPlan, ip.GetNamespace()).Create(ctx, ip, metav1.CreateOptions{FieldManager: mgrCatalog, FieldValidation: "Strict"})
	if err != nil {
		return nil, fmt.Errorf("create installplan for %s/%s: %w", sub.GetNamespace(), sub.GetName(), err)
	}
	return out, nil
}

// executeInstallPlan installs the bundle's CRDs; the InstallPlan then turns Complete, or
// Failed with the error, as the real one does when a step fails.
func (s *Simulator) executeInstallPlan(ctx context.Context, ip *unstructured.Unstructured, pkg string) error {
	if err := s.setInstallPlanPhase(ctx, ip, "Installing", ""); err != nil {
		return err
	}
	if msg := s.installFailure(pkg); msg != "" {
		s.logf("olm: installplan %s/%s failed (injected): %s", ip.GetNamespace(), ip.GetName(), msg)
		return s.setInstallPlanPhase(ctx, ip, "Failed", msg)
	}
	if hook := s.options().InstallCRDs; hook != nil {
		if err := hook(ctx, pkg); err != nil {
			err = fmt.Errorf("error installing CRDs of %s: %w", pkg, err)
			// transitionInstallPlanState (operator-lifecycle-manager
			// pkg/controller/operators/catalog/operator.go): a step error is retried while the
			// plan is younger than the retry timeout, and forbidden errors always are; only
			// then does the plan turn Failed. An API server timeout is not the end of a plan.
			if apierrors.IsForbidden(err) || s.installPlanAge(ctx, ip) < s.installPlanRetryTimeout() {
				s.logf("olm: installplan %s/%s retrying: %v", ip.GetNamespace(), ip.GetName(), err)
				if serr := s.setInstallPlanMessage(ctx, ip, "retrying execution due to error: "+err.Error()); serr != nil {
					return serr
				}
				return err // requeued with backoff, as the catalog operator's queue does
			}
			s.logf("olm: installplan %s/%s failed: %v", ip.GetNamespace(), ip.GetName(), err)
			return s.setInstallPlanPhase(ctx, ip, "Failed", err.Error())
		}
	}
	return s.setInstallPlanPhase(ctx, ip, "Complete", "")
}

func (s *Simulator) installPlanRetryTimeout() time.Duration {
	if d := s.options().InstallPlanRetryTimeout; d > 0 {
		return d
	}
	return time.Minute
}

// installPlanAge is how long ago the plan's execution started (status.startTime, set when
// it turned Installing); zero when that is not known yet.
func (s *Simulator) installPlanAge(ctx context.Context, ip *unstructured.Unstructured) time.Duration {
	live, err := s.get(ctx, gvrInstallPlan, ip.GetNamespace(), ip.GetName())
	if err != nil || live == nil {
		return 0
	}
	start, err := time.Parse(time.RFC3339, nestedStr(live, "status", "startTime"))
	if err != nil {
		return 0
	}
	return time.Since(start)
}

// setInstallPlanMessage records why an Installing plan is being retried.
func (s *Simulator) setInstallPlanMessage(ctx context.Context, ip *unstructured.Unstructured, message string) error {
	return s.update(ctx, mgrCatalog, gvrInstallPlan, ip.GetNamespace(), ip.GetName(), true, func(u *unstructured.Unstructured) (bool, error) {
		if nestedStr(u, "status", "message") == message {
			return false, nil
		}
		return true, unstructured.SetNestedField(u.Object, message, "status", "message")
	})
}

func (s *Simulator) setInstallPlanPhase(ctx context.Context, ip *unstructured.Unstructured, phase, message string) error {
	return s.update(ctx, mgrCatalog, gvrInstallPlan, ip.GetNamespace(), ip.GetName(), true, func(u *unstructured.Unstructured) (bool, error) {
		if nestedStr(u, "status", "phase") == phase {
			return false, nil
		}
		st, _, _ := unstructured.NestedMap(u.Object, "status")
		if st == nil {
			st = map[string]any{"catalogSources": []any{}, "startTime": now()}
		}
		st["phase"] = phase
		if message != "" {
			st["message"] = message
		} else {
			delete(st, "message") // a retried plan that completes says nothing more
		}
		installed := cond{Type: "Installed", Status: "Unknown", Reason: "Installing"}
		switch phase {
		case "Complete":
			installed = cond{Type: "Installed", Status: "True"}
		case "Failed":
			installed = cond{Type: "Installed", Status: "False", Reason: "InstallComponentFailed", Message: message}
		case "RequiresApproval":
			installed = cond{Type: "Installed", Status: "False", Reason: "RequiresApproval"}
		}
		u.Object["status"] = st
		setConds(u.Object, []string{"status", "conditions"}, installed)
		return true, nil
	})
}

func planRef(ip *unstructured.Unstructured) map[string]any {
	return map[string]any{"apiVersion": olmAPIVersion, "kind": "InstallPlan", "name": ip.GetName(),
		"namespace": ip.GetNamespace(), "resourceVersion": ip.GetResourceVersion(), "uid": string(ip.GetUID())}
}

func planLink(ip *unstructured.Unstructured) map[string]any {
	return map[string]any{"apiVersion": olmAPIVersion, "kind": "InstallPlan", "name": ip.GetName(), "uuid": string(ip.GetUID())}
}

// setSubscriptionStatus sets fields and one condition on a Subscription's status, dropping the
// other OLM conditions that contradict it, and stamps lastUpdated when anything changed.
func (s *Simulator) setSubscriptionStatus(ctx context.Context, ns, name string, fields map[string]any, c cond) error {
	return s.update(ctx, mgrCatalog, gvrSubscription, ns, name, true, func(u *unstructured.Unstructured) (bool, error) {
		st, _, _ := unstructured.NestedMap(u.Object, "status")
		if st == nil {
			st = map[string]any{}
		}
		before := jsonValue(st)
		for k, v := range fields {
			if v == "" {
				delete(st, k)
			} else {
				st[k] = jsonValue(v)
			}
		}
		conds, _ := st["conditions"].([]any)
		conds = slices.DeleteFunc(conds, func(item any) bool {
			m, _ := item.(map[string]any)
			t := str(m["type"])
			return t != c.Type && t != "CatalogSourcesUnhealthy"
		})
		st["conditions"] = conds
		u.Object["status"] = st
		setConds(u.Object, []string{"status", "conditions"}, c)
		st, _, _ = unstructured.NestedMap(u.Object, "status")
		if semanticEqual(before, st) {
			return false, nil
		}
		st["lastUpdated"] = now()
		u.Object["status"] = st
		return true, nil
	})
}

func (s *Simulator) ensureCSV(ctx context.Context, ns, pkg, csvName, version string) error {
	labels := map[string]any{}
	if key := "operators.coreos.com/" + pkg + "." + ns; len(pkg)+len(ns)+1 <= 63 {
		labels[key] = ""
	}
	csv := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": olmAPIVersion, "kind": "ClusterServiceVersion",
		"metadata": map[string]any{"name": csvName, "namespace": ns, "labels": labels},
		"spec": map[string]any{
			"displayName": pkg, "version": version,
			"install": map[string]any{"strategy": "deployment", "spec": map[string]any{"deployments": []any{}}},
			"installModes": []any{
				map[string]any{"type": "OwnNamespace", "supported": true},
				map[string]any{"type": "SingleNamespace", "supported": true},
				map[string]any{"type": "MultiNamespace", "supported": false},
				map[string]any{"type": "AllNamespaces", "supported": true},
			},
		},
	}}
	_, err := s.create(ctx, gvrCSV, mgrCatalog, csv)
	return err
}

// syncCSVs is the OLM operator for one namespace: OperatorGroup checks and the CSV phases.
func (s *Simulator) syncCSVs(ctx context.Context, ns string) (time.Duration, error) {
	ogs, err := s.list(ctx, gvrOperatorGroup, ns)
	if err != nil {
		return 0, err
	}
	for _, og := range ogs {
		if err := s.syncOperatorGroupStatus(ctx, &og); err != nil {
			return 0, err
		}
	}
	csvs, err := s.list(ctx, gvrCSV, ns)
	if err != nil {
		return 0, err
	}
	var next time.Duration
	for _, csv := range csvs {
		wait, err := s.stepCSV(ctx, &csv, len(ogs))
		if err != nil {
			return 0, err
		}
		if wait > 0 && (next == 0 || wait < next) {
			next = wait
		}
	}
	return next, nil
}

// stepCSV moves a CSV one phase along Pending → InstallReady → Installing → Succeeded, or to
// Failed when the namespace has no (or too many) OperatorGroups, as olm-operator does.
func (s *Simulator) stepCSV(ctx context.Context, csv *unstructured.Unstructured, operatorGroups int) (time.Duration, error) {
	if csv.GetDeletionTimestamp() != nil {
		return 0, nil
	}
	phase, reason := nestedStr(csv, "status", "phase"), nestedStr(csv, "status", "reason")
	step := s.lat().OperatorInstall / 6
	clock := "csv/" + string(csv.GetUID()) + "/" + phase
	var to cond // Type holds the phase
	switch {
	case operatorGroups == 0:
		to = cond{Type: "Failed", Reason: "NoOperatorGroup", Message: "csv in namespace with no operatorgroups"}
	case operatorGroups > 1:
		to = cond{Type: "Failed", Reason: "TooManyOperatorGroups", Message: "csv created in namespace with multiple operatorgroups, can't pick one automatically"}
	case phase == "" || phase == "Failed" && (reason == "NoOperatorGroup" || reason == "TooManyOperatorGroups"):
		to = cond{Type: "Pending", Reason: "RequirementsUnknown", Message: "requirements not yet checked"}
	case phase == "Pending":
		to = cond{Type: "InstallReady", Reason: "AllRequirementsMet", Message: "all requirements found, attempting install"}
	case phase == "InstallReady":
		to = cond{Type: "Installing", Reason: "InstallSucceeded", Message: "waiting for install components to report healthy"}
	case phase == "Installing":
		to = cond{Type: "Succeeded", Reason: "InstallSucceeded", Message: "install strategy completed with no errors"}
	default:
		return 0, nil
	}
	if to.Type == phase && to.Reason == reason {
		return 0, nil
	}
	if to.Type != "Failed" && phase != "" && phase != "Failed" {
		if wait := s.after(clock, step); wait > 0 {
			return wait, nil
		}
	}
	s.done(clock)
	s.logf("olm: csv %s/%s %s → %s (%s)", csv.GetNamespace(), csv.GetName(), phase, to.Type, to.Reason)
	if to.Type == "Succeeded" && strings.HasPrefix(csv.GetName(), odhCSVPrefix) {
		defer s.odh.add(odhOperatorStarted) // after the update below: the operator runs
	}
	return step, s.update(ctx, mgrOLM, gvrCSV, csv.GetNamespace(), csv.GetName(), true, func(u *unstructured.Unstructured) (bool, error) {
		t := now()
		st, _, _ := unstructured.NestedMap(u.Object, "status")
		if st == nil {
			st = map[string]any{}
		}
		st["phase"], st["reason"], st["message"] = to.Type, to.Reason, to.Message
		st["lastUpdateTime"], st["lastTransitionTime"] = t, t
		conds, _ := st["conditions"].([]any)
		conds = append(conds, map[string]any{"phase": to.Type, "reason": to.Reason, "message": to.Message,
			"lastUpdateTime": t, "lastTransitionTime": t})
		if len(conds) > 20 { // OLM keeps a bounded history
			conds = conds[len(conds)-20:]
		}
		st["conditions"] = conds
		u.Object["status"] = st
		return true, nil
	})
}

func (s *Simulator) syncOperatorGroupStatus(ctx context.Context, og *unstructured.Unstructured) error {
	targets, _, _ := unstructured.NestedStringSlice(og.Object, "spec", "targetNamespaces")
	if len(targets) == 0 {
		targets = []string{""} // AllNamespaces
	}
	want := make([]any, len(targets))
	for i, t := range targets {
		want[i] = t
	}
	return s.update(ctx, mgrOLM, gvrOperatorGroup, og.GetNamespace(), og.GetName(), true, func(u *unstructured.Unstructured) (bool, error) {
		have, _, _ := unstructured.NestedSlice(u.Object, "status", "namespaces")
		if semanticEqual(have, want) {
			return false, nil
		}
		u.Object["status"] = map[string]any{"namespaces": want, "lastUpdated": now()}
		return true, nil
	})
}

// csvSucceeded tells whether a CSV whose name starts with prefix is Succeeded in one of nss.
func (s *Simulator) csvSucceeded(ctx context.Context, prefix string, nss ...string) (bool, error) {
	for _, ns := range nss {
		csvs, err := s.list(ctx, gvrCSV, ns)
		if err != nil {
			return false, err
		}
		for _, c := range csvs {
			if strings.HasPrefix(c.GetName(), prefix) && c.GetDeletionTimestamp() == nil && nestedStr(&c, "status", "phase") == "Succeeded" {
				return true, nil
			}
		}
	}
	return false, nil
}
