package simulator

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	semver "github.com/blang/semver/v4"
	"github.com/operator-framework/api/pkg/lib/version"
	operatorsv1 "github.com/operator-framework/api/pkg/operators/v1"
	olmv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	sub, err := getAs[olmv1alpha1.Subscription](ctx, s, gvrSubscription, ns, name)
	if err != nil || sub == nil || sub.DeletionTimestamp != nil {
		return 0, err
	}
	if sub.Spec == nil {
		sub.Spec = &olmv1alpha1.SubscriptionSpec{}
	}
	pkg, channel := sub.Spec.Package, sub.Spec.Channel
	csvName, version, failure := resolve(s.openShiftMinor(ctx), sub.Spec.CatalogSource, pkg, channel, name)
	if failure != "" {
		return 0, s.setSubscriptionStatus(ctx, ns, name, func(st *olmv1alpha1.SubscriptionStatus) { st.State = "" },
			cond{Type: string(olmv1alpha1.SubscriptionResolutionFailed), Status: "True", Reason: "ConstraintsNotSatisfiable", Message: failure})
	}
	if sub.Status.InstalledCSV == csvName {
		csv, err := s.get(ctx, gvrCSV, ns, csvName)
		if err != nil || csv != nil {
			return 0, err
		}
		// The CSV was deleted under a live Subscription: OLM resolves and installs it again.
	}
	clock := "sub/" + string(sub.UID) + "/" + csvName
	if wait := s.after(clock, s.lat().OperatorInstall/2); wait > 0 {
		return wait, nil
	}

	ip, err := s.ensureInstallPlan(ctx, sub, csvName)
	if err != nil {
		return 0, err
	}
	// planned is what the Subscription says of a plan for csvName, whatever became of it.
	planned := func(st *olmv1alpha1.SubscriptionStatus) {
		st.CurrentCSV, st.InstallPlanRef, st.Install, st.InstallPlanGeneration = csvName, planRef(ip), planLink(ip), 1
	}
	if !ip.Spec.Approved {
		if err := s.setInstallPlanPhase(ctx, ip, olmv1alpha1.InstallPlanPhaseRequiresApproval, ""); err != nil {
			return 0, err
		}
		return 0, s.setSubscriptionStatus(ctx, ns, name, func(st *olmv1alpha1.SubscriptionStatus) {
			st.State = olmv1alpha1.SubscriptionStateUpgradePending
			planned(st)
		}, cond{Type: string(olmv1alpha1.SubscriptionInstallPlanPending), Status: "True", Reason: string(olmv1alpha1.InstallPlanPhaseRequiresApproval)})
	}
	switch ip.Status.Phase {
	case olmv1alpha1.InstallPlanPhaseComplete:
	case olmv1alpha1.InstallPlanPhaseFailed:
		return 0, s.setSubscriptionStatus(ctx, ns, name, func(st *olmv1alpha1.SubscriptionStatus) {
			st.State = ""
			planned(st)
		}, cond{Type: string(olmv1alpha1.SubscriptionInstallPlanFailed), Status: "True", Reason: string(olmv1alpha1.InstallPlanReasonComponentFailed), Message: ip.Status.Message})
	default:
		if err := s.executeInstallPlan(ctx, ip, pkg); err != nil {
			return 0, err
		}
		if ip, err = getAs[olmv1alpha1.InstallPlan](ctx, s, gvrInstallPlan, ns, ip.Name); err != nil || ip == nil {
			return 0, err
		}
		if ip.Status.Phase != olmv1alpha1.InstallPlanPhaseComplete {
			s.subs.add(key)
			return 0, nil
		}
	}
	if err := s.ensureCSV(ctx, ns, pkg, csvName, version); err != nil {
		return 0, err
	}
	s.done(clock)
	s.logf("olm: subscription %s installed %s via %s", key, csvName, ip.Name)
	return 0, s.setSubscriptionStatus(ctx, ns, name, func(st *olmv1alpha1.SubscriptionStatus) {
		st.State, st.InstalledCSV = olmv1alpha1.SubscriptionStateAtLatest, csvName
		planned(st)
	}, cond{Type: string(olmv1alpha1.SubscriptionCatalogSourcesUnhealthy), Status: "False", Reason: "AllCatalogSourcesHealthy", Message: "all available catalogsources are healthy"})
}

