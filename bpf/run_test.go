// SPDX-License-Identifier: Apache-2.0

package bpf

// The harness of the BPF_PROG_TEST_RUN suite (load, run, drain, compare
// records exactly; program contexts laid out from the kernel's BTF; a
// throwaway network namespace with a veth pair for ifindex-carrying
// contexts), and the tests of the datapath as a whole: drain deltas, map
// full, ring buffer full, sampling, timestamps, ABI sizes.

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// valueModes are the two flow map value layouts; every counting test runs
// in both.
var valueModes = []struct {
	name   string
	shared bool
}{
	{"percpu", false},
	{"shared", true},
}

// loadTest loads a datapath and closes it when the test ends.
func loadTest(tb testing.TB, cfg Config) *Datapath {
	tb.Helper()
	testenv.RequirePrivileged(tb)
	d, err := Load(cfg)
	if err != nil {
		var ve *VerifierError
		if errors.As(err, &ve) {
			tb.Fatalf("%v\n%v", err, ve.Tail(40))
		}
		tb.Fatalf("load datapath: %v", err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

// wallSlack is how far a record's wall times may be from the wall clock
// around the run. Tick (jiffies) stamps convert to wall time to within a
// tick plus however late the kernel's timer runs, which on a busy virtual
// machine is several ticks and has no bound a test can assume: the
// stamps' exactness is checked in the datapath's own clock
// (TestTimestamps); against the wall clock only their sanity is.
const wallSlack = time.Second

// program returns one of the datapath's programs by a short name.
func (d *Datapath) testProgram(tb testing.TB, name string) *ebpf.Program {
	tb.Helper()
	p := map[string]*ebpf.Program{
		"tcx-in": d.objs.KflowTcxIngress, "tcx-out": d.objs.KflowTcxEgress,
		"tc-in": d.objs.KflowTcIngress, "tc-out": d.objs.KflowTcEgress,
		"xdp": d.objs.KflowXdp, "empty": d.objs.KflowEmpty,
	}[name]
	if p == nil {
		tb.Fatalf("no program %q", name)
	}
	return p
}

// runOnce runs a program on one frame, once. Tests never use Repeat > 1 to
// count: cilium/ebpf restarts an interrupted repeated run from the start,
// so the program may run more often than asked and counts would drift.
func runOnce(prog *ebpf.Program, f []byte, ctx []byte) error {
	opts := &ebpf.RunOptions{Data: f, Repeat: 1}
	if ctx != nil {
		opts.Context = ctx
	}
	_, err := prog.Run(opts)
	return err
}

// runFrames runs frames through prog one after another, all on one CPU
// (BPF_PROG_TEST_RUN runs on the caller's). With per-CPU values two frames
// counted on two CPUs within one tick could not be told apart in time, and
// the drain would take the first frame's TOS from the lower-numbered CPU:
// the result would depend on where a busy scheduler moved the thread.
func runFrames(tb testing.TB, prog *ebpf.Program, ctx []byte, frames ...[]byte) {
	tb.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var all, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		tb.Fatalf("cpu affinity: %v", err)
	}
	for c := 0; c < 8*int(unsafe.Sizeof(all)); c++ {
		if all.IsSet(c) {
			one.Set(c)
			break
		}
	}
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		tb.Fatalf("pin to one cpu: %v", err)
	}
	defer func() { _ = unix.SchedSetaffinity(0, &all) }()
	for i, f := range frames {
		if err := runOnce(prog, f, ctx); err != nil {
			tb.Fatalf("run %s on frame %d (%d bytes): %v", prog, i, len(f), err)
		}
	}
}

func drainTest(tb testing.TB, d *Datapath) ([]flow.Record, Stats) {
	tb.Helper()
	recs, st, err := d.Drain(nil)
	if err != nil {
		tb.Fatalf("drain: %v", err)
	}
	return recs, st
}

// recordOrder sorts records by identity, then counters (a flow can come
// twice: from the map and from a ring buffer event).
func recordOrder(a, b flow.Record) int {
	return cmp.Or(
		a.Src.Compare(b.Src), a.Dst.Compare(b.Dst),
		cmp.Compare(a.Proto, b.Proto),
		cmp.Compare(a.SrcPort, b.SrcPort), cmp.Compare(a.DstPort, b.DstPort),
		cmp.Compare(a.ICMPType, b.ICMPType), cmp.Compare(a.ICMPCode, b.ICMPCode),
		cmp.Compare(a.VLAN, b.VLAN), cmp.Compare(a.InnerVLAN, b.InnerVLAN),
		cmp.Compare(a.InIf, b.InIf), cmp.Compare(a.OutIf, b.OutIf),
		cmp.Compare(a.Direction, b.Direction),
		cmp.Compare(a.Packets, b.Packets), cmp.Compare(a.Octets, b.Octets),
	)
}

// checkRecords compares records exactly, in any order. Timestamps must lie
// within [start, end] (± wallSlack) with Start <= End; they are then left out of the
// comparison.
func checkRecords(tb testing.TB, got, want []flow.Record, start, end time.Time) {
	tb.Helper()
	got = slices.Clone(got)
	for i := range got {
		r := &got[i]
		if r.Start.Before(start.Add(-wallSlack)) || r.End.After(end.Add(wallSlack)) || r.End.Before(r.Start) {
			tb.Errorf("record %d: first/last seen %v..%v outside the run window %v..%v",
				i, r.Start.Format(time.StampNano), r.End.Format(time.StampNano),
				start.Format(time.StampNano), end.Format(time.StampNano))
		}
		r.Start, r.End = time.Time{}, time.Time{}
	}
	slices.SortFunc(got, recordOrder)
	want = slices.Clone(want)
	slices.SortFunc(want, recordOrder)
	if !slices.Equal(got, want) {
		tb.Errorf("records differ\n got: %s\nwant: %s", fmtRecords(got), fmtRecords(want))
	}
}

func fmtRecords(rs []flow.Record) string {
	if len(rs) == 0 {
		return "(none)"
	}
	s := ""
	for _, r := range rs {
		s += fmt.Sprintf("\n  %s > %s proto %d ports %d>%d icmp %d/%d vlan %d/%d if %d>%d %s pkts %d octets %d flags %#x tos %#x ttl %d..%d",
			r.Src, r.Dst, r.Proto, r.SrcPort, r.DstPort, r.ICMPType, r.ICMPCode,
			r.VLAN, r.InnerVLAN, r.InIf, r.OutIf, r.Direction, r.Packets, r.Octets,
			r.TCPFlags, r.TOS, r.MinTTL, r.MaxTTL)
	}
	return s
}

func checkStats(tb testing.TB, got, want Stats) {
	tb.Helper()
	// MapEntries, Events and CacheEntries describe the drain, not the
	// counters.
	got.MapEntries, got.Events, got.CacheEntries = 0, 0, 0
	if got != want {
		tb.Errorf("stats differ\n got: %+v\nwant: %+v", got, want)
	}
}

// kernelCtx is a program context (struct __sk_buff, struct xdp_md) laid
// out from the running kernel's BTF, so no mirror struct is written by
// hand. BPF_PROG_TEST_RUN accepts only a few fields of it.
type kernelCtx struct {
	name string
	buf  []byte
	off  map[string]uint32
}

func newKernelCtx(tb testing.TB, name string) *kernelCtx {
	tb.Helper()
	spec, err := btf.LoadKernelSpec()
	testenv.RequireFeature(tb, "kernel BTF needed to lay out "+name, err)
	var st *btf.Struct
	if err := spec.TypeByName(name, &st); err != nil {
		tb.Fatalf("find %s in kernel BTF: %v", name, err)
	}
	c := &kernelCtx{name: name, buf: make([]byte, st.Size), off: map[string]uint32{}}
	for _, m := range st.Members {
		if m.Name != "" {
			c.off[m.Name] = m.Offset.Bytes()
		}
	}
	return c
}

// set writes a __u32 field.
func (c *kernelCtx) set(tb testing.TB, field string, v uint32) *kernelCtx {
	tb.Helper()
	off, ok := c.off[field]
	if !ok {
		tb.Fatalf("%s has no field %s", c.name, field)
	}
	*(*uint32)(unsafe.Pointer(&c.buf[off])) = v
	return c
}

func (c *kernelCtx) bytes() []byte { return slices.Clone(c.buf) }

// netnsThread is an OS thread in a network namespace of its own, holding
// a veth pair (the kernel resolves a context's ifindex in the caller's
// namespace). Calls run on that thread. When the test ends the thread
// exits without unlocking, so the runtime destroys it and the namespace
// with its links goes away.
type netnsThread struct {
	calls  chan func()
	ifA    int // veth kflow0
	ifB    int // its peer kflow1
	closed bool
}

func newNetnsThread(tb testing.TB) *netnsThread {
	tb.Helper()
	n := &netnsThread{calls: make(chan func())}
	ready := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ready <- fmt.Errorf("unshare netns: %w", err)
			return
		}
		// No IPv6 on the links: neighbour solicitations and listener
		// reports would reach the programs next to the test's frames
		// (the hooks still see the IPv6 frames tests send themselves).
		// /proc/sys/net is this thread's namespace's.
		for _, k := range []string{"all", "default"} {
			err := os.WriteFile("/proc/sys/net/ipv6/conf/"+k+"/disable_ipv6", []byte("1"), 0)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				ready <- fmt.Errorf("disable ipv6: %w", err)
				return
			}
		}
		err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "kflow0"}, PeerName: "kflow1"})
		if err != nil {
			ready <- fmt.Errorf("add veth: %w", err)
			return
		}
		for _, name := range []string{"kflow0", "kflow1", "lo"} {
			l, err := netlink.LinkByName(name)
			if err != nil {
				ready <- err
				return
			}
			if err := netlink.LinkSetUp(l); err != nil {
				ready <- fmt.Errorf("set %s up: %w", name, err)
				return
			}
			switch name {
			case "kflow0":
				n.ifA = l.Attrs().Index
			case "kflow1":
				n.ifB = l.Attrs().Index
			}
		}
		ready <- nil
		for f := range n.calls {
			f()
		}
	}()
	testenv.RequireFeature(tb, "network namespace with a veth pair", <-ready)
	tb.Cleanup(func() { close(n.calls) })
	return n
}

