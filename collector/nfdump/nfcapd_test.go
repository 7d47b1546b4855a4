// SPDX-License-Identifier: Apache-2.0

package nfdump

import (
	"flag"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/ipfix"
	"github.com/kflow-dev/kflow/exporter/netflow9"
	"github.com/kflow-dev/kflow/tools/testenv"
)

var update = flag.Bool("update", false, "copy the files nfcapd wrote to testdata (fuzz seeds)")

// Observation domains (source ids) of the three exporters the test plays.
const (
	domainIPFIX  = 7 // kflow's IPFIX encoder
	domainV9     = 9 // kflow's NetFlow v9 encoder
	domainCustom = 8 // IPFIX with AS numbers, masks and next hops
)

// capture is what one nfcapd run wrote and what it was sent.
type capture struct {
	files []string
	want  []flow.Record // as nfdump should store them
}

// runNfcapd starts nfcapd on a loopback port with the given compression
// flags, sends it the sample flows from three exporters (kflow's IPFIX and
// NetFlow v9 encoders, and IPFIX with a template of AS numbers, masks and
// next hops), waits until it has processed every flow (nfcapd -E prints
// each), stops it with SIGTERM so it closes its file, and returns the
// files.
func runNfcapd(t *testing.T, ident string, flags ...string) capture {
	t.Helper()
	bin := testenv.RequireTool(t, "nfcapd")
	dir := t.TempDir()
	var proc *testenv.Proc
	var port int
	for try := 0; ; try++ {
		port = freeUDPPort(t)
		args := append([]string{"-b", "127.0.0.1", "-p", strconv.Itoa(port), "-w", dir, "-I", ident, "-E"}, flags...)
		proc = testenv.Start(t, bin, args...)
		started := testenv.WaitFor(testenv.Patience, func() bool {
			return strings.Contains(proc.Output(), "Startup") || proc.Exited()
		})
		if started && !proc.Exited() {
			break
		}
		if try == 2 {
			t.Fatalf("nfcapd did not start:\n%s", proc.Output())
		}
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	// NetFlow v9 carries times as sysUptime: with an export clock and a
	// boot time on whole seconds nfcapd recovers the exact milliseconds.
	now := time.Now().Truncate(time.Second)
	t0 := now.Add(-time.Minute)
	recs := sampleRecords(t0)
	var c capture
	send := func(msgs [][]byte) {
		conn, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, m := range msgs {
			if _, err := conn.Write(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	clock := func() time.Time { return now }

	ienc, err := ipfix.NewEncoder(ipfix.Config{ObservationDomain: domainIPFIX, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	var msgs [][]byte
	if _, err := ienc.Encode(recs, func(p ipfix.Packet) error { msgs = append(msgs, slices.Clone(p.Bytes)); return nil }); err != nil {
		t.Fatal(err)
	}
	send(msgs)
	for _, r := range recs {
		c.want = append(c.want, stored(r, domainIPFIX))
	}

	venc, err := netflow9.NewEncoder(netflow9.Config{SourceID: domainV9, Clock: clock, SystemInit: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	msgs = nil
	if _, err := venc.Encode(recs, func(p netflow9.Packet) error { msgs = append(msgs, slices.Clone(p.Bytes)); return nil }); err != nil {
		t.Fatal(err)
	}
	send(msgs)
	for _, r := range recs {
		r = stored(r, domainV9)
		r.EndReason = 0 // kflow's v9 template has no end reason
		c.want = append(c.want, r)
	}

	custom := make([]flow.Record, len(recs))
	for i, r := range recs {
		r.SrcAS, r.DstAS = uint32(64496+i), 4200000000+uint32(i)
		r.SrcMask, r.DstMask = uint8(8+i), uint8(16+i)
		if r.Src.Is4() {
			r.NextHop = netip.AddrFrom4([4]byte{198, 18, 9, byte(i)})
		} else {
			r.NextHop = netip.MustParseAddr("fd00::99:" + strconv.Itoa(i))
			r.SrcMask, r.DstMask = uint8(48+i), uint8(64+i)
		}
		custom[i] = r
		r = stored(r, domainCustom)
		r.TCPFlags &= 0xff
		c.want = append(c.want, r)
	}
	send(customIPFIX(domainCustom, custom))

	total := len(c.want)
	if !testenv.WaitFor(testenv.Patience, func() bool { return strings.Count(proc.Output(), "Flow Record:") >= total || proc.Exited() }) {
		t.Fatalf("nfcapd processed %d of %d flows:\n%s", strings.Count(proc.Output(), "Flow Record:"), total, proc.Output())
	}
	if err := proc.Stop(syscall.SIGTERM, testenv.Patience); err != nil {
		t.Fatalf("nfcapd: %v\n%s", err, proc.Output())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "nfcapd.*"))
	for _, f := range files {
		if !strings.Contains(f, ".current.") {
			c.files = append(c.files, f)
		}
	}
	if len(c.files) == 0 {
		t.Fatalf("nfcapd wrote no file in %s: %v\n%s", dir, files, proc.Output())
	}
	return c
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// scanAll reads files with Scan and the given workers.
func scanAll(t *testing.T, files []string, workers int) ([]flow.Record, []ScanResult) {
	t.Helper()
	var recs []flow.Record
	var results []ScanResult
	for _, f := range files {
		res, err := Scan(f, ScanOptions{Workers: workers}, func(b []flow.Record) error {
			recs = append(recs, b...)
			return nil
		})
		if err != nil {
			t.Fatalf("scan %s: %v", f, err)
		}
		results = append(results, res)
	}
	return recs, results
}

// TestNfcapdFiles reads the files nfcapd 1.7.1 writes with each of its
// compressions and compares every record with what was sent and with what
// nfdump prints for the same file.
func TestNfcapdFiles(t *testing.T) {
	testenv.RequireTool(t, "nfdump")
	for _, tc := range []struct {
		name  string
		flags []string
		comp  Compression
	}{
		{"none", nil, Uncompressed},
		{"lzo", []string{"-z"}, LZO},
		{"lz4", []string{"-y"}, LZ4},
		{"bz2", []string{"-j"}, BZ2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ident := "Exporter_#1_" + tc.name
			c := runNfcapd(t, ident, tc.flags...)
			got, results := scanAll(t, c.files, 1)
			gotPar, _ := scanAll(t, c.files, 3)
			if !slices.EqualFunc(got, gotPar, func(a, b flow.Record) bool { return recordKey(a) == recordKey(b) }) {
				t.Errorf("workers 1 and 3 read different records")
			}
			t.Logf("%d records read, %d sent, files %v", len(got), len(c.want), c.files)
			compareRecords(t, "sent", sortRecords(c.want), sortRecords(got))

			var stat Stat
			exporters := map[uint32]Exporter{}
			for _, res := range results {
				h := res.Header
				if h.Layout != LayoutV2 || h.Compression != tc.comp || h.Ident != ident || !h.HasStat || h.Version != 0x01070100 || res.Truncated {
					t.Errorf("header %+v truncated %v", h, res.Truncated)
				}
				if res.UnknownRecords+res.UnknownElements+res.UnknownExtensions != 0 {
					t.Errorf("unknown: %+v", res)
				}
				stat.Flows += h.Stat.Flows
				stat.Packets += h.Stat.Packets
				stat.Bytes += h.Stat.Bytes
				for _, e := range res.Exporters {
					x := exporters[e.ObservationDomain]
					x.Addr, x.Version, x.ObservationDomain = e.Addr, e.Version, e.ObservationDomain
					x.Flows += e.Flows
					exporters[e.ObservationDomain] = x
				}
			}
			var pk, by uint64
			for _, r := range c.want {
				pk, by = pk+r.Packets, by+r.Octets
			}
			if stat.Flows != uint64(len(c.want)) || stat.Packets != pk || stat.Bytes != by {
				t.Errorf("stat records: %d flows %d packets %d bytes, want %d %d %d", stat.Flows, stat.Packets, stat.Bytes, len(c.want), pk, by)
			}
			n := uint64(len(sampleRecords(time.Now())))
			for _, w := range []Exporter{
				{Addr: netip.MustParseAddr("127.0.0.1"), Version: 10, ObservationDomain: domainIPFIX, Flows: n},
				{Addr: netip.MustParseAddr("127.0.0.1"), Version: 9, ObservationDomain: domainV9, Flows: n},
				{Addr: netip.MustParseAddr("127.0.0.1"), Version: 10, ObservationDomain: domainCustom, Flows: n},
			} {
				if exporters[w.ObservationDomain] != w {
					t.Errorf("exporter %+v, want %+v", exporters[w.ObservationDomain], w)
				}
			}

			// nfdump's own reading of the same files, record by record.
			var nf []flow.Record
			for _, f := range c.files {
				nf = append(nf, nfdumpJSON(t, f)...)
			}
			mine := make([]flow.Record, len(got))
			for i, r := range got {
				mine[i] = asNfdumpJSON(r)
			}
			compareRecords(t, "nfdump -o json", nf, mine)

			if *update {
				for i, f := range c.files {
					b, err := os.ReadFile(f)
					if err != nil {
						t.Fatal(err)
					}
					name := "nfcapd-1.7.1-" + tc.name
					if i > 0 {
						name += "." + strconv.Itoa(i)
					}
					if err := os.WriteFile(filepath.Join("testdata", name), b, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

func compareRecords(t *testing.T, what string, want, got []flow.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d records, want %d", what, len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if recordKey(got[i]) != recordKey(want[i]) {
			t.Errorf("%s: record %d:\n got %+v\nwant %+v", what, i, got[i], want[i])
		}
	}
}
