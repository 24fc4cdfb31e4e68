package fleet

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"

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

// TestLockLost: a lock whose renewals fail is declared lost before its lease expires (when another
// rollout could take it over), and a lock whose lease another holder took is lost at the next
// renewal; OnLost is called once, and renewal stops.
func TestLockLost(t *testing.T) {
	var failing atomic.Bool
	for _, tt := range []struct {
		name    string
		breakIt func(dyn *fake.FakeDynamicClient)
		want    string
	}{
		{name: "renewals fail", want: "unavailable", breakIt: func(*fake.FakeDynamicClient) { failing.Store(true) }},
		{name: "taken over", want: `lease now held by "thief"`, breakIt: func(dyn *fake.FakeDynamicClient) {
			u, err := dyn.Resource(LeaseGVR).Namespace("argocd").Get(context.Background(), "ferry-fleet-shop", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			unstructured.SetNestedField(u.Object, "thief", "spec", "holderIdentity")
			if _, err := dyn.Resource(LeaseGVR).Namespace("argocd").Update(context.Background(), u, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dyn := fake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{LeaseGVR: "LeaseList"})
			// Reactors are added before the renewals start (the fake's reactor chain is not
			// locked); the switch turns the failures on.
			failing.Store(false)
			dyn.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
				if failing.Load() {
					return true, nil, apierrors.NewServiceUnavailable("unavailable")
				}
				return false, nil, nil
			})
			c := argocd.NewFromDynamic(dyn, "argocd")
			lost := make(chan error, 2)
			const dur = 3 * time.Second
			l, err := AcquireLock(context.Background(), c, "shop", LockOptions{Holder: "me", Duration: dur, OnLost: func(err error) { lost <- err }})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Release(context.Background())
			// Let one renewal succeed, then break the next ones.
			time.Sleep(dur/3 + dur/6)
			u, err := dyn.Resource(LeaseGVR).Namespace("argocd").Get(context.Background(), "ferry-fleet-shop", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			_, renewed, _ := leaseState(u)
			tt.breakIt(dyn)
			select {
			case err := <-lost:
				if since := time.Since(renewed); since > dur-dur/6 {
					t.Errorf("lost %v after the last renewal, want well before the lease expires (%v after it)", since, dur)
				}
				if !strings.Contains(err.Error(), "rollout lock lease argocd/ferry-fleet-shop lost") || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("OnLost(%v), want the lease named and %q", err, tt.want)
				}
			case <-time.After(2 * dur):
				t.Fatal("OnLost was not called")
			}
			select {
			case err := <-lost:
				t.Errorf("OnLost called again: %v", err)
			case <-time.After(dur / 2):
			}
		})
	}
}