// do runs f on the namespace's thread and waits for it.
func (n *netnsThread) do(f func()) {
	done := make(chan struct{})
	n.calls <- func() { f(); close(done) }
	<-done
}

// TestRunSmoke is the first thing to look at when the suite fails: one
// UDP frame through the TCX ingress program, three times, drained.
func TestRunSmoke(t *testing.T) {
	d := loadTest(t, Config{MapEntries: 16})
	f := frame(t, eth4(), ip4(layers.IPProtocolUDP, 64, 0), udp(1234, 53), payload(100))
	start := time.Now()
	runFrames(t, d.objs.KflowTcxIngress, nil, f, f, f)
	recs, st := drainTest(t, d)
	checkRecords(t, recs, []flow.Record{
		v4rec(17, 1234, 53, 3, 3*(20+8+100), 64),
	}, start, time.Now())
	checkStats(t, st, Stats{})
}

// TestABISizes pins the generated Go types to the C structs' sizes (the C
// side has matching _Static_asserts).
func TestABISizes(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"flow_key", unsafe.Sizeof(kflowFlowKey{}), 52},
		{"flow_key4", unsafe.Sizeof(kflowFlowKey4{}), 24},
		{"flow_value", unsafe.Sizeof(kflowFlowValue{}), 48},
		{"flow_event", unsafe.Sizeof(kflowFlowEvent{}), 88},
		{"datapath_stats", unsafe.Sizeof(kflowDatapathStats{}), 64},
		{"clock_sample", unsafe.Sizeof(kflowClockSample{}), 16},
		{"filter_insn", unsafe.Sizeof(kflowFilterInsn{}), 48},
		{"filter_key", unsafe.Sizeof(kflowFilterKey{}), 8},
		{"filter_counts", unsafe.Sizeof(kflowFilterCounts{}), 16},
	} {
		if c.got != c.want {
			t.Errorf("struct %s: Go size %d, want %d", c.name, c.got, c.want)
		}
	}
}

