package fleet

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/fake"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

// TestLock checks the lock's rules on an in-memory API (the real API server's are in
// cmd/ferry's TestCLIFleetRolloutLock): a fresh lease of another holder refuses, naming it; an
// expired one is taken over; Release deletes the lease.
func TestLock(t *testing.T) {
	dyn := fake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{LeaseGVR: "LeaseList"})
	c := argocd.NewFromDynamic(dyn, "argocd")
	ctx := context.Background()
	var now atomic.Int64 // the renewal goroutines read the clock too
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }

	first, err := AcquireLock(ctx, c, "shop", LockOptions{Holder: "first", Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	_, err = AcquireLock(ctx, c, "shop", LockOptions{Holder: "second", Now: clock})
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) || le.Holder != "first" || !strings.Contains(err.Error(), `lease argocd/ferry-fleet-shop is held by "first"`) {
		t.Fatalf("AcquireLock() while held = %v, want a LockedError naming first", err)
	}
	if _, err := AcquireLock(ctx, c, "other", LockOptions{Holder: "second", Now: clock}); err != nil {
		t.Errorf("AcquireLock() of another fleet = %v", err)
	}

	// The first holder dies (no renewal, no release): 31 s later its lease has expired.
	now.Add(int64(31 * time.Second))
	second, err := AcquireLock(ctx, c, "shop", LockOptions{Holder: "second", Now: clock})
	if err != nil {
		t.Fatalf("AcquireLock() of an expired lease = %v", err)
	}
	u, err := dyn.Resource(LeaseGVR).Namespace("argocd").Get(ctx, "ferry-fleet-shop", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h, _, d := leaseState(u); h != "second" || d != DefaultLeaseDuration {
		t.Errorf("lease = holder %q duration %v, want second, %v", h, d, DefaultLeaseDuration)
	}
	// The dead holder's Release leaves the new holder's lease alone.
	if err := first.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(LeaseGVR).Namespace("argocd").Get(ctx, "ferry-fleet-shop", metav1.GetOptions{}); err != nil {
		t.Errorf("the first holder's Release removed the second's lease: %v", err)
	}
	if err := second.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(LeaseGVR).Namespace("argocd").Get(ctx, "ferry-fleet-shop", metav1.GetOptions{}); err == nil {
		t.Errorf("Release() left the lease")
	}
}

func TestLeaseName(t *testing.T) {
	for in, want := range map[string]string{"shop": "ferry-fleet-shop", "Shop_EU.1": "ferry-fleet-shop-eu-1"} {
		if got := LeaseName(in); got != want {
			t.Errorf("LeaseName(%q) = %q, want %q", in, got, want)
		}
	}
}
