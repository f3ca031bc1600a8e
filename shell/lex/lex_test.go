package lex

import (
	"errors"
	"reflect"
	"testing"
)

func TestSplit(t *testing.T) {
	cases := []struct {
		line string
		want []string
	}{
		{"", nil},
		{"   \t ", nil},
		{"get hk sk", []string{"get", "hk", "sk"}},
		{`set "a b" 'c d'`, []string{"set", "a b", "c d"}},
		{`get "\x00\x01" "\xfF"`, []string{"get", "\x00\x01", "\xff"}},
		{`x "\n\r\t\b\a\\\"\q"`, []string{"x", "\n\r\t\b\a\\\"q"}},
		{`x "\xZZ"`, []string{"x", "xZZ"}},
		{`x 'it\'s' 'a\nb'`, []string{"x", "it's", `a\nb`}},
		{`x ab"c d"`, []string{"x", "abc d"}},
		{`x ""`, []string{"x", ""}},
	}
	for _, c := range cases {
		got, err := Split(c.line)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("Split(%q) = %q, %v; want %q", c.line, got, err, c.want)
		}
	}
	for _, bad := range []string{`"abc`, `'abc`, `"a"b`, `'a'b`, `x "a\"`} {
		if _, err := Split(bad); !errors.Is(err, ErrUnbalancedQuotes) {
			t.Errorf("Split(%q): %v, want ErrUnbalancedQuotes", bad, err)
		}
	}
}

func TestEscape(t *testing.T) {
	in := []byte("a\"'\\\n\r\t\x00\xff~")
	if got, want := Escape(in, false), `a\"\'\\\n\r\t\x00\xFF~`; got != want {
		t.Errorf("Escape = %s, want %s", got, want)
	}
	if got, want := Escape([]byte("ab"), true), `\x61\x62`; got != want {
		t.Errorf("Escape all = %s, want %s", got, want)
	}
	if got := Unescape(Escape(in, false)); string(got) != string(in) {
		t.Errorf("Unescape(Escape) = %q", got)
	}
	if got := Unescape(`\q\x4`); string(got) != `\q\x4` {
		t.Errorf("Unescape keeps unknown escapes: %q", got)
	}
}

func FuzzSplit(f *testing.F) {
	f.Add(`get "\x00" 'a b'`)
	f.Fuzz(func(t *testing.T, line string) {
		_, _ = Split(line) // must not panic on any input
		_ = Unescape(line)
	})
}
