// SPDX-License-Identifier: Apache-2.0

package bpf

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// End-to-end tests: two network namespaces joined by a veth pair, the
// datapath attached to A's end, real traffic, and every flow's packets and
// octets compared with the ground truth.

func testHooks() []Hook {
	hooks := []Hook{HookTC, HookXDP}
	if HaveTCX() {
		hooks = append([]Hook{HookTCX}, hooks...)
	}
	return hooks
}

func attachIn(t *testing.T, d *Datapath, p *testenv.Pair, hook Hook) []*Attachment {
	t.Helper()
	var atts []*Attachment
	err := p.A.Do(func() (err error) {
		atts, err = d.Attach(p.AIf, hook)
		return err
	})
	if err != nil {
		t.Fatalf("attach %s: %v", hook, err)
	}
	return atts
}

// ours keeps the records of the pair's own addresses (not the link-local
// IPv6 housekeeping the kernel sends on a new link).
func ours(p *testenv.Pair, recs []flow.Record) []flow.Record {
	mine := map[netip.Addr]bool{p.A4: true, p.B4: true, p.A6: true, p.B6: true}
	var out []flow.Record
	for _, r := range recs {
		if mine[r.Src] && mine[r.Dst] {
			out = append(out, r)
		}
	}
	return out
}

// compareTruth fails the test unless got and want hold the same flows with
// the same packets, octets and TCP flags.
func compareTruth(t *testing.T, what string, got, want testenv.Truth) {
	t.Helper()
	var diffs []string
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("missing %v: want %+v", k, w))
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%v: got %+v want %+v", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("unexpected %v: %+v", k, g))
		}
	}
	sort.Strings(diffs)
	for _, d := range diffs {
		t.Errorf("%s: %s", what, d)
	}
}

// contains checks that every flow of sub is in all with the same counts.
func contains(t *testing.T, what string, all, sub testenv.Truth) {
	t.Helper()
	for k, w := range sub {
		if g := all[k]; g != w {
			t.Errorf("%s: %v: got %+v, constructed %+v", what, k, g, w)
		}
	}
}

