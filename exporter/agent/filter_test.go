// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/bpf"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/ipfix"
	"github.com/kflow-dev/kflow/exporter/promtext/promtexttest"
	"github.com/kflow-dev/kflow/exporter/transport"
	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// udpMessages collects the datagrams a UDP socket receives.
type udpMessages struct {
	conn *net.UDPConn
	mu   sync.Mutex
	msgs [][]byte
}

func listenUDP(t *testing.T, ns *testenv.NS) *udpMessages {
	t.Helper()
	u := &udpMessages{}
	if err := ns.Do(func() (err error) {
		u.conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, err := u.conn.Read(buf)
			if err != nil {
				return
			}
			u.mu.Lock()
			u.msgs = append(u.msgs, append([]byte(nil), buf[:n]...))
			u.mu.Unlock()
		}
	}()
	t.Cleanup(func() { u.conn.Close() })
	return u
}

func (u *udpMessages) all() [][]byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([][]byte(nil), u.msgs...)
}

// received waits until the socket read every message the stopped agent
// a sent to its (only) collector, and returns them.
func (u *udpMessages) received(t *testing.T, a *Agent) [][]byte {
	t.Helper()
	sent := a.Stats().Collectors[0].MessagesSent
	waitFor(t, fmt.Sprintf("the %d messages the agent sent", sent), func() bool { return uint64(len(u.all())) >= sent })
	return u.all()
}

// runToIPFIX runs an agent inside A, on A's veth, with a local sink and
// an IPFIX collector on A's loopback whose messages it returns; stop ends
// the agent (a final drain and export) and fails the test on an error.
func runToIPFIX(t *testing.T, p *testenv.Pair, cfg Config) (a *Agent, sink *memSink, col *udpMessages, stop func()) {
	t.Helper()
	col = listenUDP(t, p.A)
	target, err := transport.ParseTarget("ipfix://" + col.conn.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	sink = &memSink{}
	cfg.Interfaces, cfg.Sink, cfg.Collectors = []string{p.AIf}, sink, []transport.Target{target}
	cfg.DrainInterval = 50 * time.Millisecond
	a, stop = runAgent(t, p, cfg)
	waitFor(t, "attached", func() bool { return observes(a, p.AIf) })
	return a, sink, col, stop
}

// TestFilterExport runs the agent with a capture filter that leaves out
// ICMP: the records hold exactly the UDP traffic, and the metrics and the
// IPFIX filter counts options records hold exactly the ICMP packets and
// octets, per direction.
func TestFilterExport(t *testing.T) {
	testenv.RequirePrivileged(t)
	p := testenv.NewPair(t)
	if err := p.DisableIPv6(); err != nil { // the test's traffic is all there is
		t.Fatal(err)
	}
	a, sink, col, stop := runToIPFIX(t, p, Config{Datapath: bpf.Config{Filter: "not icmp"}})
	kept, err := p.UDPEcho(false, 41000, 7001, []int{1, 200, 1400})
	if err != nil {
		t.Fatal(err)
	}
	left, err := p.Ping(false, 4, 100)
	if err != nil {
		t.Fatal(err)
	}
	var want [2]testenv.Counts
	for k, c := range left {
		want[k.Dir].Packets += c.Packets
		want[k.Dir].Octets += c.Octets
	}
	metrics := NewMetrics(a)
	metric := func(name string, dir flow.Direction) float64 {
		v, ok := promtexttest.Scrape(t, metrics)["kflow_exporter_"+name+",direction="+dir.String()+",interface="+p.AIf]
		if !ok {
			return -1
		}
		return v
	}
	waitFor(t, "a drain with the traffic", func() bool {
		return metric("filtered_packets_total", flow.Ingress) == float64(want[flow.Ingress].Packets) &&
			metric("filtered_packets_total", flow.Egress) == float64(want[flow.Egress].Packets)
	})
	for _, dir := range []flow.Direction{flow.Ingress, flow.Egress} {
		if g := metric("filtered_bytes_total", dir); g != float64(want[dir].Octets) {
			t.Errorf("filtered %s bytes: metric %v, left out %d", dir, g, want[dir].Octets)
		}
	}
	stop()

	mine := map[netip.Addr]bool{p.A4: true, p.B4: true}
	var recs []flow.Record
	for _, r := range sink.all() {
		if mine[r.Src] && mine[r.Dst] {
			recs = append(recs, r)
		}
	}
	got := testenv.Sum(recs)
	if len(got) != len(kept) {
		t.Errorf("records of %d flows, want the %d UDP flows: %v", len(got), len(kept), got)
	}
	for k, w := range kept {
		if got[k] != w {
			t.Errorf("%v: got %+v, want %+v", k, got[k], w)
		}
	}

	// The shutdown's last messages carry the options data: the last
	// filter counts the collector received are the totals.
	s := ipfix.NewSession(wire.Limits{})
	last := map[flow.Direction]wire.FilterCount{}
	var m ipfix.Message
	for _, b := range col.received(t, a) {
		if err := s.Decode(&m, b); err != nil {
			t.Fatal(err)
		}
		for _, f := range m.Filtered {
			if f.Ifindex == uint32(p.AIndex) {
				last[f.Direction] = f
			}
		}
	}
	for _, dir := range []flow.Direction{flow.Ingress, flow.Egress} {
		if f := last[dir]; f.Packets != want[dir].Packets || f.Octets != want[dir].Octets {
			t.Errorf("options record %s: %+v, left out %+v", dir, f, want[dir])
		}
	}
	t.Logf("left out: %s", fmt.Sprint(want))
}
