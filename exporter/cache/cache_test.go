// SPDX-License-Identifier: Apache-2.0

package cache

import (
	"errors"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/kflow-dev/kflow/exporter/flow"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// tcp returns a TCP delta of the test flow 198.18.0.1:40000 -> 198.18.0.2:443
// with packets seen from first to last (offsets from t0).
func tcp(first, last time.Duration, packets uint64, flags uint16) flow.Record {
	return flow.Record{
		Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.0.2"),
		SrcPort: 40000, DstPort: 443, Proto: flow.ProtoTCP, InIf: 3,
		Packets: packets, Octets: 100 * packets,
		Start: at(first), End: at(last), TCPFlags: flags,
		TOS: 0, MinTTL: 64, MaxTTL: 64,
	}
}

// sink collects copies of emitted records.
type sink []flow.Record

func (s *sink) emit(r *flow.Record) { *s = append(*s, *r) }

func newCache(t testing.TB, cfg Config) *Cache {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("new cache: %v", err)
	}
	return c
}

// step merges deltas (if any) and then expires at now.
type step struct {
	now    time.Duration
	deltas []flow.Record
}

// want is the part of an exported record a test checks.
type want struct {
	reason     flow.EndReason
	packets    uint64
	start, end time.Duration
	flags      uint16
}

