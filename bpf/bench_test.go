// SPDX-License-Identifier: Apache-2.0

package bpf

// Per-packet cost of the datapath under BPF_PROG_TEST_RUN, in both value
// modes. Results are reported as ns/pkt (ns/op is the cost of one
// benchmark iteration, which runs many packets).
//
// Method:
//   - empty, ipv4-existing, ipv6-existing: one frame run with Repeat =
//     benchRepeat; the kernel times the repetitions and returns the mean
//     per run, which is reported. The flow exists before the timed runs,
//     so this is the cost of parsing plus a lookup and in-place update.
//     "empty" is the same run of an empty program: the test runner's own
//     per-repetition cost, included in every other number.
//     A flow's packets are counted in its slot of the per-CPU flow cache,
//     so ipv4-existing and ipv6-existing are the cost of a cache hit.
//   - ipv4-new, ipv6-new: Repeat would repeat one frame, hence one flow,
//     so each iteration runs newFlowFrames distinct frames once each, into
//     a freshly drained map. Each kflow run is preceded by a run of the
//     empty program on the same frame (after an untimed one that warms
//     the caches), both timed from user space; the
//     empty run's time is the syscall overhead, and ns/pkt = mean(kflow -
//     empty) + the empty program's per-run cost from Repeat (so the
//     number compares with the existing-flow ones). kernel-ns/pkt is a
//     cross-check: the kernel's own timing of each single run (Repeat 1,
//     which includes two clock reads) minus the same for the empty
//     program. A flow is new to its cache too: in the cache's 1,024
//     slots, most of the 4,096 new flows find their slot taken by an
//     earlier one, which moves into the flow map first.
//   - ipv4-cache-miss: the same 4,096 IPv4 flows again, measured like the
//     new ones: their packets find their cache slot held by another flow
//     (the worst case of the cache: more active flows than it has slots).

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket/layers"
)

const (
	benchRepeat   = 1_000_000
	newFlowFrames = 4096
)

func BenchmarkProgRun(b *testing.B) {
	f4 := frame(b, eth4(), ip4(layers.IPProtocolTCP, 64, 0), tcpTS(40000, 443, fACK), payload(1000))
	f6 := frame(b, eth6(), ip6(6, 64, 0), tcpTS(40000, 443, fACK), payload(1000))
	new4 := make([][]byte, newFlowFrames)
	new6 := make([][]byte, newFlowFrames)
	for i := range newFlowFrames {
		sp := uint16(10000 + i)
		new4[i] = frame(b, eth4(), ip4(layers.IPProtocolTCP, 64, 0), tcpTS(sp, 443, fACK), payload(1000))
		new6[i] = frame(b, eth6(), ip6(6, 64, 0), tcpTS(sp, 443, fACK), payload(1000))
	}
	// The flow cache off (NoCache, shared values): every IPv4 packet is
	// counted in the IPv4 map, as before the cache; ipv4-cache-miss is
	// then 4,096 existing flows in turn, each found in the map.
	modes := append(slices.Clone(valueModes), struct {
		name   string
		shared bool
	}{"nocache", true})
	for _, mode := range modes {
		d := loadTest(b, Config{MapEntries: 2 * newFlowFrames, PerCPUValues: !mode.shared, NoCache: mode.name == "nocache"})
		empty := d.objs.KflowEmpty
		prog := d.objs.KflowTcxIngress
		var emptyNs float64
		b.Run(mode.name+"/empty", func(b *testing.B) { emptyNs = benchRepeated(b, empty, f4) })
		b.Run(mode.name+"/ipv4-existing", func(b *testing.B) { benchRepeated(b, prog, f4) })
		b.Run(mode.name+"/ipv6-existing", func(b *testing.B) { benchRepeated(b, prog, f6) })
		b.Run(mode.name+"/ipv4-new", func(b *testing.B) { benchNewFlows(b, d, empty, prog, new4, emptyNs, false) })
		b.Run(mode.name+"/ipv6-new", func(b *testing.B) { benchNewFlows(b, d, empty, prog, new6, emptyNs, false) })
		b.Run(mode.name+"/ipv4-cache-miss", func(b *testing.B) { benchNewFlows(b, d, empty, prog, new4, emptyNs, true) })
		if _, _, err := d.Drain(nil); err != nil {
			b.Fatal(err)
		}
	}
	// Cgroup attribution (shared values, egress, where it reads the
	// sending socket's cgroup when it creates an entry): off and on.
	for _, on := range []bool{false, true} {
		name := "cgroups-off"
		if on {
			name = "cgroups-on"
		}
		d := loadTest(b, Config{MapEntries: 2 * newFlowFrames, Cgroups: on})
		if err := d.CgroupsUnavailable(); err != nil {
			b.Fatal(err)
		}
		empty, prog := d.objs.KflowEmpty, d.objs.KflowTcxEgress
		var emptyNs float64
		b.Run(name+"/empty", func(b *testing.B) { emptyNs = benchRepeated(b, empty, f4) })
		b.Run(name+"/ipv4-existing", func(b *testing.B) { benchRepeated(b, prog, f4) })
		b.Run(name+"/ipv4-new", func(b *testing.B) { benchNewFlows(b, d, empty, prog, new4, emptyNs, false) })
	}
	// The capture filter (shared values): a filter of ten primitives the
	// packet matches none of, so every test runs and the packet is
	// counted (the usual "leave out management traffic" filter); and a
	// packet the filter leaves out at its first test.
	for _, c := range []struct{ name, filter string }{
		{"filter10/ipv4-existing", benchFilter10},
		{"filter10/ipv6-existing", benchFilter10},
		{"filter/ipv4-filtered-out", "not tcp"},
	} {
		d := loadTest(b, Config{MapEntries: 16, Filter: c.filter})
		f := f4
		if strings.Contains(c.name, "ipv6") {
			f = f6
		}
		b.Run(c.name, func(b *testing.B) { benchRepeated(b, d.objs.KflowTcxIngress, f) })
	}
}

