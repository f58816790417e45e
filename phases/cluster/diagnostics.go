package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/cluster/clusterstate"
)

// Where the diagnostics of failed attempts go, and how many are kept.
const (
	failedPrefix = "installer-failed-"
	keepFailed   = 3
	// logBundleGlob matches the bundle create cluster gathers from the bootstrap machine
	// when bootstrapping fails (openshift/installer cmd/openshift-install/gather.go:
	// log-bundle-<20060102150405>.tar.gz in the asset folder).
	logBundleGlob = "log-bundle-*.tar.gz"
)

// Diagnostic is what one failed attempt left for people to read (kept in the record).
type Diagnostic = clusterstate.FailedAttempt

// describeAttempt says where a failed attempt's folder is and what is known of it. An
// attempt whose run was killed has no exit code (Progress.LastExit -1), and one stopped
// before the installer wrote metadata.json has no infra ID: both are said in words.
func describeAttempt(d Diagnostic) string {
	exit := fmt.Sprintf("exit %d", d.Exit)
	if d.Exit < 0 {
		exit = "stopped before the installer exited"
	}
	infra := "infra ID " + d.InfraID
	if d.InfraID == "" {
		infra = "no infra ID yet"
	}
	s := fmt.Sprintf("the failed attempt (%s, %s) is kept in %s", exit, infra, d.Folder)
	if d.LogBundle != "" {
		s += "; its bootstrap log bundle: " + d.LogBundle
	}
	return s
}

// keepFailedAttempt moves the installer's asset folder aside to
// workDir/installer-failed-<time>/ (0700: it holds the installer's logs), and removes the
// oldest such folders beyond keepFailed. A missing asset folder keeps nothing.
func keepFailedAttempt(workDir, assetDir string, now time.Time) (Diagnostic, error) {
	if _, err := os.Stat(assetDir); errors.Is(err, fs.ErrNotExist) {
		return Diagnostic{}, nil
	}
	name := failedPrefix + now.UTC().Format("20060102T150405Z")
	dst := filepath.Join(workDir, name)
	for i := 2; ; i++ { // two failures within a second keep both
		if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
			break
		}
		dst = filepath.Join(workDir, fmt.Sprintf("%s-%d", name, i))
	}
	if err := os.Rename(assetDir, dst); err != nil {
		return Diagnostic{}, fmt.Errorf("keeping the failed attempt's folder: %w", err)
	}
	if err := os.Chmod(dst, 0o700); err != nil {
		return Diagnostic{}, fmt.Errorf("keeping the failed attempt's folder: %w", err)
	}
	d := Diagnostic{At: now.UTC(), Folder: dst}
	if bundles, _ := filepath.Glob(filepath.Join(dst, logBundleGlob)); len(bundles) > 0 {
		sort.Strings(bundles)
		d.LogBundle = bundles[len(bundles)-1]
	}
	if err := pruneFailed(workDir, keepFailed); err != nil {
		return d, err
	}
	return d, nil
}

// pruneFailed removes all but the newest keep installer-failed-* folders of workDir
// (their names sort by time).
func pruneFailed(workDir string, keep int) error {
	entries, err := os.ReadDir(workDir)
	if err != nil {
		return fmt.Errorf("listing %s: %w", workDir, err)
	}
	var failed []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), failedPrefix) {
			failed = append(failed, e.Name())
		}
	}
	sort.Strings(failed)
	for len(failed) > keep {
		if err := os.RemoveAll(filepath.Join(workDir, failed[0])); err != nil {
			return fmt.Errorf("removing an old failed attempt: %w", err)
		}
		failed = failed[1:]
	}
	return nil
}

// keptAttempts keeps the records whose folders still exist.
func keptAttempts(all []Diagnostic) []Diagnostic {
	var kept []Diagnostic
	for _, x := range all {
		if _, err := os.Stat(x.Folder); err == nil {
			kept = append(kept, x)
		}
	}
	return kept
}

// lastAttempt is the newest kept failed attempt, if any.
func lastAttempt(rec Record) (Diagnostic, bool) {
	if len(rec.FailedAttempts) == 0 {
		return Diagnostic{}, false
	}
	return rec.FailedAttempts[len(rec.FailedAttempts)-1], true
}
