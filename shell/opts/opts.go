// Package opts parses the options of one shell command the way upstream's
// getopt_long-based commands accept them: short (-d) and long (--detailed)
// spellings, values after a space or "=" (--status=alive, -salive), grouped
// short switches (-dj), options before, between or after the positional
// arguments, and "--" to end the options.
package opts

import (
	"fmt"
	"strconv"
	"strings"
)

// Option describes one option of a command.
type Option struct {
	Short string // one letter, without the dash; may be empty
	Long  string // without the dashes; the key results are looked up by
	Arg   string // name of the value for usage text; empty for a switch
	Help  string
}

// Set is the option list of a command.
type Set []Option

// Result is a parsed command line.
type Result struct {
	values map[string][]string // by Long name
	Args   []string            // positional arguments in order
}

// Has reports whether the option was given.
func (r *Result) Has(long string) bool { _, ok := r.values[long]; return ok }

// Bool reports whether a switch was given.
func (r *Result) Bool(long string) bool { return r.Has(long) }

// String returns the last value of the option, or def.
func (r *Result) String(long, def string) string {
	v := r.values[long]
	if len(v) == 0 {
		return def
	}
	return v[len(v)-1]
}

// Int returns the option as an integer, or def when it was not given.
func (r *Result) Int(long string, def int64) (int64, error) {
	s := r.String(long, "")
	if !r.Has(long) {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("option --%s: %q is not an integer", long, s)
	}
	return n, nil
}

func (s Set) find(short, long string) (Option, bool) {
	for _, o := range s {
		if (short != "" && o.Short == short) || (long != "" && o.Long == long) {
			return o, true
		}
	}
	return Option{}, false
}

// looksNegative reports whether a word is a negative number, which is a
// positional argument (e.g. "incr hk sk -1"): no option is a digit.
func looksNegative(w string) bool {
	if len(w) < 2 || w[0] != '-' {
		return false
	}
	_, err := strconv.ParseFloat(w, 64)
	return err == nil
}

// Parse parses args (the words after the command name).
func (s Set) Parse(args []string) (*Result, error) { return s.parse(args, false) }

// ParseLeading parses options up to the first positional argument, which
// starts the rest, kept as is (remote_command passes options through to the
// remote command).
func (s Set) ParseLeading(args []string) (*Result, error) { return s.parse(args, true) }

func (s Set) parse(args []string, leading bool) (*Result, error) {
	r := &Result{values: map[string][]string{}}
	for i := 0; i < len(args); i++ {
		w := args[i]
		switch {
		case w == "--":
			r.Args = append(r.Args, args[i+1:]...)
			return r, nil
		case strings.HasPrefix(w, "--"):
			name, val, hasVal := strings.Cut(w[2:], "=")
			o, ok := s.find("", name)
			if !ok {
				return nil, fmt.Errorf("unknown option --%s", name)
			}
			if o.Arg == "" {
				if hasVal {
					return nil, fmt.Errorf("option --%s takes no value", name)
				}
				r.values[o.Long] = append(r.values[o.Long], "")
				continue
			}
			if !hasVal {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("option --%s needs a value", name)
				}
				i++
				val = args[i]
			}
			r.values[o.Long] = append(r.values[o.Long], val)
		case len(w) > 1 && w[0] == '-' && !looksNegative(w):
			for j := 1; j < len(w); j++ {
				o, ok := s.find(w[j:j+1], "")
				if !ok {
					return nil, fmt.Errorf("unknown option -%s", w[j:j+1])
				}
				if o.Arg == "" {
					r.values[o.Long] = append(r.values[o.Long], "")
					continue
				}
				val := w[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return nil, fmt.Errorf("option -%s needs a value", o.Short)
					}
					i++
					val = args[i]
				}
				r.values[o.Long] = append(r.values[o.Long], val)
				break
			}
		default:
			if leading {
				r.Args = append(r.Args, args[i:]...)
				return r, nil
			}
			r.Args = append(r.Args, w)
		}
	}
	return r, nil
}

// Usage renders the options as "[-d|--detailed] [-s|--status str]".
func (s Set) Usage() string {
	parts := make([]string, 0, len(s))
	for _, o := range s {
		var b strings.Builder
		b.WriteByte('[')
		if o.Short != "" {
			b.WriteString("-" + o.Short + "|")
		}
		b.WriteString("--" + o.Long)
		if o.Arg != "" {
			b.WriteString(" " + o.Arg)
		}
		b.WriteByte(']')
		parts = append(parts, b.String())
	}
	return strings.Join(parts, " ")
}
