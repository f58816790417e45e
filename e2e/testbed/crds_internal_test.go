package testbed

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
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
		case http.MethodGet: // the wait for Established reads the CRD by name, as the API server serves it
			if !strings.HasSuffix(r.URL.Path, "/customresourcedefinitions/widgets.example.com") {
				http.Error(w, "unexpected GET "+r.URL.Path, http.StatusNotFound)
				return
			}
			_ = json.NewEncoder(w).Encode(established.Object)
		default:
			http.Error(w, "unexpected "+r.Method, http.StatusMethodNotAllowed)
		}
	}))
	defer srv.Close()
	err := applyCRDs(t.Context(), &rest.Config{Host: srv.URL}, []*unstructured.Unstructured{crd})
	require.NoError(t, err)
	assert.Equal(t, int32(2), creates.Load(), "created again after the timeout")
}

// The wait for Established reads each pending CRD by name until its condition is True —
// never the whole collection, whose every poll re-sent all the bed's multi-MB CRDs — and
// stops reading a CRD once it is Established.
func TestWaitEstablishedReadsOnlyPendingCRDs(t *testing.T) {
	crd := func(name string, established bool) map[string]any {
		o := map[string]any{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
			"metadata": map[string]any{"name": name}}
		if established {
			o["status"] = map[string]any{"conditions": []any{map[string]any{"type": "Established", "status": "True"}}}
		}
		return o
	}
	var mu sync.Mutex
	gets := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		name := path.Base(r.URL.Path)
		if r.Method != http.MethodGet || name == "customresourcedefinitions" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusMethodNotAllowed)
			return
		}
		mu.Lock()
		gets[name]++
		n := gets[name]
		mu.Unlock()
		// fast is Established at once, slow on its third read.
		_ = json.NewEncoder(w).Encode(crd(name, name == "fast.example.com" || n >= 3))
	}))
	defer srv.Close()
	dyn, err := dynamic.NewForConfig(&rest.Config{Host: srv.URL})
	require.NoError(t, err)
	objs := []*unstructured.Unstructured{{Object: crd("fast.example.com", false)}, {Object: crd("slow.example.com", false)}}
	require.NoError(t, waitEstablished(t.Context(), dyn.Resource(crdGVR), objs))
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, map[string]int{"fast.example.com": 1, "slow.example.com": 3}, gets)
}
