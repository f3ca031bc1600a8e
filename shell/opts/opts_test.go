package opts

import (
	"reflect"
	"strings"
	"testing"
)

var set = Set{
	{Short: "d", Long: "detailed"},
	{Short: "j", Long: "json"},
	{Short: "s", Long: "status", Arg: "str"},
}

func TestParse(t *testing.T) {
	r, err := set.Parse([]string{"temp", "-dj", "--status=alive", "x", "-s", "dead", "-5", "--", "-d"})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Bool("detailed") || !r.Bool("json") || r.String("status", "") != "dead" {
		t.Errorf("options: %+v", r)
	}
	if want := []string{"temp", "x", "-5", "-d"}; !reflect.DeepEqual(r.Args, want) {
		t.Errorf("args %q, want %q", r.Args, want)
	}
	r, err = set.Parse([]string{"-sfoo"})
	if err != nil || r.String("status", "") != "foo" {
		t.Errorf("-sfoo: %v %+v", err, r)
	}
	if n, err := (&Result{values: map[string][]string{"n": {"x"}}}).Int("n", 0); err == nil {
		t.Errorf("Int of x = %d", n)
	}
	for _, bad := range [][]string{{"-z"}, {"--nope"}, {"-s"}, {"--status"}, {"--json=1"}} {
		if _, err := set.Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
	r, err = set.ParseLeading([]string{"-j", "cmd", "-d", "x"})
	if err != nil || !r.Bool("json") || r.Bool("detailed") || !reflect.DeepEqual(r.Args, []string{"cmd", "-d", "x"}) {
		t.Errorf("ParseLeading: %v %+v", err, r)
	}
	if got, want := set.Usage(), "[-d|--detailed] [-j|--json] [-s|--status str]"; got != want {
		t.Errorf("Usage = %q, want %q", got, want)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("-dj --status=alive x -s")
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Fields(line)
		_, _ = set.Parse(args) // must not panic on any input
		_, _ = set.ParseLeading(args)
	})
}
