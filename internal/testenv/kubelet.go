package testenv

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
)

// SimulatedNodeName is the Node the simulated kubelet registers and runs
// every Pod on (ClusterOptions.SimulatedKubelet).
const SimulatedNodeName = "ferry-testenv-node"

// simulatedKubeletEnv, set to a kubeconfig path, turns any binary that links
// this package (a test binary, cmd/testenv) into the simulated kubelet: the
// environment re-executes itself with it, so the kubelet is a process like
// every other part and outlives `testenv up`.
const simulatedKubeletEnv = "FERRY_TESTENV_SIMULATED_KUBELET"

// simulatedKubeletNoSchedulerEnv, set to "1", keeps the simulated kubelet
// from binding Pods: it runs only Pods already bound to its Node
// (ClusterOptions.SimulatedKubeletNoScheduler).
const simulatedKubeletNoSchedulerEnv = "FERRY_TESTENV_SIMULATED_KUBELET_NO_SCHEDULER"

func init() {
	if kubeconfig := os.Getenv(simulatedKubeletEnv); kubeconfig != "" {
		serveChild("simulated kubelet", func(ctx context.Context) error {
			return runSimulatedKubelet(ctx, kubeconfig, SimulatedNodeName, os.Getenv(simulatedKubeletNoSchedulerEnv) != "1")
		})
	}
}

// startSimulatedKubelet starts the simulated kubelet for c as a child
// process (this binary, re-executed) and waits until its Node is Ready.
func startSimulatedKubelet(c *Cluster, schedule bool, mode launchMode) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("simulated kubelet: find this executable: %w", err)
	}
	probe := httpProbe(c.Host+"/api/v1/nodes/"+SimulatedNodeName, c.CAData, c.Token)
	return startComponent(component{
		name: "simulated-kubelet", bin: self, dir: c.Dir, mode: mode, timeout: time.Minute,
		env: childEnv([]string{"KUBECONFIG=", simulatedKubeletEnv + "=", simulatedKubeletNoSchedulerEnv + "="},
			simulatedKubeletEnv+"="+c.Kubeconfig, simulatedKubeletNoSchedulerEnv+"="+map[bool]string{true: "0", false: "1"}[schedule]),
		args: func() ([]string, error) { return nil, nil },
		ready: func(ctx context.Context) error {
			// The Node exists once the kubelet registered it; it marks
			// it Ready in the same step, before it handles any Pod.
			return probe(ctx)
		},
	})
}