func TestExpiry(t *testing.T) {
	s := time.Second
	ms := time.Millisecond
	var longFlow []step
	for i := range 150 {
		d := time.Duration(i) * s
		longFlow = append(longFlow, step{now: d + 900*ms, deltas: []flow.Record{tcp(d, d+500*ms, uint64(i+1), flow.TCPAck)}})
	}
	longFlow = append(longFlow, step{now: 200 * s})

	tests := []struct {
		name  string
		cfg   Config
		steps []step
		want  []want
	}{
		{
			name: "idle timeout after last packet",
			steps: []step{
				{now: 1 * s, deltas: []flow.Record{tcp(0, 500*ms, 3, flow.TCPSyn)}},
				{now: 2 * s, deltas: []flow.Record{tcp(1100*ms, 1500*ms, 2, flow.TCPAck)}},
				{now: 16499 * ms},
				{now: 16500 * ms},
			},
			want: []want{{flow.EndIdle, 5, 0, 1500 * ms, flow.TCPSyn | flow.TCPAck}},
		},
		{
			name:  "active timeout splits a long flow and keeps it",
			steps: longFlow,
			want: []want{
				// Records at start+60 s; the next one starts at the next packet.
				{flow.EndActive, sum(1, 60), 0, 59*s + 500*ms, flow.TCPAck},
				{flow.EndActive, sum(61, 120), 60 * s, 119*s + 500*ms, flow.TCPAck},
				{flow.EndIdle, sum(121, 150), 120 * s, 149*s + 500*ms, flow.TCPAck},
			},
		},
		{
			name: "fin ends the flow after the grace, with the last acks",
			steps: []step{
				{now: 1 * s, deltas: []flow.Record{tcp(0, 800*ms, 10, flow.TCPSyn|flow.TCPAck)}},
				{now: 2 * s, deltas: []flow.Record{tcp(1100*ms, 1200*ms, 2, flow.TCPFin|flow.TCPAck)}},
				{now: 3 * s, deltas: []flow.Record{tcp(2100*ms, 2100*ms, 1, flow.TCPAck)}},
				{now: 3199 * ms},
				{now: 3200 * ms},
				// A packet after the export starts a new flow.
				{now: 4 * s, deltas: []flow.Record{tcp(3500*ms, 3500*ms, 1, flow.TCPAck)}},
				{now: 30 * s},
			},
			want: []want{
				{flow.EndOfFlow, 13, 0, 2100 * ms, flow.TCPSyn | flow.TCPAck | flow.TCPFin},
				{flow.EndIdle, 1, 3500 * ms, 3500 * ms, flow.TCPAck},
			},
		},
		{
			name: "rst ends the flow after the grace",
			cfg:  Config{EndGrace: 500 * ms},
			steps: []step{
				{now: 1 * s, deltas: []flow.Record{tcp(0, 800*ms, 4, flow.TCPSyn)}},
				{now: 2 * s, deltas: []flow.Record{tcp(1100*ms, 1200*ms, 1, flow.TCPRst)}},
				{now: 3 * s},
			},
			want: []want{{flow.EndOfFlow, 5, 0, 1200 * ms, flow.TCPSyn | flow.TCPRst}},
		},
		{
			name: "fin overrides a nearer active timeout",
			cfg:  Config{ActiveTimeout: 2 * s},
			steps: []step{
				{now: 1 * s, deltas: []flow.Record{tcp(0, 900*ms, 4, flow.TCPFin)}},
				{now: 2 * s, deltas: []flow.Record{tcp(1900*ms, 1900*ms, 1, flow.TCPAck)}},
				{now: 5 * s},
			},
			want: []want{{flow.EndOfFlow, 5, 0, 1900 * ms, flow.TCPFin | flow.TCPAck}},
		},
		{
			name: "fin flag on udp is not an end of flow",
			steps: []step{
				{now: 1 * s, deltas: []flow.Record{func() flow.Record {
					r := tcp(0, 0, 1, flow.TCPFin)
					r.Proto = flow.ProtoUDP
					return r
				}()}},
				{now: 10 * s},
				{now: 20 * s},
			},
			want: []want{{flow.EndIdle, 1, 0, 0, flow.TCPFin}},
		},
		{
			name: "merge after the idle deadline starts a new flow without expire",
			steps: []step{
				{now: 0, deltas: []flow.Record{tcp(0, 0, 1, 0)}},
				// No Expire reached the deadline; the merge exports it.
				{now: 0, deltas: []flow.Record{tcp(15*s, 15*s, 2, 0)}},
				{now: 15 * s},
			},
			want: []want{
				{flow.EndIdle, 1, 0, 0, 0},
			},
		},
		{
			name: "merge after the grace starts a new flow without expire",
			steps: []step{
				{now: 0, deltas: []flow.Record{tcp(0, 0, 1, flow.TCPRst)}},
				{now: 0, deltas: []flow.Record{tcp(2*s, 2*s, 7, 0)}},
				{now: 17 * s},
			},
			want: []want{
				{flow.EndOfFlow, 1, 0, 0, flow.TCPRst},
				{flow.EndIdle, 7, 2 * s, 2 * s, 0},
			},
		},
		{
			name: "merge after the active deadline continues the flow without expire",
			cfg:  Config{ActiveTimeout: 10 * s},
			steps: []step{
				{now: 0, deltas: []flow.Record{tcp(0, 9*s, 1, 0)}},
				{now: 0, deltas: []flow.Record{tcp(10*s, 11*s, 2, 0)}},
				{now: 26 * s},
			},
			want: []want{
				{flow.EndActive, 1, 0, 9 * s, 0},
				{flow.EndActive, 2, 10 * s, 11 * s, 0}, // due at 20 s, before idle at 26 s
			},
		},
		{
			name: "active report then silence removes the flow without an empty record",
			cfg:  Config{ActiveTimeout: 10 * s},
			steps: []step{
				{now: 1 * s, deltas: []flow.Record{tcp(0, 1*s, 1, 0)}},
				{now: 5 * s, deltas: []flow.Record{tcp(5*s, 5*s, 1, 0)}},
				{now: 10 * s},
				{now: 60 * s},
			},
			want: []want{{flow.EndActive, 2, 0, 5 * s, 0}},
		},
		{
			name: "expire not called for longer than the wheel",
			cfg:  Config{IdleTimeout: 10 * time.Minute, ActiveTimeout: time.Hour},
			steps: []step{
				{now: 0, deltas: []flow.Record{tcp(0, 0, 1, 0)}},
				{now: 10*time.Minute - 1},
				{now: 10 * time.Minute},
				{now: 0, deltas: []flow.Record{tcp(11*time.Minute, 11*time.Minute, 1, 0)}},
				{now: 3 * time.Hour},
			},
			want: []want{
				{flow.EndIdle, 1, 0, 0, 0},
				{flow.EndIdle, 1, 11 * time.Minute, 11 * time.Minute, 0},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCache(t, tt.cfg)
			var got sink
			var in uint64
			for _, st := range tt.steps {
				for _, d := range st.deltas {
					in += d.Packets
				}
				c.Merge(st.deltas, got.emit)
				if st.now != 0 {
					c.Expire(at(st.now), got.emit)
				}
			}
			c.Flush(got.emit)
			var out uint64
			for _, r := range got {
				out += r.Packets
			}
			if in != out {
				t.Errorf("packets in %d, out %d", in, out)
			}
			// The Flush records are checked by the conservation above only.
			for len(got) > 0 && got[len(got)-1].EndReason == flow.EndForced {
				got = got[:len(got)-1]
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d records, want %d:\n%v", len(got), len(tt.want), got)
			}
			for i, w := range tt.want {
				r := got[i]
				g := want{r.EndReason, r.Packets, r.Start.Sub(t0), r.End.Sub(t0), r.TCPFlags}
				if g != w {
					t.Errorf("record %d: got %+v, want %+v", i, g, w)
				}
				if r.Octets != 100*r.Packets {
					t.Errorf("record %d: %d octets for %d packets", i, r.Octets, r.Packets)
				}
			}
		})
	}
}

