// SPDX-License-Identifier: Apache-2.0

package server

import (
	"net"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/ipfix"
	"github.com/kflow-dev/kflow/exporter/promtext/promtexttest"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// TestMetrics sends a known number of records and messages, scrapes the
// Prometheus collector and checks the counters.
func TestMetrics(t *testing.T) {
	sink := newFakeSink()
	srv, addrs, stop := startServer(t, Config{
		Listen:        []string{"udp://127.0.0.1:0"},
		Handler:       HandlerConfig{Sink: sink},
		FlushInterval: 50 * time.Millisecond,
	})
	msgs := encodeIPFIX(t, ipfix.Config{}, testRecords(120, true), 40)
	c, err := net.Dial("udp", addrs["udp"])
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if _, err := c.Write(m); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	exporter := c.LocalAddr().String()
	c.Close()
	if !waitFor(func() bool { return len(sink.records()) >= 120 }) {
		t.Fatalf("%d records after %v, want 120", len(sink.records()), testenv.Patience)
	}
	stop()

	got := promtexttest.Scrape(t, NewMetrics(srv))
	lbl := ",exporter=" + exporter + ",transport=udp"
	for name, want := range map[string]float64{
		"kflow_collector_records_total" + lbl:                                   120,
		"kflow_collector_packets_total" + lbl:                                   float64(len(msgs)),
		"kflow_collector_sequence_gaps_total" + lbl:                             0,
		"kflow_collector_listener_packets_total,listener=udp://" + addrs["udp"]: float64(len(msgs)),
		"kflow_collector_kernel_drops_total,listener=udp://" + addrs["udp"]:     0,
	} {
		if g, ok := got[name]; !ok || g != want {
			t.Errorf("%s = %v (present %v), want %v", name, g, ok, want)
		}
	}
}
