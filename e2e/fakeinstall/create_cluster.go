package fakeinstall

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// mode is what drives the stages: `create cluster` or one of the waits.
type mode int

const (
	modeCreate mode = iota
	modeWaitBootstrap
	modeWaitInstall
)

// Timeouts the real installer announces ("Waiting up to ...").
const (
	apiTimeout       = 20 * time.Minute
	bootstrapTimeout = 45 * time.Minute
	etcdTimeout      = 5 * time.Minute
	initTimeout      = 40 * time.Minute
	stableTimeout    = 30 * time.Minute
)

// createCluster is `create cluster`.
func (in *installer) createCluster(ctx context.Context) error {
	st, ic, err := in.resolveManifests(ctx, "Metadata")
	if err != nil {
		return err
	}
	infraID := st.ClusterID.InfraID
	if err := in.recordInvocation(infraID); err != nil {
		return err
	}
	rec, err := in.reg.Cluster(infraID)
	if err != nil {
		return err
	}
	if rec == nil {
		rec = newRecord(ic, st, in.dir)
		rec.Stage = StageManifests
	}
	if rec.Destroyed { // the state outlived a destroy: a new cluster, same IDs
		rec.Destroyed, rec.DestroyedAt = false, nil
		rec.Stage, rec.InProgress, rec.LastFailure, rec.Applied, rec.APIServer = StageManifests, "", nil, nil, ""
	}
	rec.CreateClusterInvocations++
	if rec.Started(StageInfrastructure) {
		// The real installer would try to create the infrastructure a second
		// time and trip over what the first run made.
		msg := fmt.Sprintf(`failed to fetch Cluster: failed to generate asset "Cluster": failed to create cluster: `+
			`infrastructure of cluster %s already exists (this is "create cluster" number %d for it): `+
			`use "wait-for install-complete", or "destroy cluster" first`, infraID, rec.CreateClusterInvocations)
		return in.fail(rec, StageInfrastructure, ExitInfrastructure, msg)
	}
	if err := in.reg.save(rec, in.now().UTC()); err != nil {
		return err
	}
	if err := in.consumeManifests(st); err != nil {
		return err
	}
	if err := in.writeIgnitionTimeAssets(st, ic, rec); err != nil {
		return err
	}
	return in.runStages(ctx, st, ic, rec, modeCreate)
}

// consumeManifests moves manifests/ and openshift/ into the state file and
// deletes them from disk, as the real installer consumes them into the
// bootstrap ignition. The bootstrap stage applies them from the state.
func (in *installer) consumeManifests(st *state) error {
	groups := []struct {
		dir   string
		names []string
		asset **fileListAsset
	}{
		{"openshift", []string{"Worker Machines", "Master Machines", "Openshift Manifests"}, &st.Openshift},
		{"manifests", []string{"Common Manifests"}, &st.Manifests},
	}
	var consumed []string
	for _, g := range groups {
		files, err := readDirFiles(in.dir, g.dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		*g.asset = &fileListAsset{FileList: files}
		consumed = append(consumed, g.dir)
		for _, name := range g.names {
			in.log.Infof("Consuming %s from target directory", name)
		}
	}
	if len(consumed) == 0 {
		return nil
	}
	if err := st.save(in.dir); err != nil {
		return err
	}
	for _, d := range consumed {
		if err := os.RemoveAll(in.path(d)); err != nil {
			return fmt.Errorf("failed to consume %s: %w", d, err)
		}
	}
	return nil
}

// readDirFiles reads the regular files directly in dir/sub, sorted, named
// "sub/<file>".
func readDirFiles(dir, sub string) ([]assetFile, error) {
	entries, err := os.ReadDir(filepath.Join(dir, sub))
	if err != nil {
		return nil, err
	}
	var out []assetFile
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, sub, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", filepath.Join(sub, e.Name()), err)
		}
		out = append(out, assetFile{Filename: sub + "/" + e.Name(), Data: data})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Filename < out[j].Filename })
	return out, nil
}