// runSimulatedKubelet stands in for a kubelet on a cluster without a
// container runtime, the way kwok does: it registers one Ready Node, binds
// every unscheduled Pod to it when schedule is set (there is no
// kube-scheduler either), reports each bound Pod Running with every
// container started and ready (probes are not run but pass — a readiness
// probe once its initialDelaySeconds passed; the images are never pulled),
// and finishes the graceful deletion of its Pods. So Deployments
// become Available and Argo CD reports them Healthy.
//
// It runs no process, so it takes a container's exit from its command, as
// the process would decide it: a container whose command is `false` or
// `sh -c "exit N"` (N > 0) exits at once with 1 or N, and the kubelet
// restarts it with Kubernetes' back-off scaled down tenfold (1 s doubling
// up to 30 s instead of 10 s up to 5 min): the Pod stays Running but not
// ready, the container waits in CrashLoopBackOff with its restart count
// growing and its last termination recorded — a crash loop, as a node
// reports it.
//
// It pulls no image either, so any reference runs, except one on the
// registry host UnpullableRegistry (e.g. UnpullableRegistry+"/api:1"), which
// cannot be pulled: its container waits in ErrImagePull with the runtime's
// error (`rpc error: code = Unknown desc = failed to pull and unpack image
// "…": … no such host`) for a second, then in ImagePullBackOff (`Back-off
// pulling image "…": ErrImagePull: …`, the kubelet's message) until the
// next attempt, with the back-off of crash loops. A container whose
// environment needs a Secret or ConfigMap that does not exist (env valueFrom
// secretKeyRef/configMapKeyRef, envFrom; not optional) waits in
// CreateContainerConfigError with the kubelet's message (`secret "x" not
// found`, `couldn't find key k in Secret ns/x`) until it exists. Such a Pod
// stays Pending, its other containers not started. It runs until ctx ends.
func runSimulatedKubelet(ctx context.Context, kubeconfig, node string, schedule bool) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := registerNode(ctx, cs, node); err != nil {
		return err
	}
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	defer q.ShutDown()
	lw := cache.NewListWatchFromClient(cs.CoreV1().RESTClient(), "pods", metav1.NamespaceAll, fields.Everything())
	informer := cache.NewSharedIndexInformer(lw, &corev1.Pod{}, 0, cache.Indexers{})
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			q.Add(key)
		}
	}
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return err
	}
	go informer.Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return ctx.Err()
	}
	const workers = 4
	for range workers {
		go func() {
			for {
				key, quit := q.Get()
				if quit {
					return
				}
				obj, exists, err := informer.GetIndexer().GetByKey(key)
				var again time.Duration
				if err == nil && exists {
					again, err = handlePod(ctx, cs, node, schedule, obj.(*corev1.Pod))
				}
				if err != nil && !apierrors.IsNotFound(err) {
					fmt.Fprintf(os.Stderr, "simulated kubelet: pod %s: %v\n", key, err)
					q.AddRateLimited(key)
				} else {
					q.Forget(key)
					if again > 0 {
						q.AddAfter(key, again)
					}
				}
				q.Done(key)
			}
		}()
	}
	<-ctx.Done()
	return ctx.Err()
}

// registerNode creates (or refreshes) node with a Ready condition and room
// for plenty of Pods.
func registerNode(ctx context.Context, cs kubernetes.Interface, name string) error {
	n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		n, err = cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
				"type": "ferry-testenv-simulated",
			},
		}}, metav1.CreateOptions{})
	}
	if err != nil {
		return fmt.Errorf("register node %s: %w", name, err)
	}
	now := metav1.Now()
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("1000"),
	}
	n.Status = corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Phase:       corev1.NodeRunning,
		Addresses:   []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}, {Type: corev1.NodeHostName, Address: name}},
		Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "simulated kubelet is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now},
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", LastHeartbeatTime: now, LastTransitionTime: now},
			{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", LastHeartbeatTime: now, LastTransitionTime: now},
			{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", LastHeartbeatTime: now, LastTransitionTime: now},
		},
		NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.34.4-ferry-simulated", OperatingSystem: "linux", Architecture: "amd64", ContainerRuntimeVersion: "simulated://0"},
	}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("mark node %s Ready: %w", name, err)
	}
	return nil
}

// handlePod moves p one step as a kubelet (and scheduler) would; a positive
// duration asks to be called again for p after it (a crash loop's restart).
func handlePod(ctx context.Context, cs kubernetes.Interface, node string, schedule bool, p *corev1.Pod) (time.Duration, error) {
	pods := cs.CoreV1().Pods(p.Namespace)
	switch {
	case p.DeletionTimestamp != nil:
		if p.Spec.NodeName != node && (p.Spec.NodeName != "" || !schedule) {
			return 0, nil
		}
		// A kubelet confirms a graceful deletion once its containers stopped.
		grace := int64(0)
		return 0, pods.Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace, Preconditions: &metav1.Preconditions{UID: &p.UID}})
	case p.Spec.NodeName == "":
		if !schedule || (p.Spec.SchedulerName != "" && p.Spec.SchedulerName != corev1.DefaultSchedulerName) {
			return 0, nil
		}
		return 0, pods.Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: node},
		}, metav1.CreateOptions{})
	case p.Spec.NodeName != node:
		return 0, nil
	case p.Status.Phase == corev1.PodPending:
		now := time.Now()
		blocked, again, err := blockedContainers(ctx, cs, p, now)
		if err != nil {
			return 0, err
		}
		if len(blocked) == 0 {
			_, err := pods.UpdateStatus(ctx, runningStatus(p), metav1.UpdateOptions{})
			return time.Second, err
		}
		if next := pendingStatus(p, blocked, metav1.NewTime(now)); next != nil {
			if _, err := pods.UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil {
				return 0, err
			}
		}
		return again, nil
	case p.Status.Phase == corev1.PodRunning:
		now := time.Now()
		var wait time.Duration
		next := restartCrashed(p, now, &wait)
		if next == nil {
			next = readyAfterDelay(p, now, &wait)
		}
		if next == nil {
			return wait, nil
		}
		_, err := pods.UpdateStatus(ctx, next, metav1.UpdateOptions{})
		return crashBackoff(1), err
	}
	return 0, nil
}

