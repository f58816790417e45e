package kube

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// DecodeYAML reads one or more YAML documents into unstructured objects (numbers as
// int64, as the API machinery expects). Empty documents are skipped.
func DecodeYAML(b []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var out []*unstructured.Unstructured
	for i := 0; ; i++ {
		var raw map[string]any
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(raw) == 0 {
			continue
		}
		j, err := yaml.Marshal(raw)
		if err != nil {
			return nil, err
		}
		jb, err := yaml.YAMLToJSON(j)
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(jb); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		out = append(out, u)
	}
}

// EncodeYAML renders objects as a multi-document YAML stream.
func EncodeYAML(objs ...*unstructured.Unstructured) ([]byte, error) {
	var buf bytes.Buffer
	for i, o := range objs {
		if i > 0 {
			buf.WriteString("---\n")
		}
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", Describe(o), err)
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// Unstructured is a short name for the object type every phase passes around.
type Unstructured = unstructured.Unstructured

// SetNested sets a field, with a wrapped error.
func SetNested(u *unstructured.Unstructured, value any, fields ...string) error {
	if err := unstructured.SetNestedField(u.Object, value, fields...); err != nil {
		return fmt.Errorf("setting %v on %s: %w", fields, Describe(u), err)
	}
	return nil
}
