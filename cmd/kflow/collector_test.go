// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/ipfix"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// requireWired fails with a clear message when commands() lacks an object
// (the lead wires collectorCmd and fileCmd into commands.go).
func requireWired(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		found := false
		for _, c := range commands().sub {
			found = found || c.name == n
		}
		if !found {
			t.Fatalf("object %q is not in commands(): wire %sCmd() into commands.go", n, n)
		}
	}
}

func collectorRecords(n int) []flow.Record {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	recs := make([]flow.Record, n)
	for i := range recs {
		r := &recs[i]
		r.Src = netip.AddrFrom4([4]byte{198, 18, 0, byte(i)})
		r.Dst = netip.AddrFrom4([4]byte{198, 19, 0, byte(i)})
		r.Proto = []uint8{flow.ProtoTCP, flow.ProtoUDP, flow.ProtoICMP}[i%3]
		if r.Proto != flow.ProtoICMP {
			r.SrcPort, r.DstPort = uint16(20000+i), 443
		} else {
			r.ICMPType = 8
		}
		r.Packets = uint64(i + 1)
		r.Octets = 100 * r.Packets
		r.Start = t0.Add(time.Duration(i) * time.Second)
		r.End = r.Start.Add(500 * time.Millisecond)
	}
	return recs
}

// runCollector starts "kflow collector run" in-process on loopback and
// returns its UDP and TCP addresses and a stop function returning the exit
// status and the JSON stats printed at exit.
func runCollector(t *testing.T, dir string, extra ...string) (udp, tcp string, stop func() (int, string)) {
	t.Helper()
	udp, tcp, stop, _ = startCollector(t, append([]string{"--dir", dir}, extra...)...)
	return udp, tcp, stop
}

// startCollector is runCollector with every option given by the caller
// (after the loopback listeners); stderr holds the log.
func startCollector(t *testing.T, extra ...string) (udp, tcp string, stop func() (int, string), stderr *testenv.LockedBuffer) {
	t.Helper()
	requireWired(t, "collector")
	ready := filepath.Join(t.TempDir(), "ready")
	ctx, cancel := context.WithCancel(context.Background())
	var stdout bytes.Buffer
	stderr = &testenv.LockedBuffer{}
	done := make(chan int, 1)
	args := append([]string{"-j", "collector", "run", "--no-default-listen", "--listen", "udp://127.0.0.1:0",
		"--listen", "tcp://127.0.0.1:0", "--ready-file", ready, "--flush-interval", "100ms", "--utc"}, extra...)
	go func() { done <- run(ctx, args, &stdout, stderr) }()
	deadline := time.Now().Add(testenv.Patience)
	for {
		b, err := os.ReadFile(ready)
		if err == nil {
			for _, l := range strings.Fields(string(b)) {
				if a, ok := strings.CutPrefix(l, "udp://"); ok {
					udp = a
				}
				if a, ok := strings.CutPrefix(l, "tcp://"); ok {
					tcp = a
				}
			}
			break
		}
		select {
		case code := <-done:
			cancel()
			t.Fatalf("collector exited with %d: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no ready file after %v", testenv.Patience)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopped := false
	stop = func() (int, string) {
		stopped = true
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Logf("collector stderr:\n%s", stderr.String())
			}
			return code, stdout.String()
		case <-time.After(testenv.Patience):
			t.Fatalf("collector did not stop within %v", testenv.Patience)
		}
		return -1, ""
	}
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})
	return udp, tcp, stop, stderr
}

