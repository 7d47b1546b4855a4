// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/ipfix"
)

// nfcapd's spellings on "kflow collector run", as a user following an
// nfcapd guide types them.

// sendIPFIXFrom is sendIPFIX over UDP from a chosen loopback address, so
// one test plays several exporters.
func sendIPFIXFrom(t *testing.T, from, addr string, recs []flow.Record, domain uint32) {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(from)}, raddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	writeIPFIX(t, c, ipfix.Config{ObservationDomain: domain}, recs)
}

// writeIPFIX encodes recs as IPFIX messages written to c.
func writeIPFIX(t *testing.T, c net.Conn, cfg ipfix.Config, recs []flow.Record) {
	t.Helper()
	enc, err := ipfix.NewEncoder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Encode(recs, func(p ipfix.Packet) error {
		_, err := c.Write(p.Bytes)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

type identStat struct {
	Path, Ident, End string
	Summary          struct{ Total struct{ Flows uint64 } }
}

// fileStat runs "kflow file stat -j" on path.
func fileStat(t *testing.T, path string) []identStat {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"file", "stat", "-j", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("file stat %s: %d: %s", path, code, stderr.String())
	}
	var out struct{ Files []identStat }
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("file stat JSON: %v: %s", err, stdout.String())
	}
	return out.Files
}

// stopCollector stops the collector (which reads what its sockets hold
// first: the datagrams sent are queued on loopback) and returns its
// records stored and refused per exporter address.
func stopCollector(t *testing.T, stop func() (int, string)) map[string]uint64 {
	t.Helper()
	code, out := stop()
	if code != 0 {
		t.Fatalf("collector exit status %d", code)
	}
	var st struct {
		Exporters []struct {
			Exporter    string
			Records     uint64
			StoreErrors uint64
		}
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("stats JSON: %v: %s", err, out)
	}
	m := map[string]uint64{}
	for _, e := range st.Exporters {
		host, _, _ := net.SplitHostPort(e.Exporter)
		m[host+" records"] += e.Records
		m[host+" refused"] += e.StoreErrors
	}
	return m
}

// TestCollectorNfcapdSpellings: -w, -I, -t in bare seconds, -S, -e with a
// limit, -z and -y.
func TestCollectorNfcapdSpellings(t *testing.T) {
	dir := t.TempDir()
	day0 := time.Now().UTC()
	udp, _, stop, log := startCollector(t, "-w", dir, "-I", "Exporter_#1", "-t", "30", "-S", "1", "-e", "--max-age", "720h", "-z", "-y")
	sendIPFIXFrom(t, "127.0.0.1", udp, collectorRecords(12), 1)
	got := stopCollector(t, stop)
	if got["127.0.0.1 records"] != 12 {
		t.Errorf("stored %v", got)
	}
	files := fileStat(t, dir)
	// -t 30: a 30-second interval names files with seconds (nfcapd does).
	// The records may straddle a rotation (two files), and the day's
	// directory is the day the test started or ended in.
	name := regexp.MustCompile(`^kflow\.\d{14}$`)
	var flows uint64
	for _, f := range files {
		inDay := strings.Contains(f.Path, filepath.Join(dir, day0.Format("2006/01/02"))) ||
			strings.Contains(f.Path, filepath.Join(dir, time.Now().UTC().Format("2006/01/02")))
		if f.Ident != "Exporter_#1" || !inDay || !name.MatchString(filepath.Base(f.Path)) {
			t.Errorf("file %+v", f)
		}
		flows += f.Summary.Total.Flows
	}
	if len(files) == 0 || len(files) > 2 || flows != 12 {
		t.Errorf("%d files with %d flows, want 12 flows in one file (two across a rotation): %+v", len(files), flows, files)
	}
	if n := strings.Count(log.String(), "always compresses"); n != 1 {
		t.Errorf("the compression note is logged %d times:\n%s", n, log.String())
	}
}

// TestCollectorSources: -n IDENT,IP,DIR gives an exporter its own
// directory and ident; the others go to -w with -I's ident; without -w
// they are refused and counted.
func TestCollectorSources(t *testing.T) {
	main, r1 := t.TempDir(), filepath.Join(t.TempDir(), "router1")
	udp, _, stop, _ := startCollector(t, "-w", main, "-I", "default", "-n", "router1,127.0.0.2,"+r1)
	sendIPFIXFrom(t, "127.0.0.1", udp, collectorRecords(5), 1)
	sendIPFIXFrom(t, "127.0.0.2", udp, collectorRecords(7), 2)
	got := stopCollector(t, stop)
	if got["127.0.0.1 records"] != 5 || got["127.0.0.2 records"] != 7 {
		t.Errorf("stored %v", got)
	}
	for _, c := range []struct {
		dir, ident string
		flows      uint64
	}{{main, "default", 5}, {r1, "router1", 7}} {
		files := fileStat(t, c.dir)
		if len(files) != 1 || files[0].Ident != c.ident || files[0].Summary.Total.Flows != c.flows {
			t.Errorf("%s: files %+v", c.dir, files)
		}
	}

	// Only -n: the exporter no -n names is refused, and counted.
	r2 := t.TempDir()
	udp, _, stop, _ = startCollector(t, "-n", "router2,127.0.0.2,"+r2)
	sendIPFIXFrom(t, "127.0.0.1", udp, collectorRecords(4), 1)
	sendIPFIXFrom(t, "127.0.0.2", udp, collectorRecords(3), 2)
	got = stopCollector(t, stop)
	if got["127.0.0.1 refused"] != 4 || got["127.0.0.1 records"] != 0 || got["127.0.0.2 records"] != 3 {
		t.Errorf("stored %v", got)
	}
	if files := fileStat(t, r2); len(files) != 1 || files[0].Ident != "router2" || files[0].Summary.Total.Flows != 3 {
		t.Errorf("%s: files %+v", r2, files)
	}
}

// TestCollectorExec: -x runs after each rotation with nfcapd's
// substitutions, for the files of -w and of each -n.
func TestCollectorExec(t *testing.T) {
	main, r1 := t.TempDir(), filepath.Join(t.TempDir(), "r1")
	out := filepath.Join(t.TempDir(), "x.log")
	udp, _, stop, _ := startCollector(t, "-w", main, "-I", "main", "-n", "r1,127.0.0.2,"+r1, "-S", "1",
		"-x", "echo '%d|%f|%t|%u|%i|%%' >> "+out)
	sendIPFIXFrom(t, "127.0.0.1", udp, collectorRecords(3), 1)
	sendIPFIXFrom(t, "127.0.0.2", udp, collectorRecords(2), 2)
	stopCollector(t, stop)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("-x wrote nothing: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	slices.Sort(lines)
	if len(lines) != 2 {
		t.Fatalf("-x ran %d times:\n%s", len(lines), b)
	}
	for i, want := range []struct{ dir, ident string }{{main, "main"}, {r1, "r1"}} {
		f := strings.Split(lines[i], "|")
		if len(f) != 6 || f[0] != want.dir || f[4] != want.ident || f[5] != "%" {
			t.Errorf("-x line %q", lines[i])
			continue
		}
		if _, err := os.Stat(filepath.Join(f[0], f[1])); err != nil || !strings.HasPrefix(f[1], time.Now().UTC().Format("2006/01/02")+"/kflow.") {
			t.Errorf("-x %%d/%%f %s/%s: %v", f[0], f[1], err)
		}
		slot, err := time.ParseInLocation("200601021504", f[2], time.UTC)
		u, _ := strconv.ParseInt(f[3], 10, 64)
		if err != nil || slot.Unix() != u || !strings.HasSuffix(f[1], f[2]) {
			t.Errorf("-x %%t %s and %%u %s disagree with %%f %s", f[2], f[3], f[1])
		}
	}
}

// TestCollectorExecFailureLogged: a failing -x command is logged, and the
// collector carries on.
func TestCollectorExecFailureLogged(t *testing.T) {
	udp, _, stop, log := startCollector(t, "-w", t.TempDir(), "-x", "echo boom-%i >&2; exit 3", "-I", "xyz", "--log-level", "debug")
	sendIPFIXFrom(t, "127.0.0.1", udp, collectorRecords(2), 1)
	stopCollector(t, stop)
	if s := log.String(); !strings.Contains(s, "-x command failed") || !strings.Contains(s, "exit status 3") || !strings.Contains(s, "boom-xyz") {
		t.Errorf("log:\n%s", s)
	}
}

// TestCollectorPortAndBind: nfcapd's -p is --port here (-p is --pretty),
// with -b.
func TestCollectorPortAndBind(t *testing.T) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port)
	c.Close()
	dir := t.TempDir()
	_, _, stop, _ := startCollector(t, "-w", dir, "--port", port, "-b", "127.0.0.1")
	sendIPFIXFrom(t, "127.0.0.1", "127.0.0.1:"+port, collectorRecords(6), 1)
	if got := stopCollector(t, stop); got["127.0.0.1 records"] != 6 {
		t.Errorf("stored %v", got)
	}
}

