package main

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
	"github.com/ferry-dev/terraform-provider-ferry/internal/window"
)

// sharedEnv is the registry, Kubernetes control plane and Argo CD the CLI tests share.
// Its simulated kubelet runs only Pods pinned to its Node (crash loops); every other Pod stays
// Pending, so Deployments that must never become ready stay that way.
var sharedEnv = testenv.NewShared(testenv.Options{Registry: true, ArgoCD: true,
	ClusterOptions: testenv.ClusterOptions{SimulatedKubelet: true, SimulatedKubeletNoScheduler: true}})

func windowSpecs(kind, schedule, duration, tz string) []window.Spec {
	return []window.Spec{{Kind: kind, Schedule: schedule, Duration: duration, TimeZone: tz}}
}

type unstructuredObj = unstructured.Unstructured
