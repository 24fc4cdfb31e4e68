package window

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Scope selects the applications a window applies to, as the applications, namespaces, clusters
// and andOperator fields of an AppProject sync window do. Each list holds glob patterns (see
// [Glob]).
type Scope struct {
	// Applications match the application's name.
	Applications []string
	// Namespaces match the application's destination namespace.
	Namespaces []string
	// Clusters match the application's destination server URL or destination cluster name.
	Clusters []string
	// AndOperator requires every non-empty list to match; otherwise one matching list is enough.
	AndOperator bool
}

// Target is the application a [Scope] is matched against.
type Target struct {
	// Application is the application's name (metadata.name).
	Application string
	// Namespace is spec.destination.namespace.
	Namespace string
	// Server is spec.destination.server; "" matches no cluster pattern.
	Server string
	// Name is spec.destination.name; "" matches no cluster pattern.
	Name string
}

// Matches reports whether the window applies to t, with Argo CD's rules: a list that is empty
// does not take part; a window whose lists are all empty applies to nothing; otherwise the window
// applies when one list has a matching pattern, or, with AndOperator, when every non-empty list
// has one. A cluster pattern matches the destination server or name, never an empty one. A
// pattern [Glob] refuses matches nothing (Argo CD logs it and moves on); [Scope.Validate] reports
// it.
func (s Scope) Matches(t Target) bool {
	match := func(patterns []string, values ...string) bool {
		for _, p := range patterns {
			for _, v := range values {
				if ok, err := Glob(p, v); ok && err == nil {
					return true
				}
			}
		}
		return false
	}
	var cluster []string
	for _, v := range []string{t.Server, t.Name} {
		if v != "" {
			cluster = append(cluster, v)
		}
	}
	lists := []struct {
		set, ok bool
	}{
		{len(s.Applications) > 0, match(s.Applications, t.Application)},
		{len(s.Namespaces) > 0, match(s.Namespaces, t.Namespace)},
		{len(s.Clusters) > 0, match(s.Clusters, cluster...)},
	}
	anyOK, allOK, set := false, true, false
	for _, l := range lists {
		if !l.set {
			continue
		}
		set = true
		anyOK = anyOK || l.ok
		allOK = allOK && l.ok
	}
	switch {
	case !set:
		return false
	case s.AndOperator:
		return allOK
	}
	return anyOK
}

// Validate returns an error that joins one problem per pattern Glob refuses, each naming its list
// and index ("clusters[1]: …") and wrapping [ErrUnsupportedGlob]; nil when every pattern is
// accepted.
func (s Scope) Validate() error {
	var errs []error
	for _, l := range []struct {
		name     string
		patterns []string
	}{{"applications", s.Applications}, {"namespaces", s.Namespaces}, {"clusters", s.Clusters}} {
		for i, p := range l.patterns {
			if _, err := Glob(p, ""); err != nil {
				errs = append(errs, fmt.Errorf("%s[%d]: %w", l.name, i, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Glob reports whether s matches pattern, with the glob syntax of Argo CD's sync windows
// (gobwas/glob without separators), restricted to the forms whose meaning is plain:
//
//   - * matches any sequence of characters, including none and including "/" (** is the same);
//   - ? matches any one character;
//   - [abc] matches one of the listed characters and [!abc] any other one; [a-z] and [!a-z]
//     match one character in (or out of) an inclusive range of ASCII letters or digits;
//   - every other character matches itself.
//
// Alternatives ({a,b}), escapes (\), a class mixing a range with other characters or listing
// "-", and a "[", "]", "{" or "}" outside a class are refused with an error wrapping
// [ErrUnsupportedGlob], as is invalid UTF-8: Argo CD gives some of them meanings a reader would not
// expect and treats the malformed ones as matching nothing. The pattern "*" matches everything.
func Glob(pattern, s string) (bool, error) {
	toks, err := compileGlob(pattern)
	if err != nil {
		return false, err
	}
	return matchGlob(toks, s), nil
}

type globKind uint8

const (
	globLiteral globKind = iota
	globStar
	globSingle
	globClass
)

type globToken struct {
	kind   globKind
	r      rune      // globLiteral
	neg    bool      // globClass: [!…]
	ranges [][2]rune // globClass: inclusive ranges
}

func compileGlob(pattern string) ([]globToken, error) {
	bad := func(format string, args ...any) ([]globToken, error) {
		return nil, fmt.Errorf("glob pattern %q: %s: %w", pattern, fmt.Sprintf(format, args...), ErrUnsupportedGlob)
	}
	if !utf8.ValidString(pattern) {
		return bad("invalid UTF-8")
	}
	rs := []rune(pattern)
	var toks []globToken
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; r {
		case '*':
			if len(toks) == 0 || toks[len(toks)-1].kind != globStar {
				toks = append(toks, globToken{kind: globStar})
			}
		case '?':
			toks = append(toks, globToken{kind: globSingle})
		case '[':
			t := globToken{kind: globClass}
			j := i + 1
			if j < len(rs) && rs[j] == '!' {
				t.neg = true
				j++
			}
			if j+1 < len(rs) && rs[j+1] == '-' {
				// A range: [a-z] or [!a-z].
				if j+3 >= len(rs) || rs[j+3] != ']' {
					return bad("a class with a range must be exactly [lo-hi] or [!lo-hi]")
				}
				lo, hi := rs[j], rs[j+2]
				if !alnum(lo) || !alnum(hi) || lo > hi {
					return bad("range %c-%c: the bounds must be ASCII letters or digits, the lower first", lo, hi)
				}
				t.ranges = append(t.ranges, [2]rune{lo, hi})
				i = j + 3
			} else {
				for ; j < len(rs) && rs[j] != ']'; j++ {
					switch rs[j] {
					case '[', '{', '}', '\\', '-':
						return bad("%q in a character class", rs[j])
					}
					t.ranges = append(t.ranges, [2]rune{rs[j], rs[j]})
				}
				switch {
				case j == len(rs):
					return bad("unclosed [")
				case len(t.ranges) == 0:
					return bad("empty character class")
				}
				i = j
			}
			toks = append(toks, t)
		case ']', '{', '}', '\\':
			return bad("%q is not supported", r)
		default:
			toks = append(toks, globToken{kind: globLiteral, r: r})
		}
	}
	return toks, nil
}

func alnum(r rune) bool { return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' }

// matches reports whether the one-character token t matches r.
func (t *globToken) matches(r rune) bool {
	switch t.kind {
	case globLiteral:
		return r == t.r
	case globSingle:
		return true
	}
	in := false
	for _, rg := range t.ranges {
		if rg[0] <= r && r <= rg[1] {
			in = true
			break
		}
	}
	return in != t.neg
}

// matchGlob matches s against toks, backtracking to the last star only (enough, since a star
// matches any sequence).
func matchGlob(toks []globToken, s string) bool {
	rs := []rune(s)
	ti, si := 0, 0
	starT, starS := -1, 0
	for si < len(rs) {
		switch {
		case ti < len(toks) && toks[ti].kind == globStar:
			starT, starS = ti, si
			ti++
		case ti < len(toks) && toks[ti].matches(rs[si]):
			ti++
			si++
		case starT >= 0:
			starS++
			ti, si = starT+1, starS
		default:
			return false
		}
	}
	for ti < len(toks) && toks[ti].kind == globStar {
		ti++
	}
	return ti == len(toks)
}
