package option

import (
	"errors"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// SizeExample is what a size flag's errors show as valid input.
const SizeExample = "e.g. 512KiB or 1MB"

// sizeUnits are the units a size may be written with, matched case-insensitively: decimal (kB = 1000
// bytes, as disks and networks count) and binary (KiB = 1024 bytes, as memory and the defaults
// count). A bare number is bytes.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

var sizeSyntax = regexp.MustCompile(`^([+-]?[0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)$`)

// ParseSize parses a positive byte size: bytes ("1048576") or a number with a unit ("1MB", "512KiB",
// "1.5GiB"). Errors say what is wrong and what to write, for a flag error to prefix with the flag.
func ParseSize(s string) (int64, error) {
	m := sizeSyntax.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, errors.New("not a size; write bytes or a number with a unit, " + SizeExample)
	}
	unit, ok := sizeUnits[strings.ToLower(m[2])]
	if !ok {
		return 0, errors.New("not a size; write bytes or a number with a unit, " + SizeExample + " (units: B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)")
	}
	n, _ := new(big.Rat).SetString(m[1]) // the syntax above is a decimal number
	n.Mul(n, new(big.Rat).SetInt64(unit))
	switch {
	case n.Sign() <= 0:
		return 0, errors.New("must be positive; leave the flag out for the default")
	case !n.IsInt():
		return 0, errors.New("not a whole number of bytes; write it in a smaller unit, " + SizeExample)
	case !n.Num().IsInt64():
		return 0, errors.New("too large; the most is " + strconv.FormatInt(math.MaxInt64, 10) + " bytes")
	}
	return n.Num().Int64(), nil
}

// FormatSize writes n in the largest unit that divides it, binary first (64MiB, 1GB), or in bytes.
func FormatSize(n int64) string {
	if n == 0 {
		return "0"
	}
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3}} {
		if n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// sizeValue is a pflag.Value of a byte size (ParseSize); its type shows as "size" in the help.
type sizeValue int64

func (v *sizeValue) Set(s string) error {
	n, err := ParseSize(s)
	if err != nil {
		return err
	}
	*v = sizeValue(n)
	return nil
}

func (v *sizeValue) String() string { return FormatSize(int64(*v)) }

func (v *sizeValue) Type() string { return "size" }

// SizeVar defines a byte-size flag: plain bytes or a number with a unit (ParseSize), shown in units
// in the help. 0 as value means no default is shown, for flags whose default depends on something
// else (the usage then says it).
func SizeVar(fs *pflag.FlagSet, p *int64, name string, value int64, usage string) {
	*p = value
	fs.Var((*sizeValue)(p), name, usage)
}