func sum(a, b uint64) uint64 { return (a + b) * (b - a + 1) / 2 }

func TestActiveDeltasSumExactly(t *testing.T) {
	c := newCache(t, Config{ActiveTimeout: 7 * time.Second, IdleTimeout: 3 * time.Second})
	var got sink
	var in, inOct uint64
	for i := range 1000 {
		d := time.Duration(i) * 250 * time.Millisecond
		r := tcp(d, d+100*time.Millisecond, uint64(i%13+1), flow.TCPAck)
		r.Octets = uint64(i*i%1500 + 40)
		in += r.Packets
		inOct += r.Octets
		c.Merge([]flow.Record{r}, got.emit)
		if i%4 == 3 {
			c.Expire(at(d+200*time.Millisecond), got.emit)
		}
	}
	c.Expire(at(time.Hour), got.emit)
	var out, outOct uint64
	for i, r := range got {
		out += r.Packets
		outOct += r.Octets
		if r.EndReason != flow.EndActive && i != len(got)-1 {
			t.Errorf("record %d: reason %v, want active", i, r.EndReason)
		}
		if i > 0 && !r.Start.After(got[i-1].End) {
			t.Errorf("record %d starts at %v, not after the previous end %v", i, r.Start, got[i-1].End)
		}
		if dur := r.End.Sub(r.Start); dur >= 7*time.Second {
			t.Errorf("record %d lasts %v, past the active timeout", i, dur)
		}
	}
	if len(got) < 30 {
		t.Errorf("got %d records, want a report every 7 s of a 250 s flow", len(got))
	}
	if in != out || inOct != outOct {
		t.Errorf("in %d packets %d octets, out %d packets %d octets", in, inOct, out, outOct)
	}
	if c.Len() != 0 {
		t.Errorf("%d flows left", c.Len())
	}
}

