package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/ferry-dev/terraform-provider-ferry/internal/argocd"
)

// LeaseGVR is the resource of the rollout lock: a coordination.k8s.io/v1 Lease.
var LeaseGVR = schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}

// DefaultLeaseDuration is how long a rollout's Lease stays held without renewal: a rollout killed
// with kill -9 blocks the next one for at most this long. It is renewed every third of it.
const DefaultLeaseDuration = 30 * time.Second

// ErrLocked is wrapped by the *LockedError of a fleet whose rollout lock another rollout holds.
var ErrLocked = errors.New("another rollout of the fleet is running")

// LockedError says who holds a fleet's rollout lock.
type LockedError struct {
	Fleet  string
	Lease  string // namespace/name
	Holder string
	// Renewed is when the holder last renewed the lease; it expires at Renewed + Duration.
	Renewed  time.Time
	Duration time.Duration
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("fleet %s: another rollout is running: lease %s is held by %q (renewed %s, expires %s unless renewed)",
		e.Fleet, e.Lease, e.Holder, e.Renewed.UTC().Format(time.RFC3339), e.Renewed.Add(e.Duration).UTC().Format(time.RFC3339))
}

// Unwrap returns ErrLocked.
func (e *LockedError) Unwrap() error { return ErrLocked }

// LockOptions tune AcquireLock.
type LockOptions struct {
	// Holder identifies this rollout in the lease (spec.holderIdentity). Default: DefaultHolder().
	Holder string
	// Duration is the lease duration. Default DefaultLeaseDuration.
	Duration time.Duration
	// OnLost, if set, is called once when two renewals in a row failed (half of Duration passed
	// without one: it is declared lost a third of Duration before it expires) or the lease was
	// taken by another holder: the rollout should stop starting targets (the CLI halts it).
	OnLost func(error)
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

// Lock is a held rollout lock; Release it when the rollout ends.
type Lock struct {
	res    dynamic.ResourceInterface
	name   string
	ns     string
	holder string
	dur    time.Duration
	now    func() time.Time

	stop     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	released bool
}

var leaseNameUnsafe = regexp.MustCompile(`[^a-z0-9-]+`)

// LeaseName is the name of the Lease that locks the rollouts of fleet: ferry-fleet-NAME.
func LeaseName(fleet string) string {
	n := "ferry-fleet-" + strings.Trim(leaseNameUnsafe.ReplaceAllString(strings.ToLower(fleet), "-"), "-")
	if len(n) > 253 {
		n = n[:253]
	}
	return n
}

// DefaultHolder is a holder identity naming this process: user@host pid N, with a random suffix
// so two processes never share one.
func DefaultHolder() string {
	host, _ := os.Hostname()
	user := os.Getenv("USER")
	if user == "" {
		user = "unknown"
	}
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s@%s pid %d %s", user, host, os.Getpid(), hex.EncodeToString(b))
}

// AcquireLock takes the rollout lock of fleet: the Lease LeaseName(fleet) in c's namespace (Argo
// CD's). A lease another holder renewed less than its duration ago is refused with a
// *LockedError; an expired one (its holder died) is taken over. The lock is renewed in the
// background until Release. Two processes racing for the same lease are ordered by the API
// server's resourceVersion check: one gets a conflict and is refused.
func AcquireLock(ctx context.Context, c *argocd.Client, fleet string, opts LockOptions) (*Lock, error) {
	if opts.Holder == "" {
		opts.Holder = DefaultHolder()
	}
	if opts.Duration <= 0 {
		opts.Duration = DefaultLeaseDuration
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	l := &Lock{res: c.Dynamic().Resource(LeaseGVR).Namespace(c.Namespace()), name: LeaseName(fleet), ns: c.Namespace(),
		holder: opts.Holder, dur: opts.Duration, now: opts.Now, stop: make(chan struct{}), done: make(chan struct{})}
	now := metav1.NewMicroTime(opts.Now())
	cur, err := l.res.Get(ctx, l.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
			"metadata": map[string]any{"name": l.name, "labels": map[string]any{argocd.LabelManagedBy: argocd.ManagedByFerry}},
			"spec":     l.spec(now, now, 0),
		}}
		if _, err := l.res.Create(ctx, obj, metav1.CreateOptions{FieldManager: argocd.FieldManager}); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return nil, l.lockedNow(ctx, fleet)
			}
			return nil, fmt.Errorf("create lease %s/%s: %w", l.ns, l.name, err)
		}
	case err != nil:
		return nil, fmt.Errorf("read lease %s/%s: %w", l.ns, l.name, err)
	default:
		holder, renewed, dur := leaseState(cur)
		if holder != "" && holder != l.holder && opts.Now().Before(renewed.Add(dur)) {
			return nil, &LockedError{Fleet: fleet, Lease: l.ns + "/" + l.name, Holder: holder, Renewed: renewed, Duration: dur}
		}
		transitions, _, _ := unstructured.NestedInt64(cur.Object, "spec", "leaseTransitions")
		if err := unstructured.SetNestedField(cur.Object, l.spec(now, now, transitions+1), "spec"); err != nil {
			return nil, err
		}
		// The update carries the resourceVersion read: a rollout that took the lease in between
		// makes it fail with a conflict.
		if _, err := l.res.Update(ctx, cur, metav1.UpdateOptions{FieldManager: argocd.FieldManager}); err != nil {
			if apierrors.IsConflict(err) {
				return nil, l.lockedNow(ctx, fleet)
			}
			return nil, fmt.Errorf("take over lease %s/%s: %w", l.ns, l.name, err)
		}
	}
	go l.renew(now.Time, opts.OnLost)
	return l, nil
}

