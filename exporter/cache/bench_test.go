// SPDX-License-Identifier: Apache-2.0

package cache

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// deltaFor returns a delta of the i-th of many distinct flows, IPv4 for
// even i and IPv6 for odd i, seen at off from t0.
func deltaFor(i int, off time.Duration) flow.Record {
	r := flow.Record{
		SrcPort: uint16(i), DstPort: 443, Proto: flow.ProtoTCP, InIf: 2,
		Packets: 10, Octets: 12000, TCPFlags: flow.TCPAck, MinTTL: 63, MaxTTL: 64,
		Start: at(off), End: at(off + 100*time.Millisecond),
	}
	hi := byte(i >> 16)
	if i%2 == 0 {
		r.Src = netip.AddrFrom4([4]byte{198, 18, hi, byte(i >> 24)})
		r.Dst = netip.AddrFrom4([4]byte{198, 19, 0, 1})
	} else {
		r.Src = netip.AddrFrom16([16]byte{0: 0xfd, 13: byte(i >> 24), 14: hi, 15: 1})
		r.Dst = netip.AddrFrom16([16]byte{0: 0xfd, 15: 2})
	}
	return r
}

func deltas(n int, off time.Duration) []flow.Record {
	ds := make([]flow.Record, n)
	for i := range ds {
		ds[i] = deltaFor(i, off)
	}
	return ds
}

func discard(*flow.Record) {}

// BenchmarkMergeExisting merges deltas into flows already cached, in drain
// batches of 1024. One op is one delta.
func BenchmarkMergeExisting(b *testing.B) {
	for _, n := range []int{1 << 10, 100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			c := newCache(b, Config{MaxFlows: n})
			ds := deltas(n, 0)
			c.Merge(ds, discard)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += 1024 {
				lo := i % n
				hi := min(lo+1024, n, lo+b.N-i)
				c.Merge(ds[lo:hi], discard)
			}
		})
	}
}

// BenchmarkMergeNew merges deltas of flows not in the cache, which stays
// below MaxFlows (entries and index slots are reused after expiry). One op
// is one new flow.
func BenchmarkMergeNew(b *testing.B) {
	const n = 1 << 18
	c := newCache(b, Config{MaxFlows: n})
	ds := deltas(n, 0)
	round := time.Duration(0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 1024 {
		lo := i % n
		if lo == 0 && i > 0 {
			b.StopTimer()
			round += time.Hour
			c.Expire(at(round), discard) // all flows idle out
			for j := range ds {
				ds[j].Start, ds[j].End = at(round), at(round+time.Millisecond)
			}
			b.StartTimer()
		}
		hi := min(lo+1024, n, lo+b.N-i)
		c.Merge(ds[lo:hi], discard)
	}
}

// BenchmarkMergeNewFull merges new flows into a full cache: every delta
// forces the flow nearest to its deadline out. One op is one new flow.
func BenchmarkMergeNewFull(b *testing.B) {
	const n = 1 << 16
	c := newCache(b, Config{MaxFlows: n})
	ds := deltas(4*n, 0)
	for i := range ds {
		ds[i].Start = at(time.Duration(i) * time.Microsecond)
		ds[i].End = ds[i].Start
	}
	c.Merge(ds[:n], discard)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 1024 {
		lo := (n + i) % len(ds)
		hi := min(lo+1024, len(ds), lo+b.N-i)
		c.Merge(ds[lo:hi], discard)
	}
}

// BenchmarkExpire measures Expire exporting idle flows: one op is one
// flow found due, exported and removed, out of a cache of 1M flows whose
// deadlines spread over 16 s.
func BenchmarkExpire(b *testing.B) {
	const n = 1 << 20
	c := newCache(b, Config{MaxFlows: n})
	ds := deltas(n, 0)
	b.ReportAllocs()
	b.ResetTimer()
	done := 0
	for done < b.N {
		b.StopTimer()
		base := time.Duration(done/n) * time.Hour
		for i := range ds {
			off := base + time.Duration(i%16)*time.Second
			ds[i].Start, ds[i].End = at(off), at(off)
		}
		c.Merge(ds, discard)
		b.StartTimer()
		for s := time.Duration(0); s <= 32*time.Second; s += time.Second {
			c.Expire(at(base+s+15*time.Second), discard)
		}
		done += n
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(done), "ns/flow")
}

// BenchmarkExpireTick measures the steady state of 1M long flows, all seen
// in every drain: one op is 32 simulated seconds of merging 1M deltas and
// calling Expire once a second. Nothing expires; Expire only moves the flows
// whose stale bucket came due (each flow about once per idle timeout). The
// flows started over 16 s, as real ones do, so the moves spread out.
func BenchmarkExpireTick(b *testing.B) {
	const n = 1 << 20
	c := newCache(b, Config{MaxFlows: n, ActiveTimeout: time.Hour})
	ds := deltas(n, 0)
	for i := range ds {
		off := time.Duration(i%16) * time.Second
		ds[i].Start, ds[i].End = at(off), at(off)
	}
	c.Merge(ds, discard)
	var merge, expire, worst time.Duration
	ticks := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		for s := range 32 {
			now := time.Duration(i*32+s+17) * time.Second
			for j := range ds {
				ds[j].Start, ds[j].End = at(now-time.Second/2), at(now-time.Second/4)
			}
			t := time.Now()
			c.Merge(ds, discard)
			m := time.Now()
			c.Expire(at(now), discard)
			e := time.Now()
			merge += m.Sub(t)
			expire += e.Sub(m)
			worst = max(worst, e.Sub(m))
			ticks++
		}
	}
	b.ReportMetric(float64(merge.Nanoseconds())/float64(ticks)/n, "merge-ns/delta")
	b.ReportMetric(float64(expire.Microseconds())/float64(ticks), "expire-µs/tick")
	b.ReportMetric(float64(worst.Microseconds()), "worst-expire-µs")
	if c.Len() != n {
		b.Fatalf("%d flows, want %d", c.Len(), n)
	}
}

