package golden

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestParseHex(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []byte
		bad        bool
	}{
		{"one line", "54484654", []byte("THFT"), false},
		{"comments and blank lines", "# a frame\n5448\n\n  4654  \n# end\n", []byte("THFT"), false},
		{"empty", "# nothing\n", []byte{}, false},
		{"odd length", "544", nil, true},
		{"not hex", "zz", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseHex(tc.text)
			if tc.bad != (err != nil) || !tc.bad && !bytes.Equal(got, tc.want) {
				t.Fatalf("ParseHex(%q) = %x, %v", tc.text, got, err)
			}
		})
	}
}

func TestLocateHonoursTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvDir, dir)
	if _, err := Locate(); err == nil {
		t.Fatal("a directory without frames/ was accepted")
	}
	if err := os.Mkdir(filepath.Join(dir, "frames"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := Locate(); err != nil || got != dir {
		t.Fatalf("Locate() = %q, %v", got, err)
	}
}
