package testbed

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
)

// An API server that times out the first create of a CRD (504, as the loaded bed's did
// in CI for KServe's multi-MB CRDs) does not fail the install: the create is tried again.
func TestApplyCRDsRetriesAServerTimeout(t *testing.T) {
	var creates atomic.Int32
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "widgets.example.com"},
	}}
	established := crd.DeepCopy()
	established.Object["status"] = map[string]any{"conditions": []any{map[string]any{"type": "Established", "status": "True"}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.Method {
		case http.MethodPost:
			if creates.Add(1) == 1 {
				w.WriteHeader(http.StatusGatewayTimeout)
				_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
					Status: metav1.StatusFailure, Code: http.StatusGatewayTimeout, Reason: metav1.StatusReasonTimeout,
					Message: "Timeout: request did not complete within requested timeout - context deadline exceeded"})
				return
			}
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(crd.Object)
		case http.MethodGet:
			_ = json.NewEncoder(w).Encode(map[string]any{"apiVersion": "apiextensions.k8s.io/v1",
				"kind": "CustomResourceDefinitionList", "metadata": map[string]any{}, "items": []any{established.Object}})
		default:
			http.Error(w, "unexpected "+r.Method, http.StatusMethodNotAllowed)
		}
	}))
	defer srv.Close()
	err := applyCRDs(t.Context(), &rest.Config{Host: srv.URL}, []*unstructured.Unstructured{crd})
	require.NoError(t, err)
	assert.Equal(t, int32(2), creates.Load(), "created again after the timeout")
}
