// SPDX-License-Identifier: Apache-2.0

package clickhouse

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// fullRecord sets every field of flow.Record to a distinct value.
func fullRecord(i int, v6 bool) flow.Record {
	t0 := time.Date(2025, 3, 14, 9, 26, 53, 123456789, time.UTC).Add(time.Duration(i) * time.Second)
	r := flow.Record{
		Src: netip.AddrFrom4([4]byte{198, 18, 1, byte(i)}), Dst: netip.AddrFrom4([4]byte{198, 19, 2, byte(i)}),
		SrcPort: uint16(40000 + i), DstPort: 443, Proto: flow.ProtoTCP,
		VLAN: 100, InnerVLAN: 200, InIf: 3, OutIf: 4, Direction: flow.Egress,
		Packets: uint64(10 + i), Octets: uint64(15000 + i), Start: t0, End: t0.Add(1500 * time.Millisecond),
		TCPFlags: 0x1b, TOS: 0x28, MinTTL: 60, MaxTTL: 64, EndReason: flow.EndOfFlow,
		NextHop: netip.MustParseAddr("198.18.0.254"), SrcAS: 64500, DstAS: 64501, SrcMask: 24, DstMask: 16,
		SamplingInterval: 1, Exporter: netip.MustParseAddr("198.18.0.1"), ObservationDomain: 7,
	}
	if v6 {
		r.Src, r.Dst = netip.MustParseAddr("fd00::1"), netip.AddrFrom16([16]byte{0xfd, 15: byte(i)})
		r.NextHop = netip.MustParseAddr("fd00::fe")
		r.Exporter = netip.MustParseAddr("fd00::e")
		r.Proto, r.SrcPort, r.DstPort, r.ICMPType, r.ICMPCode, r.TCPFlags = flow.ProtoICMPv6, 0, 0, 128, 0, 0
	}
	return r
}

func TestRowRoundTrip(t *testing.T) {
	received := time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)
	var recs []flow.Record
	for i := 0; i < 4; i++ {
		recs = append(recs, fullRecord(i, i%2 == 1))
	}
	// No times at all: the row's time is when it was received.
	recs = append(recs, flow.Record{Src: netip.MustParseAddr("198.18.0.9"), Dst: netip.MustParseAddr("198.19.0.9"), Packets: 1, Octets: 40})
	// A start only.
	recs = append(recs, flow.Record{Src: netip.MustParseAddr("198.18.0.9"), Dst: netip.MustParseAddr("198.19.0.9"), Start: received.Add(-time.Minute)})
	var b []byte
	for i := range recs {
		var err error
		n := len(b)
		if b, err = AppendRow(b, &recs[i], received, uint64(1000+i)); err != nil {
			t.Fatal(err)
		}
		if len(b)-n != RowSize {
			t.Fatalf("row %d is %d bytes, want %d", i, len(b)-n, RowSize)
		}
	}
	rows, err := DecodeRows(b)
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range rows {
		if row.Record != recs[i] {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, row.Record, recs[i])
		}
		if row.Block != uint64(1000+i) {
			t.Errorf("row %d: block %d", i, row.Block)
		}
		if want := RowTime(&recs[i], received).Truncate(time.Second); !row.Time.Equal(want) {
			t.Errorf("row %d: time %v, want %v", i, row.Time, want)
		}
	}
	if _, err := DecodeRows(b[:len(b)-1]); err == nil {
		t.Error("a cut row decoded")
	}
}

func TestRowUnrepresentable(t *testing.T) {
	for _, tm := range []time.Time{time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(2106, 2, 8, 0, 0, 0, 0, time.UTC)} {
		r := flow.Record{End: tm}
		if _, err := AppendRow(nil, &r, time.Now(), 0); !errors.Is(err, ErrUnrepresentable) {
			t.Errorf("end %v: %v, want ErrUnrepresentable", tm, err)
		}
	}
}

func FuzzDecodeRows(f *testing.F) {
	r := fullRecord(1, false)
	b, _ := AppendRow(nil, &r, time.Now(), 1)
	f.Add(b)
	r = fullRecord(2, true)
	b, _ = AppendRow(b, &r, time.Now(), 2)
	f.Add(b)
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		rows, err := DecodeRows(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to rows that decode the same.
		var out []byte
		for i := range rows {
			if out, err = AppendRow(out, &rows[i].Record, rows[i].Time, rows[i].Block); err != nil {
				t.Fatalf("row %d does not encode: %v", i, err)
			}
		}
		again, err := DecodeRows(out)
		if err != nil || len(again) != len(rows) {
			t.Fatalf("re-decode: %v", err)
		}
		for i := range rows {
			if again[i].Record != rows[i].Record {
				t.Fatalf("row %d changed:\n%+v\n%+v", i, rows[i].Record, again[i].Record)
			}
		}
	})
}