// benchFilter10 is ten primitives (19 tests) that the benchmark's frames
// match none of.
const benchFilter10 = "not (host 198.51.100.1 or host 198.51.100.2 or net 203.0.113.0/24 or port 22 or port 9100 or " +
	"portrange 6000-6010 or net fd00:1::/32 or udp port 161 or icmp or vlan 99)"

// benchRepeated reports the kernel-timed mean cost of one run of prog on f.
func benchRepeated(b *testing.B, prog *ebpf.Program, f []byte) float64 {
	if err := runOnce(prog, f, nil); err != nil { // the flow exists from here
		b.Fatal(err)
	}
	var sum time.Duration
	var n int
	for b.Loop() {
		_, per, err := prog.Benchmark(f, benchRepeat, nil)
		if err != nil {
			b.Fatal(err)
		}
		sum += per
		n++
	}
	ns := float64(sum.Nanoseconds()) / float64(n)
	b.ReportMetric(ns, "ns/pkt")
	return ns
}

// benchNewFlows reports the cost of a packet that creates its flow, or
// with existing, of a packet of an existing IPv4 flow whose cache slot
// holds another flow (frames has four times as many flows as the cache has
// slots, run in turn: the slot's flow moves into the flow map, the
// packet's flow takes the slot).
func benchNewFlows(b *testing.B, d *Datapath, empty, prog *ebpf.Program, frames [][]byte, emptyNs float64, existing bool) {
	var wall, kernel time.Duration
	var pkts int
	for b.Loop() {
		b.StopTimer()
		if _, _, err := d.Drain(nil); err != nil { // empty map: every frame is a new flow
			b.Fatal(err)
		}
		if existing {
			for _, f := range frames {
				if _, _, err := prog.Benchmark(f, 1, nil); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StartTimer()
		for _, f := range frames {
			// An untimed run first, so both timed runs find the frame
			// equally warm in the caches.
			if _, _, err := empty.Benchmark(f, 1, nil); err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			_, ke, err := empty.Benchmark(f, 1, nil)
			if err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			_, kp, err := prog.Benchmark(f, 1, nil)
			if err != nil {
				b.Fatal(err)
			}
			t2 := time.Now()
			wall += t2.Sub(t1) - t1.Sub(t0)
			kernel += kp - ke
		}
		pkts += len(frames)
	}
	b.StopTimer()
	// A new flow is in the cache or in a map (moved out of the cache); an
	// existing one may be in both.
	if n := countEntries(b, d.active) + countEntries(b, d.active4) + countCache(b, d); n < len(frames) || !existing && n != len(frames) {
		b.Fatalf("%d flows in the maps and cache after the last round, want %d", n, len(frames))
	}
	b.ReportMetric(float64(wall.Nanoseconds())/float64(pkts)+emptyNs, "ns/pkt")
	b.ReportMetric(float64(kernel.Nanoseconds())/float64(pkts)+emptyNs, "kernel-ns/pkt")
}

// countCache counts the used slots of the active flow caches (each CPU's).
func countCache(tb testing.TB, d *Datapath) int {
	tb.Helper()
	return countSlots(tb, d.cache, func(e *kflowFlowCacheEntry) bool { return e.Value.Packets != 0 }) +
		countSlots(tb, d.cache6, func(e *kflowFlowCacheEntry6) bool { return e.Value.Packets != 0 })
}

func countSlots[E any](tb testing.TB, m *ebpf.Map, used func(*E) bool) int {
	n := 0
	for i := range m.MaxEntries() {
		var es []E
		if err := m.Lookup(i, &es); err != nil {
			tb.Fatal(err)
		}
		for j := range es {
			if used(&es[j]) {
				n++
			}
		}
	}
	return n
}
