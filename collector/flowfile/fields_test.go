// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"
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

// variedRecords are synthetic records among which every fifth carries
// a random subset of every field (so the presence flags vary from record
// to record), with nanosecond times in odd seeds.
func variedRecords(seed uint64, n int) []flow.Record {
	rng := rand.New(rand.NewPCG(seed, 9))
	recs := newSynthNs(seed, seed%2 == 1).Records(n)
	for i := 0; i < len(recs); i += 5 {
		full := fullRecord(rng.IntN(2) == 0)
		full.Packets, full.Octets = rng.Uint64N(1<<uint(rng.IntN(64))), rng.Uint64()
		full.Start = full.Start.Add(time.Duration(rng.Int64N(1e12)))
		full.End = full.Start.Add(time.Duration(rng.Int64N(1e10)))
		for f := Fields(1); f < AllFields; f <<= 1 {
			if rng.IntN(3) > 0 {
				full = (AllFields &^ f).Keep(full)
			}
		}
		recs[i] = full
	}
	return recs
}

// TestDecodeKeepFields: decodeEach with keep (decoding keepFields first,
// the rest only of chunks where keep keeps a record, skipping the others)
// hands over the records a full decode holds at the same positions, for
// every chunk holding a kept record, and every kept record.
func TestDecodeKeepFields(t *testing.T) {
	enc := newBlockEncoder()
	rng := rand.New(rand.NewPCG(3, 4))
	split, skipped := 0, 0
	defer func() {
		// The cases exercised the split and the skipping.
		if split < 100 || skipped < 100 {
			t.Errorf("%d cases split the decoding, %d chunks skipped", split, skipped)
		}
	}()
	for seed := range uint64(3) {
		recs := variedRecords(seed, 5*decodeChunk+77)
		b := bytes.Clone(enc.encode(recs))
		var full blockDecoder
		want, err := full.decode(b, len(recs), nil, AllFields)
		if err != nil {
			t.Fatal(err)
		}
		for _, kf := range someFields(rng) {
			if kf == 0 {
				continue
			}
			for _, every := range []uint64{3, 2 * decodeChunk} {
				// keep reads only the fields kf: it hashes the record
				// with the others zeroed.
				keep := func(r *flow.Record) bool {
					h := fnv.New64a()
					fmt.Fprintf(h, "%v", kf.Keep(*r))
					return h.Sum64()%every == 0
				}
				var wantKept []flow.Record
				wantChunks := map[int]bool{}
				for i := range want {
					if keep(&want[i]) {
						wantKept = append(wantKept, want[i])
						wantChunks[i/decodeChunk*decodeChunk] = true
					}
				}
				d := blockDecoder{keep: keep, keepFields: kf}
				if d.firstFields(AllFields) == 0 {
					// Every field at once: every chunk comes.
					for lo := 0; lo < len(recs); lo += decodeChunk {
						wantChunks[lo] = true
					}
				} else {
					split++
				}
				var kept []flow.Record
				chunks := map[int]bool{}
				_, derr, ferr := d.decodeEach(b, len(recs), nil, AllFields, func(got []flow.Record, lo int) error {
					chunks[lo] = true
					for i := range got {
						if !reflect.DeepEqual(got[i], want[lo+i]) {
							t.Fatalf("seed %d, fields %#x, 1 in %d: record %d:\n got %+v\nwant %+v", seed, kf, every, lo+i, got[i], want[lo+i])
						}
						if keep(&got[i]) {
							kept = append(kept, got[i])
						}
					}
					return nil
				})
				if derr != nil || ferr != nil {
					t.Fatalf("seed %d, fields %#x: %v %v", seed, kf, derr, ferr)
				}
				if !reflect.DeepEqual(kept, wantKept) {
					t.Fatalf("seed %d, fields %#x, 1 in %d: kept %d records, want %d", seed, kf, every, len(kept), len(wantKept))
				}
				if !reflect.DeepEqual(chunks, wantChunks) {
					t.Fatalf("seed %d, fields %#x, 1 in %d: chunks handed over %v, want %v", seed, kf, every, chunks, wantChunks)
				}
				skipped += len(recs)/decodeChunk + 1 - len(chunks)
			}
		}
	}
}

// TestSkipUvarints: skip moves past as many uvarints as reading them one
// by one does, from any position, for any count.
func TestSkipUvarints(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var b []byte
	for range 2000 {
		b = binary.AppendUvarint(b, rng.Uint64N(1<<uint(rng.IntN(64))))
	}
	for range 3000 {
		start := fcur{b: b}
		start.skip(rng.IntN(500))
		n := rng.IntN(600)
		want := start
		for k := 0; k < n && want.i < len(b); k++ {
			want.uv()
		}
		got := start
		got.skip(n)
		if got.i != want.i {
			t.Fatalf("skip(%d) from %d: at %d, want %d", n, start.i, got.i, want.i)
		}
	}
}

// TestCountFlags: countFlags counts as a loop over every record does.
func TestCountFlags(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 200 {
		flags := make([]uint16, rng.IntN(40))
		for i := range flags {
			flags[i] = uint16(rng.Uint32()) & fAll
		}
		want := uint16(rng.Uint32()) & fAll
		got := countFlags(flags, want)
		for b := range 15 {
			n := 0
			for _, f := range flags {
				if want&f&(1<<b) != 0 {
					n++
				}
			}
			if got.n[b] != n {
				t.Fatalf("flags %v, want %#x: bit %d counted %d, want %d", flags, want, b, got.n[b], n)
			}
		}
	}
}
