package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

// StuckError names an object that did not go away because of its finalizers.
type StuckError struct {
	Kind, Namespace, Name string
	Finalizers            []string
}

func (e *StuckError) Error() string {
	return fmt.Sprintf("%s %s is stuck on finalizer(s) %s: it was left in place; fix what its controller waits for, or run destroy again with --strip-finalizers",
		e.Kind, Ref(e.Namespace, e.Name), strings.Join(e.Finalizers, ", "))
}

// DeleteAndWait deletes an object and waits until it is gone. Deletion is in the
// background: owned objects are the garbage collector's business, and an object's own
// finalizers (Argo CD's cascade, operators' cleanup) are what we wait for. When it is still
// there after the timeout because of finalizers, it removes them if strip is set, or
// returns a *StuckError naming kind/namespace/name/finalizers.
func (c *Clients) DeleteAndWait(ctx context.Context, s *installer.Scope, gvk schema.GroupVersionKind, namespace, name string, timeout time.Duration, strip bool) error {
	return c.deleteAndWait(ctx, s, gvk, namespace, name, "", timeout, strip)
}

// deleteAndWait is DeleteAndWait, for the object with that uid only when uid is set.
func (c *Clients) deleteAndWait(ctx context.Context, s *installer.Scope, gvk schema.GroupVersionKind, namespace, name, uid string, timeout time.Duration, strip bool) error {
	live, err := c.Get(ctx, gvk, namespace, name)
	if err != nil || live == nil {
		return err
	}
	sent, err := c.deleteUID(ctx, gvk, namespace, name, uid, metav1.DeletePropagationBackground)
	if err != nil {
		return err
	}
	if sent && s != nil {
		s.Changed(installer.Change{Action: installer.Delete, Target: gvk.Kind + " " + Ref(namespace, name)})
	}
	gone := func(ctx context.Context) (bool, string, error) {
		u, err := c.Get(ctx, gvk, namespace, name)
		if err != nil {
			return false, "", nil
		}
		if u == nil {
			return true, "", nil
		}
		return false, "finalizers " + strings.Join(u.GetFinalizers(), ", "), nil
	}
	what := gvk.Kind + " " + Ref(namespace, name) + " to be deleted"
	watch := []Watch{{GVK: gvk, Namespace: namespace, Name: name}}
	err = c.WaitWatching(ctx, s, what, timeout, watch, gone)
	var te *TimeoutError
	if !errors.As(err, &te) {
		return err
	}
	u, gerr := c.Get(ctx, gvk, namespace, name)
	if gerr != nil || u == nil {
		return gerr
	}
	stuck := &StuckError{Kind: gvk.Kind, Namespace: namespace, Name: name, Finalizers: u.GetFinalizers()}
	if !strip || len(stuck.Finalizers) == 0 {
		return stuck
	}
	ri, err := c.Resource(gvk, namespace)
	if err != nil {
		return err
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"finalizers": nil}})
	if _, err := ri.Patch(recorded(ctx), name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("removing finalizers of %s %s: %w", gvk.Kind, Ref(namespace, name), err)
	}
	if s != nil {
		s.Progress("removed finalizer(s) %s from %s %s (--strip-finalizers)", strings.Join(stuck.Finalizers, ", "), gvk.Kind, Ref(namespace, name))
	}
	return c.WaitWatching(ctx, s, what, timeout, watch, gone)
}
