package configs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// InvalidError carries every problem found in a cluster file, each with its field path.
type InvalidError struct {
	Source string
	Errs   field.ErrorList
	// Cause is the decoder's own error behind a problem that Errs put in words ("the file
	// must be one mapping …" for "json: cannot unmarshal array into Go value of type
	// configs.Cluster"): for `-v`, not for the first read.
	Cause error
}

func (e *InvalidError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s is invalid (%d problem", e.Source, len(e.Errs))
	if len(e.Errs) != 1 {
		b.WriteString("s")
	}
	b.WriteString("):")
	for _, err := range shorten(e.Errs) {
		b.WriteString("\n  - ")
		if err.Field == "" {
			b.WriteString(err.Detail) // the whole file: no field to name
			continue
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

// Details is the raw decoder error, if any, that `-v` shows after the problems.
func (e *InvalidError) Details() string {
	if e.Cause == nil {
		return ""
	}
	return e.Cause.Error()
}

// fileProblem is a problem of the whole file rather than of one field.
func fileProblem(detail string) *field.Error {
	return &field.Error{Type: field.ErrorTypeInvalid, BadValue: field.OmitValueType{}, Detail: detail}
}

// shape names what a JSON document is when it is not an object.
func shape(j []byte) string {
	switch t := bytes.TrimSpace(j); {
	case len(t) == 0:
		return "empty"
	case t[0] == '[':
		return "a list"
	case t[0] == '"':
		return "a string"
	case t[0] == 't' || t[0] == 'f':
		return "true or false"
	}
	return "a number"
}

// Load reads, decodes, defaults and validates a cluster file. Relative paths inside the
// file (pull secret, SSH key, kubeconfig, secret files) are taken relative to the file's
// folder, like kubeconfig does. A validation failure is an *InvalidError.
func Load(path string) (*Cluster, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading cluster file: %w", err)
	}
	c, err := Parse(data, path)
	if err != nil {
		return nil, err
	}
	if abs, err := filepath.Abs(filepath.Dir(path)); err == nil {
		c.resolvePaths(abs)
	}
	return c, nil
}

// Parse decodes strictly (unknown fields are errors, reported together with the rest),
// applies defaults and validates. source names the input in errors.
func Parse(data []byte, source string) (*Cluster, error) {
	data, errs := expandEnv(data)
	if n := documents(data); n > 1 {
		return nil, &InvalidError{Source: source, Errs: field.ErrorList{fileProblem(fmt.Sprintf(
			"the file holds %d YAML documents (separated by ---); a cluster file is one document: put each cluster in a file of its own", n))}}
	}
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, &InvalidError{Source: source, Errs: field.ErrorList{fileProblem("not valid YAML: " + err.Error())}}
	}
	if strings.TrimSpace(string(j)) == "null" {
		return nil, &InvalidError{Source: source, Errs: field.ErrorList{field.Required(field.NewPath("apiVersion"), "the file is empty")}}
	}
	var c Cluster
	strict, err := kjson.UnmarshalStrict(j, &c, kjson.DisallowUnknownFields)
	if t := bytes.TrimSpace(j); err != nil && (len(t) == 0 || t[0] != '{') {
		return nil, &InvalidError{Source: source, Cause: err, Errs: field.ErrorList{fileProblem(
			"the file must be one mapping with apiVersion, kind, metadata and spec (as in configs/examples/, or as `rhoai-bootstrap init` writes); this one is " + shape(j))}}
	}
	if err != nil {
		return nil, &InvalidError{Source: source, Cause: err, Errs: field.ErrorList{decodeError(err)}}
	}
	for _, s := range strict {
		errs = append(errs, strictError(s))
	}
	c.Default()
	errs = append(errs, c.Validate()...)
	if len(errs) > 0 {
		return nil, &InvalidError{Source: source, Errs: shorten(errs)}
	}
	return &c, nil
}

// documents counts the YAML documents in data that hold something (a document of only
// comments, or an empty one before a leading ---, does not count). The YAML decoder reads
// the first document and ignores the rest without a word, so a second cluster appended to
// the file would otherwise be dropped silently.
func documents(data []byte) int {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	n := 0
	for {
		doc, err := r.Read()
		if err != nil { // io.EOF, or a read error the decoder reports next with its line
			return n
		}
		if j, err := yaml.YAMLToJSON(doc); err != nil || strings.TrimSpace(string(j)) != "null" {
			n++
		}
	}
}

// envRef and quoted are compiled on first use, not at every start of the command:
// `--help` never loads a file (guarded by cmd/rhoai-bootstrap's
// TestOwnPackagesDoNoWorkAtInit).
var envRef = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\$?\$\{([A-Za-z_][A-Za-z0-9_]*)\}`) })

// expandEnv replaces ${NAME} with the environment variable's value, so one file can serve
// CI jobs whose endpoints or names differ per run. $${NAME} stays a literal ${NAME};
// comment lines are left alone. An unset variable is an error naming its line.
func expandEnv(data []byte) ([]byte, field.ErrorList) {
	var errs field.ErrorList
	lines := strings.SplitAfter(string(data), "\n")
	for i, line := range lines {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		lines[i] = envRef().ReplaceAllStringFunc(line, func(ref string) string {
			if strings.HasPrefix(ref, "$$") {
				return ref[1:]
			}
			name := ref[2 : len(ref)-1]
			v, ok := os.LookupEnv(name)
			if !ok {
				errs = append(errs, field.Required(field.NewPath(fmt.Sprintf("line %d", i+1)), "environment variable "+name+" is not set (the file refers to ${"+name+"})"))
			}
			return v
		})
	}
	return []byte(strings.Join(lines, "")), errs
}

var quoted = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`"([^"]+)"`) })