func TestMergeFields(t *testing.T) {
	c := newCache(t, Config{})
	a := tcp(2*time.Second, 3*time.Second, 1, flow.TCPSyn)
	a.TOS, a.MinTTL, a.MaxTTL = 0x28, 60, 61
	b := tcp(1*time.Second, 4*time.Second, 2, flow.TCPAck|flow.TCPPsh)
	b.TOS, b.MinTTL, b.MaxTTL = 0x00, 63, 64
	d := tcp(5*time.Second, 5*time.Second, 3, flow.TCPEce|flow.TCPNs)
	d.TOS, d.MinTTL, d.MaxTTL = 0x29, 50, 55
	var got sink
	c.Merge([]flow.Record{a, b}, got.emit)
	c.Merge([]flow.Record{d}, got.emit)
	c.Flush(got.emit)
	if len(got) != 1 {
		t.Fatalf("got %d records, want 1", len(got))
	}
	r := got[0]
	want := a
	want.Packets, want.Octets = 6, 600
	want.Start, want.End = at(1*time.Second), at(5*time.Second)
	want.TCPFlags = flow.TCPSyn | flow.TCPAck | flow.TCPPsh | flow.TCPEce | flow.TCPNs
	want.TOS, want.MinTTL, want.MaxTTL = 0x28, 50, 64 // TOS of the first delta
	want.EndReason = flow.EndForced
	if r != want {
		t.Errorf("got  %+v\nwant %+v", r, want)
	}
}

func TestKeysKeptApart(t *testing.T) {
	base := tcp(0, 0, 1, 0)
	variants := []func(*flow.Record){
		func(*flow.Record) {},
		func(r *flow.Record) { r.Src = netip.MustParseAddr("::ffff:198.18.0.1") }, // 4-in-6 is not IPv4
		func(r *flow.Record) {
			r.Src, r.Dst = netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
		},
		func(r *flow.Record) {
			r.Src, r.Dst = netip.MustParseAddr("fd00::2"), netip.MustParseAddr("fd00::1")
		},
		func(r *flow.Record) { r.Src, r.Dst = r.Dst, r.Src },
		func(r *flow.Record) { r.SrcPort++ },
		func(r *flow.Record) { r.DstPort++ },
		func(r *flow.Record) { r.Proto = flow.ProtoUDP },
		func(r *flow.Record) { r.Proto, r.SrcPort, r.DstPort, r.ICMPType = flow.ProtoICMP, 0, 0, 8 },
		func(r *flow.Record) { r.Proto, r.SrcPort, r.DstPort, r.ICMPType = flow.ProtoICMP, 0, 0, 0 },
		func(r *flow.Record) {
			r.Proto, r.SrcPort, r.DstPort, r.ICMPType, r.ICMPCode = flow.ProtoICMP, 0, 0, 3, 1
		},
		func(r *flow.Record) { r.VLAN = 10 },
		func(r *flow.Record) { r.VLAN, r.InnerVLAN = 10, 20 },
		func(r *flow.Record) { r.InIf = 4 },
		func(r *flow.Record) { r.OutIf = 4 },
		func(r *flow.Record) { r.Direction = flow.Egress },
		func(r *flow.Record) { r.Src, r.Dst = netip.Addr{}, netip.Addr{} },
	}
	c := newCache(t, Config{})
	var in []flow.Record
	for _, v := range variants {
		r := base
		v(&r)
		in = append(in, r)
	}
	c.Merge(in, nil) // nothing is forced out
	c.Merge(in, nil) // every delta finds its own flow again
	if c.Len() != len(variants) {
		t.Fatalf("%d flows, want %d", c.Len(), len(variants))
	}
	got := map[flow.Record]int{}
	c.Flush(func(r *flow.Record) {
		k := *r
		if k.Packets != 2 {
			t.Errorf("%v: %d packets, want 2", k, k.Packets)
		}
		k.Packets, k.Octets, k.EndReason = 1, 100, 0
		got[k]++
	})
	for i, r := range in {
		if got[r] != 1 {
			t.Errorf("variant %d %v exported %d times", i, r, got[r])
		}
	}
}

