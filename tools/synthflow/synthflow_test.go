// SPDX-License-Identifier: Apache-2.0

package synthflow

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/netip"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// digest hashes the records' JSON encoding without its derived values:
// the JSON leaves out fields a record does not use, so a field added to
// flow.Record leaves the digest of records that do not set it as it was,
// and a change in how a rate is derived does not touch the records.
func digest(recs []flow.Record) string {
	h := fnv.New64a()
	enc := json.NewEncoder(h)
	for i := range recs {
		j := flow.NewJSON(&recs[i])
		j.DurationMs, j.ProtoName, j.PPS, j.BPS, j.BPP = 0, "", 0, 0, 0
		if err := enc.Encode(j); err != nil {
			panic(err)
		}
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// TestWorkloadsPinned pins each workload: benchmark figures are only
// comparable across commits while the records stay the same. A change
// here is a new workload; say so where figures are published.
func TestWorkloadsPinned(t *testing.T) {
	exp := netip.MustParseAddr("198.18.255.1")
	for _, tt := range []struct {
		name string
		recs []flow.Record
		want string
	}{
		{"mix", NewMix(Options{Seed: 1, Exporter: exp}).Records(5000), "7dcbad1f183d3c36"},
		{"mix-ns", NewMix(Options{Seed: 2, Exporter: exp, SubMs: true}).Records(5000), "c5caf727ccae8ff3"},
		{"mix-simple", NewMix(Options{Seed: 1, Simple: true}).Records(5000), "50baf74e16944b34"},
		{"distinct", Distinct(5000, time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)), "f73c4e587dc5e9e1"},
	} {
		if got := digest(tt.recs); got != tt.want {
			t.Errorf("%s: digest %s, want %s", tt.name, got, tt.want)
		}
	}
}

// TestMix checks what the flow-file tests rely on: determinism, end-time
// order, and the mix's shares.
func TestMix(t *testing.T) {
	a := NewMix(Options{Seed: 3}).Records(20000)
	b := NewMix(Options{Seed: 3}).Records(20000)
	if digest(a) != digest(b) {
		t.Fatal("same seed, different records")
	}
	var tcp, udp, v6 int
	for i := range a {
		r := &a[i]
		if i > 0 && r.End.Before(a[i-1].End) {
			t.Fatalf("record %d ends before record %d", i, i-1)
		}
		if r.End.Nanosecond()%1e6 != 0 || r.Start.After(r.End) || r.Packets == 0 {
			t.Fatalf("record %d: %+v", i, *r)
		}
		switch r.Proto {
		case flow.ProtoTCP:
			tcp++
		case flow.ProtoUDP:
			udp++
		}
		if r.Src.Is6() {
			v6++
		}
	}
	share := func(n int) float64 { return float64(n) / float64(len(a)) }
	if s := share(tcp); s < 0.57 || s > 0.63 {
		t.Errorf("TCP share %.3f, want about 0.60", s)
	}
	if s := share(udp); s < 0.32 || s > 0.38 {
		t.Errorf("UDP share %.3f, want about 0.35", s)
	}
	if s := share(v6); s < 0.08 || s > 0.12 {
		t.Errorf("IPv6 share %.3f, want about 0.10", s)
	}
}
