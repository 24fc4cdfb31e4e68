package window

import (
	"sort"
	"time"

	"github.com/robfig/cron/v3"
)

const (
	secPerDay = 86400
	// maxOffset bounds every UTC offset a zone has ever used (Asia/Manila's LMT was −15:56).
	maxOffset = 18 * 3600
	// starBit is robfig/cron's marker for a field written as * or ? (spec.go).
	starBit = 1 << 63
)

// schedule is a parsed cron expression: robfig/cron's bit fields plus the start minutes of a
// matching day.
type schedule struct {
	minute, hour, dom, month, dow uint64
	// dayAnd is robfig/cron's day rule (spec.go dayMatches): when the day-of-month or the
	// day-of-week field is * (or ?), both must match; otherwise either one is enough.
	dayAnd bool
	// mins holds the minute of the day (h*60+m) of every start on a matching day, ascending.
	mins []int32
	// maxGap is the largest gap, in seconds, between consecutive mins (0 with one start a day).
	maxGap int64
}

func newSchedule(s *cron.SpecSchedule) schedule {
	sc := schedule{
		minute: s.Minute, hour: s.Hour, dom: s.Dom, month: s.Month, dow: s.Dow,
		dayAnd: s.Dom&starBit != 0 || s.Dow&starBit != 0,
	}
	for h := range 24 {
		if sc.hour&(1<<h) == 0 {
			continue
		}
		for m := range 60 {
			if sc.minute&(1<<m) != 0 {
				sc.mins = append(sc.mins, int32(h*60+m))
			}
		}
	}
	for k := 1; k < len(sc.mins); k++ {
		sc.maxGap = max(sc.maxGap, int64(sc.mins[k]-sc.mins[k-1])*60)
	}
	return sc
}

// monthMatches reports whether month m (1-12) is in the schedule.
func (sc *schedule) monthMatches(m int) bool { return sc.month&(1<<m) != 0 }

// dayMatches reports whether the civil date (m, d) with weekday wd (0 = Sunday) is a day the
// schedule fires on.
func (sc *schedule) dayMatches(m, d, wd int) bool {
	if !sc.monthMatches(m) {
		return false
	}
	domMatch := sc.dom&(1<<d) != 0
	dowMatch := sc.dow&(1<<wd) != 0
	if sc.dayAnd {
		return domMatch && dowMatch
	}
	return domMatch || dowMatch
}

// firesEver reports whether some date matches. Every month/day-of-month/weekday combination that
// exists at all occurs within 2024-2031 (leap years 2024 and 2028 included).
func (sc *schedule) firesEver() bool {
	if len(sc.mins) == 0 {
		return false
	}
	first := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Unix() / secPerDay
	last := time.Date(2032, 1, 1, 0, 0, 0, 0, time.UTC).Unix() / secPerDay
	for day := first; day < last; day++ {
		_, m, d := civil(day)
		if sc.dayMatches(m, d, weekday(day)) {
			return true
		}
	}
	return false
}

// floorDiv is a/b rounded towards minus infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
func civil(days int64) (y int64, m, d int) {
	z := days + 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	if mp < 10 {
		m = int(mp + 3)
	} else {
		m = int(mp - 9)
	}
	y = yoe + era*400
	if m <= 2 {
		y++
	}
	return y, m, d
}

// weekday returns the weekday of days since 1970-01-01 (a Thursday), 0 = Sunday.
func weekday(days int64) int {
	w := (days + 4) % 7
	if w < 0 {
		w += 7
	}
	return int(w)
}

