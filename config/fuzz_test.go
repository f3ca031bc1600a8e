package config

import (
	"errors"
	"strings"
	"testing"
)

// FuzzExpand drives the placeholder scanner and the expander with arbitrary
// text and one variable. Besides not panicking, it checks that reported lines
// exist, that a successful expansion leaves no placeholder behind when the
// value cannot form one, and that filling every reported variable succeeds.
func FuzzExpand(f *testing.F) {
	f.Add(guideTemplate, "cluster.name", "c1")
	f.Add("a = %{x}\n", "x", "1")
	f.Add("%{%{x}}", "x", "{")
	f.Add("%{a\r\n%{}", "a", "")
	f.Add("\ufeff[s]\nk = %{é}\n", "é", "%{")
	f.Fuzz(func(t *testing.T, text, name, value string) {
		lines := strings.Count(text, "\n") + 1
		vars := FindTemplateVars(text)
		malformed := false
		for _, v := range vars {
			if len(v.Lines) == 0 {
				t.Fatalf("%+v without lines", v)
			}
			for i, l := range v.Lines {
				if l < 1 || l > lines || (i > 0 && l <= v.Lines[i-1]) {
					t.Fatalf("%+v: bad line list for a %d-line text", v, lines)
				}
			}
			malformed = malformed || v.Malformed
		}

		out, err := Expand(text, map[string]string{name: value})
		if err != nil {
			var te *TemplateError
			if !errors.As(err, &te) && !strings.ContainsAny(value, "\r\n") {
				t.Fatalf("unexpected error type: %v", err)
			}
		} else {
			if malformed {
				t.Fatalf("malformed placeholder expanded: %q", text)
			}
			if !strings.ContainsAny(value, "%{}") && len(FindTemplateVars(out)) > 0 {
				t.Fatalf("placeholders left in %q", out)
			}
		}

		if !malformed {
			all := map[string]string{}
			for _, v := range vars {
				all[v.Name] = "v"
			}
			out, err := Expand(text, all)
			if err != nil {
				t.Fatalf("expanding every reported variable: %v", err)
			}
			if len(vars) == 0 && out != text {
				t.Fatalf("text without placeholders changed: %q -> %q", text, out)
			}
		}

		// The loader's own check must agree with the scanner about whether
		// anything outside comments is left, and must never panic.
		_, perr := Parse("fuzz.ini", []byte(text), Options{})
		var te *TemplateError
		left := len(scanPlaceholders(text, true)) > 0
		if errors.As(perr, &te) != left {
			t.Fatalf("loader template check %v disagrees with scanner (%v) on %q", perr, left, text)
		}
	})
}
