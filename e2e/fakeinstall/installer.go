package fakeinstall

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Environment variables that steer the fake.
const (
	// EnvVersion overrides the version `version` prints and the cluster runs.
	EnvVersion = "FAKE_OPENSHIFT_INSTALL_VERSION"
	// EnvReleaseImage overrides the release image `version` prints.
	EnvReleaseImage = "FAKE_OPENSHIFT_INSTALL_RELEASE_IMAGE"
	// EnvStageDelay is how long each stage takes (Go duration, default 200ms).
	EnvStageDelay = "FAKE_OPENSHIFT_INSTALL_STAGE_DELAY"
	// EnvFail names the stage that fails: manifests, infrastructure,
	// bootstrap, install, operators or interrupted.
	EnvFail = "FAKE_OPENSHIFT_INSTALL_FAIL"
	// EnvFailOnce=1 makes EnvFail fire only once per cluster.
	EnvFailOnce = "FAKE_OPENSHIFT_INSTALL_FAIL_ONCE"
	// EnvKubeconfig is the bed's admin kubeconfig: the API server the cluster
	// "comes up" on.
	EnvKubeconfig = "FAKE_OPENSHIFT_INSTALL_KUBECONFIG"
	// EnvRegistry is the registry folder (default DIR/../.fake-aws).
	EnvRegistry = "FAKE_OPENSHIFT_INSTALL_REGISTRY"
	// EnvPreserveBootstrap is the real installer's switch: when set to anything,
	// create cluster leaves the bootstrap resources in place after bootstrapping
	// (cmd/openshift-install/create.go, OPENSHIFT_INSTALL_PRESERVE_BOOTSTRAP).
	EnvPreserveBootstrap = "OPENSHIFT_INSTALL_PRESERVE_BOOTSTRAP"
	// EnvKubeadminPassword, when set, is the kubeadmin password create cluster generates
	// (tests plant a known value to scan outputs for it); by default a random one.
	EnvKubeadminPassword = "FAKE_OPENSHIFT_INSTALL_KUBEADMIN_PASSWORD"
)

// Exit codes of the real installer (cmd/openshift-install/command).
const (
	ExitError              = 1
	ExitInstallConfigError = 3
	ExitInfrastructure     = 4
	ExitBootstrap          = 5
	ExitInstall            = 6
	ExitOperatorsUnstable  = 7
	ExitInterrupted        = 8
)

// DefaultVersion is the version the fake claims to be.
const DefaultVersion = "4.20.8"

// DefaultStageDelay is the duration of each stage.
const DefaultStageDelay = 200 * time.Millisecond

// builtFromCommit is what `version` prints as the commit.
const builtFromCommit = "0123abcd9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b"

// failExitCodes maps EnvFail values to the exit code of that failure.
var failExitCodes = map[string]int{
	StageManifests:      ExitInstallConfigError,
	StageInfrastructure: ExitInfrastructure,
	StageBootstrap:      ExitBootstrap,
	StageInstall:        ExitInstall,
	StageOperators:      ExitOperatorsUnstable,
	FailInterrupted:     ExitInterrupted,
	// SIGINT at two more moments of create cluster.
	FailInterruptedBootstrap:         ExitInterrupted,
	FailInterruptedBootstrapComplete: ExitInterrupted,
}

// errInterrupted is the cancellation cause of a SIGINT or SIGTERM.
var errInterrupted = errors.New("interrupted")

// exitError ends the invocation with code; its message is already logged.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return fmt.Sprintf("exit %d: %s", e.code, e.msg) }

// settings is what the environment says.
type settings struct {
	version      string
	releaseImage string
	delay        time.Duration
	fail         string
	failOnce     bool
	kubeconfig   string
	registryDir  string
	// preserveBootstrap is OPENSHIFT_INSTALL_PRESERVE_BOOTSTRAP.
	preserveBootstrap bool
	// password is FAKE_OPENSHIFT_INSTALL_KUBEADMIN_PASSWORD.
	password string
}

func readSettings(getenv func(string) string) (settings, error) {
	s := settings{version: DefaultVersion, delay: DefaultStageDelay}
	if v := getenv(EnvVersion); v != "" {
		s.version = v
	}
	s.releaseImage = getenv(EnvReleaseImage)
	if s.releaseImage == "" {
		sum := sha256.Sum256([]byte("ocp-release:" + s.version))
		s.releaseImage = "release.rehearsal.invalid/openshift-release-dev/ocp-release@sha256:" + hex.EncodeToString(sum[:])
	}
	if v := getenv(EnvStageDelay); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return s, fmt.Errorf("invalid %s %q: want a Go duration such as 200ms", EnvStageDelay, v)
		}
		s.delay = d
	}
	s.fail = getenv(EnvFail)
	if _, ok := failExitCodes[s.fail]; s.fail != "" && !ok {
		return s, fmt.Errorf("invalid %s %q: want one of manifests, infrastructure, bootstrap, install, operators, %s, %s, %s",
			EnvFail, s.fail, FailInterrupted, FailInterruptedBootstrap, FailInterruptedBootstrapComplete)
	}
	s.preserveBootstrap = getenv(EnvPreserveBootstrap) != ""
	if v := getenv(EnvFailOnce); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return s, fmt.Errorf("invalid %s %q: %w", EnvFailOnce, v, err)
		}
		s.failOnce = b
	}
	s.kubeconfig = getenv(EnvKubeconfig)
	s.registryDir = getenv(EnvRegistry)
	s.password = getenv(EnvKubeadminPassword)
	return s, nil
}

// installer is one invocation of the fake.
type installer struct {
	dir      string // absolute --dir
	dirArg   string // --dir as given, for messages that echo it
	args     []string
	settings settings
	log      *logger
	reg      Registry
	now      func() time.Time
	start    time.Time
	recorded bool
	// skipPasswordPrint is create cluster's --skip-password-print.
	skipPasswordPrint bool
}

// recordInvocation appends this invocation to invocations.jsonl, once.
func (in *installer) recordInvocation(infraID string) error {
	if in.recorded {
		return nil
	}
	in.recorded = true
	return in.reg.appendInvocation(Invocation{
		Time: in.now().UTC(), PID: os.Getpid(), Args: in.args, InfraID: infraID, Dir: in.dir,
	})
}

// sleep waits d, or returns the context's error (an interrupt).
func (in *installer) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// interrupted logs what the real installer logs on SIGINT and returns the
// exit code 8 error.
func (in *installer) interrupted() error {
	in.log.Warnf("Received interrupt signal")
	return &exitError{code: ExitInterrupted, msg: "interrupted"}
}

// injected reports whether EnvFail makes stage fail now. With EnvFailOnce
// the failure fires once per cluster (name and base domain, so a destroy
// and re-create, which makes a new infraID, gets past it).
func (in *installer) injected(stage string, ic *InstallConfig, infraID string) (bool, error) {
	if in.settings.fail != stage {
		return false, nil
	}
	if !in.settings.failOnce {
		return true, nil
	}
	fire, err := in.reg.claimFailOnce(ic.clusterDomain(), stage, infraID, in.now())
	if err != nil {
		return false, err
	}
	if !fire {
		in.log.Debugf("%s=%s already fired once for %s; not failing again", EnvFail, stage, ic.clusterDomain())
	}
	return fire, nil
}

// elapsed renders the run time like the installer's timer summary.
func (in *installer) elapsed() string {
	return in.now().Sub(in.start).Round(time.Second).String()
}

func (in *installer) path(parts ...string) string {
	return filepath.Join(append([]string{in.dir}, parts...)...)
}
