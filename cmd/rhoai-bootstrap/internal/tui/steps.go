package tui

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
)

type stepKind int

const (
	textStep stepKind = iota
	choiceStep
	multiStep
)

type option struct{ value, label string }

// step is one question. Its answer is checked by validating the whole cluster built from
// all answers so far and keeping the problems under paths, so the wizard never holds a
// rule of its own that the config API lacks.
type step struct {
	id, title, help string
	kind            stepKind
	// flags answer this question on the command line; when one was given and its answer
	// is valid, the question is not asked.
	flags []string
	paths func(a *answers) []string
	// Text questions.
	get func(a *answers) string
	set func(a *answers, v string) error
	// Choice questions.
	options  func(a *answers) []option
	selected func(a *answers) []string
	choose   func(a *answers, v []string)
	next     func(a *answers) string
	// check looks at what the answer points to (a file), relative to base, the cluster
	// file's folder: a problem the user may still choose to keep (see wizardModel.submit).
	check func(a *answers, base string) string
}

const reviewStep = "review"

func paths(p ...string) func(*answers) []string { return func(*answers) []string { return p } }

func goTo(id string) func(*answers) string { return func(*answers) string { return id } }

// poolPath is the field path of the pool being added.
func poolPath(a *answers, child string) []string {
	p := fmt.Sprintf("spec.gpuPools[%d]", len(a.Pools)-1)
	if child != "" {
		p += "." + child
	}
	return []string{p}
}

func lastPool(a *answers) *configs.GPUPool { return &a.Pools[len(a.Pools)-1] }

func intSetter(f func(a *answers) *int) func(a *answers, v string) error {
	return func(a *answers, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		*f(a) = n
		return nil
	}
}