// TestCollectorListeners: the defaults (now with nfcapd's 9995), what
// --listen, --port, -b and --no-default-listen make of them.
func TestCollectorListeners(t *testing.T) {
	for _, tc := range []struct {
		f    collectorFlags
		want string
		err  string
	}{
		{f: collectorFlags{}, want: "udp://[::]:2055 udp://[::]:4739 udp://[::]:9995 udp://[::]:6343 tcp://[::]:4739"},
		{f: collectorFlags{listen: []string{"udp://127.0.0.1:6343"}}, want: "udp://[::]:2055 udp://[::]:4739 udp://[::]:9995 tcp://[::]:4739 udp://127.0.0.1:6343"},
		{f: collectorFlags{listen: []string{"udp://127.0.0.1:2055"}}, want: "udp://[::]:4739 udp://[::]:9995 udp://[::]:6343 tcp://[::]:4739 udp://127.0.0.1:2055"},
		{f: collectorFlags{noDefault: true, listen: []string{"tcp://[::1]:4739"}}, want: "tcp://[::1]:4739"},
		{f: collectorFlags{port: "9995"}, want: "udp://[::]:2055 udp://[::]:4739 udp://[::]:6343 tcp://[::]:4739 udp://[::]:9995"},
		{f: collectorFlags{bind: "127.0.0.1"}, want: "udp://127.0.0.1:2055 udp://127.0.0.1:4739 udp://127.0.0.1:9995 udp://127.0.0.1:6343 tcp://127.0.0.1:4739"},
		{f: collectorFlags{bind: "::1", port: "2056", noDefault: true}, want: "udp://[::1]:2056"},
		{f: collectorFlags{bind: "127.0.0.1", noDefault: true}, want: "udp://127.0.0.1:9995"},
		{f: collectorFlags{noDefault: true}, err: "nowhere to listen"},
		{f: collectorFlags{bind: "collector.example"}, err: "want an IP address"},
		{f: collectorFlags{port: "99999"}, err: "want a UDP port"},
		{f: collectorFlags{listen: []string{"/var/cache/nfdump"}}, err: "nfcapd 1.6's -l DIR is -w DIR"},
	} {
		got, err := tc.f.listeners()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: %v, want error %q", tc.f, err, tc.err)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("%+v: %v %v, want %s", tc.f, got, err, tc.want)
		}
	}
}

