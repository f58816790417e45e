package fakeinstall

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The stages of an installation, in order. A Cluster's Stage is the last one
// that completed.
const (
	StageManifests      = "manifests"
	StageInfrastructure = "infrastructure"
	StageBootstrap      = "bootstrap"
	StageInstall        = "install"
	StageOperators      = "operators"
)

// Extra FAKE_OPENSHIFT_INSTALL_FAIL values that make the fake behave as if
// SIGINT arrived at one moment of `create cluster`: during the install stage,
// while waiting for bootstrapping, or right after bootstrapping completed and
// before the bootstrap resources were destroyed.
const (
	FailInterrupted                  = "interrupted"
	FailInterruptedBootstrap         = "interrupted-bootstrap"
	FailInterruptedBootstrapComplete = "interrupted-bootstrap-complete"
)

// Stages lists the stages in order.
var Stages = []string{StageManifests, StageInfrastructure, StageBootstrap, StageInstall, StageOperators}

// stageIndex returns the position of stage in Stages, or -1 for "" or an
// unknown name.
func stageIndex(stage string) int { return slices.Index(Stages, stage) }

// Cluster is the registry's record of one cluster (one infraID): what the
// fake "AWS account" holds. It is written atomically after every change.
type Cluster struct {
	InfraID     string `json:"infraID"`
	ClusterID   string `json:"clusterID"`
	ClusterName string `json:"clusterName"`
	BaseDomain  string `json:"baseDomain"`
	Region      string `json:"region"`
	// AssetsDir is the absolute --dir of the invocation that created the record.
	AssetsDir string `json:"assetsDir"`
	// Stage is the furthest stage that completed ("" before manifests).
	Stage string `json:"stage"`
	// InProgress is the stage that started and has not finished: set while
	// a process runs it, and left behind by a kill or a failure.
	InProgress string `json:"inProgress,omitempty"`
	// CreateClusterInvocations counts `create cluster` runs for this infraID.
	CreateClusterInvocations int `json:"createClusterInvocations"`
	// LastFailure is the most recent failure (injected or not), if any.
	LastFailure *Failure `json:"lastFailure,omitempty"`
	Destroyed   bool     `json:"destroyed"`
	// Applied lists the objects the bootstrap stage applied to the bed.
	Applied []ObjectRef `json:"applied,omitempty"`
	// Bootstrap is what the infrastructure stage made for the bootstrap machine and what
	// is still there of it: nil before the infrastructure stage and once it was removed
	// (by create cluster after bootstrapping, destroy bootstrap, or destroy cluster).
	Bootstrap *BootstrapResources `json:"bootstrap,omitempty"`
	// APIServer is the bed's API server URL once the API is "up".
	APIServer   string     `json:"apiServer,omitempty"`
	CreatedAt   time.Time  `json:"createdAt"`
	UpdatedAt   time.Time  `json:"updatedAt"`
	DestroyedAt *time.Time `json:"destroyedAt,omitempty"`
}

// BootstrapResources are the AWS resources that exist only for bootstrapping, as the
// installer (4.16+, Cluster API) makes them: the bootstrap Machine and its EC2 instance
// (capiutils.GenerateBoostrapMachineName: <infraID>-bootstrap), the "Bootstrap SSH
// Access" ingress rule on the control-plane security group
// (pkg/asset/manifests/aws/cluster.go BootstrapSSHDescription), and the ignition bucket
// (GetIgnitionBucketName: openshift-bootstrap-data-<infraID>). `destroy bootstrap`
// removes exactly these (pkg/infrastructure/clusterapi/clusterapi.go DestroyBootstrap,
// pkg/infrastructure/aws/clusterapi/aws.go DestroyBootstrap and PostDestroy).
type BootstrapResources struct {
	Machine        string `json:"machine"`
	InstanceID     string `json:"instanceID"`
	SecurityGroup  string `json:"securityGroup"`
	SSHRule        string `json:"sshRule"`
	IgnitionBucket string `json:"ignitionBucket"`
}

// Names lists the resources, for messages and checks.
func (b *BootstrapResources) Names() []string {
	if b == nil {
		return nil
	}
	return []string{
		"instance " + b.InstanceID + " (" + b.Machine + ")",
		"security group rule \"" + b.SSHRule + "\" on " + b.SecurityGroup,
		"S3 bucket " + b.IgnitionBucket,
	}
}

// BootstrapLeft lists the bootstrap resources of a live cluster that are still there.
func (c *Cluster) BootstrapLeft() []string {
	if c.Destroyed {
		return nil
	}
	return c.Bootstrap.Names()
}

// Failure records why an invocation stopped with a non-zero exit code.
type Failure struct {
	Stage    string    `json:"stage"`
	ExitCode int       `json:"exitCode"`
	Message  string    `json:"message"`
	Time     time.Time `json:"time"`
}