// ensureInstallPlan finds the InstallPlan this Subscription owns for csvName or creates one.
func (s *Simulator) ensureInstallPlan(ctx context.Context, sub *olmv1alpha1.Subscription, csvName string) (*olmv1alpha1.InstallPlan, error) {
	ips, err := listAs[olmv1alpha1.InstallPlan](ctx, s, gvrInstallPlan, sub.Namespace)
	if err != nil {
		return nil, err
	}
	for _, ip := range ips {
		owned := slices.ContainsFunc(ip.OwnerReferences, func(o metav1.OwnerReference) bool { return o.UID == sub.UID })
		if owned && slices.Contains(ip.Spec.ClusterServiceVersionNames, csvName) {
			return ip, nil
		}
	}
	approval := sub.Spec.InstallPlanApproval
	if approval == "" {
		approval = olmv1alpha1.ApprovalAutomatic
	}
	ip := &olmv1alpha1.InstallPlan{
		TypeMeta: metav1.TypeMeta{APIVersion: olmAPIVersion, Kind: olmv1alpha1.InstallPlanKind},
		ObjectMeta: metav1.ObjectMeta{GenerateName: "install-", Namespace: sub.Namespace,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: olmAPIVersion, Kind: olmv1alpha1.SubscriptionKind,
				Name: sub.Name, UID: sub.UID, BlockOwnerDeletion: new(false), Controller: new(false)}}},
		Spec: olmv1alpha1.InstallPlanSpec{
			Approval: approval, Approved: approval == olmv1alpha1.ApprovalAutomatic,
			ClusterServiceVersionNames: []string{csvName}, Generation: 1,
			CatalogSource: sub.Spec.CatalogSource, CatalogSourceNamespace: sub.Spec.CatalogSourceNamespace,
		},
	}
	// Not s.create: a generated name never already exists, and a second plan must not be
	// mistaken for the first.
	u, err := toUnstructured(ip)
	if err != nil {
		return nil, err
	}
	out, err := s.res(gvrInstallPlan, sub.Namespace).Create(ctx, u, metav1.CreateOptions{FieldManager: mgrCatalog, FieldValidation: "Strict"})
	if err != nil {
		return nil, fmt.Errorf("create installplan for %s/%s: %w", sub.Namespace, sub.Name, err)
	}
	return as[olmv1alpha1.InstallPlan](out)
}

// executeInstallPlan installs the bundle's CRDs; the InstallPlan then turns Complete, or
// Failed with the error, as the real one does when a step fails.
func (s *Simulator) executeInstallPlan(ctx context.Context, ip *olmv1alpha1.InstallPlan, pkg string) error {
	if err := s.setInstallPlanPhase(ctx, ip, olmv1alpha1.InstallPlanPhaseInstalling, ""); err != nil {
		return err
	}
	if msg := s.installFailure(pkg); msg != "" {
		s.logf("olm: installplan %s/%s failed (injected): %s", ip.Namespace, ip.Name, msg)
		return s.setInstallPlanPhase(ctx, ip, olmv1alpha1.InstallPlanPhaseFailed, msg)
	}
	if hook := s.options().InstallCRDs; hook != nil {
		if err := hook(ctx, pkg); err != nil {
			err = fmt.Errorf("error installing CRDs of %s: %w", pkg, err)
			// transitionInstallPlanState (operator-lifecycle-manager
			// pkg/controller/operators/catalog/operator.go): a step error is retried while the
			// plan is younger than the retry timeout, and forbidden errors always are; only
			// then does the plan turn Failed. An API server timeout is not the end of a plan.
			if apierrors.IsForbidden(err) || s.installPlanAge(ctx, ip) < s.installPlanRetryTimeout() {
				s.logf("olm: installplan %s/%s retrying: %v", ip.Namespace, ip.Name, err)
				if serr := s.setInstallPlanMessage(ctx, ip, "retrying execution due to error: "+err.Error()); serr != nil {
					return serr
				}
				return err // requeued with backoff, as the catalog operator's queue does
			}
			s.logf("olm: installplan %s/%s failed: %v", ip.Namespace, ip.Name, err)
			return s.setInstallPlanPhase(ctx, ip, olmv1alpha1.InstallPlanPhaseFailed, err.Error())
		}
	}
	return s.setInstallPlanPhase(ctx, ip, olmv1alpha1.InstallPlanPhaseComplete, "")
}

func (s *Simulator) installPlanRetryTimeout() time.Duration {
	if d := s.options().InstallPlanRetryTimeout; d > 0 {
		return d
	}
	return time.Minute
}