// TestDrainDeltas checks the double-buffered drain: every drain returns
// what was counted since the previous one, nothing twice, and leaves the
// retired map empty.
func TestDrainDeltas(t *testing.T) {
	for _, mode := range valueModes {
		t.Run(mode.name, func(t *testing.T) {
			d := loadTest(t, Config{MapEntries: 16, PerCPUValues: !mode.shared})
			prog := d.objs.KflowTcxIngress
			a := frame(t, eth4(), ip4(layers.IPProtocolUDP, 64, 0), udp(1000, 53), payload(10))
			b := frame(t, eth6(), ip6(17, 64, 0), udp(2000, 53), payload(10))
			arp := arpFrame(t) // 60 bytes
			lenA, lenB := uint64(20+8+10), uint64(40+8+10)

			steps := []struct {
				frames [][]byte
				want   []flow.Record
				stats  Stats
			}{
				{[][]byte{a, a, a, arp}, []flow.Record{v4rec(17, 1000, 53, 3, 3*lenA, 64)}, Stats{NonIPPackets: 1, NonIPOctets: 60}},
				{[][]byte{a, a, b}, []flow.Record{v4rec(17, 1000, 53, 2, 2*lenA, 64), v6rec(17, 2000, 53, 1, lenB, 64)}, Stats{}},
				{nil, nil, Stats{}},
				{[][]byte{b, arp, arp}, []flow.Record{v6rec(17, 2000, 53, 1, lenB, 64)}, Stats{NonIPPackets: 2, NonIPOctets: 120}},
			}
			for i, s := range steps {
				start := time.Now()
				runFrames(t, prog, nil, s.frames...)
				retiring, retiring4 := d.active, d.active4
				recs, st := drainTest(t, d)
				end := time.Now()
				t.Logf("drain %d: %d records", i, len(recs))
				checkRecords(t, recs, s.want, start, end)
				checkStats(t, st, s.stats)
				if d.spare != retiring || d.spare4 != retiring4 {
					t.Fatalf("drain %d: the retired maps are not the spares", i)
				}
				for _, m := range []*ebpf.Map{retiring, retiring4} {
					if n := countEntries(t, m); n != 0 {
						t.Errorf("drain %d: retired map %v holds %d entries after the drain", i, m, n)
					}
				}
				for _, sl := range []struct{ slot, active *ebpf.Map }{{d.objs.FlowSlot, d.active}, {d.objs.Flow4Slot, d.active4}} {
					var id ebpf.MapID
					if err := sl.slot.Lookup(uint32(0), &id); err != nil {
						t.Fatal(err)
					}
					info, err := sl.active.Info()
					if err != nil {
						t.Fatal(err)
					}
					if want, _ := info.ID(); id != want {
						t.Errorf("drain %d: %v holds map %d, active is %d", i, sl.slot, id, want)
					}
				}
			}
		})
	}
}