// cgroupPaths are cgroup paths of each layout flow.ParseCgroup knows,
// and one it does not.
var cgroupPaths = []string{
	"",
	"/system.slice/nginx.service",
	"/system.slice/docker-" + testContainer + ".scope",
	"/kubepods/burstable/pod" + testPod + "/" + testContainer,
	"/kflow-test/a'b\\c\td",
}

const (
	testContainer = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	testPod       = "01234567-89ab-cdef-0123-456789abcdef"
)

// TestRecordsRoundTrip: rows of RecordColumns decode to the records,
// cgroups included, when read in pieces cut anywhere.
func TestRecordsRoundTrip(t *testing.T) {
	received := time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)
	var recs []flow.Record
	var b []byte
	for i, p := range cgroupPaths {
		r := fullRecord(i, i%2 == 1)
		if p != "" {
			r.CgroupID, r.Cgroup = uint64(1000+i), p
		}
		recs = append(recs, r)
		var err error
		if b, err = AppendRow(b, &r, received, uint64(i)); err != nil {
			t.Fatal(err)
		}
		// What SELECT RecordColumns gives: cgroup_id and cgroup, the
		// first two of AppendCgroup's columns.
		c := AppendCgroup(nil, &r)
		b = append(b, c[:8+1+len(p)]...)
	}
	for cut := 0; cut <= len(b); cut++ {
		first, n, err := DecodeRecords(b[:cut])
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		rest, m, err := DecodeRecords(b[n:])
		if err != nil || n+m != len(b) {
			t.Fatalf("cut at %d: rest %d of %d bytes: %v", cut, m, len(b)-n, err)
		}
		rows := append(first, rest...)
		if len(rows) != len(recs) {
			t.Fatalf("cut at %d: %d rows", cut, len(rows))
		}
		for i := range rows {
			if rows[i].Record != recs[i] {
				t.Fatalf("cut at %d: row %d:\n got %+v\nwant %+v", cut, i, rows[i].Record, recs[i])
			}
		}
	}
	// A length past any cgroup path is refused, not allocated.
	bad, err := AppendRow(nil, &recs[0], received, 0)
	if err != nil {
		t.Fatal(err)
	}
	bad = binary.AppendUvarint(append(bad, make([]byte, 8)...), 1<<40)
	if _, _, err := DecodeRecords(bad); err == nil {
		t.Error("a cgroup path of 2^40 bytes decoded")
	}
}

// TestAppendCgroup: the names a path shows go into the unit, container
// and pod columns.
func TestAppendCgroup(t *testing.T) {
	for _, tt := range []struct{ path, unit, container, pod string }{
		{"", "", "", ""},
		{"/system.slice/nginx.service", "nginx.service", "", ""},
		{"/system.slice/docker-" + testContainer + ".scope", "docker-" + testContainer + ".scope", testContainer, ""},
		{"/kubepods/burstable/pod" + testPod + "/" + testContainer, "", testContainer, testPod},
	} {
		r := flow.Record{CgroupID: 42, Cgroup: tt.path}
		want := binary.LittleEndian.AppendUint64(nil, 42)
		for _, s := range []string{tt.path, tt.unit, tt.container, tt.pod} {
			want = append(binary.AppendUvarint(want, uint64(len(s))), s...)
		}
		if got := AppendCgroup(nil, &r); !bytes.Equal(got, want) {
			t.Errorf("%q: %q, want %q", tt.path, got, want)
		}
	}
}

func FuzzDecodeRecords(f *testing.F) {
	for i, p := range cgroupPaths {
		r := fullRecord(i, i%2 == 0)
		r.CgroupID, r.Cgroup = uint64(i), p
		b, _ := AppendRow(nil, &r, time.Now(), 1)
		c := AppendCgroup(nil, &r)
		f.Add(append(b, c[:8+1+len(p)]...))
	}
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		rows, n, err := DecodeRecords(b)
		if err != nil {
			return
		}
		if n > len(b) {
			t.Fatalf("%d of %d bytes used", n, len(b))
		}
		// What decodes re-encodes to the bytes it came from.
		var out []byte
		for i := range rows {
			if out, err = AppendRow(out, &rows[i].Record, rows[i].Time, rows[i].Block); err != nil {
				t.Fatalf("row %d does not encode: %v", i, err)
			}
			out = binary.LittleEndian.AppendUint64(out, rows[i].Record.CgroupID)
			out = appendString(out, rows[i].Record.Cgroup)
		}
		again, m, err := DecodeRecords(out)
		if err != nil || m != len(out) || len(again) != len(rows) {
			t.Fatalf("re-decode: %d rows, %d of %d bytes: %v", len(again), m, len(out), err)
		}
		for i := range rows {
			if again[i].Record != rows[i].Record {
				t.Fatalf("row %d changed:\n%+v\n%+v", i, rows[i].Record, again[i].Record)
			}
		}
	})
}
