package simulator

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

const (
	// bedNode is the node every Pod is scheduled to: the bed has no Node objects and
	// runs no container, so one name stands for the cluster's workers.
	bedNode = "bed-worker"
	// bedHostIP is that node's address.
	bedHostIP  = "10.0.128.10"
	mgrKubelet = "kubelet"
)

// syncPod plays the scheduler and the kubelet for one Pod, the part of a cluster the bed
// cannot run (kube-controller-manager's real Job, StatefulSet, Deployment and ReplicaSet
// controllers create the Pods and read their status back):
//   - an unscheduled Pod is bound to bedNode through the pods/binding subresource, as
//     kube-scheduler's DefaultBinder does (pkg/scheduler/framework/plugins/defaultbinder/
//     default_binder.go; the API server then sets spec.nodeName and PodScheduled=True,
//     pkg/registry/core/pod/storage/storage.go assignPod);
//   - after the PodStartup latency the Pod runs: phase Running, every container running and
//     ready, the conditions the kubelet writes (pkg/kubelet/status/generate.go,
//     pkg/kubelet/kubelet_pods.go generateAPIPodStatus);
//   - a Pod whose restartPolicy is not Always (a Job's) then ends after the same latency
//     with every container terminated, exit code 0, reason Completed: the bed runs no
//     container, so each one is taken to succeed;
//   - a deleted Pod bound to a node is removed once its containers "stopped", with a grace
//     period of 0, as the kubelet's status manager does (pkg/kubelet/status/
//     status_manager.go syncPod, canBeDeleted); the API server keeps a bound Pod until then.
//
// Followed at Kubernetes v1.37.2. Not simulated: image pulls, probes, volumes and the
// Secrets and ConfigMaps a container reads (a real kubelet holds a Pod whose Secret is
// missing in CreateContainerConfigError; the bed runs it anyway).
func (s *Simulator) syncPod(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	pods := s.typed.CoreV1().Pods(ns)
	pod, err := pods.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if pod.DeletionTimestamp != nil {
		if pod.Spec.NodeName == "" {
			return 0, nil // the API server removes unbound Pods itself
		}
		uid := pod.UID
		err := pods.Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64), Preconditions: &metav1.Preconditions{UID: &uid}})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return 0, nil
		}
		return 0, err
	}
	if pod.Spec.NodeName == "" {
		err := pods.Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: pod.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: bedNode},
		}, metav1.CreateOptions{FieldManager: "kube-scheduler"})
		if err != nil && !apierrors.IsConflict(err) {
			return 0, fmt.Errorf("binding pod %s: %w", key, err)
		}
		return 0, nil // the binding's update brings the Pod back
	}
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed:
		return 0, nil
	case corev1.PodRunning:
		if pod.Spec.RestartPolicy == corev1.RestartPolicyAlways {
			return 0, nil
		}
		if wait := s.after(fmt.Sprintf("pod/%s/exit", pod.UID), s.lat().PodStartup); wait > 0 {
			return wait, nil
		}
		s.done(fmt.Sprintf("pod/%s/exit", pod.UID))
		completed(pod, time.Now())
		s.logf("kubelet: pod %s Succeeded", key)
	default:
		if wait := s.after(fmt.Sprintf("pod/%s/start", pod.UID), s.lat().PodStartup); wait > 0 {
			return wait, nil
		}
		s.done(fmt.Sprintf("pod/%s/start", pod.UID))
		running(pod, time.Now())
		s.logf("kubelet: pod %s Running", key)
	}
	_, err = pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{FieldManager: mgrKubelet})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return 0, nil // a newer version of the Pod is queued already
	}
	return 0, err
}

// running is the status the kubelet reports for a Pod whose containers all started and
// passed their readiness probes.
func running(pod *corev1.Pod, at time.Time) {
	now := metav1.NewTime(at)
	st := &pod.Status
	st.Phase = corev1.PodRunning
	st.HostIP, st.HostIPs = bedHostIP, []corev1.HostIP{{IP: bedHostIP}}
	ip := podIP(pod.UID)
	st.PodIP, st.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	st.StartTime = &now
	for _, c := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady} {
		setPodCondition(st, corev1.PodCondition{Type: c, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	st.InitContainerStatuses = nil
	for _, c := range pod.Spec.InitContainers {
		st.InitContainerStatuses = append(st.InitContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, ContainerID: containerID(pod.UID, c.Name),
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now}},
		})
	}
	st.ContainerStatuses = nil
	started := true
	for _, c := range pod.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, ContainerID: containerID(pod.UID, c.Name),
			Ready: true, Started: &started,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
}

// completed is the status of a Pod whose containers all exited 0: phase Succeeded, Ready
// and ContainersReady False with reason PodCompleted (pkg/kubelet/status/generate.go).
func completed(pod *corev1.Pod, at time.Time) {
	now := metav1.NewTime(at)
	st := &pod.Status
	st.Phase = corev1.PodSucceeded
	for _, c := range []corev1.PodConditionType{corev1.PodReady, corev1.ContainersReady} {
		setPodCondition(st, corev1.PodCondition{Type: c, Status: corev1.ConditionFalse, Reason: "PodCompleted", LastTransitionTime: now})
	}
	setPodCondition(st, corev1.PodCondition{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionFalse, LastTransitionTime: now})
	started := false
	for i := range st.ContainerStatuses {
		cs := &st.ContainerStatuses[i]
		startedAt := now
		if cs.State.Running != nil {
			startedAt = cs.State.Running.StartedAt
		}
		cs.Ready, cs.Started = false, &started
		cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 0, Reason: "Completed", StartedAt: startedAt, FinishedAt: now, ContainerID: cs.ContainerID}}
	}
}

func setPodCondition(st *corev1.PodStatus, c corev1.PodCondition) {
	for i := range st.Conditions {
		if st.Conditions[i].Type == c.Type {
			if st.Conditions[i].Status == c.Status {
				c.LastTransitionTime = st.Conditions[i].LastTransitionTime
			}
			st.Conditions[i] = c
			return
		}
	}
	st.Conditions = append(st.Conditions, c)
}

// podIP is a stable address in OpenShift's default cluster network (10.128.0.0/14) for a
// Pod.
func podIP(uid types.UID) string {
	h := sha256.Sum256([]byte(uid))
	return fmt.Sprintf("10.%d.%d.%d", 128+h[0]%4, h[1], 1+h[2]%254)
}

func containerID(uid types.UID, name string) string {
	h := sha256.Sum256([]byte(string(uid) + "/" + name))
	return fmt.Sprintf("cri-o://%x", h[:32])
}