// countEntries counts the entries of a flow map (either key layout).
func countEntries(tb testing.TB, m *ebpf.Map) int {
	tb.Helper()
	key, next := make([]byte, m.KeySize()), make([]byte, m.KeySize())
	var prev any // nil: the first key
	n := 0
	for {
		err := m.NextKey(prev, &next)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return n
		}
		if err != nil {
			tb.Fatalf("walk %s: %v", m, err)
		}
		n++
		copy(key, next)
		prev = key
	}
}

// distinctFlows builds n UDP frames of n different flows (source port
// 10000+i) with different sizes; octets[i] is frame i's IP total length.
func distinctFlows(tb testing.TB, n int) (frames [][]byte, want []flow.Record) {
	for i := range n {
		size := i % 50
		frames = append(frames, frame(tb, eth4(), ip4(layers.IPProtocolUDP, 64, 0), udp(uint16(10000+i), 53), payload(size)))
		want = append(want, v4rec(17, uint16(10000+i), 53, 1, uint64(20+8+size), 64))
	}
	return frames, want
}

// TestMapFullFallback fills a four-entry flow map: the first four flows land in
// the map, the others come through the ring buffer as fallback events,
// which Drain returns as records too. Packets of a flow already in the
// map keep going to the map; packets of a flow that did not fit go to the
// ring buffer again.
func TestMapFullFallback(t *testing.T) {
	for _, mode := range valueModes {
		t.Run(mode.name, func(t *testing.T) {
			d := loadTest(t, Config{MapEntries: 4, NoCache: true, PerCPUValues: !mode.shared})
			frames, want := distinctFlows(t, 10)
			// Again the first flow (in the map) and the last (not).
			frames = append(frames, frames[0], frames[9])
			want[0].Packets, want[0].Octets = 2, 2*want[0].Octets
			want = append(want, want[9])

			var fb Stats
			for _, r := range want[4:] {
				fb.FallbackPackets += r.Packets
				fb.FallbackOctets += r.Octets
			}
			start := time.Now()
			runFrames(t, d.objs.KflowTcxIngress, nil, frames...)
			recs, st := drainTest(t, d)
			checkRecords(t, recs, want, start, time.Now())
			checkStats(t, st, fb)
			if fb.FallbackPackets != 7 {
				t.Errorf("test expects 7 fallback packets, computed %d", fb.FallbackPackets)
			}

			// Drained and cleared, the map takes four new flows again.
			frames, want = distinctFlows(t, 4)
			start = time.Now()
			runFrames(t, d.objs.KflowTcxIngress, nil, frames...)
			recs, st = drainTest(t, d)
			checkRecords(t, recs, want, start, time.Now())
			checkStats(t, st, Stats{})
		})
	}
}

