package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
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

func init() {
	if kubeconfig := os.Getenv(simulatedKubeletEnv); kubeconfig != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		err := runSimulatedKubelet(ctx, kubeconfig, SimulatedNodeName)
		stop()
		if err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintf(os.Stderr, "simulated kubelet: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// startSimulatedKubelet starts the simulated kubelet for c as a child
// process (this binary, re-executed) and waits until its Node is Ready.
func startSimulatedKubelet(c *Cluster, mode launchMode) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("simulated kubelet: find this executable: %w", err)
	}
	probe := httpProbe(c.Host+"/api/v1/nodes/"+SimulatedNodeName, c.CAData, c.Token)
	return startComponent(component{
		name: "simulated-kubelet", bin: self, dir: c.Dir, mode: mode, timeout: time.Minute,
		env:  childEnv([]string{"KUBECONFIG=", simulatedKubeletEnv + "="}, simulatedKubeletEnv+"="+c.Kubeconfig),
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
// every unscheduled Pod to it (there is no kube-scheduler either), reports
// each bound Pod Running with every container started and ready (probes are
// not run: the images are never pulled), and finishes the graceful deletion
// of its Pods. So Deployments become Available and Argo CD reports them
// Healthy. It runs until ctx ends.
func runSimulatedKubelet(ctx context.Context, kubeconfig, node string) error {
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
				if err == nil && exists {
					err = handlePod(ctx, cs, node, obj.(*corev1.Pod))
				}
				if err != nil && !apierrors.IsNotFound(err) {
					fmt.Fprintf(os.Stderr, "simulated kubelet: pod %s: %v\n", key, err)
					q.AddRateLimited(key)
				} else {
					q.Forget(key)
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

// handlePod moves p one step as a kubelet (and scheduler) would.
func handlePod(ctx context.Context, cs kubernetes.Interface, node string, p *corev1.Pod) error {
	pods := cs.CoreV1().Pods(p.Namespace)
	switch {
	case p.DeletionTimestamp != nil:
		if p.Spec.NodeName != node && p.Spec.NodeName != "" {
			return nil
		}
		// A kubelet confirms a graceful deletion once its containers stopped.
		grace := int64(0)
		return pods.Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace, Preconditions: &metav1.Preconditions{UID: &p.UID}})
	case p.Spec.NodeName == "":
		if p.Spec.SchedulerName != "" && p.Spec.SchedulerName != corev1.DefaultSchedulerName {
			return nil
		}
		return pods.Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: node},
		}, metav1.CreateOptions{})
	case p.Spec.NodeName == node && p.Status.Phase == corev1.PodPending:
		_, err := pods.UpdateStatus(ctx, runningStatus(p), metav1.UpdateOptions{})
		return err
	}
	return nil
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