// writeIgnitionTimeAssets writes what the real installer persists before it
// creates any infrastructure: the kubeadmin password, an admin kubeconfig
// whose API server is not up (a closed local port), and metadata.json.
func (in *installer) writeIgnitionTimeAssets(st *state, ic *InstallConfig, rec *Cluster) error {
	if st.Password == nil {
		pw, err := kubeadminPassword()
		if err != nil {
			return err
		}
		if in.settings.password != "" {
			pw = in.settings.password
		}
		st.Password = &passwordAsset{Password: pw}
		if err := st.save(in.dir); err != nil {
			return err
		}
	}
	if err := writeFileAtomic(in.path("auth", "kubeadmin-password"), []byte(st.Password.Password), 0o600); err != nil {
		return err
	}
	server, err := closedPortURL()
	if err != nil {
		return err
	}
	cluster, user, err := selfSignedAdmin(server, in.now())
	if err != nil {
		return err
	}
	kc, err := adminKubeconfig(ic.Metadata.Name, cluster, user)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(in.path("auth", "kubeconfig"), kc, 0o600); err != nil {
		return err
	}
	md, err := json.Marshal(newMetadata(ic, rec.InfraID, rec.ClusterID))
	if err != nil {
		return fmt.Errorf("encoding %s: %w", MetadataFile, err)
	}
	return writeFileAtomic(in.path(MetadataFile), md, 0o640)
}

// kubeadminPassword makes a password shaped like the installer's:
// four groups of five letters and digits.
func kubeadminPassword() (string, error) {
	const chars = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	var b strings.Builder
	for i := range 20 {
		if i > 0 && i%5 == 0 {
			b.WriteByte('-')
		}
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(chars))))
		if err != nil {
			return "", fmt.Errorf("generating the kubeadmin password: %w", err)
		}
		b.WriteByte(chars[n.Int64()])
	}
	return b.String(), nil
}