// installPlanAge is how long ago the plan's execution started (status.startTime, set when
// it turned Installing); zero when that is not known yet.
func (s *Simulator) installPlanAge(ctx context.Context, ip *olmv1alpha1.InstallPlan) time.Duration {
	live, err := getAs[olmv1alpha1.InstallPlan](ctx, s, gvrInstallPlan, ip.Namespace, ip.Name)
	if err != nil || live == nil || live.Status.StartTime == nil {
		return 0
	}
	return time.Since(live.Status.StartTime.Time)
}

// setInstallPlanMessage records why an Installing plan is being retried.
func (s *Simulator) setInstallPlanMessage(ctx context.Context, ip *olmv1alpha1.InstallPlan, message string) error {
	return updateStatusAs(ctx, s, mgrCatalog, gvrInstallPlan, ip.Namespace, ip.Name, func(live *olmv1alpha1.InstallPlan) (bool, error) {
		if live.Status.Message == message {
			return false, nil
		}
		live.Status.Message = message
		return true, nil
	})
}

func (s *Simulator) setInstallPlanPhase(ctx context.Context, ip *olmv1alpha1.InstallPlan, phase olmv1alpha1.InstallPlanPhase, message string) error {
	return updateStatusAs(ctx, s, mgrCatalog, gvrInstallPlan, ip.Namespace, ip.Name, func(live *olmv1alpha1.InstallPlan) (bool, error) {
		st := &live.Status
		if st.Phase == phase {
			return false, nil
		}
		if st.StartTime == nil {
			st.StartTime = stampPtr()
		}
		if st.CatalogSources == nil {
			st.CatalogSources = []string{}
		}
		st.Phase = phase
		st.Message = message // a retried plan that completes says nothing more
		installed := cond{Type: string(olmv1alpha1.InstallPlanInstalled), Status: "Unknown", Reason: "Installing"}
		switch phase {
		case olmv1alpha1.InstallPlanPhaseComplete:
			installed = cond{Type: string(olmv1alpha1.InstallPlanInstalled), Status: "True"}
		case olmv1alpha1.InstallPlanPhaseFailed:
			installed = cond{Type: string(olmv1alpha1.InstallPlanInstalled), Status: "False", Reason: string(olmv1alpha1.InstallPlanReasonComponentFailed), Message: message}
		case olmv1alpha1.InstallPlanPhaseRequiresApproval:
			installed = cond{Type: string(olmv1alpha1.InstallPlanInstalled), Status: "False", Reason: string(olmv1alpha1.InstallPlanPhaseRequiresApproval)}
		}
		st.Conditions, _ = setTypedCond(st.Conditions, olmv1alpha1.InstallPlanCondition{
			Type: olmv1alpha1.InstallPlanConditionType(installed.Type), Status: corev1.ConditionStatus(installed.Status),
			Reason: olmv1alpha1.InstallPlanConditionReason(installed.Reason), Message: installed.Message, LastTransitionTime: stampPtr()},
			func(c olmv1alpha1.InstallPlanCondition) cond {
				return cond{Type: string(c.Type), Status: string(c.Status), Reason: string(c.Reason), Message: c.Message}
			},
			func(old olmv1alpha1.InstallPlanCondition, want *olmv1alpha1.InstallPlanCondition) {
				if old.LastTransitionTime != nil {
					want.LastTransitionTime = old.LastTransitionTime
				}
			})
		return true, nil
	})
}

func planRef(ip *olmv1alpha1.InstallPlan) *corev1.ObjectReference {
	return &corev1.ObjectReference{APIVersion: olmAPIVersion, Kind: olmv1alpha1.InstallPlanKind, Name: ip.Name,
		Namespace: ip.Namespace, ResourceVersion: ip.ResourceVersion, UID: ip.UID}
}

func planLink(ip *olmv1alpha1.InstallPlan) *olmv1alpha1.InstallPlanReference {
	return &olmv1alpha1.InstallPlanReference{APIVersion: olmAPIVersion, Kind: olmv1alpha1.InstallPlanKind, Name: ip.Name, UID: ip.UID}
}