// TestRingBufferFull fills the map and then a one-page ring buffer: what
// fits nowhere is counted as ignored, and records plus ignored add up to
// exactly what was run.
func TestRingBufferFull(t *testing.T) {
	for _, mode := range valueModes {
		t.Run(mode.name, func(t *testing.T) {
			d := loadTest(t, Config{MapEntries: 4, NoCache: true, RingBufferBytes: uint32(os.Getpagesize()), PerCPUValues: !mode.shared})
			const n = 300
			frames, want := distinctFlows(t, n)
			var sentPkts, sentOcts uint64
			for _, r := range want {
				sentPkts += r.Packets
				sentOcts += r.Octets
			}
			runFrames(t, d.objs.KflowTcxIngress, nil, frames...)
			recs, st := drainTest(t, d)

			var gotPkts, gotOcts uint64
			for _, r := range recs {
				gotPkts += r.Packets
				gotOcts += r.Octets
			}
			t.Logf("%d flows: %d records (%d in the map, %d events), stats %+v", n, len(recs), 4, len(recs)-4, st)
			if st.IgnoredPackets == 0 || st.FallbackPackets == 0 {
				t.Errorf("want both fallback and ignored packets, got %+v", st)
			}
			if got := uint64(len(recs)) - 4; got != st.FallbackPackets {
				t.Errorf("%d fallback records, stats say %d fallback packets", got, st.FallbackPackets)
			}
			if gotPkts+st.IgnoredPackets != sentPkts || gotOcts+st.IgnoredOctets != sentOcts {
				t.Errorf("records %d packets %d octets + ignored %d/%d != run %d/%d",
					gotPkts, gotOcts, st.IgnoredPackets, st.IgnoredOctets, sentPkts, sentOcts)
			}
			if 4+st.FallbackPackets+st.IgnoredPackets != n {
				t.Errorf("4 in the map + %d fallback + %d ignored != %d", st.FallbackPackets, st.IgnoredPackets, n)
			}
			// Every record is one of the flows that were run, once.
			slices.SortFunc(recs, recordOrder)
			for i := 1; i < len(recs); i++ {
				if recs[i].SrcPort == recs[i-1].SrcPort {
					t.Errorf("flow %d reported twice", recs[i].SrcPort)
				}
			}
			// Ignored counts are deltas too: the next drain reports none.
			_, st = drainTest(t, d)
			checkStats(t, st, Stats{})
		})
	}
}

// TestSampling checks that the sampling knobs load and thin: with 1 every
// packet counts; random 1 in 1000 leaves between 0 and 2000 of 2000
// packets (the statistics are checked end to end, through the daemon);
// count-based 1 in 10 keeps exactly every tenth packet of a CPU.
func TestSampling(t *testing.T) {
	f := frame(t, eth4(), ip4(layers.IPProtocolUDP, 64, 0), udp(1, 2), payload(0))
	for _, c := range []struct {
		name     string
		sampling uint32
		count    bool
		want     int // -1: at most the packets run
	}{{"0", 0, false, 2000}, {"1", 1, false, 2000}, {"random-1000", 1000, false, -1}, {"count-10", 10, true, 200}, {"count-1", 1, true, 2000}} {
		t.Run(c.name, func(t *testing.T) {
			d := loadTest(t, Config{MapEntries: 16, Sampling: c.sampling, SamplingCount: c.count})
			const n = 2000
			// One CPU: count-based sampling counts per CPU.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var old unix.CPUSet
			if err := unix.SchedGetaffinity(0, &old); err != nil {
				t.Fatal(err)
			}
			var one unix.CPUSet
			one.Set(0)
			if err := unix.SchedSetaffinity(0, &one); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = unix.SchedSetaffinity(0, &old) }()
			for range n {
				if err := runOnce(d.objs.KflowTcxIngress, f, nil); err != nil {
					t.Fatal(err)
				}
			}
			recs, st := drainTest(t, d)
			var pkts uint64
			for _, r := range recs {
				pkts += r.Packets
			}
			t.Logf("sampling 1:%d (count %v): %d of %d packets counted", c.sampling, c.count, pkts, n)
			checkStats(t, st, Stats{})
			if c.want >= 0 && pkts != uint64(c.want) || pkts > n {
				t.Errorf("counted %d of %d packets, want %d", pkts, n, c.want)
			}
		})
	}
}

