package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// guideTemplate is shaped like the upstream template: every deployment
// placeholder, some used more than once and some on the same line.
const guideTemplate = `[core]
  data_dir = %{app.dir}

[meta_server]
  server_list = %{meta.server.list}
  cluster_root = /pegasus/%{cluster.name}
  distributed_lock_service_parameters = /pegasus/%{cluster.name}/lock

[replication]
  ; slog_dir was %{slog.dir} before 2.6
  slog_dir = %{slog.dir}
  data_dirs = %{data.dirs}
  data_dirs_black_list_file = %{home.dir}/.pegasus_data_dirs_black_list
  cluster_name = %{cluster.name}

[pegasus.clusters]
  %{cluster.name} = %{meta.server.list}

[zookeeper]
  hosts_list = %{zk.server.list}
`

func TestLoadRefusesUnreplacedTemplate(t *testing.T) {
	_, err := Parse("config.ini", []byte(guideTemplate), Options{})
	var te *TemplateError
	if !errors.As(err, &te) {
		t.Fatalf("want *TemplateError, got %T: %v", err, err)
	}
	want := "config.ini: unreplaced template variables: %{app.dir} (line 2), " +
		"%{meta.server.list} (lines 5, 17), %{cluster.name} (lines 6, 7, 14, 17), " +
		"%{slog.dir} (line 11), %{data.dirs} (line 12), %{home.dir} (line 13), %{zk.server.list} (line 20)"
	if got := err.Error(); got != want {
		t.Errorf("message:\n got %s\nwant %s", got, want)
	}
}

func TestLoadRefusesTemplateCases(t *testing.T) {
	tests := []struct {
		name string
		text string
		want string // "" means the text must load
	}{
		{"comment lines are not checked", "; data_dir = %{app.dir}\n# %{x}\n[core]\ndata_dir = /a\n", ""},
		{"inline comment is checked", "[core]\ndata_dir = /a ; was %{app.dir}\n", "%{app.dir} (line 2)"},
		{"section header", "[uri-resolver.dsn://%{cluster.name}]\nfactory = x\n", "%{cluster.name} (line 1)"},
		{"unknown variable", "[core]\ndata_dir = %{my.own}/x\n", "%{my.own} (line 2)"},
		{"unterminated", "[core]\ndata_dir = %{app.dir/data\n", `malformed placeholder "%{app.dir/data" (line 2)`},
		{"empty", "[core]\ndata_dir = /x/%{}\n", `malformed placeholder "%{}" (line 2)`},
		{"crlf", "[core]\r\ndata_dir = %{app.dir}\r\n", "%{app.dir} (line 2)"},
		{"percent without brace", "[core]\ndata_dir = /data/100%\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("c.ini", []byte(tc.text), Options{})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var te *TemplateError
			if !errors.As(err, &te) {
				t.Fatalf("want *TemplateError, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{
		"cluster.name":     "onebox",
		"app.dir":          "/home/work/app/pegasus",
		"slog.dir":         "",
		"data.dirs":        "ssd2:/ssd2/pegasus,ssd3:/ssd3/pegasus",
		"home.dir":         "/home/work",
		"meta.server.list": "10.0.0.1:34601,10.0.0.2:34601",
		"zk.server.list":   "10.0.0.1:2181",
		"unused":           "ignored",
	}
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr string
	}{
		{"no placeholders", "a = b\n", "a = b\n", ""},
		{"one", "data_dir = %{app.dir}", "data_dir = /home/work/app/pegasus", ""},
		{"repeated on a line", "%{cluster.name} = /p/%{cluster.name}", "onebox = /p/onebox", ""},
		{"empty value", "slog_dir = %{slog.dir}\n", "slog_dir = \n", ""},
		{"adjacent", "%{home.dir}%{cluster.name}", "/home/workonebox", ""},
		{"value not re-expanded", "x = %{v}", "x = %{app.dir}", ""},
		{"comments expanded too", "; %{cluster.name}\n", "; onebox\n", ""},
		{"missing listed with lines", "a = %{nope}\nb = %{app.dir}\nc = %{nope} %{other}\n", "",
			"no value given for template variables: %{nope} (lines 1, 3), %{other} (line 3)"},
		{"malformed", "a = %{app.dir\n", "", `malformed placeholder "%{app.dir" (line 1)`},
		{"line break in value", "a = %{nl}\n", "", "value for %{nl} contains a line break"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := map[string]string{"v": "%{app.dir}", "nl": "x\ny = z"}
			for k, s := range vars {
				v[k] = s
			}
			got, err := Expand(tc.in, v)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				if got != "" {
					t.Errorf("output %q on error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestExpandThenLoad(t *testing.T) {
	out, err := Expand(guideTemplate, map[string]string{
		"cluster.name":     "c1",
		"app.dir":          "/home/work/app/pegasus",
		"slog.dir":         "",
		"data.dirs":        "",
		"home.dir":         "/home/work",
		"meta.server.list": "10.0.0.1:34601,10.0.0.2:34601",
		"zk.server.list":   "zk1:2181",
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse("filled.ini", []byte(out), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Replication.DataDirs[0].ReplicaDir("replica"); got != "/home/work/app/pegasus/replica/reps" {
		t.Errorf("replica dir %q", got)
	}
	if got := cfg.MetaServer.ClusterRoot; got != "/pegasus/c1" {
		t.Errorf("cluster root %q", got)
	}
	if len(cfg.Clusters["c1"]) != 2 {
		t.Errorf("clusters %v", cfg.Clusters)
	}
}

func TestFindTemplateVars(t *testing.T) {
	got := FindTemplateVars("; %{a}\nx = %{b}%{a}\ny = %{a\n")
	want := []TemplateVar{
		{Name: "a", Lines: []int{1, 2}},
		{Name: "b", Lines: []int{2}},
		{Name: "%{a", Lines: []int{3}, Malformed: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}