func one(v string) []string {
	if v == "" {
		return nil
	}
	return []string{v}
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// wizardSteps is the question graph. Its order follows the file: cluster, platform, GPU
// pools, sign-in, certificates, GitOps.
func wizardSteps() map[string]*step {
	steps := []*step{
		{
			id: "name", title: "Cluster name", flags: []string{"name"},
			help:  "A short DNS label; the API becomes api.<name>.<base domain>.",
			paths: paths("metadata.name"),
			get:   func(a *answers) string { return a.Name },
			set:   func(a *answers, v string) error { a.Name = strings.TrimSpace(v); return nil },
			next:  goTo("baseDomain"),
		},
		{
			id: "baseDomain", title: "Base domain", flags: []string{"base-domain"},
			help:  "A DNS domain with a Route53 public hosted zone in this AWS account, e.g. example.com.",
			paths: paths("spec.baseDomain"),
			get:   func(a *answers) string { return a.BaseDomain },
			set:   func(a *answers, v string) error { a.BaseDomain = strings.TrimSpace(v); return nil },
			next:  goTo("region"),
		},
		{
			id: "region", title: "AWS region", kind: choiceStep, flags: []string{"region"},
			help:  "Type to filter. Its availability zones are offered next.",
			paths: paths("spec.platform.aws.region"),
			options: func(*answers) []option {
				opts := make([]option, len(regions))
				for i, r := range regions {
					opts[i] = option{r.Code, fmt.Sprintf("%-15s %s", r.Code, r.Name)}
				}
				return opts
			},
			selected: func(a *answers) []string { return one(a.Region) },
			choose: func(a *answers, v []string) {
				if r := first(v); r != a.Region {
					a.Region, a.Zones = r, nil
				}
			},
			next: goTo("zones"),
		},
		{
			id: "zones", title: "Availability zones", kind: multiStep, flags: []string{"zones"},
			help:  "space toggles a zone, enter accepts. Three zones spread the control plane; GPU pools use all of them unless told otherwise.",
			paths: paths("spec.platform.aws.zones"),
			options: func(a *answers) []option {
				var opts []option
				for _, z := range zonesOf(a.Region) {
					opts = append(opts, option{z, z})
				}
				for _, z := range a.Zones {
					if !slices.ContainsFunc(opts, func(o option) bool { return o.value == z }) {
						opts = append(opts, option{z, z})
					}
				}
				return opts
			},
			selected: func(a *answers) []string { return a.Zones },
			choose:   func(a *answers, v []string) { a.Zones = v },
			next:     goTo("pullSecret"),
		},
		{
			id: "pullSecret", title: "Pull secret file", flags: []string{"pull-secret-file"},
			help:  "Path to the pull secret from console.redhat.com/openshift/install/pull-secret (relative paths are read from the cluster file's folder).",
			paths: paths("spec.openshift.pullSecretFile"),
			get:   func(a *answers) string { return a.PullSecretFile },
			set:   func(a *answers, v string) error { a.PullSecretFile = strings.TrimSpace(v); return nil },
			check: func(a *answers, base string) string { return pullSecretProblem(a.PullSecretFile, base) },
			next:  goTo("sshKey"),
		},
		{
			id: "sshKey", title: "SSH public key file (optional)", flags: []string{"ssh-public-key-file"},
			help:  "Installed on the nodes for debugging; leave empty for none.",
			paths: paths("spec.openshift.sshPublicKeyFile"),
			get:   func(a *answers) string { return a.SSHPublicKeyFile },
			set:   func(a *answers, v string) error { a.SSHPublicKeyFile = strings.TrimSpace(v); return nil },
			check: func(a *answers, base string) string { return sshKeyProblem(a.SSHPublicKeyFile, base) },
			next:  goTo("poolGPU"),
		},
		{
			id: "poolGPU", title: "Add a GPU pool?", kind: choiceStep, flags: []string{"gpu-pool"},
			// The pools so far (from --gpu-pool); a pool just begun is checked question by
			// question instead.
			paths: func(a *answers) []string {
				if a.addingPool {
					return nil
				}
				return []string{"spec.gpuPools"}
			},
			options: func(a *answers) []option {
				opts := []option{{"", "no more GPU pools"}}
				if len(a.Pools) == 0 {
					opts[0].label = "no GPU pools"
				}
				for _, name := range configs.GPUNames() {
					g, ok := configs.Catalog[name]
					if !ok {
						continue // an alias
					}
					opts = append(opts, option{g.Name, fmt.Sprintf("%-5s %-13s %3d GB  %-4s", g.Name, g.DefaultInstanceType, g.MemoryGiB, g.PriceClass)})
				}
				return opts
			},
			selected: func(*answers) []string { return nil },
			choose: func(a *answers, v []string) {
				a.addingPool = first(v) != ""
				if a.addingPool {
					a.Pools = append(a.Pools, configs.GPUPool{GPU: first(v), Access: configs.AccessShared, Min: 0, Max: 1})
				}
			},
			next: func(a *answers) string {
				if a.addingPool {
					return "poolAccess"
				}
				return "oauthClientID"
			},
		},
		{
			id: "poolAccess", title: "Who may use this pool?", kind: choiceStep,
			paths: func(a *answers) []string { return poolPath(a, "access") },
			options: func(*answers) []option {
				return []option{
					{string(configs.AccessShared), "shared   every project may schedule on it"},
					{string(configs.AccessPrivate), "private  only projects given its hardware profile"},
				}
			},
			selected: func(a *answers) []string { return one(string(lastPool(a).Access)) },
			choose:   func(a *answers, v []string) { lastPool(a).Access = configs.Access(first(v)) },
			next:     goTo("poolName"),
		},
		{
			id: "poolName", title: "Pool name",
			help:  "Names the MachineSets (<infraID>-<pool>-<zone>): a lowercase DNS label; with the longest infra ID (27) the name must fit in 63 characters.",
			paths: func(a *answers) []string { return poolPath(a, "name") },
			get: func(a *answers) string {
				p := lastPool(a)
				if p.Name == "" {
					return defaultPoolName(p.GPU, p.Access, a.Pools[:len(a.Pools)-1])
				}
				return p.Name
			},
			set:  func(a *answers, v string) error { lastPool(a).Name = strings.TrimSpace(v); return nil },
			next: goTo("poolMin"),
		},
		{
			id: "poolMin", title: "Minimum machines",
			help:  "The autoscaler never goes below this; 0 costs nothing while idle.",
			paths: func(a *answers) []string { return poolPath(a, "min") },
			get:   func(a *answers) string { return strconv.Itoa(lastPool(a).Min) },
			set:   intSetter(func(a *answers) *int { return &lastPool(a).Min }),
			next:  goTo("poolMax"),
		},
		{
			id: "poolMax", title: "Maximum machines",
			help:  "The autoscaler never goes above this; it bounds the GPU spend.",
			paths: func(a *answers) []string { return poolPath(a, "max") },
			get:   func(a *answers) string { return strconv.Itoa(lastPool(a).Max) },
			set:   intSetter(func(a *answers) *int { return &lastPool(a).Max }),
			next:  goTo("poolSpot"),
		},
		{
			id: "poolSpot", title: "Use spot instances?", kind: choiceStep,
			help:  "Spot machines cost less but AWS may take them back at any time.",
			paths: func(a *answers) []string { return poolPath(a, "") },
			options: func(*answers) []option {
				return []option{{"no", "no   on-demand"}, {"yes", "yes  spot"}}
			},
			selected: func(a *answers) []string {
				if lastPool(a).Spot {
					return []string{"yes"}
				}
				return []string{"no"}
			},
			choose: func(a *answers, v []string) { lastPool(a).Spot, a.addingPool = first(v) == "yes", false },
			next:   goTo("poolGPU"),
		},
		{
			id: "oauthClientID", title: "Google OAuth client ID (empty: no Google sign-in)", flags: []string{"google-client-id"},
			help:  "From the Google Cloud console (APIs & Services → Credentials), e.g. 1234-abc.apps.googleusercontent.com.",
			paths: paths("spec.oauth.google.clientID"),
			get:   func(a *answers) string { return a.GoogleClientID },
			set: func(a *answers, v string) error {
				a.GoogleClientID = strings.TrimSpace(v)
				if a.GoogleClientID == "" {
					a.SecretEnv, a.SecretFile, a.Admins, a.RemoveKubeadmin = "", "", nil, false
				}
				return nil
			},
			next: func(a *answers) string {
				if a.GoogleClientID == "" {
					return "acme"
				}
				return "secretSource"
			},
		},
		{
			id: "secretSource", title: "Where does the client secret come from?", kind: choiceStep,
			flags: []string{"google-client-secret-env", "google-client-secret-file"},
			help:  "The file stores only this reference; the secret itself is read at run time.",
			options: func(*answers) []option {
				return []option{{"env", "an environment variable"}, {"file", "a file"}}
			},
			selected: func(a *answers) []string {
				if a.secretFromFile || (a.SecretFile != "" && a.SecretEnv == "") {
					return []string{"file"}
				}
				return []string{"env"}
			},
			choose: func(a *answers, v []string) { a.secretFromFile = first(v) == "file" },
			next: func(a *answers) string {
				if a.secretFromFile || (a.SecretFile != "" && a.SecretEnv == "") {
					return "secretFile"
				}
				return "secretEnv"
			},
		},
		{
			id: "secretEnv", title: "Environment variable holding the client secret",
			flags: []string{"google-client-secret-env"},
			paths: paths("spec.oauth.google.clientSecret"),
			get:   func(a *answers) string { return nonEmpty(a.SecretEnv, "GOOGLE_CLIENT_SECRET") },
			set:   func(a *answers, v string) error { a.SecretEnv, a.SecretFile = strings.TrimSpace(v), ""; return nil },
			next:  goTo("admins"),
		},
		{
			id: "secretFile", title: "File holding the client secret",
			flags: []string{"google-client-secret-file"},
			paths: paths("spec.oauth.google.clientSecret"),
			get:   func(a *answers) string { return a.SecretFile },
			set:   func(a *answers, v string) error { a.SecretFile, a.SecretEnv = strings.TrimSpace(v), ""; return nil },
			next:  goTo("admins"),
		},
		{
			id: "admins", title: "Cluster admins (Google e-mail addresses, comma-separated)", flags: []string{"admin"},
			help:  "They get cluster-admin when they sign in with Google.",
			paths: paths("spec.oauth.admins"),
			get:   func(a *answers) string { return strings.Join(a.Admins, ", ") },
			set:   func(a *answers, v string) error { a.Admins = splitList(v); return nil },
			next: func(a *answers) string {
				if len(a.Admins) > 0 {
					return "removeKubeadmin"
				}
				return "acme"
			},
		},
		{
			id: "removeKubeadmin", title: "Remove kubeadmin once an admin can sign in?", kind: choiceStep,
			flags: []string{"remove-kubeadmin"},
			help:  "It is removed only after an admin binding exists, so nobody is locked out.",
			paths: paths("spec.oauth.removeKubeadmin"),
			options: func(*answers) []option {
				return []option{{"yes", "yes"}, {"no", "no"}}
			},
			selected: func(a *answers) []string {
				if a.RemoveKubeadmin {
					return []string{"yes"}
				}
				return []string{"no"}
			},
			choose: func(a *answers, v []string) { a.RemoveKubeadmin = first(v) == "yes" },
			next:   goTo("acme"),
		},
		{
			id: "acme", title: "Certificates for the API and *.apps (Let's Encrypt, DNS-01 on Route53)", kind: choiceStep,
			flags: []string{"acme"},
			// Production is proposed because only its certificates are trusted by browsers
			// and by pods calling *.apps routes; staging or a private CA works only once its
			// root is in proxy/cluster .spec.trustedCA, which rolls every node.
			help: "Proposed: production, the only choice whose certificates browsers and pods calling *.apps routes trust. " +
				"Staging or a private CA needs its root in proxy/cluster trustedCA (every node restarts).",
			options: func(*answers) []option {
				return []option{
					{"production", "production  trusted certificates (proposed)"},
					{"staging", "staging     untrusted test certificates, generous rate limits"},
					{"custom", "other       an ACME directory URL"},
					{"none", "none        keep the cluster's own certificates"},
				}
			},
			selected: func(a *answers) []string {
				switch {
				case a.acmeCustom:
					return []string{"custom"}
				case acmeServer(a.ACME) == "letsencrypt-staging":
					return []string{"staging"}
				case strings.EqualFold(a.ACME, "none"):
					return []string{"none"}
				case a.ACME != "" && acmeServer(a.ACME) != "letsencrypt":
					return []string{"custom"}
				}
				return []string{"production"}
			},
			choose: func(a *answers, v []string) {
				a.acmeCustom = first(v) == "custom"
				if a.acmeCustom {
					if _, known := configs.ACMEServers[acmeServer(a.ACME)]; known || acmeNone(a.ACME) {
						a.ACME = ""
					}
					return
				}
				a.ACME = first(v)
			},
			next: func(a *answers) string {
				switch {
				case a.acmeCustom:
					return "acmeURL"
				case acmeNone(a.ACME):
					return "gitopsRepo"
				}
				if _, known := configs.ACMEServers[acmeServer(a.ACME)]; !known {
					return "acmeURL"
				}
				return "acmeEmail"
			},
		},
		{
			id: "acmeURL", title: "ACME directory URL", flags: []string{"acme"},
			paths: paths("spec.certificates.acme.server"),
			get:   func(a *answers) string { return a.ACME },
			set:   func(a *answers, v string) error { a.ACME = strings.TrimSpace(v); return nil },
			next:  goTo("acmeEmail"),
		},
		{
			id: "acmeEmail", title: "ACME account e-mail", flags: []string{"acme-email"},
			help:  "Expiry notices go there.",
			paths: paths("spec.certificates.acme.email"),
			get:   func(a *answers) string { return a.ACMEEmail },
			set:   func(a *answers, v string) error { a.ACMEEmail = strings.TrimSpace(v); return nil },
			next:  goTo("gitopsRepo"),
		},
		{
			id: "gitopsRepo", title: "GitOps repository URL (empty: no root application)", flags: []string{"gitops-repo"},
			help:  "The Git repository Argo CD syncs the platform from, e.g. https://github.com/org/repo.",
			paths: paths("spec.gitops.root.repoURL"),
			get:   func(a *answers) string { return a.GitOpsRepo },
			set: func(a *answers, v string) error {
				a.GitOpsRepo = strings.TrimSpace(v)
				if a.GitOpsRepo == "" {
					a.GitOpsRevision, a.GitOpsPath = "", ""
				}
				return nil
			},
			next: func(a *answers) string {
				if a.GitOpsRepo == "" {
					return reviewStep
				}
				return "gitopsRevision"
			},
		},
		{
			id: "gitopsRevision", title: "GitOps revision (branch, tag or commit)", flags: []string{"gitops-revision"},
			paths: paths("spec.gitops.root.revision"),
			get:   func(a *answers) string { return nonEmpty(a.GitOpsRevision, configs.DefaultRootRevision) },
			set:   func(a *answers, v string) error { a.GitOpsRevision = strings.TrimSpace(v); return nil },
			next:  goTo("gitopsPath"),
		},
		{
			id: "gitopsPath", title: "GitOps path (the cluster's overlay folder)", flags: []string{"gitops-path"},
			paths: paths("spec.gitops.root.path"),
			get: func(a *answers) string {
				return nonEmpty(a.GitOpsPath, "manifests/gitops/clusters/overlays/"+nonEmpty(a.Name, "dev"))
			},
			set:  func(a *answers, v string) error { a.GitOpsPath = strings.TrimSpace(v); return nil },
			next: goTo(reviewStep),
		},
	}
	m := make(map[string]*step, len(steps))
	for _, s := range steps {
		if s.paths == nil {
			s.paths = paths()
		}
		m[s.id] = s
	}
	return m
}
