package fakeinstall

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"time"
)

// Names the real installer gives the bootstrap resources on AWS.
const (
	// bootstrapSSHDescription is the ingress rule that lets SSH reach the bootstrap
	// node (openshift/installer pkg/asset/manifests/aws/cluster.go).
	bootstrapSSHDescription = "Bootstrap SSH Access"
	// capiGuestsNamespace holds the installer's own Cluster API objects
	// (pkg/asset/manifests/capiutils: Namespace).
	capiGuestsNamespace = "openshift-cluster-api-guests"
	// bootstrapMachineDeletionTimeout is what DestroyBootstrap announces.
	bootstrapMachineDeletionTimeout = 5 * time.Minute
)

// newBootstrapResources names what the infrastructure stage makes for bootstrapping, with
// IDs derived from the infraID so every run of the same cluster reports the same ones.
func newBootstrapResources(infraID string) *BootstrapResources {
	sum := sha256.Sum256([]byte(infraID + "/bootstrap"))
	return &BootstrapResources{
		Machine:        infraID + "-bootstrap",
		InstanceID:     "i-" + hex.EncodeToString(sum[:])[:17],
		SecurityGroup:  infraID + "-controlplane",
		SSHRule:        bootstrapSSHDescription,
		IgnitionBucket: "openshift-bootstrap-data-" + infraID,
	}
}

// removeBootstrap deletes the bootstrap resources from the registry the way
// DestroyBootstrap does (openshift/installer pkg/infrastructure/clusterapi/clusterapi.go):
// the SSH rule first (the AWS DestroyBootstrap hook), then the bootstrap Machine with its
// instance, then the ignition bucket (the AWS PostDestroy hook), ending with "Finished
// destroying bootstrap resources". It takes a quarter of a stage and can be interrupted
// before anything is removed; the registry record changes in one atomic write.
func (in *installer) removeBootstrap(ctx context.Context, rec *Cluster) error {
	b := rec.Bootstrap
	in.log.Debugf("Removing Bootstrap SSH security rule...")
	in.log.Infof("Waiting up to %v (until %s) for bootstrap machine deletion %s/%s...",
		bootstrapMachineDeletionTimeout, until(in.now(), bootstrapMachineDeletionTimeout), capiGuestsNamespace, b.Machine)
	if err := in.sleep(ctx, in.settings.delay/4); err != nil {
		return err
	}
	rec.Bootstrap = nil
	if err := in.reg.save(rec, in.now().UTC()); err != nil {
		return err
	}
	in.log.Debugf("Machine deleted: %s", b.Machine)
	in.log.Debugf("Deleted S3 bucket %s", b.IgnitionBucket)
	in.log.Debugf("Finished running post-destroy hook")
	in.log.Infof("Finished destroying bootstrap resources")
	return nil
}

// destroyBootstrap is `destroy bootstrap` (cmd/openshift-install/destroy.go
// newDestroyBootstrapCmd → pkg/destroy/bootstrap.Destroy): it needs metadata.json and
// removes the bootstrap resources. It is not idempotent, as the real one is not: once
// they are gone, the installer's Cluster API objects are gone too (DestroyBootstrap
// deletes the Machine and then cleans its local etcd), and a second run fails looking
// them up. A caller must therefore remember that it destroyed the bootstrap.
func (in *installer) destroyBootstrap(ctx context.Context) error {
	md, err := readMetadata(in.dir)
	if err != nil {
		_ = in.recordInvocation("")
		return fmt.Errorf("failed to load metadata: %w", err)
	}
	if err := in.recordInvocation(md.InfraID); err != nil {
		return err
	}
	rec, err := in.reg.Cluster(md.InfraID)
	if err != nil {
		return err
	}
	if rec == nil || rec.Destroyed || rec.Bootstrap == nil {
		return fmt.Errorf("error destroying bootstrap resources failed during the destroy bootstrap hook: failed to remove bootstrap SSH rule: "+
			"failed to get AWSCluster: awsclusters.infrastructure.cluster.x-k8s.io %q not found", md.InfraID)
	}
	if err := in.removeBootstrap(ctx, rec); err != nil {
		if ctx.Err() != nil {
			return in.interrupted()
		}
		return err
	}
	in.log.Infof("Time elapsed: %s", in.elapsed())
	return nil
}

// gatherBootstrap writes the log bundle the real create cluster gathers from the
// bootstrap machine when bootstrapping fails (cmd/openshift-install/gather.go
// gatherBootstrap: log-bundle-<time 20060102150405>.tar.gz in the asset directory,
// announced as `Bootstrap gather logs captured here "<path>"`). Without a bootstrap
// machine there is nothing to gather from, and the real installer says so.
func (in *installer) gatherBootstrap(rec *Cluster, cause error) (string, error) {
	if rec.Bootstrap == nil {
		return "", fmt.Errorf("failed to gather VM console and bootstrap logs: no bootstrap machine in cluster %s", rec.InfraID)
	}
	in.log.Infof("Pulling VM console logs")
	in.log.Infof("Pulling debug logs from the bootstrap machine")
	id := in.now().Format("20060102150405")
	name := fmt.Sprintf("log-bundle-%s.tar.gz", id)
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	files := []struct{ name, body string }{
		{"bootstrap/journals/bootkube.log", fmt.Sprintf("%s bootkube.sh: bootstrapping cluster %s failed: %v\n", in.now().UTC().Format(time.RFC3339), rec.InfraID, cause)},
		{"bootstrap/failed-units.txt", "bootkube.service\n"},
		{"serial/" + rec.Bootstrap.Machine + "-serial.log", "rhcos login: (fake console)\n"},
	}
	for _, f := range files {
		hdr := &tar.Header{Name: "log-bundle-" + id + "/" + f.name, Mode: 0o644, Size: int64(len(f.body)), ModTime: in.now()}
		if err := tw.WriteHeader(hdr); err != nil {
			return "", fmt.Errorf("failed to combine archives: %w", err)
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			return "", fmt.Errorf("failed to combine archives: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return "", fmt.Errorf("failed to combine archives: %w", err)
	}
	if err := gz.Close(); err != nil {
		return "", fmt.Errorf("failed to combine archives: %w", err)
	}
	path := filepath.Join(in.dir, name)
	if err := writeFileAtomic(path, buf.Bytes(), 0o644); err != nil {
		return "", err
	}
	return path, nil
}
