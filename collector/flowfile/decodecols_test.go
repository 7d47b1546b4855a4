// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// columnRecords is the synthetic mix with nanosecond times, and records
// without times, with one of them, without ports or addresses, ICMP,
// times before 1970 and far from it.
func columnRecords(n int) []flow.Record {
	recs := newSynthNs(3, true).Records(n)
	t0 := time.Date(2025, 3, 14, 9, 26, 53, 123456789, time.UTC)
	for i := 0; i < len(recs); i += 7 {
		r := &recs[i]
		switch i / 7 % 8 {
		case 0:
			r.Start, r.End = time.Time{}, time.Time{}
		case 1:
			r.Start = time.Time{}
		case 2:
			r.End = time.Time{}
		case 3:
			r.SrcPort, r.DstPort, r.Proto, r.ICMPType, r.ICMPCode = 0, 0, flow.ProtoICMP, 3, 1
		case 4:
			r.Src, r.Dst = netip.Addr{}, netip.Addr{}
		case 5:
			r.Start, r.End = time.Date(1969, 7, 20, 20, 17, 0, 5, time.UTC), time.Date(1969, 7, 21, 2, 56, 0, 7, time.UTC)
		case 6:
			r.Start, r.End = t0.AddDate(-900, 0, 0), t0.AddDate(900, 0, 0)
		case 7:
			r.Packets, r.Octets = 1<<63+5, 1<<40
		}
	}
	return recs
}

// TestScanColumns: a scan for columns hands over, record by record, the
// values a scan for records decodes, for every field of ColumnFields and
// some of them; a damaged file's blocks come as records.
func TestScanColumns(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	// Blocks of every kind of record, and blocks whose records all have
	// both times in milliseconds (decoded without looking at flags).
	for _, recs := range [][]flow.Record{columnRecords(5000), newSynth(4).Records(4000)} {
		testScanColumns(t, path, recs)
	}
	recs := columnRecords(5000)
	// A damaged block header: the file is read record by record.
	b := writeBytes(t, recs, WriterOptions{BlockRecords: 1500})
	b[bytes.Index(b, []byte(blockMagic))+5] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	n := 0
	err := ScanFilesBlocks(context.Background(), []string{path}, ScanOptions{Workers: 1, Fields: ColumnFields, Columns: true},
		func(_ int, b *Block) error {
			if b.Records == nil {
				t.Fatal("damaged file: columns, want records")
			}
			n += len(b.Records)
			return nil
		}, func(int, ScanResult, error) {})
	if err != nil || n != len(recs)-1500 {
		t.Errorf("damaged file: %d records, %v; want %d", n, err, len(recs)-1500)
	}
}

// testScanColumns compares a scan of recs for columns with the records.
func testScanColumns(t *testing.T, path string, recs []flow.Record) {
	t.Helper()
	if err := os.WriteFile(path, writeBytes(t, recs, WriterOptions{BlockRecords: 1500}), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, need := range []Fields{ColumnFields, FieldSrc | FieldOctets, FieldProto | FieldDstPort | FieldTimes, FieldICMP} {

		var got []flow.Record
		var addrs []netip.Addr
		err := ScanFilesBlocks(context.Background(), []string{path}, ScanOptions{Workers: 1, Fields: need, Columns: true},
			func(_ int, b *Block) error {
				if b.Records != nil {
					t.Fatalf("fields %#x: records, want columns", need)
				}
				addrs = b.Addrs
				for k := range b.Len {
					var r flow.Record
					if b.Proto != nil {
						r.Proto = b.Proto[k]
					}
					if b.SrcAddr != nil {
						r.Src = addrs[b.SrcAddr[k]]
					}
					if b.DstAddr != nil {
						r.Dst = addrs[b.DstAddr[k]]
					}
					if b.SrcPort != nil {
						r.SrcPort = b.SrcPort[k]
					}
					if b.DstPort != nil {
						r.DstPort = b.DstPort[k]
					}
					if b.ICMP != nil {
						r.ICMPType, r.ICMPCode = uint8(b.ICMP[k]>>8), uint8(b.ICMP[k])
					}
					if b.Packets != nil {
						r.Packets, r.Octets = b.Packets[k], 0
					}
					if b.Octets != nil {
						r.Octets = b.Octets[k]
					}
					if b.Times != nil {
						if b.Times[k]&TimeStart != 0 {
							r.Start = time.Unix(0, b.Start[k]).UTC()
						}
						if b.Times[k]&TimeEnd != 0 {
							r.End = time.Unix(0, b.End[k]).UTC()
						}
					}
					got = append(got, r)
				}
				return nil
			}, func(int, ScanResult, error) {})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(recs) {
			t.Fatalf("fields %#x: %d records, want %d", need, len(got), len(recs))
		}
		for i := range recs {
			want := need.Keep(recs[i])
			g := got[i]
			if need.Has(FieldTimes) {
				// Nanoseconds since 1970 hold ±292 years: compare those.
				for _, p := range [][2]*time.Time{{&g.Start, &want.Start}, {&g.End, &want.End}} {
					if p[0].IsZero() != p[1].IsZero() || p[0].UnixNano() != p[1].UnixNano() {
						t.Fatalf("fields %#x, record %d: time %v, want %v", need, i, *p[0], *p[1])
					}
					*p[0], *p[1] = time.Time{}, time.Time{}
				}
			}
			if norm(g) != norm(want) {
				t.Fatalf("fields %#x, record %d:\n got %+v\nwant %+v", need, i, g, want)
			}
		}
	}
}