// notYet reports whether due is still ahead of now, and then lowers *wait
// (0 meaning none yet) to the time left until it.
func notYet(due, now time.Time, wait *time.Duration) bool {
	if !now.Before(due) {
		return false
	}
	if w := due.Sub(now); *wait == 0 || w < *wait {
		*wait = w
	}
	return true
}

// readinessDelay is how long after its start a container passes its
// readiness probe: the probe's initialDelaySeconds (probes always pass).
func readinessDelay(c corev1.Container) time.Duration {
	if c.ReadinessProbe == nil {
		return 0
	}
	return time.Duration(c.ReadinessProbe.InitialDelaySeconds) * time.Second
}

// readyAfterDelay returns p with the containers whose readiness delay has
// passed marked ready (and the Pod too once all are), or nil; it lowers
// *wait to the time until the next one is due (see notYet).
func readyAfterDelay(p *corev1.Pod, now time.Time, wait *time.Duration) *corev1.Pod {
	var next *corev1.Pod
	for i, c := range p.Spec.Containers {
		if i >= len(p.Status.ContainerStatuses) || containerExit(c) != 0 {
			continue
		}
		s := p.Status.ContainerStatuses[i]
		if s.Ready || s.State.Running == nil {
			continue
		}
		if notYet(s.State.Running.StartedAt.Add(readinessDelay(c)), now, wait) {
			continue
		}
		if next == nil {
			next = p.DeepCopy()
		}
		next.Status.ContainerStatuses[i].Ready = true
	}
	if next != nil {
		setContainersReady(next, metav1.NewTime(now))
	}
	return next
}

// setContainersReady sets the Pod's ContainersReady and Ready conditions
// from its containers' readiness.
func setContainersReady(p *corev1.Pod, now metav1.Time) {
	var unready []string
	for _, s := range p.Status.ContainerStatuses {
		if !s.Ready {
			unready = append(unready, s.Name)
		}
	}
	for i, cond := range p.Status.Conditions {
		if cond.Type != corev1.ContainersReady && cond.Type != corev1.PodReady {
			continue
		}
		status, reason, msg := corev1.ConditionTrue, "", ""
		if len(unready) > 0 {
			status, reason, msg = corev1.ConditionFalse, "ContainersNotReady", fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
		}
		if cond.Status != status {
			p.Status.Conditions[i].LastTransitionTime = now
		}
		p.Status.Conditions[i].Status, p.Status.Conditions[i].Reason, p.Status.Conditions[i].Message = status, reason, msg
	}
}

// containerExit is the exit code a container's command decides at once:
// 1 for `false`, N for `sh -c "exit N"`; 0 for anything else (it runs).
func containerExit(c corev1.Container) int32 {
	cmd := append(append([]string{}, c.Command...), c.Args...)
	if len(cmd) == 1 && (cmd[0] == "false" || cmd[0] == "/bin/false") {
		return 1
	}
	if len(cmd) == 3 && (cmd[0] == "sh" || cmd[0] == "/bin/sh") && cmd[1] == "-c" {
		var n int32
		if _, err := fmt.Sscanf(strings.TrimSpace(cmd[2]), "exit %d", &n); err == nil && n > 0 {
			return n
		}
	}
	return 0
}