// TestCollectorNfcapdRefusals: the spellings kflow cannot honour say what
// to write instead.
func TestCollectorNfcapdRefusals(t *testing.T) {
	requireWired(t, "collector")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-w", "x", "-p", "9995"}, "--port 9995"},
		{[]string{"-w", "x", "-D"}, "systemd"},
		{[]string{"-w", "x", "-e"}, "--max-age"},
		{[]string{"-w", "x", "-n", "--dir"}, "--per-exporter"},
		{[]string{"-w", "x", "-n", "a,not-an-ip,/tmp/y"}, "not an IP address"},
		{[]string{"-w", "x", "-n", "a,127.0.0.2,x"}, "already used"},
		{[]string{"-w", "x", "--dir", "y"}, "disagree"},
		{[]string{"-I", "x"}, "no --dir (-w)"},
		{[]string{"-w", "x", "-t", "five"}, "want seconds (300) or a duration (5m)"},
		{[]string{"-w", "x", "-l", "/var/cache/nfdump"}, "-w DIR"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"collector", "run"}, tc.args...), &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, %q; want usage error saying %q", tc.args, code, stderr.String(), tc.want)
		}
	}
	var stdout, stderr bytes.Buffer
	run(context.Background(), []string{"collector", "run", "--help"}, &stdout, &stderr)
	for _, want := range []string{"-w, --flowdir", "-I, --ident", "-t, --interval", "-n, --source", "-e, --expire", "-x, --exec",
		"-z, --lzo", "-y, --lz4", "-D, --daemon", "--port", "-b, --bind", "--no-default-listen", "udp://[::]:9995"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, stdout.String())
		}
	}
}

func TestExpandExec(t *testing.T) {
	slot := time.Date(2011, 7, 11, 8, 45, 0, 0, time.UTC)
	got := expandExec("nfdump -r %d/%f -I %i %t %u %% %q", "/data", "/data/2011/07/11/kflow.201107110845", "rtr", slot, 5*time.Minute)
	if want := "nfdump -r /data/2011/07/11/kflow.201107110845 -I rtr 201107110845 1310373900 % %q"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
