// SPDX-License-Identifier: Apache-2.0

package query

import (
	"net/netip"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// TestRollupMinutesInterleaved: records of two minutes arriving
// interleaved, one at a time as the collector feeds them, keep one entry
// per minute and value, and the payload is that of the same records fed
// in order.
func TestRollupMinutesInterleaved(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 30, 0, time.UTC)
	recs := make([]flow.Record, 10000)
	for i := range recs {
		recs[i] = flow.Record{Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.19.0.1"),
			Proto: flow.ProtoTCP, Packets: 1, Octets: 100, Start: t0.Add(time.Duration(i%2) * time.Minute)}
	}
	one := NewRollupBuilder()
	for i := range recs {
		one.Add(recs[i : i+1])
	}
	for d := range one.dims {
		for _, v := range one.dims[d].vals {
			if len(v.minutes) > 2 {
				t.Fatalf("dimension %v: %d minute entries for 2 minutes", rollupDims[d], len(v.minutes))
			}
		}
	}
	sorted := NewRollupBuilder()
	sorted.Add(evenOdd(recs))
	if a, b := one.Payload(), sorted.Payload(); string(a) != string(b) {
		t.Fatalf("payloads differ: %d and %d bytes", len(a), len(b))
	}
}

// evenOdd returns the even records, then the odd ones.
func evenOdd(recs []flow.Record) []flow.Record {
	var out []flow.Record
	for k := range 2 {
		for i := k; i < len(recs); i += 2 {
			out = append(out, recs[i])
		}
	}
	return out
}
