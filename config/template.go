package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// TemplateVar is one distinct %{name} placeholder found in a text, with every
// line it occurs on. A Malformed entry is a "%{" that does not open a proper
// placeholder (no closing brace on the line, "%{}", or a nested "{" or "%");
// its Name then holds the offending text, so that it can be quoted back.
type TemplateVar struct {
	Name      string
	Lines     []int
	Malformed bool
}

// String renders the placeholder the way an operator would grep for it.
func (v TemplateVar) String() string {
	var b strings.Builder
	if v.Malformed {
		b.WriteString("malformed placeholder ")
		b.WriteString(strconv.Quote(v.Name))
	} else {
		b.WriteString("%{")
		b.WriteString(v.Name)
		b.WriteString("}")
	}
	b.WriteString(" (line")
	if len(v.Lines) > 1 {
		b.WriteString("s")
	}
	for i, l := range v.Lines {
		if i == 0 {
			b.WriteString(" ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(l))
	}
	b.WriteString(")")
	return b.String()
}

// TemplateError reports placeholders that are still in a config file, or, from
// Expand, placeholders for which no value was given. It lists all of them at
// once: the deployment guide warns that one variable can appear in several
// places, and fixing them one failed start at a time is tedious.
type TemplateError struct {
	// File is the name of the file that was being loaded; empty for Expand.
	File string
	// Vars are in order of first appearance.
	Vars []TemplateVar
	// NoValue is set by Expand: the placeholders are fine, the caller did not
	// supply values for them.
	NoValue bool
}

func (e *TemplateError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.NoValue {
		b.WriteString("no value given for template variables: ")
	} else {
		b.WriteString("unreplaced template variables: ")
	}
	for i, v := range e.Vars {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(v.String())
	}
	return b.String()
}

// placeholder is one occurrence of "%{" in a text.
type placeholder struct {
	name      string // variable name, or the offending text when malformed
	malformed bool
	line      int
	start     int // byte offset of '%'
	end       int // byte offset just past the placeholder
}

// maxMalformedExcerpt bounds how much of a broken line is quoted back, so an
// error about one stray "%{" does not repeat a whole long value.
const maxMalformedExcerpt = 32

// scanPlaceholders finds every "%{" in text. When skipComments is set, whole
// comment lines (first non-blank character ';' or '#') are not searched:
// they cannot influence any value, and refusing a file over prose in a
// comment would only annoy.
func scanPlaceholders(text string, skipComments bool) []placeholder {
	var out []placeholder
	line := 1
	for off := 0; off <= len(text); line++ {
		n := strings.IndexByte(text[off:], '\n')
		l := text[off:]
		if n >= 0 {
			l = text[off : off+n]
		}
		l = strings.TrimSuffix(l, "\r")
		if !skipComments || !isCommentLine(l) {
			out = scanLine(out, l, off, line)
		}
		if n < 0 {
			break
		}
		off += n + 1
	}
	return out
}

func scanLine(out []placeholder, l string, base, line int) []placeholder {
	for i := 0; ; {
		j := strings.Index(l[i:], "%{")
		if j < 0 {
			return out
		}
		s := i + j
		rest := l[s+2:]
		k := strings.IndexAny(rest, "{}%")
		if k > 0 && rest[k] == '}' {
			end := s + 2 + k + 1
			out = append(out, placeholder{name: rest[:k], line: line, start: base + s, end: base + end})
			i = end
			continue
		}
		// Quote up to the character that broke the placeholder, or the rest of
		// the line when there is no closing brace at all.
		stop := len(l)
		if k >= 0 {
			stop = s + 2 + k
			if rest[k] == '}' {
				stop++
			}
		}
		out = append(out, placeholder{
			name:      excerpt(l[s:stop]),
			malformed: true,
			line:      line,
			start:     base + s,
			end:       base + stop,
		})
		i = s + 2
	}
}

func excerpt(s string) string {
	return truncate(s, maxMalformedExcerpt)
}

// truncate shortens s to at most max bytes plus an ellipsis, without splitting
// a UTF-8 sequence.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func isCommentLine(l string) bool {
	t := strings.TrimLeft(l, " \t\f\v\ufeff")
	return strings.HasPrefix(t, ";") || strings.HasPrefix(t, "#")
}

// groupPlaceholders folds occurrences into distinct variables, in order of
// first appearance, each with its distinct lines in increasing order.
func groupPlaceholders(phs []placeholder, keep func(placeholder) bool) []TemplateVar {
	type key struct {
		name      string
		malformed bool
	}
	idx := map[key]int{}
	var vars []TemplateVar
	for _, p := range phs {
		if keep != nil && !keep(p) {
			continue
		}
		k := key{p.name, p.malformed}
		i, ok := idx[k]
		if !ok {
			i = len(vars)
			idx[k] = i
			vars = append(vars, TemplateVar{Name: p.name, Malformed: p.malformed})
		}
		v := &vars[i]
		// Occurrences arrive in line order, so a repeat on the same line is
		// always the last one recorded.
		if n := len(v.Lines); n == 0 || v.Lines[n-1] != p.line {
			v.Lines = append(v.Lines, p.line)
		}
	}
	return vars
}

// FindTemplateVars lists the %{name} placeholders in text, comments included,
// in order of first appearance. Packaging tooling uses it to tell which
// values a template needs.
func FindTemplateVars(text string) []TemplateVar {
	return groupPlaceholders(scanPlaceholders(text, false), nil)
}

// checkNoPlaceholders is the loader's guard against a template that was
// deployed without being filled in.
func checkNoPlaceholders(file, text string) error {
	vars := groupPlaceholders(scanPlaceholders(text, true), nil)
	if len(vars) == 0 {
		return nil
	}
	return &TemplateError{File: file, Vars: vars}
}

// Expand replaces every %{name} placeholder in text by vars[name]. Names are
// given without the "%{" and "}" delimiters, e.g. "app.dir". Values are
// inserted literally and not expanded again.
//
// Expand fails, changing nothing, when a placeholder has no value or is
// malformed (all of them are listed in one *TemplateError), or when a value
// contains a line break: a config value cannot span lines, and a newline
// would silently inject extra keys into the file.
func Expand(text string, vars map[string]string) (string, error) {
	phs := scanPlaceholders(text, false)
	var errs []error
	if problems := groupPlaceholders(phs, func(p placeholder) bool {
		if p.malformed {
			return true
		}
		_, ok := vars[p.name]
		return !ok
	}); len(problems) > 0 {
		errs = append(errs, &TemplateError{Vars: problems, NoValue: true})
	}
	for _, v := range groupPlaceholders(phs, func(p placeholder) bool { return !p.malformed }) {
		if val, ok := vars[v.Name]; ok && strings.ContainsAny(val, "\r\n") {
			errs = append(errs, fmt.Errorf("value for %%{%s} contains a line break", v.Name))
		}
	}
	if len(errs) > 0 {
		return "", fmt.Errorf("expand template: %w", errors.Join(errs...))
	}
	var b strings.Builder
	b.Grow(len(text))
	last := 0
	for _, p := range phs {
		b.WriteString(text[last:p.start])
		b.WriteString(vars[p.name])
		last = p.end
	}
	b.WriteString(text[last:])
	return b.String(), nil
}
