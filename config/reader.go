package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// sectionReader reads typed keys from one section and remembers which keys
// were read, so that the rest can be reported instead of dropped.
//
// An empty value means the key's default, for every type: templates often
// leave "key =" lines in place, and upstream treats them the same way.
type sectionReader struct {
	d        *decoder
	name     string
	sec      *rawSection // nil when the section is absent
	fallback *rawSection // consulted for keys missing from sec; may be nil
	used     map[string]bool
	failed   map[string]bool
}

func (d *decoder) reader(name string) *sectionReader {
	d.handled[name] = true
	return &sectionReader{d: d, name: name, sec: d.sections[name], used: map[string]bool{}, failed: map[string]bool{}}
}

// lookup returns a key's value and the section it came from ("" if unset or
// empty).
func (r *sectionReader) lookup(key string) (value, from string) {
	r.used[key] = true
	if r.sec != nil {
		if v, ok := r.sec.values[key]; ok && v != "" {
			return v, r.name
		}
	}
	if r.fallback != nil {
		if v, ok := r.fallback.values[key]; ok && v != "" {
			return v, r.fallback.name
		}
	}
	return "", ""
}

// fail records a bad value. The error names the section the value was read
// from, which for an inherited default is not the section being decoded.
func (r *sectionReader) fail(key, value, from string, err error) {
	r.failed[key] = true
	if from == "" {
		from = r.name
	}
	r.d.valueErr(from, key, value, err)
}

// failKey records a problem found after reading, e.g. by a cross-key check.
// effective is the value in use; it is quoted when the key was not set, so
// that a message about a default still shows a value.
func (r *sectionReader) failKey(key string, effective any, err error) {
	value, from := r.lookup(key)
	if from == "" {
		value = fmt.Sprint(effective)
		err = fmt.Errorf("%w (default value)", err)
	}
	r.fail(key, value, from, err)
}

// valid tells whether none of keys has been reported bad. Cross-key checks
// use it so that one typo does not also produce a second, confusing error
// about the default that replaced it.
func (r *sectionReader) valid(keys ...string) bool {
	for _, k := range keys {
		if r.failed[k] {
			return false
		}
	}
	return true
}

func (r *sectionReader) line(key string) int {
	return r.d.idx.keyLine(r.name, key)
}

func (r *sectionReader) str(key, def string) string {
	if v, from := r.lookup(key); from != "" {
		r.record(key, FlagString, v, true)
		return v
	}
	r.record(key, FlagString, def, false)
	return def
}

// check validates a number after parsing.
type check func(int64) error

func positive(v int64) error {
	if v <= 0 {
		return errors.New("must be greater than 0")
	}
	return nil
}

func powerOfTwo(v int64) error {
	if v <= 0 || v&(v-1) != 0 {
		return errors.New("must be a power of two")
	}
	return nil
}

func nonNegative(v int64) error {
	if v < 0 {
		return errors.New("must not be negative")
	}
	return nil
}

func between(lo, hi int64) check {
	return func(v int64) error {
		if v < lo || v > hi {
			return fmt.Errorf("must be between %d and %d", lo, hi)
		}
		return nil
	}
}

// num reads an integer key. On a bad value it records an error and returns
// the default, so that decoding can go on and find further problems.
func num[T int32 | int64](r *sectionReader, key string, def T, checks ...check) T {
	typ := FlagInt64
	if _, ok := any(def).(int32); ok {
		typ = FlagInt32
	}
	v, from := r.lookup(key)
	if from == "" {
		r.record(key, typ, strconv.FormatInt(int64(def), 10), false)
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err == nil && int64(T(n)) != n {
		err = strconv.ErrRange
	}
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			r.fail(key, v, from, errors.New("integer out of range"))
		} else {
			r.fail(key, v, from, errors.New("not an integer"))
		}
		return def
	}
	for _, c := range checks {
		if err := c(n); err != nil {
			r.fail(key, v, from, err)
			return def
		}
	}
	r.record(key, typ, strconv.FormatInt(n, 10), true)
	return T(n)
}

// integer reads a key that upstream declares as a 32-bit integer; larger
// values are refused as upstream refuses them, so that /configs can call it
// FV_INT32 truthfully.
func (r *sectionReader) integer(key string, def int, checks ...check) int {
	return int(num(r, key, int32(def), checks...))
}

func (r *sectionReader) int64(key string, def int64, checks ...check) int64 {
	return num(r, key, def, checks...)
}

func (r *sectionReader) boolean(key string, def bool) bool {
	v, from := r.lookup(key)
	if from == "" {
		r.record(key, FlagBool, strconv.FormatBool(def), false)
		return def
	}
	switch strings.ToLower(v) {
	case "true", "1":
		r.record(key, FlagBool, "true", true)
		return true
	case "false", "0":
		r.record(key, FlagBool, "false", true)
		return false
	}
	r.fail(key, v, from, errors.New("not a boolean (want true or false)"))
	return def
}

// enum reads a key restricted to a fixed set of values; allowed[0] is not
// implicitly the default.
func (r *sectionReader) enum(key, def string, allowed ...string) string {
	v, from := r.lookup(key)
	if from == "" {
		r.record(key, FlagString, def, false)
		return def
	}
	for _, a := range allowed {
		if v == a {
			r.record(key, FlagString, v, true)
			return v
		}
	}
	r.fail(key, v, from, fmt.Errorf("unknown value, want one of: %s", strings.Join(allowed, ", ")))
	return def
}

// finish reports every key of the section that was not read. Keys that
// upstream Pegasus defines but this implementation does not use get their
// own message, so that an operator can tell them from typos. A pattern ending
// in '*' matches by prefix.
func (r *sectionReader) finish(upstreamOnly ...string) {
	if r.sec == nil {
		return
	}
	for _, k := range r.sec.keys {
		if r.used[k] {
			continue
		}
		if matchesAny(k, upstreamOnly) {
			r.d.warn(r.name, k, r.line(k), "upstream key not used by this implementation; ignored")
		} else {
			r.d.warn(r.name, k, r.line(k), "unknown key; ignored")
		}
	}
}

func matchesAny(key string, patterns []string) bool {
	for _, p := range patterns {
		if pre, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(key, pre) {
				return true
			}
		} else if key == p {
			return true
		}
	}
	return false
}
