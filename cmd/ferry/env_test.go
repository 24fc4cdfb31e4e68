package main

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
	"github.com/ferry-dev/terraform-provider-ferry/internal/window"
)

// sharedEnv is the registry, Kubernetes control plane and Argo CD the CLI tests share.
var sharedEnv = testenv.NewShared(testenv.Options{Registry: true, ArgoCD: true})

func windowSpecs(kind, schedule, duration, tz string) []window.Spec {
	return []window.Spec{{Kind: kind, Schedule: schedule, Duration: duration, TimeZone: tz}}
}

type unstructuredObj = unstructured.Unstructured
