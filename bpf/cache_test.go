// SPDX-License-Identifier: Apache-2.0

package bpf

import (
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// The per-CPU flow caches: a flow's packets counted in its cache slot,
// moved into the flow map when another flow takes the slot, kept in the
// slot when the map cannot take them. Whatever the path, the drained
// records add up to exactly what was run. Every test runs with IPv4 flows
// (IPv4 cache and maps) and IPv6 flows (IPv6 cache, general maps).

var families = []struct {
	name string
	v6   bool
}{{"ipv4", false}, {"ipv6", true}}

// distinctFlows6 is distinctFlows with IPv6 flows from v6A to v6B.
func distinctFlows6(tb testing.TB, n int) (frames [][]byte, want []flow.Record) {
	for i := range n {
		size := i % 50
		frames = append(frames, frame(tb, eth6(), ip6(17, 64, 0), udp(uint16(10000+i), 53), payload(size)))
		want = append(want, v6rec(17, uint16(10000+i), 53, 1, uint64(40+8+size), 64))
	}
	return frames, want
}

// cacheRounds runs rounds rounds of n distinct flows (one packet of each
// flow per round, flow i of 20+8+i%50 octets, 40+ for IPv6) and returns
// the truth.
func cacheRounds(t *testing.T, d *Datapath, v6 bool, n, rounds int) testenv.Truth {
	t.Helper()
	frames, want := distinctFlows(t, n)
	if v6 {
		frames, want = distinctFlows6(t, n)
	}
	truth := testenv.Truth{}
	for range rounds {
		runFrames(t, d.objs.KflowTcxIngress, nil, frames...)
		for i := range want {
			truth.Add(testenv.KeyOf(&want[i]), want[i].Octets, 0)
		}
	}
	return truth
}

// TestCacheHit: the packets of one flow stay in its cache slot: one
// record from the cache, nothing in the flow maps.
func TestCacheHit(t *testing.T) {
	for _, mode := range valueModes {
		for _, fam := range families {
			t.Run(mode.name+"/"+fam.name, func(t *testing.T) {
				cacheHit(t, mode.shared, fam.v6)
			})
		}
	}
}

func cacheHit(t *testing.T, shared, v6 bool) {
	d := loadTest(t, Config{MapEntries: 16, PerCPUValues: !shared})
	f := frame(t, eth4(), ip4(layers.IPProtocolTCP, 64, 0), tcp(40000, 443, fACK), payload(100))
	g := frame(t, eth4(), ip4(layers.IPProtocolTCP, 60, 0), tcp(40000, 443, fPSH|fACK), payload(200))
	want := v4rec(6, 40000, 443, 3, 2*(20+20+100)+20+20+200, 64)
	if v6 {
		f = frame(t, eth6(), ip6(6, 64, 0), tcp(40000, 443, fACK), payload(100))
		g = frame(t, eth6(), ip6(6, 60, 0), tcp(40000, 443, fPSH|fACK), payload(200))
		want = v6rec(6, 40000, 443, 3, 2*(40+20+100)+40+20+200, 64)
	}
	start := time.Now()
	runFrames(t, d.objs.KflowTcxIngress, nil, f, f, g)
	recs, st := drainTest(t, d)
	if st.CacheEntries != 1 || st.MapEntries != 0 || st.Events != 0 {
		t.Errorf("%d cache entries, %d map entries, %d events: want the flow in the cache only", st.CacheEntries, st.MapEntries, st.Events)
	}
	want.MinTTL, want.TCPFlags = 60, fPSH|fACK
	checkRecords(t, recs, []flow.Record{want}, start, time.Now())
	// The drain cleared the retired cache: nothing twice.
	recs, st = drainTest(t, d)
	checkRecords(t, recs, nil, start, time.Now())
	if st.CacheEntries != 0 {
		t.Errorf("second drain: %d cache entries", st.CacheEntries)
	}
}

// TestCacheEviction: a two-slot cache and twelve flows in turn: flows
// keep taking each other's slots, their counters move into the IPv4 map,
// and the records (from both) add up exactly, drain after drain.
func TestCacheEviction(t *testing.T) {
	for _, mode := range valueModes {
		for _, fam := range families {
			t.Run(mode.name+"/"+fam.name, func(t *testing.T) {
				cacheEviction(t, mode.shared, fam.v6)
			})
		}
	}
}

func cacheEviction(t *testing.T, shared, v6 bool) {
	d := loadTest(t, Config{MapEntries: 64, CacheEntries: 2, PerCPUValues: !shared})
	for drain := range 3 {
		truth := cacheRounds(t, d, v6, 12, 3)
		recs, st := drainTest(t, d)
		compareTruth(t, "eviction", testenv.Sum(recs), truth)
		if st.CacheEntries == 0 || st.MapEntries == 0 || st.Events != 0 {
			t.Errorf("drain %d: %d cache entries, %d map entries, %d events: want both the cache and the map used, no event",
				drain, st.CacheEntries, st.MapEntries, st.Events)
		}
		checkStats(t, st, Stats{})
	}
}

// TestCacheMapFull: a two-slot cache in front of a four-entry map: flows
// the map cannot take stay in their slot or go to the ring buffer, and
// still every packet is in exactly one record.
func TestCacheMapFull(t *testing.T) {
	for _, mode := range valueModes {
		for _, fam := range families {
			t.Run(mode.name+"/"+fam.name, func(t *testing.T) {
				cacheMapFull(t, mode.shared, fam.v6)
			})
		}
	}
}

func cacheMapFull(t *testing.T, shared, v6 bool) {
	d := loadTest(t, Config{MapEntries: 4, CacheEntries: 2, PerCPUValues: !shared})
	truth := cacheRounds(t, d, v6, 20, 2)
	recs, st := drainTest(t, d)
	compareTruth(t, "map full", testenv.Sum(recs), truth)
	if st.FallbackPackets == 0 || st.IgnoredPackets != 0 || st.MapEntries > 4 {
		t.Errorf("stats %+v: want fallback packets, none ignored, at most 4 map entries", st)
	}
	t.Logf("%d records, stats %+v", len(recs), st)
}

// TestNoCache: with the caches off, flows go to the flow maps.
func TestNoCache(t *testing.T) {
	d := loadTest(t, Config{MapEntries: 16, NoCache: true})
	truth := cacheRounds(t, d, false, 3, 2)
	for k, c := range cacheRounds(t, d, true, 3, 2) {
		truth[k] = c
	}
	recs, st := drainTest(t, d)
	compareTruth(t, "no cache", testenv.Sum(recs), truth)
	if st.CacheEntries != 0 || st.MapEntries != 6 {
		t.Errorf("%d cache entries, %d map entries: want the 6 flows in the maps", st.CacheEntries, st.MapEntries)
	}
}

// TestCacheMerge: a one-slot cache, two flows taking it in turn: a flow's
// packets end up partly in the map (moved out of the slot) and partly in
// the slot, and the drain hands them out as one record per flow, with the
// first packet's TOS and every packet's flags.
func TestCacheMerge(t *testing.T) {
	for _, mode := range valueModes {
		for _, fam := range families {
			t.Run(mode.name+"/"+fam.name, func(t *testing.T) {
				d := loadTest(t, Config{MapEntries: 16, CacheEntries: 1, PerCPUValues: !mode.shared})
				syn := frame(t, eth4(), ip4(layers.IPProtocolTCP, 64, 0x10), tcp(40000, 443, fSYN), payload(0))
				ack := frame(t, eth4(), ip4(layers.IPProtocolTCP, 62, 0), tcp(40000, 443, fACK), payload(100))
				other := frame(t, eth4(), ip4(layers.IPProtocolUDP, 64, 0), udp(5000, 53), payload(10))
				a := v4rec(6, 40000, 443, 3, 20+20+2*(20+20+100), 62)
				b := v4rec(17, 5000, 53, 1, 20+8+10, 64)
				if fam.v6 {
					syn = frame(t, eth6(), ip6(6, 64, 0x10), tcp(40000, 443, fSYN), payload(0))
					ack = frame(t, eth6(), ip6(6, 62, 0), tcp(40000, 443, fACK), payload(100))
					other = frame(t, eth6(), ip6(17, 64, 0), udp(5000, 53), payload(10))
					a = v6rec(6, 40000, 443, 3, 40+20+2*(40+20+100), 62)
					b = v6rec(17, 5000, 53, 1, 40+8+10, 64)
				}
				a.MaxTTL, a.TOS, a.TCPFlags = 64, 0x10, fSYN|fACK
				start := time.Now()
				// syn and ack go to the map when other takes the slot; the
				// last ack takes it back, moving other to the map.
				runFrames(t, d.objs.KflowTcxIngress, nil, syn, ack, other, ack)
				recs, st := drainTest(t, d)
				checkRecords(t, recs, []flow.Record{a, b}, start, time.Now())
				if st.MapEntries != 2 || st.CacheEntries != 1 {
					t.Errorf("%d map entries, %d cache entries: want both flows in the map and one in the slot", st.MapEntries, st.CacheEntries)
				}
			})
		}
	}
}

// TestDrainCounted: DrainCounted notes every packet and octet it takes out
// of the kernel before the flow that holds them reaches emit (a process
// killed in the middle of a drain has them counted), and the notes add up
// to what emit got, through the caches, the flow maps and the ring buffer.
func TestDrainCounted(t *testing.T) {
	for _, mode := range valueModes {
		for _, fam := range families {
			t.Run(mode.name+"/"+fam.name, func(t *testing.T) {
				d := loadTest(t, Config{MapEntries: 4, CacheEntries: 2, PerCPUValues: !mode.shared})
				truth := cacheRounds(t, d, fam.v6, 20, 2)
				var noted, emitted struct{ packets, octets uint64 }
				var recs []flow.Record
				st, err := d.DrainCounted(func(r *flow.Record) {
					emitted.packets += r.Packets
					emitted.octets += r.Octets
					if emitted.packets > noted.packets || emitted.octets > noted.octets {
						t.Errorf("emitted %+v before it was noted (%+v)", emitted, noted)
					}
					recs = append(recs, *r)
				}, func(packets, octets uint64) {
					noted.packets += packets
					noted.octets += octets
				})
				if err != nil {
					t.Fatal(err)
				}
				compareTruth(t, "counted", testenv.Sum(recs), truth)
				if noted != emitted {
					t.Errorf("noted %+v, emitted %+v", noted, emitted)
				}
				if st.CacheEntries == 0 || st.MapEntries == 0 || st.Events == 0 {
					t.Errorf("stats %+v: want the caches, the maps and the ring buffer used", st)
				}
			})
		}
	}
}