func TestCacheFull(t *testing.T) {
	c := newCache(t, Config{MaxFlows: 100})
	var got sink
	var in, inOct uint64
	for i := range 1000 {
		r := tcp(time.Duration(i)*time.Millisecond, time.Duration(i)*time.Millisecond, uint64(i%5+1), 0)
		r.SrcPort = uint16(i % 300) // flows come back after being forced out
		r.Octets = uint64(i)
		in += r.Packets
		inOct += r.Octets
		c.Merge([]flow.Record{r}, got.emit)
		if c.Len() > 100 {
			t.Fatalf("%d flows in a cache of 100", c.Len())
		}
	}
	st := c.Stats()
	if forced := st.Records[flow.EndLackOfResources]; forced != 900 {
		t.Errorf("%d flows forced out, want 900", forced)
	}
	// The oldest flow goes first.
	for i, r := range got[:10] {
		if r.SrcPort != uint16(i) || r.EndReason != flow.EndLackOfResources {
			t.Errorf("forced out #%d: port %d reason %v, want port %d", i, r.SrcPort, r.EndReason, i)
		}
	}
	c.Flush(got.emit)
	var out, outOct uint64
	for _, r := range got {
		out += r.Packets
		outOct += r.Octets
	}
	if in != out || inOct != outOct {
		t.Errorf("in %d/%d, out %d/%d packets/octets", in, inOct, out, outOct)
	}
	st = c.Stats()
	if st.MergedPackets != st.ExportedPackets || st.MergedOctets != st.ExportedOctets {
		t.Errorf("stats do not balance: %+v", st)
	}
}

func TestFlush(t *testing.T) {
	c := newCache(t, Config{})
	var in []flow.Record
	for i := range 5000 {
		r := tcp(0, time.Second, 1, 0)
		r.SrcPort = uint16(i)
		if i%2 == 1 {
			r.Src, r.Dst = netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
		}
		in = append(in, r)
	}
	c.Merge(in, nil)
	c.Expire(at(2*time.Second), nil) // nothing due
	var got sink
	c.Flush(got.emit)
	if len(got) != len(in) {
		t.Fatalf("flushed %d records, want %d", len(got), len(in))
	}
	seen := map[flow.Record]bool{}
	for _, r := range got {
		if r.EndReason != flow.EndForced {
			t.Errorf("reason %v, want forced", r.EndReason)
		}
		r.EndReason = 0
		seen[r] = true
	}
	for _, r := range in {
		if !seen[r] {
			t.Errorf("%v not flushed", r)
		}
	}
	st := c.Stats()
	if c.Len() != 0 || st.Flows != 0 || st.Records[flow.EndForced] != 5000 || st.Created != 5000 {
		t.Errorf("after flush: len %d, stats %+v", c.Len(), st)
	}
	// The cache works after a flush.
	c.Merge(in[:1], nil)
	if c.Len() != 1 {
		t.Errorf("len %d after a merge following flush", c.Len())
	}
}

func TestSkipsEmptyDeltasAndFillsTimes(t *testing.T) {
	c := newCache(t, Config{})
	c.Expire(at(time.Minute), nil)
	empty := tcp(0, 0, 0, flow.TCPSyn)
	empty.Octets = 0
	noTimes := tcp(0, 0, 2, 0)
	noTimes.Start, noTimes.End = time.Time{}, time.Time{}
	onlyEnd := tcp(0, 0, 1, 0)
	onlyEnd.SrcPort, onlyEnd.Start = 1, time.Time{}
	reversed := tcp(5*time.Second, 4*time.Second, 1, 0)
	reversed.SrcPort = 2
	var got sink
	c.Merge([]flow.Record{empty, noTimes, onlyEnd, reversed}, got.emit)
	c.Flush(got.emit)
	if len(got) != 3 {
		t.Fatalf("got %d records, want 3: %v", len(got), got)
	}
	for _, r := range got {
		var ws, we time.Time
		switch r.SrcPort {
		case 40000:
			ws, we = at(time.Minute), at(time.Minute)
		case 1:
			ws, we = at(0), at(0)
		case 2:
			ws, we = at(4*time.Second), at(5*time.Second)
		}
		if !r.Start.Equal(ws) || !r.End.Equal(we) {
			t.Errorf("port %d: %v..%v, want %v..%v", r.SrcPort, r.Start, r.End, ws, we)
		}
	}
}

