package fakeinstall

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// awsAccount is the account ID in the ARNs destroy reports.
const awsAccount = "123456789012"

// destroyCluster is `destroy cluster`: it needs metadata.json, removes from
// the bed what died with the cluster, marks the cluster destroyed in the
// registry and then deletes the cluster's assets (auth/, metadata.json, the
// state file), as the real installer does after a successful destroy. A
// cluster already destroyed is a no-op that still cleans up the files.
// Error messages start with a capital letter because the real ones do.
func (in *installer) destroyCluster(ctx context.Context) error {
	md, err := readMetadata(in.dir)
	if err != nil {
		_ = in.recordInvocation("")
		return fmt.Errorf("Failed while preparing to destroy cluster: %w", err)
	}
	if err := in.recordInvocation(md.InfraID); err != nil {
		return err
	}
	rec, err := in.reg.Cluster(md.InfraID)
	if err != nil {
		return err
	}
	if rec == nil || rec.Destroyed {
		in.log.Debugf("No resources of cluster %s left to delete", md.InfraID)
	} else {
		if err := in.sleep(ctx, in.settings.delay); err != nil {
			return in.interrupted()
		}
		if rec.APIServer != "" || len(rec.Applied) > 0 { // the API came up on the bed
			if in.settings.kubeconfig == "" {
				return fmt.Errorf("Failed to destroy cluster: %s is not set, so the objects cluster %s applied to the API server cannot be deleted",
					EnvKubeconfig, md.InfraID)
			}
			kube, err := newKubeClient(in.settings.kubeconfig)
			if err != nil {
				return fmt.Errorf("Failed to destroy cluster: %w", err)
			}
			if err := kube.deleteCluster(ctx, md.InfraID, rec.Applied, in.log); err != nil {
				if ctx.Err() != nil {
					return in.interrupted()
				}
				return fmt.Errorf("Failed to destroy cluster: %w", err)
			}
		}
		if rec.Started(StageInfrastructure) {
			in.logDeletedAWS(md, rec.Bootstrap)
		}
		now := in.now().UTC()
		rec.Destroyed, rec.DestroyedAt, rec.InProgress, rec.Bootstrap = true, &now, "", nil
		if err := in.reg.save(rec, now); err != nil {
			return err
		}
	}
	for _, p := range []string{in.path("auth"), in.path(MetadataFile), in.path(StateFile)} {
		if err := os.RemoveAll(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("failed to destroy asset %s: %w", p, err)
		}
	}
	in.log.Infof("Time elapsed: %s", in.elapsed())
	return nil
}

// logDeletedAWS logs the resources a real AWS destroy reports deleting,
// with IDs derived from the infraID so reruns print the same ones; bootstrap
// resources still there go with the rest (destroy cluster finds everything
// tagged with the cluster).
func (in *installer) logDeletedAWS(md *Metadata, bootstrap *BootstrapResources) {
	region := ""
	if md.AWS != nil {
		region = md.AWS.Region
	}
	id := func(kind string, n int) string {
		sum := sha256.Sum256(fmt.Appendf(nil, "%s/%s/%d", md.InfraID, kind, n))
		return hex.EncodeToString(sum[:])[:17]
	}
	for i := range 3 {
		inst := "i-" + id("instance", i)
		in.log.entry(levelInfo, "Deleted", "arn", fmt.Sprintf("arn:aws:ec2:%s:%s:instance/%s", region, awsAccount, inst), "id", inst)
	}
	lb := fmt.Sprintf("net/%s-ext/%s", md.InfraID, id("lb", 0)[:16])
	in.log.entry(levelInfo, "Deleted", "arn", fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:loadbalancer/%s", region, awsAccount, lb), "id", lb)
	for _, role := range []string{"master", "worker"} {
		name := md.InfraID + "-" + role + "-role"
		in.log.entry(levelInfo, "Deleted", "arn", fmt.Sprintf("arn:aws:iam::%s:role/%s", awsAccount, name), "id", name, "name", name)
	}
	if bootstrap != nil {
		in.log.entry(levelInfo, "Deleted", "arn", fmt.Sprintf("arn:aws:ec2:%s:%s:instance/%s", region, awsAccount, bootstrap.InstanceID), "id", bootstrap.InstanceID)
		in.log.entry(levelInfo, "Deleted", "arn", "arn:aws:s3:::"+bootstrap.IgnitionBucket, "id", bootstrap.IgnitionBucket)
	}
	vpc := "vpc-" + id("vpc", 0)
	in.log.entry(levelInfo, "Deleted", "arn", fmt.Sprintf("arn:aws:ec2:%s:%s:vpc/%s", region, awsAccount, vpc), "id", vpc)
}
