//go:build e2e

package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rhysd/actionlint"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/harness"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
)

// workflowRun plays a GitHub Actions runner for one job of the kit's workflow
// (docs/ci/github/rhoai-bootstrap.yaml), parsed with actionlint's parser, not copied:
// every run: step's script runs as the runner runs it (`bash --noprofile --norc -eo
// pipefail`, for `shell: bash`), in the checked-out repository, with the job's and the
// step's env, ${{ }} expressions filled from the contexts below, GITHUB_ENV carried from
// step to step (NAME=value lines, as https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-commands#setting-an-environment-variable
// describes), GITHUB_STEP_SUMMARY, RUNNER_TEMP and GITHUB_ACTIONS=true. A step whose
// `if:` is not `always()` is skipped after a failure, as success() does.
//
// What the bed cannot run is stood in for, each for what its action does:
// actions/checkout (the repository folder below), aws-actions/configure-aws-credentials
// (the bed's AWS credentials and endpoint are in the environment, as the action exports
// the role's), actions/setup-go and the "Install rhoai-bootstrap" step (id tool: go
// install from the module proxy; the test's build is on PATH instead), and
// actions/upload-artifact (each path it would upload must exist). Any other uses: fails.
type workflowRun struct {
	t        *testing.T
	repo     string
	temp     string
	env      []string
	contexts map[string]map[string]string
}

type stepResult struct {
	id, name string
	code     int
	stderr   string
	skipped  bool
}

var expression = regexp.MustCompile(`\$\{\{\s*([a-z_]+)\.([A-Za-z0-9_]+)\s*\}\}`)

// expand fills ${{ context.name }}; any other expression fails the test, so the
// workflow cannot grow one this runner would silently misread.
func (w *workflowRun) expand(s string) string {
	out := expression.ReplaceAllStringFunc(s, func(m string) string {
		sub := expression.FindStringSubmatch(m)
		v, ok := w.contexts[sub[1]][sub[2]]
		require.True(w.t, ok, "no value for %s in the test's contexts", m)
		return v
	})
	require.NotContains(w.t, out, "${{", "an expression the test's runner does not evaluate: %q", s)
	return out
}

func (w *workflowRun) envOf(e *actionlint.Env) []string {
	if e == nil {
		return nil
	}
	var out []string
	for _, v := range e.Vars {
		out = append(out, v.Name.Value+"="+w.expand(v.Value.Value))
	}
	return out
}

// readGitHubEnv reads the NAME=value lines a step appended to GITHUB_ENV.
func (w *workflowRun) readGitHubEnv(path string) []string {
	b, err := os.ReadFile(path)
	require.NoError(w.t, err)
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l == "" {
			continue
		}
		require.Contains(w.t, l, "=", "GITHUB_ENV line the test's runner does not read: %q", l)
		out = append(out, l)
	}
	return out
}

func (w *workflowRun) job(ctx context.Context, j *actionlint.Job, summary string) []stepResult {
	t := w.t
	githubEnv := filepath.Join(w.temp, "github-env")
	require.NoError(t, os.WriteFile(githubEnv, nil, 0o600))
	jobEnv := append(append([]string{}, w.env...), w.envOf(j.Env)...)
	jobEnv = append(jobEnv, "GITHUB_ACTIONS=true", "CI=true", "RUNNER_TEMP="+w.temp, "GITHUB_WORKSPACE="+w.repo,
		"GITHUB_ENV="+githubEnv, "GITHUB_STEP_SUMMARY="+summary)
	var results []stepResult
	failed := false
	for _, s := range j.Steps {
		r := stepResult{}
		if s.ID != nil {
			r.id = s.ID.Value
		}
		if s.Name != nil {
			r.name = s.Name.Value
		}
		if failed && (s.If == nil || s.If.Value != "always()") {
			r.skipped = true
			results = append(results, r)
			continue
		}
		switch e := s.Exec.(type) {
		case *actionlint.ExecAction:
			uses := e.Uses.Value
			switch {
			case strings.HasPrefix(uses, "actions/checkout@"), strings.HasPrefix(uses, "aws-actions/configure-aws-credentials@"),
				strings.HasPrefix(uses, "actions/setup-go@"):
			case strings.HasPrefix(uses, "actions/upload-artifact@"):
				for _, in := range e.Inputs {
					if in.Name.Value != "path" {
						continue
					}
					for _, p := range strings.Fields(w.expand(in.Value.Value)) {
						assert.FileExists(t, p, "the artifact step uploads it")
					}
				}
			default:
				t.Fatalf("step %q uses %s, which the test's runner does not stand in for", r.name, uses)
			}
		case *actionlint.ExecRun:
			if r.id == "tool" {
				break // the test's build of rhoai-bootstrap is on PATH
			}
			script := filepath.Join(w.temp, "step-"+r.id+".sh")
			require.NoError(t, os.WriteFile(script, []byte(e.Run.Value), 0o600))
			env := append(append(append([]string{}, jobEnv...), w.readGitHubEnv(githubEnv)...), w.envOf(s.Env)...)
			sctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
			cmd := exec.CommandContext(sctx, "bash", "--noprofile", "--norc", "-eo", "pipefail", script)
			cmd.Dir, cmd.Env = w.repo, env
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stderr, &stderr
			err := cmd.Run()
			cancel()
			r.code, r.stderr = cmd.ProcessState.ExitCode(), stderr.String()
			if err != nil {
				failed = true
				t.Logf("step %q exited %d:\n%s", r.name, r.code, r.stderr)
			}
		}
		results = append(results, r)
	}
	return results
}

