// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/exporter/cache"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/promtext/promtexttest"
	"github.com/kflow-dev/kflow/exporter/transport"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// memSink keeps every record the agent writes locally.
type memSink struct {
	mu   sync.Mutex
	recs []flow.Record
}

func (m *memSink) Write(recs []flow.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = append(m.recs, recs...)
	return nil
}

func (m *memSink) Close() error { return nil }

func (m *memSink) all() []flow.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]flow.Record(nil), m.recs...)
}

// startAgent runs an agent inside namespace A until the test ends.
func startAgent(t *testing.T, p *testenv.Pair, cfg Config) *Agent {
	t.Helper()
	a, _ := runAgent(t, p, cfg)
	return a
}

// runAgent runs an agent inside namespace A until stop (a final drain and
// export) or the end of the test.
func runAgent(t *testing.T, p *testenv.Pair, cfg Config) (a *Agent, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if err := p.A.Do(func() (err error) {
		a, err = New(ctx, cfg)
		return err
	}); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.A.Do(func() error { return a.Run(ctx) }) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("agent run: %v", err)
				}
			case <-time.After(testenv.Patience):
				t.Errorf("agent did not stop within %v", testenv.Patience)
			}
		})
	}
	t.Cleanup(stop)
	return a, stop
}

// waitFor polls cond until it holds; testenv.Patience bounds a hang, not
// how long the event may take.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testenv.Patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, testenv.Patience)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func observes(a *Agent, name string) bool {
	for _, i := range a.Interfaces() {
		if i.Name == name {
			return true
		}
	}
	return false
}

// TestHotplug: interfaces that appear and match a glob are attached (the
// test logs how soon); removed ones are released without errors.
func TestHotplug(t *testing.T) {
	testenv.RequirePrivileged(t)
	p := testenv.NewPair(t)
	sink := &memSink{}
	a := startAgent(t, p, Config{Interfaces: []string{"kfa*", "hot*"}, Sink: sink, DrainInterval: 100 * time.Millisecond})
	waitFor(t, "the pair's veth attached at start", func() bool { return observes(a, p.AIf) })

	addVeth := func() error {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer h.Close()
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "hot0"}, PeerName: "cold0"}
		if err := h.LinkAdd(v); err != nil {
			return err
		}
		for _, n := range []string{"hot0", "cold0"} {
			l, err := h.LinkByName(n)
			if err != nil {
				return err
			}
			if err := h.LinkSetUp(l); err != nil {
				return err
			}
		}
		return nil
	}
	if err := p.A.Do(addVeth); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitFor(t, "hot0 attached", func() bool { return observes(a, "hot0") })
	t.Logf("hot0 attached %v after it came up", time.Since(start).Round(time.Millisecond))
	if observes(a, "cold0") {
		t.Error("cold0 does not match the patterns but was attached")
	}
	if err := p.A.Do(func() error {
		l, err := netlink.LinkByName("hot0")
		if err != nil {
			return err
		}
		return netlink.LinkDel(l)
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "hot0 released", func() bool { return !observes(a, "hot0") })
}