// setSubscriptionStatus lets set change a Subscription's status fields and sets one
// condition, dropping the other OLM conditions that contradict it, and stamps lastUpdated
// when anything changed.
func (s *Simulator) setSubscriptionStatus(ctx context.Context, ns, name string, set func(*olmv1alpha1.SubscriptionStatus), c cond) error {
	return updateStatusAs(ctx, s, mgrCatalog, gvrSubscription, ns, name, func(sub *olmv1alpha1.Subscription) (bool, error) {
		st := &sub.Status
		before := st.DeepCopy()
		set(st)
		st.Conditions = slices.DeleteFunc(st.Conditions, func(old olmv1alpha1.SubscriptionCondition) bool {
			return string(old.Type) != c.Type && old.Type != olmv1alpha1.SubscriptionCatalogSourcesUnhealthy
		})
		st.Conditions, _ = setTypedCond(st.Conditions, olmv1alpha1.SubscriptionCondition{
			Type: olmv1alpha1.SubscriptionConditionType(c.Type), Status: corev1.ConditionStatus(c.Status),
			Reason: c.Reason, Message: c.Message, LastTransitionTime: stampPtr()},
			func(c olmv1alpha1.SubscriptionCondition) cond {
				return cond{Type: string(c.Type), Status: string(c.Status), Reason: c.Reason, Message: c.Message}
			},
			func(old olmv1alpha1.SubscriptionCondition, want *olmv1alpha1.SubscriptionCondition) {
				if old.LastTransitionTime != nil {
					want.LastTransitionTime = old.LastTransitionTime
				}
			})
		if semanticEqual(before, st) {
			return false, nil
		}
		st.LastUpdated = stamp()
		return true, nil
	})
}

func (s *Simulator) ensureCSV(ctx context.Context, ns, pkg, csvName, ver string) error {
	labels := map[string]string{}
	if key := "operators.coreos.com/" + pkg + "." + ns; len(pkg)+len(ns)+1 <= 63 {
		labels[key] = ""
	}
	// The catalog's version read as OLM reads a bundle's spec.version
	// (operator-framework/api pkg/lib/version: semver.ParseTolerant).
	v, err := semver.ParseTolerant(ver)
	if err != nil {
		return fmt.Errorf("version %q of %s in the simulated catalog: %w", ver, csvName, err)
	}
	csv := &olmv1alpha1.ClusterServiceVersion{
		TypeMeta:   metav1.TypeMeta{APIVersion: olmAPIVersion, Kind: olmv1alpha1.ClusterServiceVersionKind},
		ObjectMeta: metav1.ObjectMeta{Name: csvName, Namespace: ns, Labels: labels},
		Spec: olmv1alpha1.ClusterServiceVersionSpec{
			DisplayName: pkg, Version: version.OperatorVersion{Version: v},
			InstallStrategy: olmv1alpha1.NamedInstallStrategy{StrategyName: olmv1alpha1.InstallStrategyNameDeployment,
				StrategySpec: olmv1alpha1.StrategyDetailsDeployment{DeploymentSpecs: []olmv1alpha1.StrategyDeploymentSpec{}}},
			InstallModes: []olmv1alpha1.InstallMode{
				{Type: olmv1alpha1.InstallModeTypeOwnNamespace, Supported: true},
				{Type: olmv1alpha1.InstallModeTypeSingleNamespace, Supported: true},
				{Type: olmv1alpha1.InstallModeTypeMultiNamespace, Supported: false},
				{Type: olmv1alpha1.InstallModeTypeAllNamespaces, Supported: true},
			},
		},
	}
	_, err = createAs[olmv1alpha1.ClusterServiceVersion](ctx, s, gvrCSV, mgrCatalog, csv)
	return err
}