// awaitKernelTick returns once the datapath's tick clock (jiffies) has
// moved past its value now, so a packet counted afterwards is stamped
// later than one counted before: it waits for the clock itself, not for
// a time the clock is assumed to need. (CLOCK_BOOTTIME, of precise stamps,
// moves on long before a tick.)
func awaitKernelTick(tb testing.TB, d *Datapath) {
	tb.Helper()
	first, err := sampleClocks(d.objs.KflowClock, d.objs.Clock)
	if err != nil {
		tb.Fatal(err)
	}
	for deadline := time.Now().Add(testenv.Patience); ; {
		time.Sleep(time.Millisecond)
		s, err := sampleClocks(d.objs.KflowClock, d.objs.Clock)
		if err != nil {
			tb.Fatal(err)
		}
		if s.Jiffies > first.Jiffies {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("jiffies stayed at %d for %v", first.Jiffies, testenv.Patience)
		}
	}
}

// TestTimestamps checks first and last seen in the datapath's own clock,
// exactly: the stamps the program wrote lie between readings of the same
// clock (jiffies, or CLOCK_BOOTTIME with PreciseTime) taken right before
// and after each run, by the same helper. The drain's conversion to wall
// time keeps their distance exactly, and (TestClockWall) is the formula
// it is; against the wall clock the records are checked to the
// nanosecond clock's precision with PreciseTime, and only coarsely with
// ticks, whose conversion is exact to a tick plus however late the
// kernel's timer runs (on a busy virtual machine, several ticks).
func TestTimestamps(t *testing.T) {
	for _, mode := range valueModes {
		for _, precise := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/precise=%v", mode.name, precise), func(t *testing.T) {
				d := loadTest(t, Config{MapEntries: 16, PerCPUValues: !mode.shared, PreciseTime: precise})
				unit, slack := time.Duration(d.nsPerJiffy), wallSlack
				clock := func() uint64 {
					s, err := sampleClocks(d.objs.KflowClock, d.objs.Clock)
					if err != nil {
						t.Fatal(err)
					}
					if precise {
						return s.BootNs
					}
					return s.Jiffies
				}
				if precise {
					unit, slack = 1, 0
				}
				f := frame(t, eth4(), ip4(layers.IPProtocolUDP, 64, 0), udp(1, 2), payload(0))
				t0, c0 := time.Now(), clock()
				runFrames(t, d.objs.KflowTcxIngress, nil, f)
				c1, t1 := clock(), time.Now()
				awaitKernelTick(t, d)
				t2, c2 := time.Now(), clock()
				runFrames(t, d.objs.KflowTcxIngress, nil, f)
				c3, t3 := clock(), time.Now()

				first, last := rawSeen(t, d)
				if first < c0 || first > c1 {
					t.Errorf("first seen %d not within the first run's clock readings %d..%d", first, c0, c1)
				}
				if last < c2 || last > c3 {
					t.Errorf("last seen %d not within the second run's clock readings %d..%d", last, c2, c3)
				}
				if last <= first {
					t.Errorf("last seen %d not after first seen %d", last, first)
				}

				recs, _ := drainTest(t, d)
				if len(recs) != 1 {
					t.Fatalf("want 1 record, got %d", len(recs))
				}
				r := recs[0]
				if got, want := r.End.Sub(r.Start), time.Duration(last-first)*unit; got != want {
					t.Errorf("wall times %v..%v are %v apart; the stamps %v", r.Start, r.End, got, want)
				}
				if r.Start.Before(t0.Add(-slack)) || r.Start.After(t1.Add(slack)) {
					t.Errorf("first seen %v not within the first run %v..%v ± %v", r.Start, t0, t1, slack)
				}
				if r.End.Before(t2.Add(-slack)) || r.End.After(t3.Add(slack)) {
					t.Errorf("last seen %v not within the second run %v..%v ± %v", r.End, t2, t3, slack)
				}
			})
		}
	}
}

