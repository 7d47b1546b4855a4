// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/ipfix"
	"github.com/kflow-dev/kflow/exporter/netflow9"
	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// TestCollectorKeepsReports: what an IPFIX or NetFlow v9 exporter says about itself in
// options records (exporter statistics with the ignored counters,
// interface names) is kept in the flow files, shown by file stat and file
// query -I next to the exporter's flows, and in the collector's
// statistics.
func TestCollectorKeepsReports(t *testing.T) {
	t.Run("ipfix", func(t *testing.T) {
		testKeepsReports(t, func(t *testing.T) reportEncoder {
			e, err := ipfix.NewEncoder(ipfix.Config{ObservationDomain: 5})
			if err != nil {
				t.Fatal(err)
			}
			return reportEncoder{e, func(recs []flow.Record, w func([]byte) error) error {
				_, err := e.Encode(recs, func(p ipfix.Packet) error { return w(p.Bytes) })
				return err
			}}
		})
	})
	t.Run("netflow9", func(t *testing.T) {
		testKeepsReports(t, func(t *testing.T) reportEncoder {
			e, err := netflow9.NewEncoder(netflow9.Config{SourceID: 5})
			if err != nil {
				t.Fatal(err)
			}
			return reportEncoder{e, func(recs []flow.Record, w func([]byte) error) error {
				_, err := e.Encode(recs, func(p netflow9.Packet) error { return w(p.Bytes) })
				return err
			}}
		})
	})
}

// reportSetter sets what an IPFIX or NetFlow v9 encoder says about its
// exporter.
type reportSetter interface {
	SetInterfaces([]wire.Interface)
	SetIgnored(packets, octets uint64)
	ForceTemplates()
}

// reportEncoder is an IPFIX or NetFlow v9 encoder.
type reportEncoder struct {
	reportSetter
	encode func(recs []flow.Record, write func([]byte) error) error
}

func testKeepsReports(t *testing.T, newEnc func(*testing.T) reportEncoder) {
	dir := t.TempDir()
	udp, _, stop := runCollector(t, dir)
	recs := collectorRecords(20)
	for i := range recs {
		recs[i].InIf, recs[i].OutIf = 2, 3
	}
	c, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	enc := newEnc(t)
	enc.SetInterfaces([]wire.Interface{{Index: 2, Name: "veth-a"}, {Index: 3, Name: "eth-b"}})
	send := func() {
		if err := enc.encode(recs, func(b []byte) error { _, err := c.Write(b); return err }); err != nil {
			t.Fatal(err)
		}
	}
	enc.SetIgnored(5, 500)
	send()
	// Totals: the last report counts.
	enc.SetIgnored(1234, 98765)
	enc.ForceTemplates()
	send()
	c.Close()
	_, port, _ := strings.Cut(udp, ":")
	n, _ := strconv.Atoi(port)
	if err := testenv.WaitRead(nil, "udp", n); err != nil {
		t.Fatal(err)
	}
	code, out := stop()
	if code != 0 {
		t.Fatalf("collector: exit %d", code)
	}
	var st struct {
		Exporters []struct{ Reports []flowfile.ExporterReport }
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Exporters) != 1 || len(st.Exporters[0].Reports) != 1 {
		t.Fatalf("collector stats: %v: %s", err, out)
	}
	checkReport := func(what string, r flowfile.ExporterReport) {
		t.Helper()
		if !r.HasStats || r.Domain != 5 || r.IgnoredPackets != 1234 || r.IgnoredOctets != 98765 ||
			r.Interfaces[2] != "veth-a" || r.Interfaces[3] != "eth-b" || r.Records == 0 || r.Messages == 0 {
			t.Errorf("%s: %+v", what, r)
		}
	}
	checkReport("collector stats", st.Exporters[0].Reports[0])

	files := statFiles(t, dir)
	var reps []flowfile.ExporterReport
	for _, f := range files {
		reps = append(reps, f.Reports...)
	}
	if len(reps) == 0 {
		t.Fatalf("file stat: no reports: %+v", files)
	}
	checkReport("file stat", reps[len(reps)-1])

	s := kflowSummary(t, dir)
	if len(s.Reports) != 1 {
		t.Fatalf("-I reports: %+v", s.Reports)
	}
	checkReport("file query -I", s.Reports[0])
	// Interfaces by name: %in and %out, -s inif (text and JSON).
	code, text, _ := runQuery(t, "-q", "-o", "fmt:%in %out", dir)
	if lines := strings.Split(strings.TrimSpace(text), "\n"); code != exitOK || len(lines) != 40 || strings.Fields(lines[0])[0] != "veth-a" || strings.Fields(lines[0])[1] != "eth-b" {
		t.Errorf("%%in %%out:\n%s", text)
	}
	code, text, _ = runQuery(t, "-s", "inif", dir)
	if code != exitOK || !strings.Contains(text, " veth-a ") {
		t.Errorf("-s inif:\n%s", text)
	}
	var sj struct {
		Stats []struct {
			Top []struct{ Value, Name string }
		}
	}
	code, text, _ = runQuery(t, "-j", "-s", "outif", dir)
	if json.Unmarshal([]byte(text), &sj) != nil || len(sj.Stats) != 1 || len(sj.Stats[0].Top) != 1 || sj.Stats[0].Top[0] != (struct{ Value, Name string }{"3", "eth-b"}) {
		t.Errorf("-s outif -j: exit %d: %s", code, text)
	}
	code, text, _ = runQuery(t, "-I", dir)
	if code != exitOK || !strings.Contains(text, "domain 5: flows 40 packets ") || !strings.Contains(text, "ignored packets 1234 ignored bytes 98765\n") {
		t.Errorf("file query -I:\n%s", text)
	}
}
