package harness

import (
	"context"
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// HandOff is what the real Argo CD did after the root Application was created.
type HandOff struct {
	// Children is the number of child applications.
	Children int
	// Took is root Application created → the last child's sync finished or health
	// changed, by Argo CD's own timestamps (one-second resolution).
	Took time.Duration
	// Syncs is argocd_app_sync_total over all applications: the sync operations Argo CD
	// ran, retries included.
	Syncs float64
}

func (h HandOff) String() string {
	return fmt.Sprintf("%s, %d child applications, %.0f sync operations", h.Took, h.Children, h.Syncs)
}

var appsGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}

// HandOff reads the hand-off from the Applications Argo CD wrote and the sync count
// from the application controller's metrics.
func (r *Rehearsal) HandOff(ctx context.Context) (HandOff, error) {
	var h HandOff
	argo := r.ArgoCD()
	if argo == nil {
		return h, errors.New("no Argo CD runs on the bed")
	}
	var err error
	if h.Syncs, err = argo.Metric(ctx, "argocd_app_sync_total"); err != nil {
		return h, err
	}
	d, err := dynamic.NewForConfig(r.Bed.Config())
	if err != nil {
		return h, err
	}
	apps, err := d.Resource(appsGVR).Namespace("openshift-gitops").List(ctx, metav1.ListOptions{})
	if err != nil {
		return h, fmt.Errorf("listing the applications: %w", err)
	}
	var created, last time.Time
	for _, a := range apps.Items {
		if a.GetName() == "rhoai-root" {
			created = a.GetCreationTimestamp().Time
			continue
		}
		h.Children++
		for _, path := range [][]string{{"status", "operationState", "finishedAt"}, {"status", "health", "lastTransitionTime"}} {
			v, _, _ := unstructured.NestedString(a.Object, path...)
			if t, err := time.Parse(time.RFC3339, v); err == nil && t.After(last) {
				last = t
			}
		}
	}
	if created.IsZero() || last.IsZero() {
		return h, errors.New("no root application or no synced child to measure the hand-off by")
	}
	h.Took = last.Sub(created)
	return h, nil
}