// waitFor is `wait-for bootstrap-complete` and `wait-for install-complete`.
func (in *installer) waitFor(ctx context.Context, m mode) error {
	if _, err := os.Stat(in.path("auth", "kubeconfig")); err != nil {
		_ = in.recordInvocation("")
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	md, err := readMetadata(in.dir)
	if err != nil {
		_ = in.recordInvocation("")
		return fmt.Errorf("loading cluster metadata: %w", err)
	}
	if err := in.recordInvocation(md.InfraID); err != nil {
		return err
	}
	rec, err := in.reg.Cluster(md.InfraID)
	if err != nil {
		return err
	}
	domain := md.ClusterName
	if md.AWS != nil {
		domain = md.AWS.ClusterDomain
	}
	if rec == nil || rec.Destroyed {
		return fmt.Errorf(`failed waiting for Kubernetes API: Get "https://api.%s:6443/version": dial tcp: lookup api.%s: no such host (cluster %s does not exist)`,
			domain, domain, md.InfraID)
	}
	st, err := loadState(in.dir)
	if err != nil {
		return err
	}
	if st == nil || st.InstallConfig == nil {
		return fmt.Errorf("failed to load the install-config: no %s in %s", StateFile, in.dir)
	}
	ic, _, err := parseInstallConfig(st.InstallConfig.Config)
	if err != nil {
		return err
	}
	_ = ic.validate() // fills the pool defaults
	return in.runStages(ctx, st, ic, rec, m)
}

// begin marks stage in progress in the registry.
func (in *installer) begin(rec *Cluster, stage string) error {
	rec.InProgress = stage
	return in.reg.save(rec, in.now().UTC())
}

// done marks stage completed in the registry.
func (in *installer) done(rec *Cluster, stage string) error {
	if stageIndex(stage) > stageIndex(rec.Stage) {
		rec.Stage = stage
	}
	rec.InProgress = ""
	return in.reg.save(rec, in.now().UTC())
}

// fail records a failure of stage, logs msg at error level and returns
// the exit code error.
func (in *installer) fail(rec *Cluster, stage string, code int, msg string, moreLines ...string) error {
	for _, l := range moreLines {
		in.log.Errorf("%s", l)
	}
	in.log.Errorf("%s", msg)
	rec.InProgress = ""
	rec.LastFailure = &Failure{Stage: stage, ExitCode: code, Message: msg, Time: in.now().UTC()}
	if err := in.reg.save(rec, in.now().UTC()); err != nil {
		return err
	}
	return &exitError{code: code, msg: msg}
}

// troubleshootingLink is what the installer logs when initialization fails
// (cmd/openshift-install/command/waitfor.go LogTroubleshootingLink).
const troubleshootingLink = "Cluster initialization failed because one or more operators are not functioning properly.\n" +
	"The cluster should be accessible for troubleshooting as detailed in the documentation linked below,\n" +
	"https://docs.openshift.com/container-platform/latest/support/troubleshooting/troubleshooting-installations.html\n" +
	"The 'wait-for install-complete' subcommand can then be used to continue the installation"

// failWait ends a failed wait the way the real wait-for commands end
// (cmd/openshift-install/waitfor.go): they have no exit codes of their own but
// logrus.Fatal, so they exit 1. wait-for bootstrap-complete points at gather
// bootstrap, logs the cause and the summary, and ends with "Bootstrap failed to
// complete"; wait-for install-complete logs the troubleshooting link and ends
// with the error. (Only unstable operators exit 7, from inside the shared
// waitForStableOperators.) cause is the underlying error; summary is the
// bootstrap's one-line explanation ("" for install-complete).
func (in *installer) failWait(rec *Cluster, stage, cause, summary string) error {
	fatal := cause
	if stage == StageBootstrap && summary != "" {
		in.log.Infof("Use the following commands to gather logs from the cluster")
		in.log.Infof("openshift-install gather bootstrap --help")
		in.log.Errorf("Bootstrap failed to complete: %s", cause)
		in.log.Errorf("%s", summary)
		fatal = "Bootstrap failed to complete"
	} else {
		in.log.Errorf("%s", troubleshootingLink)
	}
	in.log.Fatalf("%s", fatal)
	rec.InProgress = ""
	rec.LastFailure = &Failure{Stage: stage, ExitCode: ExitError, Message: cause, Time: in.now().UTC()}
	if err := in.reg.save(rec, in.now().UTC()); err != nil {
		return err
	}
	return &exitError{code: ExitError, msg: fatal}
}

// interrupt records an interrupted stage and returns exit code 8.
func (in *installer) interrupt(rec *Cluster, stage string) error {
	err := in.interrupted()
	rec.InProgress = ""
	rec.LastFailure = &Failure{Stage: stage, ExitCode: ExitInterrupted, Message: "Received interrupt signal", Time: in.now().UTC()}
	if serr := in.reg.save(rec, in.now().UTC()); serr != nil {
		return serr
	}
	return err
}

// runStages runs, from where the registry says the cluster is, the stages
// that m covers: create runs them all; wait-for bootstrap-complete stops
// after bootstrap; wait-for install-complete finishes the rest (also a
// bootstrap cut short by a kill, which on AWS would have carried on
// without the installer).
func (in *installer) runStages(ctx context.Context, st *state, ic *InstallConfig, rec *Cluster, m mode) error {
	apiURL := "https://api." + ic.clusterDomain() + ":6443"

	if m == modeCreate {
		in.log.Infof("Creating infrastructure resources...")
		if err := in.begin(rec, StageInfrastructure); err != nil {
			return err
		}
		if err := in.sleep(ctx, in.settings.delay); err != nil {
			return in.interrupt(rec, StageInfrastructure)
		}
		if fire, err := in.injected(StageInfrastructure, ic, rec.InfraID); err != nil {
			return err
		} else if fire {
			cp := ic.poolAWS(ic.ControlPlane)
			return in.fail(rec, StageInfrastructure, ExitInfrastructure, fmt.Sprintf(
				`failed to fetch Cluster: failed to generate asset "Cluster": failed to create cluster: failed provisioning resources after infrastructure ready: `+
					`failed to create control-plane machines: InsufficientInstanceCapacity: We currently do not have sufficient %s capacity in the Availability Zone you requested (%s) `+
					`(injected by %s=%s)`, cp.InstanceType, cp.Zones[0], EnvFail, StageInfrastructure))
		}
		// The infrastructure includes the bootstrap machine, its SSH rule and the
		// ignition bucket; they stay until bootstrapping completes and someone destroys them.
		rec.Bootstrap = newBootstrapResources(rec.InfraID)
		if err := in.done(rec, StageInfrastructure); err != nil {
			return err
		}
	}

	if !rec.Reached(StageInfrastructure) {
		// A kill or a failure cut the infrastructure short: nothing will
		// ever answer on the API.
		if err := in.sleep(ctx, in.settings.delay); err != nil {
			return in.interrupt(rec, StageBootstrap)
		}
		probe := in.probeAPI()
		if m == modeWaitInstall {
			return in.failWait(rec, StageInstall, fmt.Sprintf("failed to initialize the cluster: %v", probe), "")
		}
		in.log.Infof("Waiting up to %v (until %s) for the Kubernetes API at %s...", apiTimeout, until(in.now(), apiTimeout), apiURL)
		return in.failWait(rec, StageBootstrap, probe.Error(),
			"Failed waiting for Kubernetes API. This error usually happens when there is a problem on the bootstrap host that prevents creating a temporary control plane.")
	}

	kube, err := in.bootstrap(ctx, st, ic, rec, m, apiURL)
	if err != nil {
		return err
	}
	if m == modeCreate {
		// Only create cluster removes the bootstrap resources, right after bootstrapping
		// (cmd/openshift-install/create.go clusterCreatePostRun); the waits never do.
		if fire, err := in.injected(FailInterruptedBootstrapComplete, ic, rec.InfraID); err != nil {
			return err
		} else if fire {
			return in.interrupt(rec, StageBootstrap)
		}
		if in.settings.preserveBootstrap {
			in.log.Warnf("%s is set, not destroying bootstrap resources. "+
				"Warning: this should only be used for debugging purposes, and poses a risk to cluster stability.", EnvPreserveBootstrap)
		} else if rec.Bootstrap != nil {
			in.log.Infof("Destroying the bootstrap resources...")
			if err := in.removeBootstrap(ctx, rec); err != nil {
				if ctx.Err() != nil {
					return in.interrupt(rec, StageBootstrap)
				}
				return err
			}
		}
	}
	if m == modeWaitBootstrap {
		in.log.Infof("It is now safe to remove the bootstrap resources")
		in.log.Infof("Time elapsed: %s", in.elapsed())
		return nil
	}

	in.log.Infof("Waiting up to %v (until %s) for the cluster at %s to initialize...", initTimeout, until(in.now(), initTimeout), apiURL)
	if !rec.Reached(StageInstall) {
		if err := in.install(ctx, kube, st, ic, rec, m); err != nil {
			return err
		}
	}

	in.log.Infof("Waiting up to %v (until %s) to ensure each cluster operator has finished progressing...", stableTimeout, until(in.now(), stableTimeout))
	if !rec.Reached(StageOperators) {
		if err := in.begin(rec, StageOperators); err != nil {
			return err
		}
		if err := in.sleep(ctx, in.settings.delay); err != nil {
			return in.interrupt(rec, StageOperators)
		}
		if fire, err := in.injected(StageOperators, ic, rec.InfraID); err != nil {
			return err
		} else if fire {
			return in.fail(rec, StageOperators, ExitOperatorsUnstable,
				"These cluster operators were not stable: [authentication, console, ingress]",
				fmt.Sprintf("Error checking cluster operator Progressing status: %q (injected by %s=%s)", "context deadline exceeded", EnvFail, StageOperators))
		}
		if err := in.done(rec, StageOperators); err != nil {
			return err
		}
	}
	in.log.Infof("All cluster operators have completed progressing")
	in.log.Infof("Checking to see if there is a route at openshift-console/console...")
	return in.logComplete(ic)
}

// probeAPI returns the error of one /version call through auth/kubeconfig.
func (in *installer) probeAPI() error {
	kube, err := newKubeClient(in.path("auth", "kubeconfig"))
	if err != nil {
		return err
	}
	_, err = kube.serverVersion()
	return err
}

// bootstrap brings the API "up" (auth/kubeconfig now names the bed's API
// server), applies the consumed manifests and marks ClusterVersion as
// progressing. When the registry says bootstrap already completed it only
// connects. Bootstrap failures are logged as the real installer logs them;
// under wait-for install-complete they are initialization failures.
func (in *installer) bootstrap(ctx context.Context, st *state, ic *InstallConfig, rec *Cluster, m mode, apiURL string) (*kubeClient, error) {
	info := in.log.Infof
	if m == modeWaitInstall {
		info = in.log.Debugf // the real install-complete wait does not report bootstrap
	}
	failBootstrap := func(cause error, apiUp bool) error {
		if m == modeWaitInstall {
			return in.failWait(rec, StageBootstrap, fmt.Sprintf("failed to initialize the cluster: %v", cause), "")
		}
		summary := "Failed waiting for Kubernetes API. This error usually happens when there is a problem on the bootstrap host that prevents creating a temporary control plane."
		if apiUp {
			summary = "Failed to wait for bootstrapping to complete. This error usually happens when there is a problem with control plane hosts that prevents the control plane operators from creating the control plane."
		}
		if m != modeCreate {
			return in.failWait(rec, StageBootstrap, cause.Error(), summary)
		}
		// create cluster gathers the bootstrap logs before it reports the failure, and
		// names the bundle last (cmd/openshift-install/create.go clusterCreatePostRun).
		bundle, gatherErr := in.gatherBootstrap(rec, cause)
		if gatherErr != nil {
			in.log.Errorf("Attempted to gather debug logs after installation failure: %v", gatherErr)
		}
		err := in.fail(rec, StageBootstrap, ExitBootstrap, summary, fmt.Sprintf("Bootstrap failed to complete: %v", cause))
		if gatherErr == nil {
			in.log.Infof("Bootstrap gather logs captured here %q", bundle)
		}
		return err
	}
	// connect waits for the (bed's) API behind auth/kubeconfig, as the real installer does.
	connect := func() (*kubeClient, error) {
		kube, err := newKubeClient(in.path("auth", "kubeconfig"))
		if err != nil {
			return nil, err
		}
		version, err := kube.waitForAPI(ctx, 30*time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return nil, in.interrupt(rec, StageBootstrap)
			}
			return nil, failBootstrap(err, false)
		}
		info("API %s up", version)
		info("Waiting up to %v (until %s) for bootstrapping to complete...", bootstrapTimeout, until(in.now(), bootstrapTimeout))
		return kube, nil
	}

	info("Waiting up to %v (until %s) for the Kubernetes API at %s...", apiTimeout, until(in.now(), apiTimeout), apiURL)
	if rec.Reached(StageBootstrap) {
		return connect()
	}

	if err := in.begin(rec, StageBootstrap); err != nil {
		return nil, err
	}
	if err := in.sleep(ctx, in.settings.delay/2); err != nil {
		return nil, in.interrupt(rec, StageBootstrap)
	}
	if fire, err := in.injected(FailInterruptedBootstrap, ic, rec.InfraID); err != nil {
		return nil, err
	} else if fire {
		return nil, in.interrupt(rec, StageBootstrap)
	}
	if rec.Bootstrap == nil {
		// Someone ran destroy bootstrap before bootstrapping completed: nothing is left
		// to bring up the temporary control plane.
		return nil, failBootstrap(fmt.Errorf("the bootstrap machine of cluster %s was destroyed before bootstrapping completed", rec.InfraID), false)
	}
	if fire, err := in.injected(StageBootstrap, ic, rec.InfraID); err != nil {
		return nil, err
	} else if fire {
		probe := in.probeAPI()
		if probe == nil {
			return nil, failBootstrap(fmt.Errorf("timed out waiting for the condition (injected by %s=%s)", EnvFail, StageBootstrap), true)
		}
		return nil, failBootstrap(fmt.Errorf("%w (injected by %s=%s)", probe, EnvFail, StageBootstrap), false)
	}
	if in.settings.kubeconfig == "" {
		probe := in.probeAPI()
		in.log.Debugf("%s is not set: the fake has no API server to bring up", EnvKubeconfig)
		return nil, failBootstrap(fmt.Errorf("%w (%s is not set)", probe, EnvKubeconfig), false)
	}
	cluster, user, err := bedAdmin(in.settings.kubeconfig)
	if err != nil {
		return nil, failBootstrap(err, false)
	}
	// The bed is seeded as an installed cluster (ClusterVersion Available). A cluster
	// being bootstrapped is not: mark it Progressing before auth/kubeconfig exists, so
	// that a caller killed anywhere from here on never finds an "installed" cluster
	// whose bootstrap did not finish.
	bedKube, err := newKubeClient(in.settings.kubeconfig)
	if err != nil {
		return nil, failBootstrap(err, false)
	}
	if err := in.setClusterVersion(ctx, bedKube, st, ic, cvProgressing); err != nil {
		if ctx.Err() != nil {
			return nil, in.interrupt(rec, StageBootstrap)
		}
		return nil, failBootstrap(err, false)
	}
	kc, err := adminKubeconfig(ic.Metadata.Name, cluster, user)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(in.path("auth", "kubeconfig"), kc, 0o600); err != nil {
		return nil, err
	}
	rec.APIServer = cluster.Server
	if err := in.reg.save(rec, in.now().UTC()); err != nil {
		return nil, err
	}
	kube, err := connect()
	if err != nil {
		return nil, err
	}
	refs, err := kube.applyFiles(ctx, st.consumedFiles(), in.log)
	rec.Applied = mergeRefs(rec.Applied, refs)
	if serr := in.reg.save(rec, in.now().UTC()); serr != nil {
		return nil, serr
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, in.interrupt(rec, StageBootstrap)
		}
		return nil, failBootstrap(err, true)
	}
	if err := in.setClusterVersion(ctx, kube, st, ic, cvProgressing); err != nil {
		if ctx.Err() != nil {
			return nil, in.interrupt(rec, StageBootstrap)
		}
		return nil, failBootstrap(err, true)
	}
	if err := in.sleep(ctx, in.settings.delay-in.settings.delay/2); err != nil {
		return nil, in.interrupt(rec, StageBootstrap)
	}
	info("Waiting up to %v (until %s) for the bootstrap etcd member to be removed...", etcdTimeout, until(in.now(), etcdTimeout))
	if err := in.done(rec, StageBootstrap); err != nil {
		return nil, err
	}
	return kube, nil
}