func strictError(err error) *field.Error {
	msg := err.Error()
	if strings.HasPrefix(msg, "unknown field") {
		if m := quoted().FindStringSubmatch(msg); m != nil {
			if len(m[1]) > QuoteLimit {
				return fileProblem("unknown field " + Quote(m[1]) + " (check its spelling and indentation)")
			}
			return field.Forbidden(pathFromString(m[1]), "unknown field (check its spelling and indentation)")
		}
	}
	if strings.HasPrefix(msg, "duplicate field") {
		if m := quoted().FindStringSubmatch(msg); m != nil {
			return field.Duplicate(pathFromString(m[1]), "given more than once")
		}
	}
	return fileProblem(msg)
}

func decodeError(err error) *field.Error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return field.Invalid(pathFromString(te.Field), te.Value, "wrong type: expected "+te.Type.String())
	}
	return fileProblem(err.Error())
}

// pathFromString turns "spec.gpuPools[1].gpu" into a field path of the same text.
func pathFromString(s string) *field.Path {
	parts := strings.Split(s, ".")
	p := field.NewPath(parts[0])
	for _, part := range parts[1:] {
		p = p.Child(part)
	}
	return p
}

func (c *Cluster) resolvePaths(base string) {
	abs := func(p *string) {
		if *p == "" {
			return
		}
		*p = ExpandHome(*p)
		if !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	abs(&c.Spec.OpenShift.PullSecretFile)
	abs(&c.Spec.OpenShift.SSHPublicKeyFile)
	if strings.ContainsRune(c.Spec.OpenShift.Installer, os.PathSeparator) {
		abs(&c.Spec.OpenShift.Installer)
	}
	if e := c.Spec.Platform.Existing; e != nil {
		abs(&e.Kubeconfig)
	}
	if o := c.Spec.OAuth; o != nil && o.Google != nil {
		abs(&o.Google.ClientSecret.File)
	}
	if ct := c.Spec.Certificates; ct != nil {
		abs(&ct.ACME.CABundleFile)
	}
}
