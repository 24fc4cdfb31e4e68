package bundle

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// TestPushFaults fails the Nth request of a push, for every N, with a 500, a 429, a reset connection and
// a request that never answers. Each push must either complete (through retries) with the tag on
// the complete new bundle, or fail with the tag still on the previous bundle.
func TestPushFaults(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	ctx := context.Background()
	v1, v2 := t.TempDir(), t.TempDir()
	files := map[string]string{
		"ferry.yaml":   "apiVersion: ferry.dev/v1\nkind: Bundle\nname: a\nversion: 1.0.0\nmanifests: m\nterraform: tf\nplugins: p\n",
		"m/cm.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
		"tf/main.tf":   "output \"x\" { value = 1 }\n",
		"p/plugin.sh*": "#!/bin/sh\necho v1\n",
	}
	writeTree(t, v1, files)
	files["p/plugin.sh*"] = "#!/bin/sh\necho v2\n"
	writeTree(t, v2, files)
	opts := PushOptions{PackOptions: PackOptions{Created: testCreated}}
	direct := clientFor(t, nil, ClientOptions{})

	// Count the requests of a clean push of v2 over v1.
	baseline := func(repo string) string {
		t.Helper()
		res, err := Push(ctx, direct, v1, mustRef(t, reg.Addr+"/"+repo+":stable"), opts)
		if err != nil {
			t.Fatalf("Push(v1) error = %v", err)
		}
		return res.Digest
	}
	counter := testenv.StartFaultProxy(t, reg.Addr, 0, 0)
	baseline("faults/count")
	if _, err := Push(ctx, clientFor(t, nil, ClientOptions{}), v2, mustRef(t, counter.Addr+"/faults/count:stable"), opts); err != nil {
		t.Fatalf("Push(v2) error = %v", err)
	}
	total := counter.Requests()
	if total < 10 {
		t.Fatalf("a push made %d requests, want at least 10: %v", total, counter.Log())
	}

	modes := []testenv.FaultMode{testenv.FaultStatus500, testenv.FaultStatus429, testenv.FaultReset, testenv.FaultTimeout}
	for _, attempts := range []int{5, 1} {
		for _, mode := range modes {
			for n := 1; n <= total; n++ {
				t.Run(fmt.Sprintf("attempts=%d/%s/request=%d", attempts, mode, n), func(t *testing.T) {
					repo := fmt.Sprintf("faults/a%d-%d-%d", attempts, mode, n)
					old := baseline(repo)
					proxy := testenv.StartFaultProxy(t, reg.Addr, n, mode)
					c := clientFor(t, nil, ClientOptions{MaxAttempts: attempts, RequestTimeout: 300 * time.Millisecond})
					res, err := Push(ctx, c, v2, mustRef(t, proxy.Addr+"/"+repo+":stable"), opts)
					tag, rerr := reg.Resolve(t, repo, "stable")
					if rerr != nil {
						t.Fatalf("tag stable: %v", rerr)
					}
					switch {
					case err == nil:
						if tag.Digest.String() != res.Digest {
							t.Errorf("after a successful push the tag is on %s, want %s", tag.Digest, res.Digest)
						}
						// The bundle behind the tag is complete.
						if _, err := Pull(ctx, direct, mustRef(t, reg.Addr+"/"+repo+":stable"), t.TempDir(), PullOptions{}); err != nil {
							t.Errorf("Pull() of the pushed bundle error = %v", err)
						}
					case attempts > 1:
						t.Errorf("Push() with retries error = %v, want success (log %v)", err, proxy.Log())
					default:
						if tag.Digest.String() != old {
							t.Errorf("after a failed push (%v) the tag moved to %s, want %s", err, tag.Digest, old)
						}
					}
				})
			}
		}
	}
}
