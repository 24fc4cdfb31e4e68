package argodiff

import (
	"math/rand/v2"
	"strings"
	"time"

	"github.com/ferry-dev/terraform-provider-ferry/internal/window"
)

// gen draws random cases. Most windows are valid for both engines; a few carry each kind of
// deliberate difference.
type gen struct{ r *rand.Rand }

func newGen(seed uint64) gen { return gen{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} }

func (g gen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

func (g gen) chance(p float64) bool { return g.r.Float64() < p }

// zones: with and without daylight saving time, half- and quarter-hour offsets, a 30-minute DST
// change (Lord_Howe), southern-hemisphere DST.
var zones = []string{"", "UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe",
	"Pacific/Chatham", "America/Sao_Paulo", "Europe/London", "Asia/Kathmandu", "America/St_Johns", "Australia/Sydney"}

func (g gen) cronField(opts ...string) string { return g.pick(opts...) }

func (g gen) schedule() string {
	if g.chance(0.02) {
		return g.pick("0 0 30 2 *", "0 0 31 4 *", "TZ=Europe/Berlin 0 2 * * *", "CRON_TZ=UTC 0 2 * * *", "@daily",
			"0 25 * * *", "61 * * * *", "0 0 * *", "0 0 0 * *", "* * * * * *", "", "TZ=UTC")
	}
	minute := g.cronField("*", "0", "0", "0", "30", "15", "*/15", "0,30", "5-10", "59", "*/7")
	hour := g.cronField("*", "0", "1", "2", "2", "3", "12", "22", "23", "0-5", "*/6", "9-17", "1,2,3")
	dom := g.cronField("*", "*", "*", "*", "1", "15", "29", "31", "1-7", "?", "28-31")
	month := g.cronField("*", "*", "*", "*", "2", "3", "10", "11", "1-6", "jan", "mar,oct,nov", "*/2")
	dow := g.cronField("*", "*", "*", "*", "0", "1-5", "sun", "6", "?", "1", "mon,fri")
	return strings.Join([]string{minute, hour, dom, month, dow}, " ")
}

func (g gen) duration() string {
	if g.chance(0.02) {
		return g.pick("0s", "-1h", "0", "30s", "59s", "1m0.5s", "1d", "abc", "", "90s")
	}
	if g.chance(0.3) {
		return (time.Duration(1+g.r.IntN(3000)) * time.Minute).String()
	}
	return g.pick("1m", "5m", "30m", "1h", "90m", "1h30m", "2h", "3h", "6h", "23h", "24h", "25h", "47h", "48h", "168h", "721h", "1000h", "9000h")
}

func (g gen) zone() string {
	if g.chance(0.01) {
		return g.pick("Europe/Berln", "Local", "Mars/Olympus", "utc")
	}
	return g.pick(zones...)
}

// Glob patterns: supported by both, refused by ferry only, malformed.
var (
	appPatterns     = []string{"*", "app-?", "[ab]*", "app-1", "a*", "*-prod", "shop", "[!a]*", "[a-c]*", "app-[0-9]", "*app*", "", "?"}
	nsPatterns      = []string{"*", "prod", "prod-*", "team-[ab]", "", "default", "*-eu", "team-?"}
	clusterPatterns = []string{"*", "https://kubernetes.default.svc", "*.svc", "in-cluster", "https://*", "*prod*", "https://prod.example.com/*", "*/k8s"}
	oddPatterns     = []string{"{a,b}*", "app\\-1", "[ab-c]*", "[", "[]", "a]", "{", "}", "[a-]", "[!]", "\\", "**", "app-{1,2}", "[z-a]*", "[a-z0-9]*"}
)

func (g gen) patterns(pool []string) []string {
	if g.chance(0.4) {
		return nil
	}
	n := 1 + g.r.IntN(3)
	out := make([]string, n)
	for i := range out {
		if g.chance(0.03) {
			out[i] = g.pick(oddPatterns...)
		} else {
			out[i] = g.pick(pool...)
		}
	}
	return out
}

func (g gen) scope() window.Scope {
	s := window.Scope{
		Applications: g.patterns(appPatterns),
		Namespaces:   g.patterns(nsPatterns),
		Clusters:     g.patterns(clusterPatterns),
		AndOperator:  g.chance(0.3),
	}
	if g.chance(0.5) && len(s.Applications)+len(s.Namespaces)+len(s.Clusters) == 0 {
		s.Applications = []string{"*"}
	}
	return s
}

func (g gen) win() win {
	kind := g.pick("allow", "deny")
	if g.chance(0.01) {
		kind = g.pick("Allow", "block", "")
	}
	w := win{Spec: window.Spec{Kind: kind, Schedule: g.schedule(), Duration: g.duration(), TimeZone: g.zone(), ManualSync: g.chance(0.4)}, Scope: g.scope()}
	if g.chance(0.01) {
		w.Spec.Description = strings.Repeat("x", 256)
	} else if g.chance(0.2) {
		w.Spec.Description = "change freeze"
	}
	return w
}

// instantFrom and instantTo bound the instants (see diff_test.go).
var instantFrom, instantTo = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2090, 1, 1, 0, 0, 0, 0, time.UTC)

// instant draws an instant: anywhere, near a change of a window's UTC offset, or on a whole
// minute or hour (where windows start).
func (g gen) instant(ws []win) time.Time {
	span := instantTo.Unix() - instantFrom.Unix()
	t := time.Unix(instantFrom.Unix()+g.r.Int64N(span), 0).UTC()
	if len(ws) > 0 && g.chance(0.4) {
		if loc, err := time.LoadLocation(ws[g.r.IntN(len(ws))].Spec.TimeZone); err == nil {
			if _, end := t.In(loc).ZoneBounds(); !end.IsZero() && end.Before(instantTo) {
				t = end.Add(time.Duration(g.r.Int64N(int64(60*time.Hour))) - 30*time.Hour)
			}
		}
	}
	if t.Before(instantFrom) || !t.Before(instantTo) {
		t = instantFrom
	}
	switch {
	case g.chance(0.3):
		t = t.Truncate(time.Hour)
	case g.chance(0.4):
		t = t.Truncate(time.Minute)
	}
	return t
}

var (
	appNames = []string{"app-1", "app-2", "app-10", "shop", "a", "billing", "b-prod", "app"}
	nsNames  = []string{"prod", "prod-eu", "team-a", "team-c", "default", ""}
	servers  = []string{"https://kubernetes.default.svc", "https://prod.example.com/k8s", ""}
	names    = []string{"in-cluster", "prod-eu", ""}
)

func (g gen) tcase() tcase {
	n := g.r.IntN(5)
	if g.chance(0.05) {
		n = 0
	}
	c := tcase{App: window.Target{Application: g.pick(appNames...), Namespace: g.pick(nsNames...), Server: g.pick(servers...), Name: g.pick(names...)}}
	for range n {
		w := g.win()
		if len(c.Windows) > 0 && g.chance(0.02) {
			prev := c.Windows[g.r.IntN(len(c.Windows))]
			w.Spec.Kind, w.Spec.Schedule, w.Spec.Duration = prev.Spec.Kind, prev.Spec.Schedule, prev.Spec.Duration
		}
		c.Windows = append(c.Windows, w)
	}
	c.At = g.instant(c.Windows)
	return c
}
