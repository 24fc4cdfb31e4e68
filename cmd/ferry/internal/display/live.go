package display

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/ferry-dev/terraform-provider-ferry/bundle"
)

// Live returns a progress hook for the terminal w, and stop. The hook prints one line per step
// (uploaded, already present, downloaded, tagged) and, below them, one line per blob whose bytes are moving (packed, uploaded, downloaded
// or extracted) with a bar, the bytes moved of the total, the rate and the time left, redrawn in
// place. stop erases those lines; call it before anything else is written to the terminal (the
// result, an error). With w nil the hook is nil and stop does nothing: w is nil off a terminal, where
// cursor movements would be garbage in a log.
func Live(w io.Writer) (hook func(bundle.ProgressEvent), stop func()) {
	if w == nil {
		return nil, func() {}
	}
	l := &live{w: w, quit: make(chan struct{})}
	l.wg.Add(1)
	go l.tick()
	return l.event, l.stop
}

// liveTick is how often the bars are redrawn without an event, so the rate and the time left of a
// stalled transfer keep telling the truth.
const liveTick = 500 * time.Millisecond

// rateAfter is how long a bar runs before it shows a rate and a time left: the first reads say more
// about buffers than about the network.
const rateAfter = 500 * time.Millisecond

type live struct {
	w    io.Writer
	quit chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	bars    []*liveBar // in the order their bytes started moving
	shown   int        // bar lines drawn below the last step line
	stopped bool
}

type liveBar struct {
	step, title string
	n, total    int64
	n0          int64 // bytes at start, for the rate
	start       time.Time
}

var stepLabels = map[string]string{
	bundle.ProgressPack:     "Packing",
	bundle.ProgressUpload:   "Uploading",
	bundle.ProgressDownload: "Downloading",
	bundle.ProgressExtract:  "Extracting",
}

func (l *live) event(ev bundle.ProgressEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	if ev.Action != bundle.ProgressBytes {
		// A step of a blob ends the bars of its earlier steps (packing before the upload, the
		// download and extraction before "Extracted"): its bytes events always follow it.
		l.bars = slices.DeleteFunc(l.bars, func(b *liveBar) bool { return b.title == ev.Title })
		l.draw(stepLine(ev))
		return
	}
	i := slices.IndexFunc(l.bars, func(b *liveBar) bool { return b.step == ev.Step && b.title == ev.Title })
	if ev.Bytes >= ev.Total {
		if i >= 0 {
			l.bars = slices.Delete(l.bars, i, i+1)
			l.draw("")
		}
		return
	}
	now := time.Now()
	if i < 0 {
		l.bars = append(l.bars, &liveBar{step: ev.Step, title: ev.Title, n0: ev.Bytes, start: now})
		i = len(l.bars) - 1
	}
	b := l.bars[i]
	if ev.Bytes < b.n { // a retry starts again from 0
		b.n0, b.start = ev.Bytes, now
	}
	b.n, b.total = ev.Bytes, ev.Total
	l.draw("")
}

// draw erases the bars, prints line and draws the bars again, in one write so the terminal never
// shows a half-drawn frame. Called with l.mu held.
func (l *live) draw(line string) {
	var sb strings.Builder
	if l.shown > 0 {
		fmt.Fprintf(&sb, "\x1b[%dA\r\x1b[J", l.shown)
	}
	sb.WriteString(line)
	width, now := l.width(), time.Now()
	for _, b := range l.bars {
		sb.WriteString(b.line(width, now))
		sb.WriteByte('\n')
	}
	l.shown = len(l.bars)
	io.WriteString(l.w, sb.String())
}

// width is the terminal's width, read on each draw so a resized window is followed.
func (l *live) width() int {
	if f, ok := l.w.(*os.File); ok {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
			return w
		}
	}
	return 80
}

func (l *live) tick() {
	defer l.wg.Done()
	t := time.NewTicker(liveTick)
	defer t.Stop()
	for {
		select {
		case <-l.quit:
			return
		case <-t.C:
			l.mu.Lock()
			if !l.stopped && len(l.bars) > 0 {
				l.draw("")
			}
			l.mu.Unlock()
		}
	}
}

func (l *live) stop() {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	l.stopped = true
	l.bars = nil
	l.draw("")
	close(l.quit)
	l.mu.Unlock()
	l.wg.Wait()
}

// line renders b in at most width-1 columns: a line that wraps would break the cursor movements
// that redraw it.
func (b *liveBar) line(width int, now time.Time) string {
	n := min(b.n, b.total)
	head := fmt.Sprintf("%-11s %-18s ", stepLabels[b.step], b.title)
	tail := fmt.Sprintf(" %21s", Size(n)+" / "+Size(b.total))
	if el := now.Sub(b.start); el >= rateAfter && b.n > b.n0 {
		rate := float64(b.n-b.n0) / el.Seconds()
		left := time.Duration(float64(b.total-n) / rate * float64(time.Second)).Round(time.Second)
		tail += fmt.Sprintf("  %12s  ETA %s", Size(int64(rate))+"/s", left)
	}
	bar := ""
	if room := width - 1 - len(head) - len(tail) - 2; room >= 10 {
		room = min(room, 40)
		fill := int(int64(room) * n / b.total)
		bar = "[" + strings.Repeat("=", fill) + strings.Repeat(" ", room-fill) + "]"
	}
	s := head + bar + tail
	if len(s) > width-1 {
		s = s[:max(width-1, 0)]
	}
	return s
}