// ObjectRef names one object applied to the bed.
type ObjectRef struct {
	Group     string `json:"group"`
	Version   string `json:"version"`
	Resource  string `json:"resource"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// Reached reports whether stage completed.
func (c *Cluster) Reached(stage string) bool {
	return stageIndex(c.Stage) >= stageIndex(stage)
}

// Started reports whether stage was ever started (completed, in progress,
// or failed), i.e. whether it may have left resources behind.
func (c *Cluster) Started(stage string) bool {
	i := stageIndex(stage)
	if stageIndex(c.Stage) >= i || stageIndex(c.InProgress) >= i {
		return true
	}
	return c.LastFailure != nil && stageIndex(c.LastFailure.Stage) >= i
}

// Invocation is one line of invocations.jsonl: every run of the fake.
type Invocation struct {
	Time    time.Time `json:"time"`
	PID     int       `json:"pid"`
	Args    []string  `json:"args"`
	InfraID string    `json:"infraID"`
	Dir     string    `json:"dir"`
}

// Command returns the sub-command words of the invocation ("create cluster",
// "wait-for install-complete", ...), without flags and their values.
func (inv Invocation) Command() string {
	var words []string
	for i := 0; i < len(inv.Args); i++ {
		a := inv.Args[i]
		if strings.HasPrefix(a, "-") {
			if !strings.Contains(a, "=") && (a == "--dir" || a == "--log-level") {
				i++ // skip the flag's value
			}
			continue
		}
		words = append(words, a)
	}
	return strings.Join(words, " ")
}

// Registry is the folder that plays the AWS account: one JSON file per
// infraID, invocations.jsonl, and the fail-once markers.
type Registry struct {
	Dir string
}

// InvocationsFile is the name of the invocation log inside the registry.
const InvocationsFile = "invocations.jsonl"

func (r Registry) clusterPath(infraID string) string {
	return filepath.Join(r.Dir, infraID+".json")
}

// Cluster returns the record of infraID, or nil if there is none.
func (r Registry) Cluster(infraID string) (*Cluster, error) {
	data, err := os.ReadFile(r.clusterPath(infraID))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the registry record of %s: %w", infraID, err)
	}
	var c Cluster
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("parsing the registry record of %s: %w", infraID, err)
	}
	return &c, nil
}

// Clusters returns every record in the registry.
func (r Registry) Clusters() ([]*Cluster, error) {
	entries, err := os.ReadDir(r.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing the registry %s: %w", r.Dir, err)
	}
	var out []*Cluster
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || e.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		c, err := r.Cluster(name)
		if err != nil {
			return nil, err
		}
		if c != nil {
			out = append(out, c)
		}
	}
	return out, nil
}

// save writes c atomically, stamping UpdatedAt.
func (r Registry) save(c *Cluster, now time.Time) error {
	c.UpdatedAt = now
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the registry record of %s: %w", c.InfraID, err)
	}
	return writeFileAtomic(r.clusterPath(c.InfraID), append(data, '\n'), 0o644)
}

// appendInvocation appends one line to invocations.jsonl with O_APPEND (one
// write, so concurrent runs do not interleave) and fsyncs it.
func (r Registry) appendInvocation(inv Invocation) error {
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return fmt.Errorf("creating the registry %s: %w", r.Dir, err)
	}
	line, err := json.Marshal(inv)
	if err != nil {
		return fmt.Errorf("encoding the invocation: %w", err)
	}
	path := filepath.Join(r.Dir, InvocationsFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("appending to %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	return f.Close()
}

// Invocations reads invocations.jsonl. A torn last line (a kill between
// write and fsync cannot tear a single write, but be lenient) is skipped.
func (r Registry) Invocations() ([]Invocation, error) {
	data, err := os.ReadFile(filepath.Join(r.Dir, InvocationsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the invocations: %w", err)
	}
	var out []Invocation
	for line := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		var inv Invocation
		if err := json.Unmarshal([]byte(line), &inv); err != nil {
			continue
		}
		out = append(out, inv)
	}
	return out, nil
}

// claimFailOnce reports whether the one-shot failure of stage for cluster
// key has not fired yet, and marks it fired. The marker is created with
// O_EXCL, so exactly one invocation ever wins.
func (r Registry) claimFailOnce(key, stage, infraID string, now time.Time) (bool, error) {
	dir := filepath.Join(r.Dir, "fail-once")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("creating %s: %w", dir, err)
	}
	path := filepath.Join(dir, key+"-"+stage+".json")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("creating the fail-once marker %s: %w", path, err)
	}
	data, _ := json.Marshal(map[string]any{"infraID": infraID, "stage": stage, "time": now, "pid": os.Getpid()})
	_, werr := f.Write(append(data, '\n'))
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return false, fmt.Errorf("writing the fail-once marker %s: %w", path, err)
	}
	return true, syncDir(dir)
}
