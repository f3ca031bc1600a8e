package remotecmd

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The perf-counters commands serve upstream's legacy counters (admin-cli's
// node-stat, table-stat, partition-stat and disk-replica, the C++ shell and
// collector read them) from a snapshot: a role takes one periodically
// (SetSnapshot) and every command answers from the latest, so that a RATE is
// the rate over the last snapshot interval whoever reads it and however often,
// as upstream's perf_counters::take_snapshot made it.

// Counter types, as upstream's dsn_counter_type_to_string spells them.
const (
	TypeNumber         = "NUMBER"
	TypeVolatileNumber = "VOLATILE_NUMBER"
	TypeRate           = "RATE"
	TypePercentile     = "PERCENTILE"
)

// Counter is one named figure reported by the perf-counters commands. Names follow
// upstream's "<app>*<section>*<name>[@<app_id>.<pidx>]" convention so tools can
// split them.
type Counter struct {
	Name  string
	Type  string
	Value float64
}

// Snapshot is the counters of a process at one moment.
type Snapshot struct {
	Time     time.Time
	Counters []Counter
}

// SetSnapshot installs the counters the perf-counters commands answer with.
// The registry keeps them sorted by name.
func (r *Registry) SetSnapshot(s Snapshot) {
	cs := append([]Counter(nil), s.Counters...)
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	r.mu.Lock()
	defer r.mu.Unlock()
	r.snap = Snapshot{Time: s.Time, Counters: cs}
}

// Deltas turns cumulative counts into what upstream's RATE and
// VOLATILE_NUMBER counters report at a snapshot: the count since the previous
// snapshot (a VOLATILE_NUMBER), and that divided by the seconds between the two
// snapshots (a RATE, as perf_counter_rate_atomic::get_value computes it).
type Deltas struct {
	last time.Time
	prev map[string]float64
}

// NewDeltas starts counting at start: counts first seen at the first snapshot
// accrued since then.
func NewDeltas(start time.Time) *Deltas { return &Deltas{last: start, prev: map[string]float64{}} }

// Next returns each count's increase since the previous call and the seconds
// between the two calls. A count seen for the first time, or smaller than
// before (its source was recreated, e.g. a replica reopened), counts from 0.
func (d *Deltas) Next(now time.Time, counts map[string]float64) (map[string]float64, float64) {
	out := make(map[string]float64, len(counts))
	for name, v := range counts {
		if p, ok := d.prev[name]; ok && v >= p {
			out[name] = v - p
		} else {
			out[name] = v
		}
	}
	secs := now.Sub(d.last).Seconds()
	d.last, d.prev = now, maps.Clone(counts)
	return out, secs
}

// Rate is a count over seconds, 0 when no time passed.
func Rate(count, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return count / secs
}

func (r *Registry) registerPerfCounters() {
	r.Register("perf-counters", "perf-counters [regexp]...: counters whose whole name matches any POSIX basic regular expression, all without one (JSON)",
		func(ctx context.Context, args []string) string { return r.perfCountersByRegexp(args) })
	for _, c := range []struct {
		name, what string
		match      func(name, arg string) bool
	}{
		{"perf-counters-by-substr", "contains any substring", strings.Contains},
		{"perf-counters-by-prefix", "starts with any prefix", strings.HasPrefix},
		{"perf-counters-by-postfix", "ends with any postfix", strings.HasSuffix},
	} {
		match := c.match
		r.Register(c.name, fmt.Sprintf("%s [arg]...: counters whose name %s, all without one (JSON)", c.name, c.what),
			func(ctx context.Context, args []string) string {
				return r.perfCountersBy(args, func(name string) bool {
					for _, a := range args {
						if match(name, a) {
							return true
						}
					}
					return false
				})
			})
	}
}

func (r *Registry) snapshot() Snapshot {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s := r.snap
	if s.Time.IsZero() {
		// No snapshot yet: the counters are empty as of the process start.
		s.Time = r.start
	}
	return s
}

func (r *Registry) perfCountersByRegexp(args []string) string {
	res := make([]*regexp.Regexp, 0, len(args))
	for _, a := range args {
		re, err := CompileBRE(a)
		if err != nil {
			// As upstream: the first invalid filter is named, and nothing is listed.
			return encodePerfCounters("ERROR: invalid filter: "+a, r.snapshot().Time, nil)
		}
		res = append(res, re)
	}
	return r.perfCountersBy(args, func(name string) bool {
		for _, re := range res {
			if re.MatchString(name) {
				return true
			}
		}
		return false
	})
}

