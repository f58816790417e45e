package configs

import (
	"bytes"
	"encoding/json"
	"fmt"

	yaml "go.yaml.in/yaml/v3"
)

// Marshal renders the cluster as YAML the way configs/examples are written: fields in the
// order the Cluster type declares them (apiVersion, kind, metadata, spec: baseDomain,
// platform, openshift, … gitops; a pool's name before its gpu), pools and short lists on
// one line each, and a comment after each field Notes has something to say about. `init`
// writes it and `validate --show-defaults` prints it, so the two read alike.
//
// sigs.k8s.io/yaml (which reads the file) goes through a map and would sort the keys; here
// encoding/json keeps the struct order, and the YAML node tree keeps it on the way out.
func Marshal(c *Cluster) ([]byte, error) {
	j, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encoding the cluster: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(j, &doc); err != nil {
		return nil, fmt.Errorf("encoding the cluster: %w", err)
	}
	notes := Notes(c)
	layout(&doc, "", notes)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("encoding the cluster: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding the cluster: %w", err)
	}
	return b.Bytes(), nil
}

// layout turns the JSON-shaped tree (all flow style, all strings double-quoted) into the
// examples' style and attaches the notes by field path.
func layout(n *yaml.Node, path string, notes map[string]string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			layout(c, path, notes)
		}
	case yaml.ScalarNode:
		n.Style = 0 // the encoder quotes what needs quoting
	case yaml.SequenceNode:
		n.Style = 0
		scalars := true
		for i, c := range n.Content {
			scalars = scalars && c.Kind == yaml.ScalarNode
			layout(c, fmt.Sprintf("%s[%d]", path, i), notes)
			if c.Kind == yaml.MappingNode {
				c.Style = yaml.FlowStyle // a pool per line, as in the examples
				c.LineComment = notes[fmt.Sprintf("%s[%d]", path, i)]
			}
		}
		if scalars {
			n.Style = yaml.FlowStyle
		}
	case yaml.MappingNode:
		n.Style = 0
		if path == "spec.oauth.google.clientSecret" {
			n.Style = yaml.FlowStyle
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			key.Style = 0
			p := key.Value
			if path != "" {
				p = path + "." + key.Value
			}
			layout(val, p, notes)
			switch note := notes[p]; {
			case note == "":
			case val.Kind == yaml.ScalarNode || val.Style == yaml.FlowStyle:
				val.LineComment = note // after the value, on its line
			default:
				key.HeadComment = note // a block below: the note goes above its key
			}
		}
	}
}

// Notes are the short comments Marshal writes, by field path: what a chosen value means
// here and what a default can be changed to. They are derived from the cluster, so the
// file `init` writes explains the answers given.
func Notes(c *Cluster) map[string]string {
	s := &c.Spec
	n := map[string]string{
		"metadata.name":                             "the API becomes api." + c.Metadata.Name + "." + s.BaseDomain,
		"spec.baseDomain":                           "needs a Route53 public hosted zone in the AWS account",
		"spec.platform.aws.zones":                   "GPU pools use these unless they list their own",
		"spec.openshift.installer":                  "4.19 or newer: a path, or a name in PATH",
		"spec.openshift.pullSecretFile":             "from console.redhat.com/openshift/install/pull-secret",
		"spec.openshift.sshPublicKeyFile":           "installed on the nodes, for debugging",
		"spec.openshift.networkType":                "default",
		"spec.controlPlane.replicas":                "3, or 1 for a single-node cluster",
		"spec.workers.instanceType":                 "general-purpose workers; GPU pools come on top",
		"spec.gpuPools":                             "MachineSets <infraID>-<name>-<zone>; access: shared (any project) | private",
		"spec.maxHourlyCost":                        "USD per hour at the pools' max: install refuses a file that could cost more (plan shows the estimate)",
		"spec.oauth.google.clientSecret":            "read at run time; the secret is never in this file",
		"spec.oauth.google.name":                    "the identity provider's name in oauth/cluster",
		"spec.oauth.admins":                         "cluster-admin once they sign in with Google",
		"spec.certificates.acme.email":              "the ACME account; expiry notices go there",
		"spec.certificates.acme.propagationTimeout": "how long the DNS-01 TXT record may take to be visible",
		"spec.gitops.operatorChannel":               "must be offered by the cluster's catalog (checked first)",
		"spec.gitops.root.revision":                 "branch, tag or commit",
		"spec.gitops.root.path":                     "the cluster's overlay folder in the repository",
	}
	if s.OAuth != nil && s.OAuth.RemoveKubeadmin {
		n["spec.oauth.removeKubeadmin"] = "only once an admin's binding exists and sign-in has rolled out"
	}
	if s.Certificates != nil {
		switch srv := s.Certificates.ACME.Server; srv {
		case "letsencrypt":
			n["spec.certificates.acme.server"] = "production Let's Encrypt: trusted by browsers and in-cluster clients"
		case "letsencrypt-staging":
			n["spec.certificates.acme.server"] = "untrusted: pods calling *.apps fail TLS until its root is in proxy/cluster trustedCA"
		default:
			n["spec.certificates.acme.server"] = "private CA: pods trust it once its root is in proxy/cluster trustedCA"
		}
	}
	for i, p := range s.GPUPools {
		n[fmt.Sprintf("spec.gpuPools[%d]", i)] = poolNote(p)
	}
	return n
}

// poolNote says what one machine of a pool carries (and how an alias was read); the
// pool's line shows the rest.
func poolNote(p GPUPool) string {
	g, alias, ok := LookupGPU(p.GPU)
	if !ok {
		return ""
	}
	it := p.InstanceType
	if it == "" {
		it = g.DefaultInstanceType
	}
	size, err := g.Size(it)
	if err != nil {
		return ""
	}
	note := fmt.Sprintf("%d × %s %d GB per machine", size.GPUs, g.Name, g.MemoryGiB)
	if p.InstanceType == "" {
		note += " (" + it + ")"
	}
	if alias != "" {
		note += "; " + alias + " is read as " + g.Name
	}
	return note
}
