package testenv

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

// TestSimulatedKubeletPullAndConfigErrors: the simulated kubelet reports a container whose image
// is on UnpullableRegistry in ErrImagePull, then ImagePullBackOff with the kubelet's message, and
// a container that needs a missing Secret (or a missing key of one) in CreateContainerConfigError
// with the kubelet's message, until the Secret exists; such Pods stay Pending.
func TestSimulatedKubeletPullAndConfigErrors(t *testing.T) {
	ctx := context.Background()
	image := UnpullableRegistry + "/api:1"
	pod := func(name string, c corev1.Container) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name)},
			Spec:   corev1.PodSpec{NodeName: SimulatedNodeName, Containers: []corev1.Container{c}},
			Status: corev1.PodStatus{Phase: corev1.PodPending}}
	}
	pull := pod("pull", corev1.Container{Name: "api", Image: image})
	secret := pod("secret", corev1.Container{Name: "api", Image: "registry.example.com/api:1",
		Env: []corev1.EnvVar{{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "api-token"}, Key: "token"}}}}})
	cs := fake.NewClientset(pull, secret)
	step := func(p *corev1.Pod) *corev1.Pod {
		t.Helper()
		cur, err := cs.CoreV1().Pods("ns").Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := handlePod(ctx, cs, SimulatedNodeName, false, cur); err != nil {
			t.Fatalf("handlePod(%s) = %v", p.Name, err)
		}
		next, err := cs.CoreV1().Pods("ns").Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return next
	}
	waiting := func(p *corev1.Pod) (string, string) {
		if p.Status.Phase != corev1.PodPending || len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Waiting == nil {
			t.Fatalf("Pod %s: phase %s, statuses %+v; want Pending with one waiting container", p.Name, p.Status.Phase, p.Status.ContainerStatuses)
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w.Reason, w.Message
	}

	reason, msg := waiting(step(pull))
	if reason != "ErrImagePull" || !strings.HasPrefix(msg, `rpc error: code = Unknown desc = failed to pull and unpack image "`+image+`"`) {
		t.Errorf("first pull: %s %q, want ErrImagePull with the runtime's error", reason, msg)
	}
	for _, tt := range []struct {
		elapsed time.Duration
		reason  string
	}{{0, "ErrImagePull"}, {1500 * time.Millisecond, "ImagePullBackOff"}, {2500 * time.Millisecond, "ErrImagePull"}, {4 * time.Second, "ImagePullBackOff"}, {5500 * time.Millisecond, "ErrImagePull"}, {6 * time.Second, "ImagePullBackOff"}, {10 * time.Second, "ErrImagePull"}} {
		w, until := pullState(image, UnpullableRegistry, tt.elapsed)
		if w.Reason != tt.reason || until <= 0 {
			t.Errorf("pullState(%s) = %s for %s, want %s", tt.elapsed, w.Reason, until, tt.reason)
		}
		if w.Reason == "ImagePullBackOff" && !strings.HasPrefix(w.Message, `Back-off pulling image "`+image+`": ErrImagePull: rpc error: code = Unknown desc = `) {
			t.Errorf("back-off message %q, want the kubelet's form", w.Message)
		}
	}

	reason, msg = waiting(step(secret))
	if reason != "CreateContainerConfigError" || msg != `secret "api-token" not found` {
		t.Errorf("missing Secret: %s %q, want CreateContainerConfigError %q", reason, msg, `secret "api-token" not found`)
	}
	if _, err := cs.CoreV1().Secrets("ns").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "api-token", Namespace: "ns"}, Data: map[string][]byte{"other": nil}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if reason, msg = waiting(step(secret)); reason != "CreateContainerConfigError" || msg != "couldn't find key token in Secret ns/api-token" {
		t.Errorf("missing key: %s %q, want CreateContainerConfigError about the key", reason, msg)
	}
	if _, err := cs.CoreV1().Secrets("ns").Update(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "api-token", Namespace: "ns"}, Data: map[string][]byte{"token": []byte("x")}}, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if p := step(secret); p.Status.Phase != corev1.PodRunning || !p.Status.ContainerStatuses[0].Ready {
		t.Errorf("once the Secret exists: phase %s, statuses %+v; want Running and ready", p.Status.Phase, p.Status.ContainerStatuses)
	}
}
