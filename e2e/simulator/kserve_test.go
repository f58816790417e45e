package simulator

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// sharedCRD reads one of the real upstream CRDs of the shared folder
// ($RHOAI_SHARED_CRDS, else ../shared/crds from the repository root).
func sharedCRD(t *testing.T, file string) *unstructured.Unstructured {
	t.Helper()
	dir := os.Getenv("RHOAI_SHARED_CRDS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "crds")
	}
	u, err := readCRDFile(filepath.Join(dir, file))
	require.NoError(t, err, "the shared CRDs are a test prerequisite (RHOAI_SHARED_CRDS)")
	return u
}

func isvcState(u *unstructured.Unstructured) string {
	return condString(u, "Ready", "Stopped") + " " + nestedStr(u, "status", "modelStatus", "transitionStatus")
}

// KServe's role reports a model Ready after its latency, and a stopped one Stopped at once.
func TestInferenceServicesReportStatus(t *testing.T) {
	b := getBed(t)
	require.NoError(t, b.applyCRDs(t.Context(), sharedCRD(t, "kserve/serving.kserve.io_inferenceservices.yaml")))
	b.namespace(t, "models")
	isvc := func(name string, stop bool) *unstructured.Unstructured {
		u := obj("serving.kserve.io/v1beta1", "InferenceService", "models", name, map[string]any{
			"predictor": map[string]any{"model": map[string]any{"modelFormat": map[string]any{"name": "vLLM"},
				"storageUri": "hf://example/model"}}})
		if stop {
			u.SetAnnotations(map[string]string{stopAnnotation: "true"})
		}
		return u
	}
	rec := b.record(t, gvrInferenceService, "models")
	start := time.Now()
	b.mustCreate(t, gvrInferenceService, isvc("running", false))
	b.mustCreate(t, gvrInferenceService, isvc("stopped", true))
	// Metadata keeps changing while the model comes up (Argo CD's tracking annotation,
	// labels): only a new generation restarts the model's rollout.
	touch, stopTouching := context.WithCancel(t.Context())
	defer stopTouching()
	go func() {
		for i := 0; touch.Err() == nil; i++ {
			_, _ = b.dyn.Resource(gvrInferenceService).Namespace("models").Patch(touch, "running", types.MergePatchType,
				[]byte(fmt.Sprintf(`{"metadata":{"annotations":{"touched":"%d"}}}`, i)), metav1.PatchOptions{})
			time.Sleep(100 * time.Millisecond)
		}
	}()
	b.eventually(t, 10*time.Second, "running model Ready", func(ctx context.Context) (bool, error) {
		u, err := b.get(ctx, gvrInferenceService, "models", "running")
		return u != nil && isvcState(u) == "Ready=True,Stopped=False UpToDate", err
	})
	stopTouching()
	t.Logf("InferenceService Ready in %s (ModelServing %s)", time.Since(start).Round(time.Millisecond), DefaultLatency)
	rec.waitStates(t, "running", isvcState, "Ready=Unknown,Stopped=False InProgress", "Ready=True,Stopped=False UpToDate")
	stopped := b.mustGet(t, gvrInferenceService, "models", "stopped")
	assert.Equal(t, "Ready=False,Stopped=True UpToDate", isvcState(stopped))
}