func stepByID(t *testing.T, rs []stepResult, id string) stepResult {
	for _, r := range rs {
		if r.id == id {
			return r
		}
	}
	t.Fatalf("no step %q", id)
	return stepResult{}
}

// TestCIWorkflowOnTheBed runs the kit's workflow against the bed: the install job, with
// the workflow's own flags and S3 state layout (moto's S3, SSE-KMS), then the scheduled
// job (certificates renew, then plan for drift) twice: on the converged cluster, and
// after a GPU MachineSet was deleted behind the bootstrap's back.
func TestCIWorkflowOnTheBed(t *testing.T) {
	t.Parallel()
	r := rehearsal(t, testbed.BedOverlay)
	ctx := context.Background()
	b, err := os.ReadFile(filepath.Join(r.Root, "docs", "ci", "github", "rhoai-bootstrap.yaml"))
	require.NoError(t, err)
	wf, errs := actionlint.Parse(b)
	require.Empty(t, errs)

	// The repository the workflow checks out: clusters/rhoai-local.yaml, the rehearsal's
	// file with the pull secret taken from the secret store through the step's file.
	repo := filepath.Join(r.WorkDir, "repo")
	require.NoError(t, os.MkdirAll(filepath.Join(repo, "clusters"), 0o755))
	local, err := os.ReadFile(r.Config())
	require.NoError(t, err)
	examples := filepath.Dir(r.Config())
	file := strings.NewReplacer(
		"pullSecretFile: local/pull-secret.json", "pullSecretFile: ${RHOAI_PULL_SECRET_FILE}",
		"sshPublicKeyFile: local/id_ed25519.pub", "sshPublicKeyFile: "+filepath.Join(examples, "local", "id_ed25519.pub"),
	).Replace(string(local))
	require.Contains(t, file, "${RHOAI_PULL_SECRET_FILE}")
	require.NoError(t, os.WriteFile(filepath.Join(repo, "clusters", "rhoai-local.yaml"), []byte(file), 0o644))
	pullSecret, err := os.ReadFile(filepath.Join(examples, "local", "pull-secret.json"))
	require.NoError(t, err)

	s3c := s3.NewFromConfig(r.Bed.AWSConfig(), func(o *s3.Options) { o.UsePathStyle = true })
	_, err = s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("ci-state")})
	require.NoError(t, err)

	temp := filepath.Join(r.WorkDir, "runner-temp")
	require.NoError(t, os.MkdirAll(temp, 0o700))
	w := &workflowRun{t: t, repo: repo, temp: temp,
		env: append(r.Env(), "PATH="+r.BinDir+string(os.PathListSeparator)+os.Getenv("PATH")),
		contexts: map[string]map[string]string{
			"inputs":  {"cluster": "rhoai-local"},
			"matrix":  {"cluster": "rhoai-local"},
			"vars":    {"RHOAI_STATE_BUCKET": "ci-state", "RHOAI_STATE_KMS_KEY": "alias/rhoai-state", "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/rhoai-bootstrap", "AWS_REGION": "us-east-1", "RHOAI_BOOTSTRAP_VERSION": "v0.0.0", "RHOAI_CLUSTERS": `["rhoai-local"]`},
			"secrets": {"OPENSHIFT_PULL_SECRET": string(pullSecret), "GOOGLE_CLIENT_SECRET": "rehearsal-client-secret-value"},
			"runner":  {"temp": temp},
			"github":  {"run_id": "4242", "run_attempt": "1"},
		}}
	for _, name := range []string{"install", "scheduled"} {
		j := wf.Jobs[name]
		require.NotNil(t, j, name)
		assert.Equal(t, "rhoai-bootstrap-rhoai-local", w.expand(j.Concurrency.Group.Value), "one concurrency group per cluster")
		assert.False(t, j.Concurrency.CancelInProgress.Value, "a queued run is not dropped")
	}

	// install: exit 0, the events as JSON lines, the state in S3 under the cluster's
	// prefix, encrypted with the workflow's KMS key.
	summary := filepath.Join(temp, "summary.md")
	steps := w.job(ctx, wf.Jobs["install"], summary)
	install := stepByID(t, steps, "install")
	require.Zero(t, install.code, install.stderr)
	events, err := os.ReadFile(filepath.Join(temp, "install.jsonl"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(events)), "\n")
	var last harness.Event
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &last))
	assert.Equal(t, "run-finished", last.Type)
	assert.Equal(t, "done", last.Outcome)
	head, err := s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("ci-state"), Key: aws.String("rhoai-local/state.json")})
	require.NoError(t, err)
	assert.Equal(t, "aws:kms", string(head.ServerSideEncryption))
	assert.Equal(t, "alias/rhoai-state", aws.ToString(head.SSEKMSKeyId))
	assert.NotContains(t, install.stderr, "::error")
	st, err := os.Stat(filepath.Join(temp, "pull-secret.json"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	// The scheduled job on the converged cluster: nothing due, no drift.
	steps = w.job(ctx, wf.Jobs["scheduled"], summary)
	renew := stepByID(t, steps, "renew")
	require.Zero(t, renew.code, renew.stderr)
	renewed, err := os.ReadFile(filepath.Join(temp, "renew.jsonl"))
	require.NoError(t, err)
	assert.Contains(t, string(renewed), `"phase":"certificates"`)
	drift := stepByID(t, steps, "drift")
	require.Zero(t, drift.code, drift.stderr)
	sum, err := os.ReadFile(summary)
	require.NoError(t, err)
	assert.Contains(t, string(sum), "### rhoai-local")
	assert.Contains(t, string(sum), "| root-app | done |")
	assert.Contains(t, string(sum), "Cost: $")

	// Drift: a GPU pool's MachineSet deleted behind the bootstrap's back. The drift step
	// fails, naming the phase, and the plan's own ::warning annotation says what changed.
	dyn, err := dynamic.NewForConfig(r.Bed.Config())
	require.NoError(t, err)
	machineSets := dyn.Resource(schema.GroupVersionResource{Group: "machine.openshift.io", Version: "v1beta1", Resource: "machinesets"}).Namespace("openshift-machine-api")
	list, err := machineSets.List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	deleted := ""
	for _, ms := range list.Items {
		if strings.Contains(ms.GetName(), "-t4-shared-") {
			deleted = ms.GetName()
			require.NoError(t, machineSets.Delete(ctx, ms.GetName(), metav1.DeleteOptions{}))
			break
		}
	}
	require.NotEmpty(t, deleted, "a t4-shared MachineSet")
	steps = w.job(ctx, wf.Jobs["scheduled"], summary)
	drift = stepByID(t, steps, "drift")
	assert.Equal(t, 1, drift.code, drift.stderr)
	assert.Contains(t, drift.stderr, "drift in rhoai-local: gpu-pools")
	assert.Contains(t, drift.stderr, "::warning title=rhoai-bootstrap plan%3A gpu-pools would change::")
	assert.Contains(t, drift.stderr, deleted)
	assert.False(t, stepByID(t, steps, "renew").skipped)
	for _, s := range steps {
		if s.name == "Debug log" {
			assert.False(t, s.skipped, "the debug log is uploaded after a failure too")
		}
	}
	t.Log(fmt.Sprintf("install step: %d events", len(lines)))
}