// mergeRefs adds refs to have, without duplicates.
func mergeRefs(have, refs []ObjectRef) []ObjectRef {
	seen := map[ObjectRef]bool{}
	for _, r := range have {
		seen[r] = true
	}
	for _, r := range refs {
		if !seen[r] {
			have = append(have, r)
			seen[r] = true
		}
	}
	return have
}

// install is the "cluster initialization" stage: ClusterVersion becomes
// Available. Injected failures leave it Failing (exit 6) or stop as if
// SIGINT arrived (exit 8).
func (in *installer) install(ctx context.Context, kube *kubeClient, st *state, ic *InstallConfig, rec *Cluster, m mode) error {
	if err := in.begin(rec, StageInstall); err != nil {
		return err
	}
	if err := in.sleep(ctx, in.settings.delay/2); err != nil {
		return in.interrupt(rec, StageInstall)
	}
	if fire, err := in.injected(FailInterrupted, ic, rec.InfraID); err != nil {
		return err
	} else if fire {
		return in.interrupt(rec, StageInstall)
	}
	if err := in.sleep(ctx, in.settings.delay-in.settings.delay/2); err != nil {
		return in.interrupt(rec, StageInstall)
	}
	if fire, err := in.injected(StageInstall, ic, rec.InfraID); err != nil {
		return err
	} else if fire {
		if err := in.setClusterVersion(ctx, kube, st, ic, cvFailing); err != nil {
			return err
		}
		in.log.Debugf("Still waiting for the cluster to initialize: %s", failingMessage)
		msg := fmt.Sprintf("failed to initialize the cluster: %s (injected by %s=%s)", failingMessage, EnvFail, StageInstall)
		if m != modeCreate {
			return in.failWait(rec, StageInstall, msg, "")
		}
		return in.fail(rec, StageInstall, ExitInstall, msg, troubleshootingLink)
	}
	if err := in.setClusterVersion(ctx, kube, st, ic, cvAvailable); err != nil {
		if ctx.Err() != nil {
			return in.interrupt(rec, StageInstall)
		}
		if m != modeCreate {
			return in.failWait(rec, StageInstall, fmt.Sprintf("failed to initialize the cluster: %v", err), "")
		}
		return in.fail(rec, StageInstall, ExitInstall, fmt.Sprintf("failed to initialize the cluster: %v", err))
	}
	in.log.Debugf("Cluster is initialized")
	return in.done(rec, StageInstall)
}