// crashBackoff is the kubelet's restart back-off after restarts restarts,
// scaled down tenfold: 1 s, 2 s, 4 s … up to 30 s.
func crashBackoff(restarts int32) time.Duration {
	d := time.Second
	for i := int32(1); i < restarts && d < 30*time.Second; i++ {
		d *= 2
	}
	return min(d, 30*time.Second)
}

// crashedStatus sets the status of container c, which exited with code
// after restarts restarts and now waits in CrashLoopBackOff.
func crashedStatus(p *corev1.Pod, s *corev1.ContainerStatus, code, restarts int32, now metav1.Time) {
	started := false
	s.Ready, s.Started, s.RestartCount = false, &started, restarts
	s.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
		Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", crashBackoff(restarts), s.Name, p.Name, p.Namespace, p.UID)}}
	s.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: code, Reason: "Error", StartedAt: now, FinishedAt: now, ContainerID: s.ContainerID}}
}

// restartCrashed returns p with its crash-looping containers restarted (and
// crashed again) once their back-off elapsed, or nil; it lowers *wait to the
// time until the next restart is due (see notYet).
func restartCrashed(p *corev1.Pod, now time.Time, wait *time.Duration) *corev1.Pod {
	var next *corev1.Pod
	for i, c := range p.Spec.Containers {
		code := containerExit(c)
		if code == 0 || i >= len(p.Status.ContainerStatuses) {
			continue
		}
		s := p.Status.ContainerStatuses[i]
		t := s.LastTerminationState.Terminated
		if t == nil {
			continue
		}
		if notYet(t.FinishedAt.Add(crashBackoff(s.RestartCount)), now, wait) {
			continue
		}
		if next == nil {
			next = p.DeepCopy()
		}
		crashedStatus(next, &next.Status.ContainerStatuses[i], code, s.RestartCount+1, metav1.NewTime(now))
	}
	return next
}

// runningStatus is p with the status of a Pod whose containers all started
// and passed their readiness probes.
func runningStatus(p *corev1.Pod) *corev1.Pod {
	now := metav1.Now()
	p = p.DeepCopy()
	ip := podIP(string(p.UID))
	p.Status.Phase = corev1.PodRunning
	p.Status.HostIP, p.Status.PodIP = "127.0.0.1", ip
	p.Status.HostIPs, p.Status.PodIPs = []corev1.HostIP{{IP: "127.0.0.1"}}, []corev1.PodIP{{IP: ip}}
	p.Status.StartTime = &now
	p.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	statuses := func(cs []corev1.Container) []corev1.ContainerStatus {
		var out []corev1.ContainerStatus
		for _, c := range cs {
			started := true
			out = append(out, corev1.ContainerStatus{
				Name: c.Name, Image: c.Image, ImageID: imageID(c.Image), ContainerID: "simulated://" + string(p.UID) + "/" + c.Name,
				Ready: true, Started: &started,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
			})
		}
		return out
	}
	p.Status.ContainerStatuses = statuses(p.Spec.Containers)
	for i, c := range p.Spec.Containers {
		if code := containerExit(c); code != 0 {
			crashedStatus(p, &p.Status.ContainerStatuses[i], code, 1, now)
		} else if readinessDelay(c) > 0 {
			p.Status.ContainerStatuses[i].Ready = false
		}
	}
	setContainersReady(p, now)
	var inits []corev1.ContainerStatus
	for _, c := range p.Spec.InitContainers {
		inits = append(inits, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: imageID(c.Image), Ready: true,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now}},
		})
	}
	p.Status.InitContainerStatuses = inits
	return p
}