func TestEndToEnd(t *testing.T) {
	testenv.RequirePrivileged(t)
	for _, hook := range testHooks() {
		t.Run(string(hook), func(t *testing.T) {
			p := testenv.NewPair(t)
			d, err := Load(Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			atts := attachIn(t, d, p, hook)
			if len(atts) != 2 {
				t.Fatalf("got %d attachments, want 2", len(atts))
			}
			capture, err := testenv.StartCapture(p.B, p.BIndex, true)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()

			known := testenv.Truth{}
			merge := func(tr testenv.Truth, err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
				for k, c := range tr {
					known[k] = c
				}
			}
			sizes := []int{0, 1, 17, 18, 100, 512, 1000, 1472}
			merge(p.UDPEcho(false, 40001, 5001, sizes))
			merge(p.UDPEcho(true, 40002, 5002, append(sizes[:len(sizes)-1:len(sizes)-1], 1452)))
			merge(p.Ping(false, 3, 56))
			merge(p.Ping(true, 3, 0))
			writes := []int{1, 100, 1448, 5000, 200000}
			port4, err := p.TCPSession(false, 5003, writes)
			if err != nil {
				t.Fatal(err)
			}
			port6, err := p.TCPSession(true, 5004, writes)
			if err != nil {
				t.Fatal(err)
			}
			truth, err := capture.Stop()
			if err != nil {
				t.Fatal(err)
			}
			truth = p.OwnFlows(truth)
			end := time.Now()

			recs, st, err := d.Drain(nil)
			if err != nil {
				t.Fatal(err)
			}
			mine := ours(p, recs)
			for _, r := range mine {
				ifindex := r.InIf
				if r.Direction == flow.Egress {
					ifindex = r.OutIf
				}
				if int(ifindex) != p.AIndex {
					t.Errorf("%v: ifindex %d, want %d", testenv.KeyOf(&r), ifindex, p.AIndex)
				}
				if r.Start.Before(start.Add(-time.Second)) || r.End.After(end.Add(time.Second)) || r.End.Before(r.Start) {
					t.Errorf("%v: times %v..%v outside %v..%v", testenv.KeyOf(&r), r.Start, r.End, start, end)
				}
			}
			got := testenv.Sum(mine)
			compareTruth(t, "datapath vs capture", got, truth)
			contains(t, "capture vs constructed", truth, known)

			for _, v6 := range []bool{false, true} {
				a, b, port := p.A4, p.B4, port4
				if v6 {
					a, b, port = p.A6, p.B6, port6
				}
				out := got[testenv.FlowKey{Src: a, Dst: b, Proto: flow.ProtoTCP, SrcPort: port, DstPort: 5003 + btoi(v6), Dir: flow.Egress}]
				in := got[testenv.FlowKey{Src: b, Dst: a, Proto: flow.ProtoTCP, SrcPort: 5003 + btoi(v6), DstPort: port, Dir: flow.Ingress}]
				const want = flow.TCPSyn | flow.TCPFin | flow.TCPAck
				if out.TCPFlags&want != want || in.TCPFlags&want != want {
					t.Errorf("tcp v6=%v flags out %#x in %#x, want SYN|FIN|ACK on both", v6, out.TCPFlags, in.TCPFlags)
				}
				if out.Packets < 10 || in.Packets < 10 {
					t.Errorf("tcp v6=%v: only %d/%d packets", v6, out.Packets, in.Packets)
				}
			}
			if st.FallbackPackets != 0 || st.IgnoredPackets != 0 || st.UnparsedPackets != 0 {
				t.Errorf("unexpected datapath stats %+v", st)
			}
			t.Logf("%s: %d flows, stats %+v", hook, len(got), st)
		})
	}
}

func btoi(b bool) uint16 {
	if b {
		return 1
	}
	return 0
}

// TestChurn drains continuously while traffic flows: hundreds of map swaps,
// and the sum of every drain equals what was sent.
func TestChurn(t *testing.T) {
	testenv.RequirePrivileged(t)
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) {
			p := testenv.NewPair(t)
			d, err := Load(Config{PerCPUValues: !shared})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			attachIn(t, d, p, HookAuto)

			stop := make(chan struct{})
			var drains atomic.Int64
			type result struct {
				recs []flow.Record
				err  error
			}
			done := make(chan result)
			go func() {
				var res result
				for {
					select {
					case <-stop:
						done <- res
						return
					default:
					}
					res.recs, _, res.err = d.Drain(res.recs)
					if res.err != nil {
						done <- res
						return
					}
					drains.Add(1)
				}
			}()
			// Send until the drainer has swapped the maps hundreds of
			// times during the traffic, however slow the machine: rounds
			// go on until the drains happened (a hang guard bounds them
			// in time, and a count far past what the swaps need bounds
			// them in number). With -short (vmtest runs the package so,
			// on emulated CPUs 6 to 25 times slower) the same check runs
			// on fewer packets and swaps.
			perRound, wantDrains := 20000, int64(300)
			if testing.Short() {
				perRound, wantDrains = 5000, 50
			}
			const maxRounds = 100000
			truth := testenv.Truth{}
			deadline := time.Now().Add(testenv.Patience)
			for round := 0; round < maxRounds && drains.Load() < wantDrains && time.Now().Before(deadline); round++ {
				var tr testenv.Truth
				v6 := round%2 == 1
				// 64 ports per round, 400 port ranges in turn.
				tr, err = p.UDPBlast(v6, uint16(20000+round%400*100), 64, perRound, 64+round%100*8)
				if err != nil {
					break
				}
				for k, c := range tr {
					sum := truth[k]
					sum.Packets += c.Packets
					sum.Octets += c.Octets
					truth[k] = sum
				}
			}
			close(stop)
			res := <-done
			if err != nil {
				t.Fatal(err)
			}
			if res.err != nil {
				t.Fatal(res.err)
			}
			recs, _, err := d.Drain(res.recs)
			if err != nil {
				t.Fatal(err)
			}
			got := testenv.Sum(ours(p, recs))
			// Only A's egress carries the blast; ingress holds nothing of ours.
			compareTruth(t, "churn", got, truth)
			if drains.Load() < wantDrains {
				t.Errorf("only %d drains during the traffic after %v (a hang?); want %d", drains.Load(), testenv.Patience, wantDrains)
			}
			t.Logf("%d drains, %d records, %d flows", drains.Load()+1, len(recs), len(truth))
		})
	}
}