// ClusterVersion states the fake writes.
type cvState int

const (
	cvProgressing cvState = iota
	cvAvailable
	cvFailing
)

// clusterStatusFailing is the CVO's own condition type, which openshift/api does not
// name (openshift/cluster-version-operator pkg/cvo/status.go, ClusterStatusFailing).
const clusterStatusFailing configv1.ClusterStatusConditionType = "Failing"

const failingMessage = "Cluster operators authentication, console, ingress are not available"

// setClusterVersion writes the ClusterVersion status of state s, built as the
// cluster-version operator builds it: a config/v1 ClusterVersionStatus (its
// status sync, openshift/cluster-version-operator pkg/cvo/status.go). The history
// entry of a release still being applied is Partial with no completionTime.
func (in *installer) setClusterVersion(ctx context.Context, kube *kubeClient, st *state, ic *InstallConfig, s cvState) error {
	now := metav1.NewTime(in.now().UTC().Truncate(time.Second))
	v := in.settings.version
	image := in.settings.releaseImage
	cond := func(typ configv1.ClusterStatusConditionType, status configv1.ConditionStatus, reason, msg string) configv1.ClusterOperatorStatusCondition {
		return configv1.ClusterOperatorStatusCondition{Type: typ, Status: status, LastTransitionTime: now, Reason: reason, Message: msg}
	}
	entry := configv1.UpdateHistory{State: configv1.PartialUpdate, Version: v, Image: image, StartedTime: now}
	var conds []configv1.ClusterOperatorStatusCondition
	switch s {
	case cvProgressing:
		conds = []configv1.ClusterOperatorStatusCondition{
			cond(configv1.OperatorAvailable, configv1.ConditionFalse, "", ""),
			cond(clusterStatusFailing, configv1.ConditionFalse, "", ""),
			cond(configv1.OperatorProgressing, configv1.ConditionTrue, "", fmt.Sprintf("Working towards %s: 512 of 903 done (56%% complete)", v)),
		}
	case cvFailing:
		conds = []configv1.ClusterOperatorStatusCondition{
			cond(configv1.OperatorAvailable, configv1.ConditionFalse, "", ""),
			cond(clusterStatusFailing, configv1.ConditionTrue, "ClusterOperatorsNotAvailable", failingMessage),
			cond(configv1.OperatorProgressing, configv1.ConditionTrue, "ClusterOperatorsNotAvailable", fmt.Sprintf("Unable to apply %s: some cluster operators are not available", v)),
		}
	case cvAvailable:
		entry.State, entry.CompletionTime = configv1.CompletedUpdate, &now
		conds = []configv1.ClusterOperatorStatusCondition{
			cond(configv1.OperatorAvailable, configv1.ConditionTrue, "", "Done applying "+v),
			cond(clusterStatusFailing, configv1.ConditionFalse, "", ""),
			cond(configv1.OperatorProgressing, configv1.ConditionFalse, "", "Cluster version is "+v),
		}
	}
	status := configv1.ClusterVersionStatus{
		Desired:          configv1.Release{Version: v, Image: image, Channels: []string{channel(v)}},
		History:          []configv1.UpdateHistory{entry},
		VersionHash:      "fake-" + st.ClusterID.InfraID,
		AvailableUpdates: []configv1.Release{},
		Conditions:       conds,
	}
	served, err := kube.setClusterVersionStatus(ctx, st.ClusterID.UUID, channel(v), status)
	if err != nil {
		return err
	}
	if !served {
		in.log.Debugf("Skipping ClusterVersion: the API server does not serve config.openshift.io/v1")
	}
	return nil
}

// logComplete prints what the real installer prints at the end: logComplete in
// openshift/installer cmd/openshift-install/command/waitfor.go, which `create cluster`
// and `wait-for install-complete` both call (the password Go-quoted with %q).
func (in *installer) logComplete(ic *InstallConfig) error {
	kubeconfig := in.path("auth", "kubeconfig")
	pwFile := in.path("auth", "kubeadmin-password")
	pw, err := os.ReadFile(pwFile)
	if err != nil {
		return err
	}
	in.log.Infof("Install complete!")
	in.log.Infof("To access the cluster as the system:admin user when using 'oc', run\n    export KUBECONFIG=%s", kubeconfig)
	in.log.Infof("Access the OpenShift web-console here: https://console-openshift-console.apps.%s", ic.clusterDomain())
	if in.skipPasswordPrint {
		in.log.Infof("Credentials omitted, if necessary verify the %s file", pwFile)
	} else {
		in.log.Infof("Login to the console with user: %q, and password: %q", "kubeadmin", string(pw))
	}
	in.log.Infof("Time elapsed: %s", in.elapsed())
	return nil
}
