package config

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestParseDataDirs(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []DataDir
		wantErr string
	}{
		{"one", "ssd1:/home/work/ssd1/pegasus", []DataDir{{"ssd1", "/home/work/ssd1/pegasus"}}, ""},
		{"several, spaces, unclean paths", " ssd2:/a/b/ , ssd3 : /c//d/../e ",
			[]DataDir{{"ssd2", "/a/b"}, {"ssd3", "/c/e"}}, ""},
		{"duplicate tag", "ssd:/a,ssd:/b", nil, `item 2 "ssd:/b": tag "ssd" already used by item 1`},
		{"duplicate path", "a:/data/x,b:/data/x", nil, `item 2 "b:/data/x": path "/data/x" already used by item 1`},
		{"duplicate path after clean", "a:/data/x,b:/data/./x/", nil, `path "/data/x" already used by item 1`},
		{"relative path", "a:data/x", nil, `item 1 "a:data/x": path "data/x" is not absolute`},
		{"dot path", "a:./x", nil, `path "./x" is not absolute`},
		{"empty tag", ":/data/x", nil, `item 1 ":/data/x": empty tag`},
		{"empty path", "a:", nil, `item 1 "a:": empty path`},
		{"no tag", "/data/x", nil, `item 1 "/data/x": want tag:path`},
		{"three parts", "a:/x:y", nil, `item 1 "a:/x:y": want tag:path`},
		{"empty item", "a:/x,,b:/y", nil, `item 2 "": empty item`},
		{"trailing comma", "a:/x,", nil, `item 2 "": empty item`},
		{"space in tag", "my disk:/x", nil, "tag must not contain spaces"},
		{"all problems reported", "a:x,:/y,a:/z,a:/w", nil, `item 1 "a:x": path "x" is not absolute; item 2 ":/y": empty tag; item 4 "a:/w": tag "a" already used by item 3`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDataDirs(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDataDirsInConfig(t *testing.T) {
	_, err := Parse("test.ini", []byte("[replication]\ndata_dirs = ssd:/a,ssd:/b\n"), Options{})
	var ve *ValueError
	if !errors.As(err, &ve) || ve.Key != "data_dirs" || ve.Line != 2 || !strings.Contains(err.Error(), `tag "ssd" already used`) {
		t.Errorf("got %v", err)
	}

	// Empty data_dirs: one "default" disk at the app dir, as upstream.
	cfg := mustParse(t, "[core]\ndata_dir = /home/work/app/pegasus\n[replication]\ndata_dirs =\nslog_dir = /ssd1/pegasus/\n")
	want := []DataDir{{DefaultDataDirTag, "/home/work/app/pegasus"}}
	if !reflect.DeepEqual(cfg.Replication.DataDirs, want) {
		t.Fatalf("got %v", cfg.Replication.DataDirs)
	}
	if got := cfg.Replication.DataDirs[0].ReplicaDir("replica"); got != "/home/work/app/pegasus/replica/reps" {
		t.Errorf("replica dir %q", got)
	}
	if got := cfg.Replication.SharedLogDir("replica"); got != "/ssd1/pegasus/replica/slog" {
		t.Errorf("slog dir %q", got)
	}
	if got := cfg.Replication.DataDirs[0].ReplicaDir("replica2"); got != "/home/work/app/pegasus/replica2/reps" {
		t.Errorf("second instance replica dir %q", got)
	}
}

func TestParseMetaServerList(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr string
	}{
		{"guide example", "1.2.3.4:34601,1.2.3.5:34601", []string{"1.2.3.4:34601", "1.2.3.5:34601"}, ""},
		{"spaces", " 10.0.0.1:34601 , 10.0.0.2:34602", []string{"10.0.0.1:34601", "10.0.0.2:34602"}, ""},
		{"hostname", "meta1.example.com:34601", nil, `item 1 "meta1.example.com:34601": "meta1.example.com" is a hostname; only IP addresses are supported`},
		{"localhost", "127.0.0.1:34601,localhost:34602", nil, `item 2 "localhost:34602": "localhost" is a hostname; only IP addresses are supported`},
		{"ipv6", "[::1]:34601", nil, "only IPv4 is supported"},
		{"no port", "10.0.0.1", nil, "want host:port"},
		{"bad port", "10.0.0.1:http", nil, `bad port "http"`},
		{"port out of range", "10.0.0.1:70000", nil, `bad port "70000"`},
		{"duplicate", "10.0.0.1:34601,10.0.0.1:34601", nil, "duplicate of item 1"},
		{"garbage", "10.0.0.x!:1", nil, "is not an IP address"},
		{"empty item", "10.0.0.1:34601,", nil, `item 2 "": empty item`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseMetaServerList(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, a := range got {
				s = append(s, a.String())
			}
			if !reflect.DeepEqual(s, tc.want) {
				t.Errorf("got %v, want %v", s, tc.want)
			}
		})
	}
}

func TestMetaServerHostnamesRefusedInConfig(t *testing.T) {
	for _, text := range []string{
		"[meta_server]\nserver_list = 10.0.0.1:34601,meta2.local:34601\n",
		"[pegasus.clusters]\nonebox = meta2.local:34601\n",
	} {
		_, err := Parse("test.ini", []byte(text), Options{})
		var ve *ValueError
		if !errors.As(err, &ve) || ve.Line != 2 ||
			!strings.Contains(err.Error(), `"meta2.local" is a hostname; only IP addresses are supported`) {
			t.Errorf("%q: got %v", text, err)
		}
	}
}

func TestParseHostPortList(t *testing.T) {
	got, err := ParseHostPortList("zk1.example.com:2181, 10.0.0.3:2181,[fe80::1]:2181")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"zk1.example.com:2181", "10.0.0.3:2181", "[fe80::1]:2181"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v", got)
	}
	for in, wantErr := range map[string]string{
		"zk1":                                 "want host:port",
		"zk_1..x:2181":                        "not a valid host name",
		"-zk:2181":                            "not a valid host name",
		"zk1:2181,zk1:2181":                   "duplicate of item 1",
		":2181":                               "empty host",
		"zk1:2181,zk2:99999":                  `bad port "99999"`,
		"zk1 with space:2181":                 "not a valid host name",
		"zk1:2181,,zk2:2181":                  "empty item",
		"zk1.example.com.:-1":                 "bad port",
		"z" + strings.Repeat("k", 300) + ":1": "too long",
	} {
		if _, err := ParseHostPortList(in); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: got %v, want %q", in, err, wantErr)
		}
	}
}

