package testbed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
)

// snapshotFormat changes whenever what goes into a CRD snapshot changes in a way the
// key below does not see (how CRDs are applied, the etcd layout).
const snapshotFormat = "1"

// startKubeWithCRDs starts the control plane with the bed's CRD sets installed.
//
// Creating some 70 CRDs one by one is most of a bed's start-up (8 of 13 s, nearly all
// of it CPU in the API server), and every test package starts beds. So the first bed
// on a machine saves etcd's data right after the CRDs are in, under a key that hashes
// the Kubernetes version and every CRD file; later beds start etcd on a copy of it and
// only wait for the API server to serve what it found. The seed is never in the
// snapshot: its objects carry fresh names, passwords and timestamps per bed.
func (b *Bed) startKubeWithCRDs(ctx context.Context) error {
	if len(b.opts.CRDSets) == 0 {
		return b.timed("kube-apiserver+etcd", func() error { return b.startKube(ctx, "") })
	}
	key, err := crdSnapshotKey(ctx, b.paths.Kubernetes, b.opts.CRDSets)
	if err != nil {
		return err
	}
	snap := filepath.Join(b.paths.Root, "etcd-snapshots", key)
	if _, err := os.Stat(snap); err == nil {
		return b.timed("kube-apiserver+etcd+crds (snapshot)", func() error {
			if err := b.startKube(ctx, snap); err != nil {
				return err
			}
			return b.waitCRDsServed(ctx)
		})
	}
	// Not there yet: a control plane of its own installs the CRDs and stops, and its
	// data becomes the snapshot this bed (and every later one) starts from.
	if err := b.timed("crd snapshot made", func() error { return b.makeSnapshot(ctx, snap) }); err != nil {
		return err
	}
	return b.timed("kube-apiserver+etcd+crds (snapshot)", func() error {
		if err := b.startKube(ctx, snap); err != nil {
			return err
		}
		return b.waitCRDsServed(ctx)
	})
}

func (b *Bed) makeSnapshot(ctx context.Context, snap string) (err error) {
	dir, err := os.MkdirTemp("", "rhoai-testbed-snapshot-")
	if err != nil {
		return err
	}
	maker := &Bed{opts: b.opts, paths: b.paths, workDir: dir}
	defer func() {
		if maker.kube != nil {
			err = errors.Join(err, maker.kube.stop())
		}
		for _, c := range maker.closers {
			_ = c()
		}
		os.RemoveAll(dir)
	}()
	if err := maker.startKube(ctx, ""); err != nil {
		return err
	}
	for _, set := range b.opts.CRDSets {
		if err := InstallCRDs(ctx, maker.config, set); err != nil {
			return fmt.Errorf("crds/%s: %w", set, err)
		}
	}
	// etcd's files are consistent only once it has stopped.
	if err := maker.stopKube(); err != nil {
		return fmt.Errorf("stopping the control plane that made the CRD snapshot: %w", err)
	}
	return saveSnapshot(filepath.Join(dir, "etcd"), snap)
}

// crdSnapshotKey hashes what a CRD snapshot depends on.
func crdSnapshotKey(ctx context.Context, kubernetesDir string, sets []CRDSet) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "format %s\nkubernetes %s\n", snapshotFormat, filepath.Base(kubernetesDir))
	for _, set := range sets {
		files, err := crdFiles(ctx, set)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "set %s %d\n", set, len(files))
		for _, f := range files {
			fmt.Fprintf(h, "%s %d\n", f.name, len(f.data))
			h.Write(f.data)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// saveSnapshot copies a stopped etcd's data folder into the cache. Beds of other test
// processes may save the same snapshot at the same time: each copies to a folder of
// its own and renames it into place; the first one wins and the others drop theirs.
func saveSnapshot(data, snap string) error {
	if err := os.MkdirAll(filepath.Dir(snap), 0o700); err != nil {
		return fmt.Errorf("creating the CRD snapshot cache: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(snap), ".saving-")
	if err != nil {
		return fmt.Errorf("saving the CRD snapshot: %w", err)
	}
	if err := os.Remove(tmp); err != nil {
		return err
	}
	if err := copyDir(data, tmp); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("saving the CRD snapshot: %w", err)
	}
	if err := os.Rename(tmp, snap); err != nil {
		os.RemoveAll(tmp)
		if _, statErr := os.Stat(snap); statErr == nil {
			return nil // saved by someone else meanwhile
		}
		return fmt.Errorf("saving the CRD snapshot: %w", err)
	}
	return nil
}

// copyDir copies a folder tree; etcd wants its folders private.
func copyDir(from, to string) error {
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		return err
	}
	return filepath.WalkDir(to, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o600)
		if d.IsDir() {
			mode = 0o700
		}
		return os.Chmod(p, mode)
	})
}

// waitCRDsServed waits until discovery lists every resource of every CRD in etcd: an
// API server started on existing data registers them in the background.
func (b *Bed) waitCRDsServed(ctx context.Context) error {
	dyn, err := dynamic.NewForConfig(b.config)
	if err != nil {
		return err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(b.config)
	if err != nil {
		return err
	}
	var missing []string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := dyn.Resource(crdGVR).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil //nolint:nilerr // transient; the timeout reports it
		}
		_, resources, err := dc.ServerGroupsAndResources()
		if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
			return false, nil //nolint:nilerr // transient; the timeout reports it
		}
		served := map[string]bool{}
		for _, rl := range resources {
			for _, r := range rl.APIResources {
				served[rl.GroupVersion+"/"+r.Name] = true
			}
		}
		missing = missing[:0]
		for _, crd := range list.Items {
			group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
			plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
			versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
			for _, v := range versions {
				m, _ := v.(map[string]any)
				if s, _ := m["served"].(bool); !s {
					continue
				}
				if gvr := fmt.Sprintf("%s/%v/%s", group, m["name"], plural); !served[gvr] {
					missing = append(missing, gvr)
				}
			}
		}
		return len(list.Items) > 0 && len(missing) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the API server to serve the CRDs it found in etcd (missing: %v): %w", missing, err)
	}
	return nil
}