// podIP derives a stable address in 10.244.0.0/16 from a Pod's UID.
func podIP(uid string) string {
	var h uint32 = 2166136261
	for _, b := range []byte(uid) {
		h = (h ^ uint32(b)) * 16777619
	}
	return fmt.Sprintf("10.244.%d.%d", (h>>8)%255, h%254+1)
}

// imageID is what a kubelet reports after the pull: the repository with
// the digest when the reference is pinned, else the reference.
func imageID(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		repo := image[:i]
		if j := strings.LastIndex(repo, ":"); j > strings.LastIndex(repo, "/") {
			repo = repo[:j]
		}
		return repo + image[i:]
	}
	return image
}

// UnpullableRegistry is the registry host whose images the simulated kubelet
// cannot pull (ImagePullBackOff); every other image "runs".
const UnpullableRegistry = "unpullable.testenv.invalid"

// pullFails reports whether image cannot be pulled: it is on
// UnpullableRegistry.
func pullFails(image string) (host string, fails bool) {
	host, _, _ = strings.Cut(image, "/")
	return host, host == UnpullableRegistry
}

// pullError is the container runtime's error for a failed pull of image from
// host, as a kubelet reports it in ErrImagePull.
func pullError(image, host string) string {
	name, tag := image, "latest"
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		name, tag = image[:i], image[i+1:]
	}
	repo := strings.TrimPrefix(name, host+"/")
	return fmt.Sprintf("rpc error: code = Unknown desc = failed to pull and unpack image %q: failed to resolve reference %q: "+
		"failed to do request: Head \"https://%s/v2/%s/manifests/%s\": dial tcp: lookup %s: no such host", image, image, host, repo, tag, host)
}

// pullState is the waiting state of a container whose image cannot be
// pulled, elapsed after the Pod started, and how long it stays so: each pull
// attempt shows ErrImagePull for a second, then ImagePullBackOff until the
// next attempt, the back-off growing as crashBackoff.
func pullState(image, host string, elapsed time.Duration) (*corev1.ContainerStateWaiting, time.Duration) {
	const shown = time.Second
	at := time.Duration(0)
	for k := int32(1); ; k++ {
		next := at + shown + crashBackoff(k)
		if elapsed < next {
			if elapsed < at+shown {
				return &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: pullError(image, host)}, at + shown - elapsed
			}
			return &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff",
				Message: fmt.Sprintf("Back-off pulling image %q: ErrImagePull: %s", image, pullError(image, host))}, next - elapsed
		}
		at = next
	}
}

// configError returns the kubelet's message for the first Secret or
// ConfigMap (or key of one) that c's environment needs and that does not
// exist in namespace, or "".
func configError(ctx context.Context, cs kubernetes.Interface, namespace string, c corev1.Container) (string, error) {
	type ref struct {
		kind, name, key string
	}
	var refs []ref
	for _, e := range c.EnvFrom {
		if s := e.SecretRef; s != nil && (s.Optional == nil || !*s.Optional) {
			refs = append(refs, ref{"Secret", s.Name, ""})
		}
		if m := e.ConfigMapRef; m != nil && (m.Optional == nil || !*m.Optional) {
			refs = append(refs, ref{"ConfigMap", m.Name, ""})
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			continue
		}
		if s := e.ValueFrom.SecretKeyRef; s != nil && (s.Optional == nil || !*s.Optional) {
			refs = append(refs, ref{"Secret", s.Name, s.Key})
		}
		if m := e.ValueFrom.ConfigMapKeyRef; m != nil && (m.Optional == nil || !*m.Optional) {
			refs = append(refs, ref{"ConfigMap", m.Name, m.Key})
		}
	}
	for _, r := range refs {
		var keys map[string]bool
		switch r.kind {
		case "Secret":
			s, err := cs.CoreV1().Secrets(namespace).Get(ctx, r.name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return fmt.Sprintf("secret %q not found", r.name), nil
			} else if err != nil {
				return "", err
			}
			keys = map[string]bool{}
			for k := range s.Data {
				keys[k] = true
			}
			for k := range s.StringData {
				keys[k] = true
			}
		case "ConfigMap":
			m, err := cs.CoreV1().ConfigMaps(namespace).Get(ctx, r.name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return fmt.Sprintf("configmap %q not found", r.name), nil
			} else if err != nil {
				return "", err
			}
			keys = map[string]bool{}
			for k := range m.Data {
				keys[k] = true
			}
			for k := range m.BinaryData {
				keys[k] = true
			}
		}
		if r.key != "" && !keys[r.key] {
			return fmt.Sprintf("couldn't find key %s in %s %s/%s", r.key, r.kind, namespace, r.name), nil
		}
	}
	return "", nil
}

