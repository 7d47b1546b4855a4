// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// someFields returns field sets to try: none, all, each alone, all but
// each, and random ones.
func someFields(rng *rand.Rand) []Fields {
	out := []Fields{0, AllFields}
	for f := Fields(1); f < AllFields; f <<= 1 {
		out = append(out, f, AllFields&^f)
	}
	for range 20 {
		out = append(out, Fields(rng.Uint32())&AllFields)
	}
	return out
}

// samePartial checks that decoding the fields need agrees with decoding
// them all: the same records with the other fields zero, or both an error.
func samePartial(t *testing.T, d *blockDecoder, b []byte, count int, need Fields) {
	t.Helper()
	var full blockDecoder
	want, werr := full.decode(b, count, nil, AllFields)
	got, gerr := d.decode(b, count, nil, need)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("fields %#x: all fields error %v, these fields error %v", need, werr, gerr)
	}
	// In pieces (decodeEach), as queries read blocks: the same records,
	// and none at all from a block that fails.
	var pieces []flow.Record
	var each blockDecoder
	each.indexes = true
	_, eerr, _ := each.decodeEach(b, count, nil, need, func(recs []flow.Record, lo int) error {
		if lo != len(pieces) {
			t.Fatalf("fields %#x: piece at %d after %d records", need, lo, len(pieces))
		}
		for i := range recs {
			if need&FieldSrc != 0 && each.addrs[each.srcIdx[lo+i]] != recs[i].Src ||
				need&FieldDst != 0 && each.addrs[each.dstIdx[lo+i]] != recs[i].Dst {
				t.Fatalf("fields %#x: record %d: dictionary indexes do not match its addresses", need, lo+i)
			}
		}
		pieces = append(pieces, recs...)
		return nil
	})
	if (werr == nil) != (eerr == nil) {
		t.Fatalf("fields %#x: all fields error %v, in pieces error %v", need, werr, eerr)
	}
	if eerr != nil && len(pieces) > 0 {
		t.Fatalf("fields %#x: %d records handed over from a block that fails (%v)", need, len(pieces), eerr)
	}
	if werr == nil && !reflect.DeepEqual(pieces, got) {
		t.Fatalf("fields %#x: in pieces, the records differ from decode's", need)
	}
	sameColumns(t, b, count, need&ColumnFields, werr, want)
	if werr != nil {
		return
	}
	if len(got) != len(want) {
		t.Fatalf("fields %#x: %d records, want %d", need, len(got), len(want))
	}
	for i := range want {
		if w := need.Keep(want[i]); !reflect.DeepEqual(got[i], w) {
			t.Fatalf("fields %#x: record %d:\n got %+v\nwant %+v", need, i, got[i], w)
		}
	}
}

func TestDecodeFields(t *testing.T) {
	enc := newBlockEncoder()
	rng := rand.New(rand.NewPCG(1, 2))
	var d blockDecoder
	for seed := range uint64(4) {
		s := newSynthNs(seed, seed%2 == 1)
		recs := s.Records(300)
		recs[0] = fullRecord(seed%2 == 1)
		recs[1] = flow.Record{}
		recs[2] = fullRecord(seed%2 == 0)
		recs[2].End = time.Time{} // only a start
		recs[3] = fullRecord(seed%2 == 0)
		recs[3].Start = time.Time{} // only an end
		b := bytes.Clone(enc.encode(recs))
		for _, need := range someFields(rng) {
			samePartial(t, &d, b, len(recs), need)
			for cut := 0; cut < len(b); cut += 1 + len(b)/50 {
				samePartial(t, &d, b[:cut], len(recs), need)
			}
			for i := 0; i < len(b); i += 1 + len(b)/150 {
				c := bytes.Clone(b)
				c[i] ^= 0x41
				samePartial(t, &d, c, len(recs), need)
				c[i] ^= 0x41 ^ 0x80
				samePartial(t, &d, c, len(recs), need)
			}
			samePartial(t, &d, b, len(recs)+1, need)
		}
	}
}

// TestScanFields: Scan and ScanEach with fields return the records masked.
func TestScanFields(t *testing.T) {
	recs := newSynth(3).Records(3000)
	file := writeBytes(t, recs, WriterOptions{BlockRecords: 250})
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, file, 0o644); err != nil {
		t.Fatal(err)
	}
	want, _ := readBytes(t, file, ReaderOptions{})
	for _, need := range []Fields{FieldSrc | FieldPackets | FieldOctets | FieldTimes, FieldProto, AllFields} {
		masked := make([]flow.Record, len(want))
		for i := range want {
			masked[i] = need.Keep(want[i])
		}
		for _, workers := range []int{1, 3} {
			var got []flow.Record
			if _, err := Scan(p, ScanOptions{Workers: workers, Fields: need}, func(r []flow.Record) error {
				got = append(got, r...)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			checkRecords(t, got, masked)
			per := make([][]flow.Record, workers)
			res, err := ScanEach(p, ScanOptions{Workers: workers, Fields: need}, func(w int, r []flow.Record) error {
				per[w] = append(per[w], r...)
				return nil
			})
			if err != nil || res.Records != uint64(len(want)) {
				t.Fatalf("ScanEach: %+v %v", res, err)
			}
			var all []flow.Record
			for _, p := range per {
				all = append(all, p...)
			}
			if len(all) != len(masked) {
				t.Fatalf("ScanEach: %d records, want %d", len(all), len(masked))
			}
		}
	}
}

// sameColumns checks decodeEach for columns (a scan with Columns) against
// the records of a full decode: the same values, the same failure, and
// no piece handed over from a block that fails.
func sameColumns(t *testing.T, b []byte, count int, need Fields, werr error, want []flow.Record) {
	t.Helper()
	var d blockDecoder
	d.columns = true
	n := 0
	_, err, _ := d.decodeEach(b, count, nil, need, func(_ []flow.Record, lo int) error {
		c := &d.colOut.block
		if lo != n {
			t.Fatalf("columns %#x: piece at %d after %d records", need, lo, n)
		}
		for k := range c.Len {
			r := &want[lo+k]
			var start, end int64
			var times uint8
			if !r.Start.IsZero() {
				start, times = r.Start.UnixNano(), times|TimeStart
			}
			if !r.End.IsZero() {
				end, times = r.End.UnixNano(), times|TimeEnd
			}
			if need&FieldProto != 0 && c.Proto[k] != r.Proto ||
				need&FieldSrc != 0 && d.addrs[c.SrcAddr[k]] != r.Src ||
				need&FieldDst != 0 && d.addrs[c.DstAddr[k]] != r.Dst ||
				need&FieldSrcPort != 0 && c.SrcPort[k] != r.SrcPort ||
				need&FieldDstPort != 0 && c.DstPort[k] != r.DstPort ||
				need&FieldICMP != 0 && c.ICMP[k] != r.ICMPTypeCode() ||
				need&FieldPackets != 0 && c.Packets[k] != r.Packets ||
				need&FieldOctets != 0 && c.Octets[k] != r.Octets ||
				need&FieldTimes != 0 && (c.Times[k] != times || times&TimeStart != 0 && c.Start[k] != start ||
					times&TimeEnd != 0 && c.End[k] != end) {
				t.Fatalf("columns %#x: record %d differs from %+v", need, lo+k, *r)
			}
		}
		n += c.Len
		return nil
	})
	if (werr == nil) != (err == nil) {
		t.Fatalf("columns %#x: all fields error %v, columns error %v", need, werr, err)
	}
	if err != nil && n > 0 || err == nil && n != count {
		t.Fatalf("columns %#x: %d records handed over of %d (%v)", need, n, count, err)
	}
}