// syncCSVs is the OLM operator for one namespace: OperatorGroup checks and the CSV phases.
func (s *Simulator) syncCSVs(ctx context.Context, ns string) (time.Duration, error) {
	ogs, err := listAs[operatorsv1.OperatorGroup](ctx, s, gvrOperatorGroup, ns)
	if err != nil {
		return 0, err
	}
	for _, og := range ogs {
		if err := s.syncOperatorGroupStatus(ctx, og); err != nil {
			return 0, err
		}
	}
	csvs, err := listAs[olmv1alpha1.ClusterServiceVersion](ctx, s, gvrCSV, ns)
	if err != nil {
		return 0, err
	}
	var next time.Duration
	for _, csv := range csvs {
		wait, err := s.stepCSV(ctx, csv, len(ogs))
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
func (s *Simulator) stepCSV(ctx context.Context, csv *olmv1alpha1.ClusterServiceVersion, operatorGroups int) (time.Duration, error) {
	if csv.DeletionTimestamp != nil {
		return 0, nil
	}
	phase, reason := csv.Status.Phase, csv.Status.Reason
	step := s.lat().OperatorInstall / 6
	clock := "csv/" + string(csv.UID) + "/" + string(phase)
	// to is the next phase with its reason and message.
	type transition struct {
		phase   olmv1alpha1.ClusterServiceVersionPhase
		reason  olmv1alpha1.ConditionReason
		message string
	}
	var to transition
	switch {
	case operatorGroups == 0:
		to = transition{olmv1alpha1.CSVPhaseFailed, olmv1alpha1.CSVReasonNoOperatorGroup, "csv in namespace with no operatorgroups"}
	case operatorGroups > 1:
		to = transition{olmv1alpha1.CSVPhaseFailed, olmv1alpha1.CSVReasonTooManyOperatorGroups, "csv created in namespace with multiple operatorgroups, can't pick one automatically"}
	case phase == olmv1alpha1.CSVPhaseNone || phase == olmv1alpha1.CSVPhaseFailed &&
		(reason == olmv1alpha1.CSVReasonNoOperatorGroup || reason == olmv1alpha1.CSVReasonTooManyOperatorGroups):
		to = transition{olmv1alpha1.CSVPhasePending, olmv1alpha1.CSVReasonRequirementsUnknown, "requirements not yet checked"}
	case phase == olmv1alpha1.CSVPhasePending:
		to = transition{olmv1alpha1.CSVPhaseInstallReady, olmv1alpha1.CSVReasonRequirementsMet, "all requirements found, attempting install"}
	case phase == olmv1alpha1.CSVPhaseInstallReady:
		to = transition{olmv1alpha1.CSVPhaseInstalling, olmv1alpha1.CSVReasonInstallSuccessful, "waiting for install components to report healthy"}
	case phase == olmv1alpha1.CSVPhaseInstalling:
		to = transition{olmv1alpha1.CSVPhaseSucceeded, olmv1alpha1.CSVReasonInstallSuccessful, "install strategy completed with no errors"}
	default:
		return 0, nil
	}
	if to.phase == phase && to.reason == reason {
		return 0, nil
	}
	if to.phase != olmv1alpha1.CSVPhaseFailed && phase != olmv1alpha1.CSVPhaseNone && phase != olmv1alpha1.CSVPhaseFailed {
		if wait := s.after(clock, step); wait > 0 {
			return wait, nil
		}
	}
	s.done(clock)
	s.logf("olm: csv %s/%s %s → %s (%s)", csv.Namespace, csv.Name, phase, to.phase, to.reason)
	if to.phase == olmv1alpha1.CSVPhaseSucceeded && strings.HasPrefix(csv.Name, odhCSVPrefix) {
		defer s.odh.add(odhOperatorStarted) // after the update below: the operator runs
	}
	return step, updateStatusAs(ctx, s, mgrOLM, gvrCSV, csv.Namespace, csv.Name, func(live *olmv1alpha1.ClusterServiceVersion) (bool, error) {
		// olm-operator sets phases with the type's own SetPhase (operator-framework/api
		// pkg/operators/v1alpha1/clusterserviceversion.go): lastUpdateTime always,
		// lastTransitionTime on a phase change, one history entry per phase or reason
		// change, the history trimmed to ConditionsLengthLimit.
		live.SetPhase(to.phase, to.reason, to.message, stampPtr())
		return true, nil
	})
}

func (s *Simulator) syncOperatorGroupStatus(ctx context.Context, og *operatorsv1.OperatorGroup) error {
	want := og.Spec.TargetNamespaces
	if len(want) == 0 {
		want = []string{metav1.NamespaceAll} // AllNamespaces
	}
	return updateStatusAs(ctx, s, mgrOLM, gvrOperatorGroup, og.Namespace, og.Name, func(live *operatorsv1.OperatorGroup) (bool, error) {
		if slices.Equal(live.Status.Namespaces, want) {
			return false, nil
		}
		live.Status = operatorsv1.OperatorGroupStatus{Namespaces: want, LastUpdated: stampPtr()}
		return true, nil
	})
}

// subscriptionEnv is the value of the environment variable name that a Subscription's
// spec.config.env gives the operator's deployment (OLM passes it on), "" when unset.
func subscriptionEnv(sub *olmv1alpha1.Subscription, name string) string {
	if sub.Spec == nil || sub.Spec.Config == nil {
		return ""
	}
	for _, e := range sub.Spec.Config.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// csvSucceeded tells whether a CSV whose name starts with prefix is Succeeded in one of nss.
func (s *Simulator) csvSucceeded(ctx context.Context, prefix string, nss ...string) (bool, error) {
	for _, ns := range nss {
		csvs, err := listAs[olmv1alpha1.ClusterServiceVersion](ctx, s, gvrCSV, ns)
		if err != nil {
			return false, err
		}
		for _, c := range csvs {
			if strings.HasPrefix(c.Name, prefix) && c.DeletionTimestamp == nil && c.Status.Phase == olmv1alpha1.CSVPhaseSucceeded {
				return true, nil
			}
		}
	}
	return false, nil
}