// blockedContainers returns the waiting state of each container of p (by
// index) that cannot start at now — its image cannot be pulled, or its
// configuration names a missing Secret or ConfigMap — and when to look
// again.
func blockedContainers(ctx context.Context, cs kubernetes.Interface, p *corev1.Pod, now time.Time) (map[int]*corev1.ContainerStateWaiting, time.Duration, error) {
	started := now
	if p.Status.StartTime != nil {
		started = p.Status.StartTime.Time
	}
	out := map[int]*corev1.ContainerStateWaiting{}
	again := 2 * time.Second
	for i, c := range p.Spec.Containers {
		if host, fails := pullFails(c.Image); fails {
			w, until := pullState(c.Image, host, now.Sub(started))
			out[i], again = w, min(again, until)
			continue
		}
		msg, err := configError(ctx, cs, p.Namespace, c)
		if err != nil {
			return nil, 0, err
		}
		if msg != "" {
			out[i] = &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: msg}
		}
	}
	return out, max(again, 100*time.Millisecond), nil
}

// pendingStatus returns p as a kubelet reports a Pod whose containers in
// blocked cannot start (the others wait to be created), or nil when its
// status already says so.
func pendingStatus(p *corev1.Pod, blocked map[int]*corev1.ContainerStateWaiting, now metav1.Time) *corev1.Pod {
	next := p.DeepCopy()
	if next.Status.StartTime == nil {
		next.Status.StartTime = &now
		ip := podIP(string(p.UID))
		next.Status.HostIP, next.Status.PodIP = "127.0.0.1", ip
		next.Status.HostIPs, next.Status.PodIPs = []corev1.HostIP{{IP: "127.0.0.1"}}, []corev1.PodIP{{IP: ip}}
	}
	var names []string
	for _, c := range p.Spec.Containers {
		names = append(names, c.Name)
	}
	unready := fmt.Sprintf("containers with unready status: [%s]", strings.Join(names, " "))
	next.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", Message: unready, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", Message: unready, LastTransitionTime: now},
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	var statuses []corev1.ContainerStatus
	for i, c := range p.Spec.Containers {
		started := false
		w := blocked[i]
		if w == nil {
			w = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
		}
		statuses = append(statuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image, Started: &started, State: corev1.ContainerState{Waiting: w}})
	}
	if p.Status.StartTime != nil && len(p.Status.ContainerStatuses) == len(statuses) {
		same := true
		for i, s := range p.Status.ContainerStatuses {
			if w := s.State.Waiting; w == nil || *w != *statuses[i].State.Waiting {
				same = false
			}
		}
		if same {
			return nil
		}
		for i, c := range p.Status.Conditions {
			for j := range next.Status.Conditions {
				if next.Status.Conditions[j].Type == c.Type && next.Status.Conditions[j].Status == c.Status {
					next.Status.Conditions[j].LastTransitionTime = p.Status.Conditions[i].LastTransitionTime
				}
			}
		}
	}
	next.Status.ContainerStatuses = statuses
	return next
}
