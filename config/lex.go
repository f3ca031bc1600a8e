package config

import (
	"fmt"
	"strings"
)

// SyntaxError is a line that is not a comment, a [section] header or a
// key = value pair.
type SyntaxError struct {
	File string
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// lineIndex remembers where sections and keys are in the file. gopkg.in/ini.v1
// does the actual parsing but keeps no positions, and an error that says
// "line 212" saves the operator a search through a 600-line file.
type lineIndex struct {
	sections map[string]*sectionLines // by trimmed section name
	order    []string                 // section names in order of first header
}

type sectionLines struct {
	header int              // line of the first header; 0 for keys before any header
	keys   map[string][]int // every line a key is set on, in order
}

func (x *lineIndex) section(name string) *sectionLines {
	if x == nil {
		return nil
	}
	return x.sections[name]
}

// keyLine is the line of the assignment that wins (ini.v1 keeps the last one),
// or 0 when unknown.
func (x *lineIndex) keyLine(section, key string) int {
	s := x.section(section)
	if s == nil {
		return 0
	}
	if ls := s.keys[key]; len(ls) > 0 {
		return ls[len(ls)-1]
	}
	return 0
}

// lex checks the line structure with the same rules as the ini.v1 options
// used by Parse (only '=' separates a key from its value, no continuation
// lines) and indexes line numbers. It rejects multi-line quoted values, which
// ini.v1 would accept but upstream Pegasus does not know.
func lex(file, text string) (*lineIndex, []error) {
	x := &lineIndex{sections: map[string]*sectionLines{}}
	var errs []error
	cur := ""
	lines := strings.Split(strings.TrimPrefix(text, "\ufeff"), "\n")
	for i, raw := range lines {
		n := i + 1
		l := strings.TrimSpace(strings.TrimSuffix(raw, "\r"))
		if l == "" || l[0] == ';' || l[0] == '#' {
			continue
		}
		if l[0] == '[' {
			end := strings.LastIndexByte(l, ']')
			if end < 0 {
				errs = append(errs, &SyntaxError{file, n, "section header without closing ']'"})
				continue
			}
			name := strings.TrimSpace(l[1:end])
			if name == "" {
				errs = append(errs, &SyntaxError{file, n, "empty section name"})
				continue
			}
			cur = name
			if x.sections[name] == nil {
				x.sections[name] = &sectionLines{header: n, keys: map[string][]int{}}
				x.order = append(x.order, name)
			}
			continue
		}
		eq := strings.IndexByte(l, '=')
		if eq < 0 {
			errs = append(errs, &SyntaxError{file, n, fmt.Sprintf("expected \"key = value\", got %q", excerptLine(l))})
			continue
		}
		key := strings.TrimSpace(l[:eq])
		if key == "" {
			errs = append(errs, &SyntaxError{file, n, "empty key name"})
			continue
		}
		if key[0] == '"' || key[0] == '`' {
			errs = append(errs, &SyntaxError{file, n, fmt.Sprintf("quoted key names are not supported: %s", key)})
			continue
		}
		val := strings.TrimSpace(l[eq+1:])
		if (strings.HasPrefix(val, `"""`) && !strings.Contains(val[3:], `"""`)) ||
			(strings.HasPrefix(val, "`") && !strings.Contains(val[1:], "`")) {
			errs = append(errs, &SyntaxError{file, n, fmt.Sprintf("multi-line value for %q is not supported", key)})
			continue
		}
		s := x.sections[cur]
		if s == nil {
			s = &sectionLines{keys: map[string][]int{}}
			x.sections[cur] = s
		}
		s.keys[key] = append(s.keys[key], n)
	}
	return x, errs
}

func excerptLine(l string) string {
	return truncate(l, 60)
}
