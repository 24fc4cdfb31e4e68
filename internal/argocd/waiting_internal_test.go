package argocd

import (
	"reflect"
	"testing"
)

func TestWaitingFor(t *testing.T) {
	const prefix = "waiting for pruning confirmation of "
	tests := []struct {
		msg  string
		want []Resource
	}{
		{"waiting for pruning confirmation of /ConfigMap/precious", []Resource{{Kind: "ConfigMap", Name: "precious", Status: "S"}}},
		{"waiting for pruning confirmation of apps/Deployment/api and 2 more resources", []Resource{{Group: "apps", Kind: "Deployment", Name: "api", Status: "S"}}},
		{"waiting for healthy state of apps/Deployment/api", nil},
		{"waiting for pruning confirmation of garbage", nil},
		{"", nil},
	}
	for _, tt := range tests {
		if got := waitingFor(tt.msg, prefix, "S"); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("waitingFor(%q) = %+v, want %+v", tt.msg, got, tt.want)
		}
	}
}