// perfCountersBy answers with the counters of the latest snapshot that match;
// without arguments, with all of them.
func (r *Registry) perfCountersBy(args []string, match func(name string) bool) string {
	s := r.snapshot()
	out := make([]Counter, 0, len(s.Counters))
	for _, c := range s.Counters {
		if len(args) == 0 || match(c.Name) {
			out = append(out, c)
		}
	}
	return encodePerfCounters("OK", s.Time, out)
}

// encodePerfCounters writes upstream's perf_counter_info as its JSON writer
// (rapidjson) does: fields in declaration order, doubles with a fraction
// ("3.0"), no escaping beyond JSON's.
func encodePerfCounters(result string, at time.Time, cs []Counter) string {
	var b strings.Builder
	b.WriteString(`{"result":`)
	writeJSONString(&b, result)
	b.WriteString(`,"timestamp":`)
	b.WriteString(strconv.FormatInt(at.Unix(), 10))
	b.WriteString(`,"timestamp_str":`)
	writeJSONString(&b, time.Unix(at.Unix(), 0).Format("2006-01-02 15:04:05"))
	b.WriteString(`,"counters":[`)
	for i, c := range cs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"name":`)
		writeJSONString(&b, c.Name)
		b.WriteString(`,"type":`)
		writeJSONString(&b, c.Type)
		b.WriteString(`,"value":`)
		b.WriteString(formatDouble(c.Value))
		b.WriteByte('}')
	}
	b.WriteString("]}")
	return b.String()
}

func writeJSONString(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xF])
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
}

// formatDouble spells a double as rapidjson's Writer::Double does (shortest
// digits, then its Prettify): 0.0, 3.0, 12.5, 0.001234, 1e21, 1.5e-7. Values
// rapidjson cannot write (NaN, infinities) are written as 0.0 so that the reply
// stays JSON.
func formatDouble(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "0.0"
	}
	if v == 0 {
		if math.Signbit(v) {
			return "-0.0"
		}
		return "0.0"
	}
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	// d.ddddde±XX: the shortest digits and the exponent of the first one.
	e := strconv.FormatFloat(v, 'e', -1, 64)
	mant, exp, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp)
	length := len(digits)
	kk := x + 1 // 10^(kk-1) <= v < 10^kk
	k := kk - length
	var out string
	switch {
	case 0 <= k && kk <= 21:
		out = digits + strings.Repeat("0", k) + ".0"
	case 0 < kk && kk <= 21:
		out = digits[:kk] + "." + digits[kk:]
	case -6 < kk && kk <= 0:
		out = "0." + strings.Repeat("0", -kk) + digits
	case length == 1:
		out = digits + "e" + strconv.Itoa(kk-1)
	default:
		out = digits[:1] + "." + digits[1:] + "e" + strconv.Itoa(kk-1)
	}
	return sign + out
}

// CompileBRE compiles a POSIX basic regular expression (upstream matches with
// std::regex_constants::basic) into one that matches whole names. BRE: \( \)
// group, \{m,n\} interval, * repeats (literal first in the expression or a
// group), ^ and $ anchor only at the ends, + ? | ( ) { } are literals, a
// backslash before any other character makes it literal, and brackets take
// [:class:] names and treat a backslash as itself. Back-references (\1) have no
// equivalent in Go's regexp and are refused as invalid.
func CompileBRE(pattern string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString(`(?s)^(?:`)
	depth := 0
	atStart := true // a '*' here is a literal
	for i := 0; i < len(pattern); {
		c, size := utf8.DecodeRuneInString(pattern[i:])
		switch c {
		case '\\':
			if i+size >= len(pattern) {
				return nil, errors.New("trailing backslash")
			}
			n, nsize := utf8.DecodeRuneInString(pattern[i+size:])
			i += size + nsize
			switch {
			case n == '(':
				depth++
				b.WriteByte('(')
				if strings.HasPrefix(pattern[i:], "^") {
					b.WriteByte('^')
					i++
				}
				atStart = true
				continue
			case n == ')':
				if depth == 0 {
					return nil, errors.New(`unmatched \)`)
				}
				depth--
				b.WriteByte(')')
			case n == '{':
				if atStart {
					return nil, errors.New(`interval with nothing to repeat`)
				}
				end := strings.Index(pattern[i:], `\}`)
				if end < 0 {
					return nil, errors.New(`unterminated \{`)
				}
				bounds := pattern[i : i+end]
				lo, hi, comma := strings.Cut(bounds, ",")
				if !digitsOnly(lo) || lo == "" || !digitsOnly(hi) || !comma && hi != "" {
					return nil, fmt.Errorf(`bad interval \{%s\}`, bounds)
				}
				b.WriteString("{" + bounds + "}")
				i += end + 2
			case n >= '1' && n <= '9':
				return nil, errors.New("back-references are not supported")
			default:
				b.WriteString(regexp.QuoteMeta(string(n)))
			}
			atStart = false
			continue
		case '[':
			class, n, err := bracket(pattern[i:])
			if err != nil {
				return nil, err
			}
			b.WriteString(class)
			i += n
			atStart = false
			continue
		case '*':
			if atStart {
				b.WriteString(`\*`)
			} else {
				b.WriteByte('*')
			}
		case '^':
			if i == 0 {
				b.WriteByte('^')
				i += size
				continue // a '*' after a leading anchor is still a literal
			}
			b.WriteString(`\^`)
		case '$':
			if rest := pattern[i+size:]; rest == "" || strings.HasPrefix(rest, `\)`) {
				b.WriteByte('$')
			} else {
				b.WriteString(`\$`)
			}
		case '.':
			b.WriteByte('.')
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
		i += size
		atStart = false
	}
	if depth != 0 {
		return nil, errors.New(`unmatched \(`)
	}
	b.WriteString(`)$`)
	return regexp.Compile(b.String())
}

func digitsOnly(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

var bracketClasses = map[string]bool{
	"alnum": true, "alpha": true, "blank": true, "cntrl": true, "digit": true, "graph": true,
	"lower": true, "print": true, "punct": true, "space": true, "upper": true, "xdigit": true,
}

// bracket translates the bracket expression at the start of p ("[...]") into a
// Go character class and returns how many bytes of p it took.
func bracket(p string) (string, int, error) {
	var b strings.Builder
	b.WriteByte('[')
	i := 1
	if strings.HasPrefix(p[i:], "^") {
		b.WriteByte('^')
		i++
	}
	// element reads one element at i: a [:class:] name (class set) or one
	// character, possibly spelt [.c.] or [=c=].
	element := func() (r rune, class string, err error) {
		for _, d := range []string{":", ".", "="} {
			if !strings.HasPrefix(p[i:], "["+d) {
				continue
			}
			end := strings.Index(p[i+2:], d+"]")
			if end < 0 {
				return 0, "", fmt.Errorf("unterminated [%s in a bracket expression", d)
			}
			name := p[i+2 : i+2+end]
			i += 2 + end + 2
			if d == ":" {
				if !bracketClasses[name] {
					return 0, "", fmt.Errorf("unknown character class [:%s:]", name)
				}
				return 0, "[:" + name + ":]", nil
			}
			r, size := utf8.DecodeRuneInString(name)
			if name == "" || size != len(name) {
				return 0, "", fmt.Errorf("unsupported collating element [%s%s%s]", d, name, d)
			}
			return r, "", nil
		}
		r, size := utf8.DecodeRuneInString(p[i:])
		i += size
		return r, "", nil
	}
	first := true
	for {
		if i >= len(p) {
			return "", 0, errors.New("unterminated bracket expression")
		}
		if p[i] == ']' && !first {
			b.WriteByte(']')
			return b.String(), i + 1, nil
		}
		first = false
		lo, class, err := element()
		if err != nil {
			return "", 0, err
		}
		if class != "" {
			b.WriteString(class)
			continue
		}
		hi := lo
		if strings.HasPrefix(p[i:], "-") && i+1 < len(p) && p[i+1] != ']' {
			i++
			if hi, class, err = element(); err != nil {
				return "", 0, err
			}
			if class != "" || hi < lo {
				return "", 0, errors.New("invalid range in a bracket expression")
			}
		}
		fmt.Fprintf(&b, `\x{%x}`, lo)
		if hi != lo {
			fmt.Fprintf(&b, `-\x{%x}`, hi)
		}
	}
}