// daysIn returns the number of days in month m of year y.
func daysIn(y int64, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// period is a stretch of instants [start, end) (Unix seconds) with one UTC offset, off seconds.
// start and end are minInstant and maxInstant when the stretch is unbounded.
type period struct{ start, end, off int64 }

const (
	minInstant = -1 << 63
	maxInstant = 1<<63 - 1
)

// periodAt returns the period of loc that contains instant x.
func periodAt(loc *time.Location, x int64) period {
	t := time.Unix(x, 0).In(loc)
	_, off := t.Zone()
	start, end := t.ZoneBounds()
	p := period{start: minInstant, end: maxInstant, off: int64(off)}
	if !start.IsZero() {
		p.start = start.Unix()
	}
	if !end.IsZero() {
		p.end = end.Unix()
	}
	if p.start > x {
		p.start = x // never seen; keep the period consistent
	}
	if p.end <= x {
		// GOTCHA: after the last transition in a zone's table (2037 for most), Go's ZoneBounds
		// ends the last period of a leap year a day early (2040-12-31 00:00 instead of 2041-01-01
		// 00:00 local time). A one-second period would make the rest of that day cost a lookup
		// per second, so end the period where the next day's begins when the offset carries on.
		p.end = x + 1
		next, _ := time.Unix(x+secPerDay, 0).In(loc).ZoneBounds()
		if n := next.Unix(); !next.IsZero() && n > x && n <= x+secPerDay {
			before := time.Unix(n-1, 0).In(loc)
			s, _ := before.ZoneBounds()
			if _, o := before.Zone(); int64(o) == p.off && !s.IsZero() && s.Unix() <= x {
				p.end = n
			}
		}
	}
	return p
}

// zoneCache remembers the last period looked up in a location.
type zoneCache struct {
	loc   *time.Location
	p     period
	valid bool
}

// at returns the period containing instant x.
func (z *zoneCache) at(x int64) period {
	if !z.valid || x < z.p.start || x >= z.p.end {
		z.p, z.valid = periodAt(z.loc, x), true
	}
	return z.p
}

// periods appends to buf the consecutive periods that cover the instants [lo, hi].
func (z *zoneCache) periods(lo, hi int64, buf []period) []period {
	p := z.at(lo)
	buf = append(buf, p)
	for p.end != maxInstant && p.end <= hi {
		p = z.at(p.end)
		buf = append(buf, p)
	}
	return buf
}

// resolve returns the instant at which a window whose start has wall-clock time w (Unix seconds
// of the wall time read as UTC) starts: the first instant whose wall-clock time is w or later.
// So a wall time that occurs once starts then, one that occurs twice (fall back) starts at its
// first occurrence, and one skipped by a forward jump starts at the jump. ps must cover
// [w−maxOffset−1h, w+maxOffset+1h].
func resolve(ps []period, w int64) int64 {
	for _, p := range ps {
		// In p, wall-clock times run over [p.start+p.off, p.end+p.off).
		if p.end == maxInstant || w < p.end+p.off {
			c := w - p.off
			if c < p.start {
				c = p.start // w was skipped: the first instant after the jump
			}
			return c
		}
	}
	return w - ps[len(ps)-1].off // unreachable when ps covers w
}

// cursor walks a window's starts in order. seek positions it; next returns the following starts.
// Starts are non-decreasing; two wall times skipped by the same jump give the same instant.
type cursor struct {
	s  *schedule
	zc zoneCache
	// budget is shared by the cursors of one evaluation; every step takes one unit.
	budget *int

	day        int64 // the wall-clock day being walked, days since 1970-01-01
	y          int64
	m, d       int
	match      bool // s fires on day
	monthMatch bool
	i          int // next index into s.mins
	ps         []period
	psOK       bool // ps covers day
}

func (c *cursor) setDay(day int64) {
	c.day, c.i, c.psOK = day, 0, false
	c.y, c.m, c.d = civil(day)
	c.monthMatch = c.s.monthMatches(c.m)
	c.match = c.monthMatch && c.s.dayMatches(c.m, c.d, weekday(day))
}

// seek positions c so that next skips every start whose wall time is not after the wall-clock
// minute of x. Those all start at or before x; some later ones may too (during a repeated hour).
func (c *cursor) seek(x int64) {
	*c.budget--
	wall := x + c.zc.at(x).off
	day := floorDiv(wall, secPerDay)
	minute := int32((wall - day*secPerDay) / 60)
	c.setDay(day)
	c.i = sort.Search(len(c.s.mins), func(k int) bool { return c.s.mins[k] > minute })
}

// next returns the next start, or false when it would be after limit or the budget is spent.
func (c *cursor) next(limit int64) (int64, bool) {
	for *c.budget > 0 {
		*c.budget--
		if c.match && c.i < len(c.s.mins) {
			if !c.psOK {
				n0 := c.day * secPerDay
				c.ps = c.zc.periods(n0-maxOffset-3600, n0+secPerDay+maxOffset+3600, c.ps[:0])
				c.psOK = true
			}
			s := resolve(c.ps, c.day*secPerDay+int64(c.s.mins[c.i])*60)
			if s > limit {
				return 0, false
			}
			c.i++
			return s, true
		}
		next := c.day + 1
		if !c.monthMatch {
			next = c.day + int64(daysIn(c.y, c.m)-c.d+1)
		}
		if next*secPerDay-maxOffset > limit {
			return 0, false
		}
		c.setDay(next)
	}
	return 0, false
}

// nextStart returns the first start after x, or false when there is none by limit.
func (c *cursor) nextStart(x, limit int64) (int64, bool) {
	c.seek(x)
	for {
		s, ok := c.next(limit)
		if !ok || s > x {
			return s, ok
		}
	}
}

// runEnd returns the first instant after x at which the window is inactive, given that it is
// active at x, or false when that is after limit (or the budget is spent). d is the duration.
func (c *cursor) runEnd(x, d, limit int64) (int64, bool) {
	s, ok := c.nextStart(x-d, x)
	if !ok {
		return 0, false
	}
	end := s + d
	for {
		// The rest of the day chains at once when it has one UTC offset and no gap longer than d.
		if c.i > 0 && c.i < len(c.s.mins) && c.match && c.psOK && len(c.ps) == 1 && c.s.maxGap <= d {
			*c.budget--
			end = c.day*secPerDay + int64(c.s.mins[len(c.s.mins)-1])*60 - c.ps[0].off + d
			c.i = len(c.s.mins)
		}
		s, ok := c.next(limit)
		if !ok {
			if *c.budget > 0 && end <= limit {
				return end, true
			}
			return 0, false
		}
		if s > end {
			return end, true
		}
		end = s + d
	}
}