// TestExportExact runs the agent with a local sink and an IPFIX collector
// it cannot reach, sends traffic with known ground truth, stops, and
// checks the sink got every packet and byte.
func TestExportExact(t *testing.T) {
	testenv.RequirePrivileged(t)
	p := testenv.NewPair(t)
	sink := &memSink{}
	target, _ := transport.ParseTarget("ipfix://127.0.0.1:9")
	ctx, cancel := context.WithCancel(context.Background())
	var a *Agent
	if err := p.A.Do(func() (err error) {
		a, err = New(ctx, Config{Interfaces: []string{p.AIf}, Sink: sink, Collectors: []transport.Target{target},
			DrainInterval: 50 * time.Millisecond})
		return err
	}); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.A.Do(func() error { return a.Run(ctx) }) }()
	waitFor(t, "attached", func() bool { return observes(a, p.AIf) })

	truth := testenv.Truth{}
	for _, v6 := range []bool{false, true} {
		tr, err := p.UDPEcho(v6, 40000, 7000, []int{0, 10, 100, 1000})
		if err != nil {
			t.Fatal(err)
		}
		for k, c := range tr {
			truth[k] = c
		}
		tr, err = p.Ping(v6, 2, 32)
		if err != nil {
			t.Fatal(err)
		}
		for k, c := range tr {
			truth[k] = c
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mine := map[netip.Addr]bool{p.A4: true, p.B4: true, p.A6: true, p.B6: true}
	var recs []flow.Record
	for _, r := range sink.all() {
		if mine[r.Src] && mine[r.Dst] {
			recs = append(recs, r)
			if r.EndReason != flow.EndForced {
				t.Errorf("%v: end reason %v, want forced (shutdown)", testenv.KeyOf(&r), r.EndReason)
			}
		}
	}
	got := testenv.Sum(recs)
	for k, w := range truth {
		if got[k] != w {
			t.Errorf("%v: got %+v, want %+v", k, got[k], w)
		}
	}
	if len(got) != len(truth) {
		t.Errorf("got %d flows, want %d", len(got), len(truth))
	}
	// Nothing listens on the collector's port: every record it was sent
	// is either sent or counted as lost, none unaccounted.
	st := a.Stats()
	if len(st.Collectors) != 1 {
		t.Fatalf("collector stats: %+v", st.Collectors)
	}
	c := st.Collectors[0]
	if c.RecordsSent+c.RecordsLost != st.RecordsExported {
		t.Errorf("collector sent %d + lost %d != %d records exported", c.RecordsSent, c.RecordsLost, st.RecordsExported)
	}
	t.Logf("collector %+v, exported %d", c, st.RecordsExported)
}

// TestMetrics generates known traffic, scrapes the Prometheus collector,
// and checks the per-interface counters against the ground truth.
func TestMetrics(t *testing.T) {
	testenv.RequirePrivileged(t)
	p := testenv.NewPair(t)
	// IPv6 off and static neighbours: the test's traffic is all there is.
	if err := p.DisableIPv6(); err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	a := startAgent(t, p, Config{Interfaces: []string{p.AIf}, Sink: sink, DrainInterval: 50 * time.Millisecond})
	waitFor(t, "attached", func() bool { return observes(a, p.AIf) })
	truth := testenv.Truth{}
	for _, f := range []func() (testenv.Truth, error){
		func() (testenv.Truth, error) { return p.UDPEcho(false, 41000, 7001, []int{1, 200, 1400}) },
		func() (testenv.Truth, error) { return p.Ping(false, 4, 100) },
	} {
		tr, err := f()
		if err != nil {
			t.Fatal(err)
		}
		for k, c := range tr {
			truth[k] = c
		}
	}
	var want [2]testenv.Counts
	for k, c := range truth {
		want[k.Dir].Packets += c.Packets
		want[k.Dir].Octets += c.Octets
	}
	metrics := NewMetrics(a)
	scrape := func() map[string]float64 { return promtexttest.Scrape(t, metrics) }
	key := func(metric string, dir flow.Direction) string {
		return fmt.Sprintf("kflow_exporter_%s,direction=%s,interface=%s", metric, dir, p.AIf)
	}
	var got map[string]float64
	waitFor(t, "a drain with the traffic", func() bool {
		got = scrape()
		return got[key("packets_total", flow.Ingress)] >= float64(want[flow.Ingress].Packets) &&
			got[key("packets_total", flow.Egress)] >= float64(want[flow.Egress].Packets)
	})
	for _, dir := range []flow.Direction{flow.Ingress, flow.Egress} {
		if g := got[key("packets_total", dir)]; g != float64(want[dir].Packets) {
			t.Errorf("%s packets: metric %v, truth %d", dir, g, want[dir].Packets)
		}
		if g := got[key("bytes_total", dir)]; g != float64(want[dir].Octets) {
			t.Errorf("%s bytes: metric %v, truth %d", dir, g, want[dir].Octets)
		}
	}
	for _, name := range []string{"kflow_exporter_drains_total", "kflow_exporter_map_capacity", "kflow_exporter_ignored_packets_total"} {
		if _, ok := got[name]; !ok {
			t.Errorf("metric %s missing", name)
		}
	}
	if got["kflow_exporter_ignored_packets_total"] != 0 || got["kflow_exporter_unparsed_packets_total"] != 0 {
		t.Errorf("ignored %v, unparsed %v: want 0", got["kflow_exporter_ignored_packets_total"], got["kflow_exporter_unparsed_packets_total"])
	}
}

// cacheConfigQuick ends flows fast, so records reach the collectors soon.
func cacheConfigQuick() cache.Config {
	return cache.Config{IdleTimeout: 100 * time.Millisecond, ActiveTimeout: time.Second}
}