// lockedNow reads the lease another process just wrote, for the error.
func (l *Lock) lockedNow(ctx context.Context, fleet string) error {
	e := &LockedError{Fleet: fleet, Lease: l.ns + "/" + l.name, Holder: "another rollout", Duration: l.dur, Renewed: l.now()}
	if cur, err := l.res.Get(ctx, l.name, metav1.GetOptions{}); err == nil {
		e.Holder, e.Renewed, e.Duration = leaseState(cur)
	}
	return e
}

func (l *Lock) spec(acquire, renew metav1.MicroTime, transitions int64) map[string]any {
	return map[string]any{
		"holderIdentity":       l.holder,
		"leaseDurationSeconds": int64(l.dur / time.Second),
		"acquireTime":          acquire.UTC().Format(metav1.RFC3339Micro),
		"renewTime":            renew.UTC().Format(metav1.RFC3339Micro),
		"leaseTransitions":     transitions,
	}
}

// leaseState returns a Lease's holder, last renewal and duration.
func leaseState(u *unstructured.Unstructured) (string, time.Time, time.Duration) {
	holder, _, _ := unstructured.NestedString(u.Object, "spec", "holderIdentity")
	secs, _, _ := unstructured.NestedInt64(u.Object, "spec", "leaseDurationSeconds")
	rs, _, _ := unstructured.NestedString(u.Object, "spec", "renewTime")
	renewed, _ := time.Parse(metav1.RFC3339Micro, rs)
	return holder, renewed, time.Duration(secs) * time.Second
}

// renew renews the lease every third of its duration until Release, from a lease whose renewTime
// is written. A lease taken by another holder, or whose renewals failed twice in a row, is lost:
// onLost is called and renewal stops. The time a lease lasts counts from the renewTime last written
// (another rollout reads that), not from when the write returned.
func (l *Lock) renew(written time.Time, onLost func(error)) {
	defer close(l.done)
	t := time.NewTicker(l.dur / 3)
	defer t.Stop()
	lastOK := written
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		renewed, err := l.renewOnce()
		if err == nil {
			lastOK = renewed
			continue
		}
		// Two renewals in a row failed: lost about a third of the duration before the lease expires
		// and another rollout may take it, so this one stops starting targets before then.
		if errors.Is(err, ErrLocked) || l.now().Sub(lastOK) >= l.dur/2 {
			if onLost != nil {
				onLost(fmt.Errorf("rollout lock lease %s/%s lost: %w", l.ns, l.name, err))
			}
			return
		}
	}
}

// renewOnce writes a new renewTime and returns it.
func (l *Lock) renewOnce() (time.Time, error) {
	ctx, cancel := context.WithTimeout(context.Background(), l.dur/3)
	defer cancel()
	cur, err := l.res.Get(ctx, l.name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return time.Time{}, fmt.Errorf("lease deleted: %w", ErrLocked)
		}
		return time.Time{}, err
	}
	if holder, _, _ := leaseState(cur); holder != l.holder {
		return time.Time{}, fmt.Errorf("lease now held by %q: %w", holder, ErrLocked)
	}
	renewed := metav1.NewMicroTime(l.now())
	if err := unstructured.SetNestedField(cur.Object, renewed.UTC().Format(metav1.RFC3339Micro), "spec", "renewTime"); err != nil {
		return time.Time{}, err
	}
	if _, err = l.res.Update(ctx, cur, metav1.UpdateOptions{FieldManager: argocd.FieldManager}); err != nil {
		return time.Time{}, err
	}
	return renewed.Time, nil
}

// Holder returns the lock's holder identity.
func (l *Lock) Holder() string { return l.holder }

// Release stops renewing and deletes the lease if this rollout still holds it, so the next
// rollout need not wait for it to expire.
func (l *Lock) Release(ctx context.Context) error {
	l.mu.Lock()
	if l.released {
		l.mu.Unlock()
		return nil
	}
	l.released = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	cur, err := l.res.Get(ctx, l.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("release lease %s/%s: %w", l.ns, l.name, err)
	}
	if holder, _, _ := leaseState(cur); holder != l.holder {
		return nil
	}
	rv := cur.GetResourceVersion()
	err = l.res.Delete(ctx, l.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("release lease %s/%s: %w", l.ns, l.name, err)
	}
	return nil
}
