package kube

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func co(conds ...map[string]any) *unstructured.Unstructured {
	list := make([]any, len(conds))
	for i, c := range conds {
		list[i] = c
	}
	return &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{"conditions": list}}}
}

func cond(typ, status string, at time.Time) map[string]any {
	return map[string]any{"type": typ, "status": status, "lastTransitionTime": at.UTC().Format(time.RFC3339)}
}

func TestRolledOut(t *testing.T) {
	since := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	before, after := since.Add(-time.Hour), since.Add(30*time.Second)
	for _, tc := range []struct {
		name   string
		co     *unstructured.Unstructured
		done   bool
		status string
	}{
		{"settled before the change: no reaction yet", co(cond("Available", "True", before), cond("Progressing", "False", before)), false, ""},
		{"rolling out", co(cond("Available", "True", before), cond("Progressing", "True", after)), false, "Progressing: "},
		{"rolled out after the change", co(cond("Available", "True", before), cond("Progressing", "False", after)), true, ""},
		{"rolled out but unavailable", co(cond("Available", "False", after), cond("Progressing", "False", after)), false, "not Available"},
		{"no conditions", co(), false, "not Available"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done, status := RolledOut(tc.co, since)
			assert.Equal(t, tc.done, done)
			assert.Equal(t, tc.status, status)
		})
	}
}