func TestStats(t *testing.T) {
	c := newCache(t, Config{MaxFlows: 2, ActiveTimeout: 20 * time.Second})
	var got sink
	port := func(r flow.Record, p uint16) flow.Record { r.SrcPort = p; return r }
	s := time.Second
	c.Merge([]flow.Record{port(tcp(0, 0, 1, 0), 0), port(tcp(0, 0, 1, 0), 1)}, got.emit)
	c.Merge([]flow.Record{port(tcp(10*s, 10*s, 1, 0), 0)}, got.emit)
	c.Expire(at(15*s), got.emit) // port 1: idle
	c.Expire(at(20*s), got.emit) // port 0: active report, stays cached empty
	// Port 1 is new again; port 2 fills the cache and forces out port 0,
	// which has nothing left to export.
	c.Merge([]flow.Record{port(tcp(21*s, 21*s, 1, 0), 1), port(tcp(21*s, 21*s, 1, 0), 2)}, got.emit)
	c.Merge([]flow.Record{port(tcp(22*s, 22*s, 1, flow.TCPFin), 2)}, got.emit)
	c.Expire(at(25*s), got.emit) // port 2: end of flow
	st := c.Stats()
	want := Stats{
		Flows: 1, Created: 4, Deltas: 6,
		Emptied:       1,
		MergedPackets: 6, MergedOctets: 600,
		ExportedPackets: 5, ExportedOctets: 500,
	}
	want.Records[flow.EndActive] = 1
	want.Records[flow.EndIdle] = 1
	want.Records[flow.EndOfFlow] = 1
	if st != want {
		t.Errorf("got  %+v\nwant %+v", st, want)
	}
}

func TestNewConfig(t *testing.T) {
	for _, cfg := range []Config{
		{IdleTimeout: -1},
		{ActiveTimeout: -time.Second},
		{EndGrace: -1},
		{IdleTimeout: time.Second, EndGrace: 2 * time.Second},
		{MaxFlows: -1},
		{MaxFlows: 1 << 31},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v): error %v, want ErrConfig", cfg, err)
		}
	}
	c := newCache(t, Config{IdleTimeout: time.Second})
	if c.idle != int64(time.Second) || c.grace != int64(time.Second) ||
		c.active != int64(DefaultActiveTimeout) || c.maxFlows != DefaultMaxFlows {
		t.Errorf("defaults: idle %d grace %d active %d max %d", c.idle, c.grace, c.active, c.maxFlows)
	}
}

func TestEntrySize(t *testing.T) {
	if got := unsafe.Sizeof(entry{}); got != EntryBytes {
		t.Errorf("entry is %d bytes, EntryBytes says %d", got, EntryBytes)
	}
}

func TestEach(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	var in []flow.Record
	for i := 0; i < 50; i++ {
		r := flow.Record{Src: netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}), Dst: netip.MustParseAddr("198.18.1.1"),
			Proto: flow.ProtoUDP, SrcPort: uint16(1000 + i), DstPort: 53, Packets: uint64(i + 1), Octets: uint64(100 * (i + 1)),
			Start: time.Unix(1000, 0), End: time.Unix(1001, 0)}
		in = append(in, r)
	}
	c.Merge(in, func(*flow.Record) { t.Fatal("nothing should expire") })
	seen := map[uint16]uint64{}
	c.Each(func(r *flow.Record) { seen[r.SrcPort] += r.Packets })
	if len(seen) != 50 {
		t.Fatalf("Each saw %d flows, want 50", len(seen))
	}
	for i := 0; i < 50; i++ {
		if seen[uint16(1000+i)] != uint64(i+1) {
			t.Fatalf("port %d: %d packets, want %d", 1000+i, seen[uint16(1000+i)], i+1)
		}
	}
	if c.Len() != 50 || c.Stats().ExportedPackets != 0 {
		t.Fatalf("Each changed the cache: %d flows, %d exported", c.Len(), c.Stats().ExportedPackets)
	}
}
