package fleet

import (
	"fmt"
	"math"

	"k8s.io/apimachinery/pkg/labels"
)

// Wave is a planned wave: its targets, in order.
type Wave struct {
	Name    string   `json:"name"`
	Targets []Target `json:"-"`
}

// PlanWaves places targets into waves, in the order of waves: a count wave takes the next Count
// targets not yet placed (in the order of targets), a percent wave the next ceil(Percent% of all
// targets), a selector wave every target not yet placed whose labels match. Targets no wave
// places go in a final wave "rest". Waves left empty are dropped. No waves: one wave "all".
func PlanWaves(targets []Target, waves []WaveSpec) ([]Wave, error) {
	placed := make([]bool, len(targets))
	var out []Wave
	for _, ws := range waves {
		w := Wave{Name: ws.Name}
		var sel labels.Selector
		n := -1
		switch {
		case ws.Selector != "":
			var err error
			if sel, err = labels.Parse(ws.Selector); err != nil {
				return nil, fmt.Errorf("wave %s: selector %q: %w", ws.Name, ws.Selector, err)
			}
		case ws.Count > 0:
			n = ws.Count
		case ws.Percent > 0:
			// The 1e-9 keeps float error (64.4% of 250 is 161.00000000000003) from adding a target.
			n = int(math.Ceil(ws.Percent*float64(len(targets))/100 - 1e-9))
		default:
			return nil, fmt.Errorf("wave %s needs one of count, percent or selector", ws.Name)
		}
		for i, t := range targets {
			if placed[i] || (sel == nil && len(w.Targets) >= n) {
				continue
			}
			if sel != nil && !sel.Matches(labels.Set(t.Labels)) {
				continue
			}
			placed[i] = true
			w.Targets = append(w.Targets, t)
		}
		if len(w.Targets) > 0 {
			out = append(out, w)
		}
	}
	rest := Wave{Name: "rest"}
	if len(waves) == 0 {
		rest.Name = "all"
	}
	for i, t := range targets {
		if !placed[i] {
			rest.Targets = append(rest.Targets, t)
		}
	}
	if len(rest.Targets) > 0 {
		out = append(out, rest)
	}
	return out, nil
}