// rawSeen reads the only flow of the active flow cache or IPv4 map without
// draining it: its first and last seen stamps as the program wrote them
// (over CPUs: the earliest first, the latest last).
func rawSeen(tb testing.TB, d *Datapath) (first, last uint64) {
	tb.Helper()
	var vals []kflowFlowValue
	for i := range d.cache.MaxEntries() {
		var es []kflowFlowCacheEntry
		if err := d.cache.Lookup(i, &es); err != nil {
			tb.Fatal(err)
		}
		for _, e := range es {
			vals = append(vals, e.Value)
		}
	}
	var key kflowFlowKey4
	if err := d.active4.NextKey(nil, &key); errors.Is(err, ebpf.ErrKeyNotExist) {
		return seen(vals)
	} else if err != nil {
		tb.Fatal(err)
	}
	if d.active4.Type() == ebpf.PerCPUHash {
		var per []kflowFlowValue
		if err := d.active4.Lookup(&key, &per); err != nil {
			tb.Fatal(err)
		}
		vals = append(vals, per...)
	} else {
		var v kflowFlowValue
		if err := d.active4.Lookup(&key, &v); err != nil {
			tb.Fatal(err)
		}
		vals = append(vals, v)
	}
	return seen(vals)
}

// seen is the earliest first and the latest last seen stamp of values.
func seen(vals []kflowFlowValue) (first, last uint64) {
	for _, v := range vals {
		if v.Packets == 0 {
			continue
		}
		if first == 0 || v.FirstSeen < first {
			first = v.FirstSeen
		}
		last = max(last, v.LastSeen)
	}
	return first, last
}

// TestClockWall: the conversion of datapath stamps to wall time, by hand.
func TestClockWall(t *testing.T) {
	offset := int64(1_700_000_000_000_000_000)
	tick := clockMap{nsPerJiffy: 4_000_000, jiffies: 1000, bootNs: 5_000_000_123, offset: offset}
	for _, c := range []struct {
		ts   uint64
		want int64
	}{
		{1000, 5_000_000_123 + offset},
		{990, 5_000_000_123 - 10*4_000_000 + offset},
		{1001, 5_000_000_123 + 4_000_000 + offset}, // a tick after the reading
	} {
		if got := tick.wall(c.ts); got.UnixNano() != c.want {
			t.Errorf("jiffies %d: %d, want %d", c.ts, got.UnixNano(), c.want)
		}
	}
	precise := clockMap{precise: true, offset: offset}
	if got := precise.wall(42); got.UnixNano() != 42+offset {
		t.Errorf("boot ns 42: %d, want %d", got.UnixNano(), 42+offset)
	}
}

// TestSynNoAckMark: a SYN without ACK marks its flow with
// flow.TCPSynNoAck, which the drain keeps only with MarkSynNoAck; a SYN
// with ACK never marks.
func TestSynNoAckMark(t *testing.T) {
	syn := frame(t, eth4(), ip4(layers.IPProtocolTCP, 64, 0), tcp(40000, 80, fSYN), payload(0))
	synAck := frame(t, eth4(), ip4(layers.IPProtocolTCP, 64, 0), tcp(80, 40000, fSYN|fACK), payload(0))
	for _, mark := range []bool{false, true} {
		d := loadTest(t, Config{MapEntries: 16, MarkSynNoAck: mark})
		runFrames(t, d.objs.KflowTcxIngress, nil, syn, synAck)
		recs, _ := drainTest(t, d)
		for _, r := range recs {
			want := uint16(fSYN)
			if r.SrcPort == 80 {
				want |= fACK
			} else if mark {
				want |= flow.TCPSynNoAck
			}
			if r.TCPFlags != want {
				t.Errorf("mark %v: %d>%d flags %#x, want %#x", mark, r.SrcPort, r.DstPort, r.TCPFlags, want)
			}
		}
		if len(recs) != 2 {
			t.Errorf("mark %v: %d records, want 2", mark, len(recs))
		}
	}
}
