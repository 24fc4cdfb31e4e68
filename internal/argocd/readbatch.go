package argocd

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// Batched reads. Terraform refreshes every ferry_application of a configuration with its own
// ReadResource call, ten at a time; a configuration with hundreds of applications would make as
// many GETs, which cost the API server more CPU than anything else in the plan. A BatchReader
// serves such reads from one list of the environment's Applications (the LabelEnvironment
// selector, so never every Application of the namespace):
//
//   - the first BatchThreshold-1 reads of an environment are plain GETs, so a root with one or two
//     applications per environment (a customer root) makes exactly the requests it made before;
//   - the next read lists the environment's Applications; reads that arrive meanwhile wait for
//     the list, and reads for BatchTTL after it was sent are answered from it;
//   - an Application the list does not hold (deleted, not labelled yet, listing forbidden, or the
//     list failed) is read with a GET, so the answer is never "gone" because of the batch;
//   - once this client has written anything (any request but GET, LIST or WATCH), a list sent
//     before the write answers nothing more: a read after a write sees the write.
//
// A batched read is at most BatchTTL older than a GET at the same moment would be — the same
// staleness a slower refresh has anyway.
type BatchReader struct {
	c   *Client
	now func() time.Time

	mu   sync.Mutex
	envs map[string]*envReads
}

// BatchThreshold is the number of reads of one environment from which a BatchReader lists it;
// BatchTTL how long a list answers reads.
const (
	BatchThreshold = 4
	BatchTTL       = 10 * time.Second
)

type envReads struct {
	reads int
	list  *envList
}

// envList is one list of an environment's Applications, in flight until done is closed.
type envList struct {
	sent   time.Time
	writes uint64 // the client's write count when the list was sent
	done   chan struct{}
	items  map[string]*unstructured.Unstructured
	err    error
}

// NewBatchReader returns a BatchReader over c.
func NewBatchReader(c *Client) *BatchReader {
	return &BatchReader{c: c, now: time.Now, envs: map[string]*envReads{}}
}

// GetApplication reads the Application name of environment env (the LabelEnvironment value: an
// environment's name, ProjectEnvironment of its project), as Client.GetApplication; with env ""
// (not known, as in an import) it is a GET.
func (b *BatchReader) GetApplication(ctx context.Context, env, name string) (*unstructured.Unstructured, error) {
	if env == "" {
		return b.c.GetApplication(ctx, name)
	}
	l, mine := b.listFor(env)
	if l == nil {
		return b.c.GetApplication(ctx, name)
	}
	if mine {
		items, err := b.c.ListApplications(ctx, LabelEnvironment+"="+env)
		if err == nil {
			l.items = make(map[string]*unstructured.Unstructured, len(items))
			for i := range items {
				l.items[items[i].GetName()] = &items[i]
			}
		}
		l.err = err
		close(l.done)
	}
	select {
	case <-l.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if app := l.items[name]; app != nil && l.err == nil && b.c.writeCount() == l.writes {
		return app.DeepCopy(), nil
	}
	return b.c.GetApplication(ctx, name)
}

// listFor returns the list that answers a read of env now, nil for a GET; mine says the caller
// makes the list.
func (b *BatchReader) listFor(env string) (l *envList, mine bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.envs[env]
	if e == nil {
		e = &envReads{}
		b.envs[env] = e
	}
	e.reads++
	now, writes := b.now(), b.c.writeCount()
	if e.list != nil && (now.Sub(e.list.sent) <= BatchTTL && e.list.writes == writes) {
		return e.list, false
	}
	if e.reads < BatchThreshold {
		return nil, false
	}
	e.list = &envList{sent: now, writes: writes, done: make(chan struct{})}
	return e.list, true
}

// writeCounter counts the requests that can change something (anything but GET, LIST and
// WATCH, which are all GETs on the wire) when their answer arrives: a list sent before then
// cannot be trusted to hold the write.
type writeCounter struct {
	next   http.RoundTripper
	writes *atomic.Uint64
}

func (w writeCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := w.next.RoundTrip(r)
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions {
		w.writes.Add(1)
	}
	return resp, err
}

// WrappedRoundTripper lets client-go reach the transport under the counter to cancel a request
// (k8s.io/apimachinery/pkg/util/net.RoundTripperWrapper); without it client-go logs "unable to
// cancel request" whenever a request times out.
func (w writeCounter) WrappedRoundTripper() http.RoundTripper { return w.next }

var _ utilnet.RoundTripperWrapper = writeCounter{}

// writeCount is the number of writes this client has sent (0 for NewFromDynamic).
func (c *Client) writeCount() uint64 {
	if c.writes == nil {
		return 0
	}
	return c.writes.Load()
}
