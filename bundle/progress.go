package bundle

import (
	"io"
	"sync"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Progress actions reported to OnProgress.
const (
	ProgressUpload   = "upload"   // a blob upload starts
	ProgressUploaded = "uploaded" // a blob upload finished
	ProgressSkip     = "skip"     // the target already has the blob
	ProgressDownload = "download" // a blob download starts
	ProgressDone     = "done"     // a blob download finished
	ProgressManifest = "manifest" // the manifest was pushed
	ProgressTag      = "tag"      // a tag was pointed at the manifest
	// ProgressSignature: the signature was attached to the manifest (before any tag moves).
	ProgressSignature = "signature"
	// ProgressBytes reports the bytes a step has moved so far (see [ProgressEvent]). Its steps are
	// ProgressPack, ProgressUpload, ProgressDownload and ProgressExtract.
	ProgressBytes = "bytes"
	// ProgressPack is the step of a ProgressBytes event that reads a layer's files into its archive
	// while packing.
	ProgressPack = "pack"
	// ProgressExtract is the step of a ProgressBytes event that extracts a downloaded zip layer (a
	// tar+gzip layer is extracted while it downloads).
	ProgressExtract = "extract"
)

// ProgressEvent reports one step of a push or pull, or, with Action ProgressBytes, how far a step
// moving a blob's bytes has come.
type ProgressEvent struct {
	Action     string
	Title      string // layer title, "config", "manifest" or the tag
	Descriptor ocispec.Descriptor
	// Step is, for ProgressBytes, the step moving the bytes: ProgressPack, ProgressUpload,
	// ProgressDownload or ProgressExtract.
	Step string
	// Bytes of Total have moved, for ProgressBytes. Bytes start again from 0 when a transfer is
	// retried.
	Bytes, Total int64
}

// progressInterval is the least time between two ProgressBytes events of one step: a terminal
// redraws at most a few times a second, and a hook called for every read of a large blob would cost
// more than the read.
const progressInterval = 100 * time.Millisecond

// meter counts the bytes one step of one blob moves and reports them to a progress hook, at most
// every progressInterval and once when all Total bytes have moved. A nil *meter counts nothing, so
// the engine wraps its readers the same way with and without a hook.
type meter struct {
	emit        func(ProgressEvent)
	step, title string
	total       int64

	mu   sync.Mutex
	n    int64
	last time.Time
}

// newMeter returns a meter for step of the blob title (total bytes), or nil when onProgress is nil.
func newMeter(onProgress func(ProgressEvent), step, title string, total int64) *meter {
	if onProgress == nil {
		return nil
	}
	return &meter{emit: onProgress, step: step, title: title, total: total}
}

func (m *meter) add(k int) {
	if k <= 0 {
		return
	}
	m.mu.Lock()
	m.n += int64(k)
	now := time.Now()
	report := m.n >= m.total && m.n-int64(k) < m.total || now.Sub(m.last) >= progressInterval
	if report {
		m.last = now
	}
	n := m.n
	m.mu.Unlock()
	if report {
		m.emit(ProgressEvent{Action: ProgressBytes, Step: m.step, Title: m.title, Bytes: n, Total: m.total})
	}
}

// reader returns r counting through m.
func (m *meter) reader(r io.Reader) io.Reader {
	if m == nil {
		return r
	}
	return &meterReader{r, m}
}

// readerAt returns r counting through m: for a zip layer, what the extractor reads of the archive.
func (m *meter) readerAt(r io.ReaderAt) io.ReaderAt {
	if m == nil {
		return r
	}
	return &meterReaderAt{r, m}
}

// readCloser returns rc counting through m, closing rc.
func (m *meter) readCloser(rc io.ReadCloser) io.ReadCloser {
	if m == nil {
		return rc
	}
	return struct {
		io.Reader
		io.Closer
	}{m.reader(rc), rc}
}

type meterReader struct {
	r io.Reader
	m *meter
}

func (r *meterReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.m.add(n)
	return n, err
}

type meterReaderAt struct {
	r io.ReaderAt
	m *meter
}

func (r *meterReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.r.ReadAt(p, off)
	r.m.add(n)
	return n, err
}
