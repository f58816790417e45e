package manifests_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

// errPruned marks fields that the API server accepted but would not store.
var errPruned = errors.New("the real schema prunes fields")

// pruned lists the field paths of sent that are missing from got (the object the
// API server returned from the dry-run). Values may legitimately differ (defaults,
// normalised quantities), so only presence is compared; a list that changed length
// is reported as a whole.
func pruned(sent, got any, at string) []string {
	switch s := sent.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{at}
		}
		var out []string
		for _, k := range sortedKeys(s) {
			child, ok := g[k]
			if !ok {
				out = append(out, at+"."+k)
				continue
			}
			out = append(out, pruned(s[k], child, at+"."+k)...)
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(s) {
			return []string{at}
		}
		var out []string
		for i := range s {
			out = append(out, pruned(s[i], g[i], fmt.Sprintf("%s[%d]", at, i))...)
		}
		return out
	}
	return nil
}

// TestPrunedFindsDroppedFields proves the comparison above sees a field the server
// dropped, deep inside lists, and ignores values it changed.
func TestPrunedFindsDroppedFields(t *testing.T) {
	sent := obj{"spec": obj{"template": obj{"metadata": obj{"labels": obj{"a": "b"}, "bogus": "x"}},
		"containers": []any{obj{"name": "c", "resources": obj{"limits": obj{"cpu": "0.5"}}}}}}
	got := obj{"spec": obj{"template": obj{"metadata": obj{"labels": obj{"a": "b"}}},
		"containers": []any{obj{"name": "c", "resources": obj{"limits": obj{"cpu": "500m"}}}}}}
	assert.Equal(t, []string{".spec.template.metadata.bogus"}, pruned(sent, got, ""))
	assert.Empty(t, pruned(got, got, ""))
	assert.Equal(t, []string{".spec.containers"}, pruned(sent, obj{"spec": obj{"template": sent["spec"].(obj)["template"], "containers": []any{}}}, ""))
}
