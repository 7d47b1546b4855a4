// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// sameDecode checks that decodeBlockFast agrees with decodeBlock: the same
// records (exactly, times included), or both an error.
func sameDecode(t *testing.T, b []byte, count int) {
	t.Helper()
	want, werr := decodeBlock(b, count, nil)
	got, gerr := decodeBlockFast(b, count, nil)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("decodeBlock error %v, decodeBlockFast error %v", werr, gerr)
	}
	if werr != nil {
		return
	}
	if !reflect.DeepEqual(got, want) {
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("record %d:\n fast %+v\n want %+v", i, got[i], want[i])
			}
		}
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
}

func TestDecodeBlockFast(t *testing.T) {
	enc := newBlockEncoder()
	for seed := range uint64(4) {
		s := newSynth(seed)
		s.subMs = seed%2 == 1
		recs := s.records(500)
		recs[0] = fullRecord(seed%2 == 1)
		recs[1] = flow.Record{} // nothing present
		b := bytes.Clone(enc.encode(recs))
		sameDecode(t, b, len(recs))
		// Damage: every truncation and some bit flips decode the same
		// way (or fail in both).
		for cut := 0; cut < len(b); cut += 1 + len(b)/200 {
			sameDecode(t, b[:cut], len(recs))
		}
		for i := 0; i < len(b); i += 1 + len(b)/300 {
			d := bytes.Clone(b)
			d[i] ^= 0x41
			sameDecode(t, d, len(recs))
		}
		sameDecode(t, b, len(recs)+1)
	}
}

func FuzzDecodeBlockFast(f *testing.F) {
	enc := newBlockEncoder()
	for i, n := range []int{1, 3, 20} {
		recs := newSynth(uint64(i)).records(n)
		recs[0] = fullRecord(i%2 == 1)
		f.Add(bytes.Clone(enc.encode(recs)), n)
	}
	f.Fuzz(func(t *testing.T, b []byte, count int) {
		if count <= 0 || count > len(b) || count > MaxBlockRecords {
			return
		}
		sameDecode(t, b, count)
	})
}

// scanAll reads a file with Scan.
func scanAll(t *testing.T, path string, workers int) ([]flow.Record, ScanResult) {
	t.Helper()
	var got []flow.Record
	res, err := Scan(path, ScanOptions{Workers: workers}, func(recs []flow.Record) error {
		got = append(got, recs...)
		return nil
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return got, res
}

// TestScanLikeReader: Scan returns what a Reader with SkipCorrupt returns,
// for clean, cut short, corrupt and resynchronised files.
func TestScanLikeReader(t *testing.T) {
	recs := newSynth(7).records(5000)
	file := writeBytes(t, recs, WriterOptions{BlockRecords: 300})
	dir := t.TempDir()
	// Offsets of the blocks, from a Reader.
	r, err := NewReader(bytes.NewReader(file), int64(len(file)), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secs, _, ok, err := r.sections()
	if err != nil || !ok || len(secs) < 10 {
		t.Fatalf("sections: %d %v %v", len(secs), ok, err)
	}
	corrupt := bytes.Clone(file)
	corrupt[secs[3].off+10] ^= 0xff // a payload byte: checksum fails
	header := bytes.Clone(file)
	header[secs[5].off-sectionHeaderLen+6] ^= 0xff // a header byte: resync
	for _, tt := range []struct {
		name string
		b    []byte
	}{
		{"clean", file},
		{"cut", file[:secs[8].off+100]},
		{"no-summary", file[:secs[len(secs)-1].off+int64(secs[len(secs)-1].length)]},
		{"corrupt-block", corrupt},
		{"bad-header", header},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name)
			if err := os.WriteFile(p, tt.b, 0o644); err != nil {
				t.Fatal(err)
			}
			want, rd := readBytes(t, tt.b, ReaderOptions{SkipCorrupt: true})
			for _, workers := range []int{1, 3} {
				got, res := scanAll(t, p, workers)
				checkRecords(t, got, want)
				if res.Records != uint64(len(want)) || res.Corrupt != len(rd.Corrupt()) || res.End != rd.End().Kind ||
					res.Blocks != rd.End().Blocks || (res.Summary != nil) != (rd.summary != nil) {
					t.Errorf("workers %d: result %+v, reader end %+v corrupt %d", workers, res, rd.End(), len(rd.Corrupt()))
				}
			}
		})
	}
	// Stopping early.
	p := filepath.Join(dir, "clean")
	n := 0
	res, err := Scan(p, ScanOptions{Workers: 2}, func(recs []flow.Record) error {
		n++
		if n == 3 {
			return ErrStopScan
		}
		return nil
	})
	if err != nil || n != 3 || res.Records != 900 {
		t.Errorf("stop: %d calls, %+v, %v", n, res, err)
	}
	boom := errors.New("boom")
	if _, err := Scan(p, ScanOptions{}, func([]flow.Record) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("callback error: %v", err)
	}
	if _, err := Scan(filepath.Join(dir, "missing"), ScanOptions{}, func([]flow.Record) error { return nil }); err == nil {
		t.Error("missing file: no error")
	}
}

func BenchmarkScan(b *testing.B) {
	recs := newSynth(1).records(1 << 16)
	file := writeBytes(b, recs, WriterOptions{})
	p := filepath.Join(b.TempDir(), "f")
	if err := os.WriteFile(p, file, 0o644); err != nil {
		b.Fatal(err)
	}
	for _, w := range []int{1, 2} {
		b.Run([]string{"", "1worker", "2workers"}[w], func(b *testing.B) {
			var n int
			for b.Loop() {
				if _, err := Scan(p, ScanOptions{Workers: w}, func(r []flow.Record) error { n += len(r); return nil }); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func BenchmarkDecodeBlock(b *testing.B) {
	recs := newSynth(1).records(DefaultBlockRecords)
	raw := bytes.Clone(newBlockEncoder().encode(recs))
	dst := make([]flow.Record, 0, len(recs))
	for _, bb := range []struct {
		name string
		fn   func([]byte, int, []flow.Record) ([]flow.Record, error)
	}{{"reader", decodeBlock}, {"fast", decodeBlockFast}} {
		b.Run(bb.name, func(b *testing.B) {
			for b.Loop() {
				dst, _ = bb.fn(raw, len(recs), dst)
			}
			b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
