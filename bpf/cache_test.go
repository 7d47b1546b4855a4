// SPDX-License-Identifier: Apache-2.0

package bpf

import (
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// The per-CPU IPv4 flow cache: a flow's packets counted in its cache slot,
// moved into the IPv4 flow map when another flow takes the slot, kept in
// the slot when the map cannot take them. Whatever the path, the drained
// records add up to exactly what was run.

// cacheRounds runs rounds rounds of n distinct IPv4 flows (one packet of
// each flow per round, flow i of 20+8+i%50 octets) and returns the truth.
func cacheRounds(t *testing.T, d *Datapath, n, rounds int) testenv.Truth {
	t.Helper()
	frames, want := distinctFlows(t, n)
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
		t.Run(mode.name, func(t *testing.T) {
			d := loadTest(t, Config{MapEntries: 16, PerCPUValues: !mode.shared})
			f := frame(t, eth4(), ip4(layers.IPProtocolTCP, 64, 0), tcp(40000, 443, fACK), payload(100))
			g := frame(t, eth4(), ip4(layers.IPProtocolTCP, 60, 0), tcp(40000, 443, fPSH|fACK), payload(200))
			start := time.Now()
			runFrames(t, d.objs.KflowTcxIngress, nil, f, f, g)
			recs, st := drainTest(t, d)
			if st.CacheEntries != 1 || st.MapEntries != 0 || st.Events != 0 {
				t.Errorf("%d cache entries, %d map entries, %d events: want the flow in the cache only", st.CacheEntries, st.MapEntries, st.Events)
			}
			want := v4rec(6, 40000, 443, 3, 2*(20+20+100)+20+20+200, 64)
			want.MinTTL, want.TCPFlags = 60, fPSH|fACK
			checkRecords(t, recs, []flow.Record{want}, start, time.Now())
			// The drain cleared the retired cache: nothing twice.
			recs, st = drainTest(t, d)
			checkRecords(t, recs, nil, start, time.Now())
			if st.CacheEntries != 0 {
				t.Errorf("second drain: %d cache entries", st.CacheEntries)
			}
		})
	}
}

// TestCacheEviction: a two-slot cache and twelve flows in turn: flows
// keep taking each other's slots, their counters move into the IPv4 map,
// and the records (from both) add up exactly, drain after drain.
func TestCacheEviction(t *testing.T) {
	for _, mode := range valueModes {
		t.Run(mode.name, func(t *testing.T) {
			d := loadTest(t, Config{MapEntries: 64, CacheEntries: 2, PerCPUValues: !mode.shared})
			for drain := range 3 {
				truth := cacheRounds(t, d, 12, 3)
				recs, st := drainTest(t, d)
				compareTruth(t, "eviction", testenv.Sum(recs), truth)
				if st.CacheEntries == 0 || st.MapEntries == 0 || st.Events != 0 {
					t.Errorf("drain %d: %d cache entries, %d map entries, %d events: want both the cache and the map used, no event",
						drain, st.CacheEntries, st.MapEntries, st.Events)
				}
				checkStats(t, st, Stats{})
			}
		})
	}
}

// TestCacheMapFull: a two-slot cache in front of a four-entry map: flows
// the map cannot take stay in their slot or go to the ring buffer, and
// still every packet is in exactly one record.
func TestCacheMapFull(t *testing.T) {
	for _, mode := range valueModes {
		t.Run(mode.name, func(t *testing.T) {
			d := loadTest(t, Config{MapEntries: 4, CacheEntries: 2, PerCPUValues: !mode.shared})
			truth := cacheRounds(t, d, 20, 2)
			recs, st := drainTest(t, d)
			compareTruth(t, "map full", testenv.Sum(recs), truth)
			if st.FallbackPackets == 0 || st.IgnoredPackets != 0 || st.MapEntries > 4 {
				t.Errorf("stats %+v: want fallback packets, none ignored, at most 4 map entries", st)
			}
			t.Logf("%d records, stats %+v", len(recs), st)
		})
	}
}

// TestNoCache: with the cache off, IPv4 flows go to the IPv4 map.
func TestNoCache(t *testing.T) {
	d := loadTest(t, Config{MapEntries: 16, NoCache: true})
	truth := cacheRounds(t, d, 3, 2)
	recs, st := drainTest(t, d)
	compareTruth(t, "no cache", testenv.Sum(recs), truth)
	if st.CacheEntries != 0 || st.MapEntries != 3 {
		t.Errorf("%d cache entries, %d map entries: want the 3 flows in the map", st.CacheEntries, st.MapEntries)
	}
}