// TestMapFull sends many more flows than the flow map holds: every packet
// is in the map, in the ring buffer path, or in the ignored counters.
func TestMapFull(t *testing.T) {
	testenv.RequirePrivileged(t)
	for _, ring := range []uint32{1 << 20, uint32(os.Getpagesize())} {
		t.Run(fmt.Sprintf("ring=%d", ring), func(t *testing.T) {
			p := testenv.NewPair(t)
			if err := p.DisableIPv6(); err != nil {
				t.Fatal(err)
			}
			d, err := Load(Config{MapEntries: 16, RingBufferBytes: ring})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			attachIn(t, d, p, HookAuto)
			truth, err := p.UDPBlast(false, 10000, 2000, 8000, 100)
			if err != nil {
				t.Fatal(err)
			}
			recs, st, err := d.Drain(nil)
			if err != nil {
				t.Fatal(err)
			}
			var want testenv.Counts
			for _, c := range truth {
				want.Packets += c.Packets
				want.Octets += c.Octets
			}
			// IPv6 is off and neighbours are static: every IP packet on the
			// interface is the test's own, so the ignored counters are too.
			var got testenv.Counts
			for _, r := range recs {
				got.Packets += r.Packets
				got.Octets += r.Octets
			}
			if got.Packets+st.IgnoredPackets != want.Packets || got.Octets+st.IgnoredOctets != want.Octets {
				t.Fatalf("records %+v + ignored %d/%d != sent %+v", got, st.IgnoredPackets, st.IgnoredOctets, want)
			}
			if st.FallbackPackets == 0 {
				t.Errorf("no packet went through the ring buffer: stats %+v", st)
			}
			// Flows the full map refused stay in their cache slot; a slot
			// holds one flow per CPU. A flow in a slot and in the map (or
			// in the slots of several CPUs) comes as one record.
			slots := int(d.cache.MaxEntries()) * d.drain.cpus
			if st.MapEntries+st.Events+st.CacheEntries < len(recs) || st.MapEntries > 16 || st.CacheEntries > slots {
				t.Errorf("drain reported %d map entries + %d events + %d cache entries for %d records (map of 16, %d cache slots)",
					st.MapEntries, st.Events, st.CacheEntries, len(recs), slots)
			}
			if ring == uint32(os.Getpagesize()) && st.IgnoredPackets == 0 {
				t.Errorf("a one-page ring buffer took %d fallback packets without ignoring any", st.FallbackPackets)
			}
			if st.IgnoredPackets == 0 {
				// Nothing ignored: the records alone must equal the truth per flow.
				compareTruth(t, "map full", testenv.Sum(ours(p, recs)), truth)
			}
			t.Logf("stats %+v", st)
		})
	}
}

// mountBPFFS mounts a private bpffs for a test's pins.
func mountBPFFS(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		t.Fatalf("mount bpffs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// TestRestart stops the loader with pinning on and programs kept attached,
// sends traffic while no daemon runs, starts again: nothing is lost.
func TestRestart(t *testing.T) {
	testenv.RequirePrivileged(t)
	for _, hook := range testHooks() {
		t.Run(string(hook), func(t *testing.T) {
			p := testenv.NewPair(t)
			pin := filepath.Join(mountBPFFS(t), "kflow")
			d, err := Load(Config{PinDir: pin})
			if err != nil {
				t.Fatal(err)
			}
			if d.Adopted() {
				t.Fatal("fresh pin directory reported as adopted")
			}
			attachIn(t, d, p, hook)
			total := testenv.Truth{}
			var recs []flow.Record
			send := func(port uint16) {
				t.Helper()
				tr, err := p.UDPBlast(false, port, 4, 400, 80)
				if err != nil {
					t.Fatal(err)
				}
				for k, c := range tr {
					total[k] = c
				}
			}
			send(21000)
			recs, _, err = d.Drain(recs)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Release(); err != nil {
				t.Fatal(err)
			}

			// No daemon: the programs keep counting into the pinned maps.
			send(22000)

			d2, err := Load(Config{PinDir: pin})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				d2.Close()
				d2.Unpin()
			}()
			if !d2.Adopted() {
				t.Fatal("restart did not adopt the pinned maps")
			}
			atts := attachIn(t, d2, p, hook)
			for _, a := range atts {
				if !a.Adopted {
					t.Errorf("%v: not adopted", a)
				}
			}
			send(23000)
			recs, _, err = d2.Drain(recs)
			if err != nil {
				t.Fatal(err)
			}
			compareTruth(t, "restart", testenv.Sum(ours(p, recs)), total)

			// Only one program per hook and direction is attached.
			var n int
			_ = p.A.Do(func() error {
				n = countAttached(t, p.AIf)
				return nil
			})
			if n != 2 {
				t.Errorf("%d kflow programs attached after restart, want 2", n)
			}
		})
	}
}

func countAttached(t *testing.T, ifname string) int {
	t.Helper()
	l, err := netlinkLinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	progs, err := Attached(l)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range progs {
		if p.IsKflow() {
			n++
		}
	}
	return n
}