// BenchmarkScanAll is the alternative to the wheel: checking every entry's
// deadline once per tick. One op is one scan of 1M flows.
func BenchmarkScanAll(b *testing.B) {
	const n = 1 << 20
	c := newCache(b, Config{MaxFlows: n})
	c.Merge(deltas(n, 0), discard)
	if c.Len() != n {
		b.Fatalf("%d flows", c.Len())
	}
	now := at(time.Second).UnixNano()
	due := 0
	b.ResetTimer()
	for range b.N {
		for _, ch := range c.chunks {
			for k := range ch {
				if ch[k].due <= now && ch[k].c.packets != 0 {
					due++
				}
			}
		}
	}
	if due != 0 {
		b.Fatal("flows due")
	}
}

// heapPerFlow fills a cache with n flows and returns the live heap it holds
// per flow.
func heapPerFlow(n int) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c, err := New(Config{MaxFlows: n})
	if err != nil {
		panic(err)
	}
	batch := make([]flow.Record, 1024)
	for i := 0; i < n; i += len(batch) {
		m := min(len(batch), n-i)
		for j := range m {
			batch[j] = deltaFor(i+j, 0)
		}
		c.Merge(batch[:m], discard)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if c.Len() != n {
		panic("flows lost")
	}
	runtime.KeepAlive(c)
	runtime.KeepAlive(batch)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

func TestMemoryPerFlow(t *testing.T) {
	sizes := []int{100_000, 1_000_000}
	if testing.Short() {
		sizes = sizes[:1]
	}
	for _, n := range sizes {
		per := heapPerFlow(n)
		t.Logf("%d flows: %.1f heap bytes per flow", n, per)
		if per > 150 {
			t.Errorf("%d flows: %.1f heap bytes per flow, budget 150", n, per)
		}
	}
}

func BenchmarkMemory(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var per float64
			for range b.N {
				per = heapPerFlow(n)
			}
			b.ReportMetric(per, "B/flow")
		})
	}
}