func sendIPFIX(t *testing.T, network, addr string, recs []flow.Record, domain uint32) {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	enc, err := ipfix.NewEncoder(ipfix.Config{ObservationDomain: domain, Stream: network == "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Encode(recs, func(p ipfix.Packet) error {
		_, err := c.Write(p.Bytes)
		time.Sleep(time.Millisecond)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// waitSocketsRead waits until the collector has read everything queued
// in its UDP and TCP sockets (addresses host:port on loopback).
func waitSocketsRead(t *testing.T, udp, tcp string) {
	t.Helper()
	for network, addr := range map[string]string{"udp": udp, "tcp": tcp} {
		_, port, _ := strings.Cut(addr, ":")
		n, _ := strconv.Atoi(port)
		if err := testenv.WaitRead(nil, network, n); err != nil {
			t.Error(err)
		}
	}
}

func TestCollectorRunStoresRecords(t *testing.T) {
	dir := t.TempDir()
	day0 := time.Now().UTC()
	udp, tcp, stop := runCollector(t, dir, "--layout", "%Y/%m/%d")
	recs := collectorRecords(90)
	sendIPFIX(t, "udp", udp, recs[:60], 1)
	sendIPFIX(t, "tcp", tcp, recs[60:], 2)
	// The collector reads what waits in its sockets, however slowly it
	// runs, before it stops.
	waitSocketsRead(t, udp, tcp)
	code, out := stop()
	if code != 0 {
		t.Fatalf("exit status %d", code)
	}
	var st struct {
		Exporters []struct {
			Records   uint64
			Transport string
		}
		Files struct{ Files, Records uint64 }
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("stats JSON: %v: %s", err, out)
	}
	var stored uint64
	for _, e := range st.Exporters {
		stored += e.Records
	}
	if stored != 90 || st.Files.Records != 90 || len(st.Exporters) != 2 {
		t.Errorf("stats: %s", out)
	}
	// The file is in the layout and "file stat" reads it.
	var stdout, stderr bytes.Buffer
	requireWired(t, "file")
	if code := run(context.Background(), []string{"file", "stat", "-j", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("file stat: %d: %s", code, stderr.String())
	}
	var fs struct {
		Files []struct{ Path, End string }
		Total struct {
			Total     struct{ Flows, Packets, Bytes uint64 }
			Exporters []struct {
				Addr   string
				Domain uint32 `json:"observation_domain"`
			}
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &fs); err != nil {
		t.Fatal(err)
	}
	var pk uint64
	for _, r := range recs {
		pk += r.Packets
	}
	if fs.Total.Total.Flows != 90 || fs.Total.Total.Packets != pk || fs.Total.Total.Bytes != 100*pk {
		t.Errorf("file stat totals %+v", fs.Total.Total)
	}
	// The day's directory: the day the test started or, past midnight UTC,
	// the next (records rotate into the new day's file then).
	inDay := func(p string) bool {
		for _, d := range []time.Time{day0, time.Now().UTC()} {
			if strings.Contains(p, filepath.Join(dir, d.Format("2006/01/02"))) {
				return true
			}
		}
		return false
	}
	if len(fs.Files) == 0 || len(fs.Files) > 2 || !inDay(fs.Files[0].Path) {
		t.Errorf("files %+v", fs.Files)
	}
	for _, f := range fs.Files {
		if f.End != "clean" {
			t.Errorf("file %s ended %q, want clean", f.Path, f.End)
		}
	}
	if len(fs.Total.Exporters) != 2 || fs.Total.Exporters[0].Addr != "127.0.0.1" {
		t.Errorf("exporters %+v", fs.Total.Exporters)
	}
}

func TestCollectorRunUsage(t *testing.T) {
	requireWired(t, "collector")
	for _, args := range [][]string{
		{"collector", "run"},
		{"collector", "run", "--dir", "x", "--layout", "9"},
		{"collector", "run", "--dir", "x", "--max-size", "10Q"},
		{"collector", "run", "--dir", "x", "--allow", "not-an-address"},
		{"collector", "run", "--dir", "x", "--listen", "http://1.2.3.4:5"},
		{"collector", "run", "--dir", "x", "--interval", "1500ms"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitUsage, stderr.String())
		}
	}
}

func TestCollectorParsers(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "1024": 1024, "10K": 10 << 10, "500M": 500 << 20, "2G": 2 << 30, "1TB": 1 << 40} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v", in, got, err)
		}
	}
	for in, want := range map[string]string{"0": "", "1": "%Y/%m/%d", "%F/%H": "%F/%H", "8": "%F/%H"} {
		if l, err := parseLayout(in); err != nil || l.String() != want {
			t.Errorf("parseLayout(%q) = %v, %v", in, l, err)
		}
	}
	p, err := parseAllow([]string{"198.18.0.0/15", "10.1.2.3", "fd00::/8"})
	if err != nil || len(p) != 3 || p[1].Bits() != 32 {
		t.Errorf("parseAllow: %v %v", p, err)
	}
}

// TestCollectorRunCPUProfile checks the hidden --cpu-profile flag: a Go
// CPU profile (gzipped protobuf) of the whole run, and no line in the help.
func TestCollectorRunCPUProfile(t *testing.T) {
	prof := filepath.Join(t.TempDir(), "cpu.pprof")
	udp, _, stop := runCollector(t, t.TempDir(), "--cpu-profile", prof)
	sendIPFIX(t, "udp", udp, collectorRecords(30), 1)
	if code, _ := stop(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	b, err := os.ReadFile(prof)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("profile of %d bytes is not gzipped", len(b))
	}
	var stdout, stderr bytes.Buffer
	run(context.Background(), []string{"collector", "run", "--help"}, &stdout, &stderr)
	if help := stdout.String() + stderr.String(); !strings.Contains(help, "--flush-interval") || strings.Contains(help, "cpu-profile") {
		t.Errorf("help:\n%s", help)
	}
}