func TestParseEnvs(t *testing.T) {
	got, err := ParseEnvs("replica.deny_client_request=timeout*write, default_ttl = 86400,empty=")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"replica.deny_client_request": "timeout*write", "default_ttl": "86400", "empty": ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v", got)
	}
	for in, wantErr := range map[string]string{
		"a":       "want key=value",
		"=1":      "empty key",
		"a=1,a=2": `key "a" repeated`,
		"a=1,":    "want key=value",
	} {
		if _, err := ParseEnvs(in); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: got %v, want %q", in, err, wantErr)
		}
	}
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func fixed(ifs ...Interface) InterfaceLister {
	return func() ([]Interface, error) { return ifs, nil }
}

func TestHostIP(t *testing.T) {
	lo := Interface{Name: "lo", Addrs: addrs("127.0.0.1", "::1")}
	tests := []struct {
		name    string
		net     Network
		ifs     InterfaceLister
		want    string
		wantHow string
		wantErr string
	}{
		{
			name: "explicit address wins", net: Network{ExplicitHostAddress: "10.9.9.9", PrimaryInterface: "eth0"},
			ifs:  func() ([]Interface, error) { return nil, errors.New("must not be called") },
			want: "10.9.9.9", wantHow: "explicit_host_address",
		},
		{
			name: "explicit hostname refused", net: Network{ExplicitHostAddress: "node-0.svc"},
			wantErr: "hostname; only IP addresses are supported",
		},
		{
			name: "first private address in interface order",
			ifs: fixed(lo,
				Interface{Name: "eth0", Addrs: addrs("fe80::1", "8.8.8.8")},
				Interface{Name: "eth1", Addrs: addrs("192.168.1.20")},
				Interface{Name: "eth2", Addrs: addrs("10.1.2.3")}),
			want: "192.168.1.20", wantHow: "on eth1",
		},
		{
			name: "172.16/12 bounds",
			ifs: fixed(
				Interface{Name: "eth0", Addrs: addrs("172.15.255.255", "172.32.0.1")},
				Interface{Name: "eth1", Addrs: addrs("172.31.0.9")}),
			want: "172.31.0.9",
		},
		{
			name: "docker interfaces skipped",
			ifs: fixed(lo,
				Interface{Name: "docker0", Addrs: addrs("172.17.0.1")},
				Interface{Name: "br-docker-x", Addrs: addrs("10.200.0.1")},
				Interface{Name: "eth0", Addrs: addrs("10.0.0.5")}),
			want: "10.0.0.5", wantHow: "on eth0",
		},
		{
			name: "old docker bridge address skipped",
			ifs: fixed(
				Interface{Name: "br0", Addrs: addrs("172.17.42.1")},
				Interface{Name: "eth0", Addrs: addrs("172.18.0.2")}),
			want: "172.18.0.2",
		},
		{
			name: "down interface skipped",
			ifs: fixed(
				Interface{Name: "eth0", Down: true, Addrs: addrs("10.0.0.1")},
				Interface{Name: "eth1", Addrs: addrs("10.0.0.2")}),
			want: "10.0.0.2",
		},
		{
			name: "IPv4-mapped address",
			ifs:  fixed(Interface{Name: "eth0", Addrs: addrs("::ffff:10.0.0.7")}),
			want: "10.0.0.7",
		},
		{
			name: "loopback fallback",
			ifs:  fixed(lo, Interface{Name: "eth0", Addrs: addrs("8.8.4.4")}, Interface{Name: "docker0", Addrs: addrs("172.17.0.1")}),
			want: "127.0.0.1", wantHow: "loopback",
		},
		{
			name: "no interfaces at all",
			ifs:  fixed(),
			want: "127.0.0.1",
		},
		{
			name: "named NIC", net: Network{PrimaryInterface: "eth2"},
			ifs: fixed(lo,
				Interface{Name: "eth1", Addrs: addrs("10.0.0.1")},
				Interface{Name: "eth2", Addrs: addrs("fe80::2", "8.8.8.8", "10.0.0.2")}),
			want: "8.8.8.8", wantHow: "primary_interface eth2",
		},
		{
			name: "named docker NIC is honoured", net: Network{PrimaryInterface: "docker0"},
			ifs:  fixed(Interface{Name: "docker0", Addrs: addrs("172.17.0.1")}),
			want: "172.17.0.1",
		},
		{
			name: "unknown NIC", net: Network{PrimaryInterface: "eth9"},
			ifs:     fixed(lo, Interface{Name: "eth0", Addrs: addrs("10.0.0.1")}, Interface{Name: "eth1", Down: true}),
			wantErr: `[network] primary_interface "eth9": no such network interface; available interfaces: lo (127.0.0.1), eth0 (10.0.0.1), eth1 (no IPv4) [down]`,
		},
		{
			name: "NIC without IPv4", net: Network{PrimaryInterface: "eth0"},
			ifs:     fixed(lo, Interface{Name: "eth0", Addrs: addrs("fe80::1")}),
			wantErr: `[network] primary_interface "eth0" has no IPv4 address; available interfaces: lo (127.0.0.1), eth0 (no IPv4)`,
		},
		{
			name:    "enumeration fails",
			ifs:     func() ([]Interface, error) { return nil, errors.New("boom") },
			wantErr: "choose host address: boom",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ip, how, err := tc.net.HostIP(tc.ifs)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ip.String() != tc.want {
				t.Errorf("ip %s, want %s", ip, tc.want)
			}
			if !strings.Contains(how, tc.wantHow) {
				t.Errorf("how %q, want it to mention %q", how, tc.wantHow)
			}
		})
	}
}

func TestHostIPRealHost(t *testing.T) {
	ifs, err := SystemInterfaces()
	if err != nil {
		t.Fatal(err)
	}
	ip, how, err := Network{}.HostIP(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("host address %s (%s); interfaces: %s", ip, how, describeInterfaces(ifs))
	if !ip.Is4() || !(isPrivateIPv4(ip) || ip == netip.AddrFrom4([4]byte{127, 0, 0, 1})) {
		t.Errorf("HostIP chose %s", ip)
	}

	// Naming a NIC that exists must give one of its addresses.
	for _, ifc := range ifs {
		var v4 []netip.Addr
		for _, a := range ifc.Addrs {
			if a.Is4() {
				v4 = append(v4, a)
			}
		}
		if len(v4) == 0 {
			continue
		}
		got, _, err := Network{PrimaryInterface: ifc.Name}.HostIP(nil)
		if err != nil || got != v4[0] {
			t.Errorf("primary_interface %s: got %s, %v; want %s", ifc.Name, got, err, v4[0])
		}
		break
	}
}
