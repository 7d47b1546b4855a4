// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// TestScanFilesEach: scanning files together gives every file's records
// and accounting exactly as scanning them one by one, for clean,
// crashed, damaged and empty files.
func TestScanFilesEach(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for i := range 12 {
		recs := auxRecords(50 + 97*i)
		for k := range recs {
			recs[k].Packets = uint64(i*10000 + k) // unique per file and record
		}
		b := writeBytes(t, recs, WriterOptions{BlockRecords: 64 + i})
		switch i {
		case 3: // a crash: no summary, a torn last block
			b = b[:bytes.LastIndex(b, []byte(summaryMagic))-7]
		case 5: // a damaged block payload: counted corrupt
			b[bytes.Index(b, []byte(blockMagic))+sectionHeaderLen+2] ^= 0xff
		case 7: // a damaged block header: read through the Reader
			b[bytes.Index(b, []byte(blockMagic))+5] ^= 0xff
		case 9: // no records
			b = writeBytes(t, nil, WriterOptions{})
		}
		p := filepath.Join(dir, fmt.Sprintf("f%02d", i))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	type got struct {
		res  ScanResult
		pkts []uint64
	}
	one := make([]got, len(paths))
	for i, p := range paths {
		res, err := ScanEach(p, ScanOptions{Workers: 1}, func(_ int, recs []flow.Record) error {
			for _, r := range recs {
				one[i].pkts = append(one[i].pkts, r.Packets)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		one[i].res = res
	}
	for _, workers := range []int{1, 2, 5} {
		all := make([]got, len(paths))
		var mu sync.Mutex
		err := ScanFilesEach(context.Background(), paths, ScanOptions{Workers: workers}, func(_ int, recs []flow.Record) error {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range recs {
				all[r.Packets/10000].pkts = append(all[r.Packets/10000].pkts, r.Packets)
			}
			return nil
		}, func(i int, res ScanResult, err error) {
			if err != nil {
				t.Errorf("file %d: %v", i, err)
			}
			all[i].res = res
		})
		if err != nil {
			t.Fatal(err)
		}
		for i := range paths {
			slices.Sort(all[i].pkts)
			if !slices.Equal(all[i].pkts, one[i].pkts) || all[i].res.Records != one[i].res.Records ||
				all[i].res.Corrupt != one[i].res.Corrupt || all[i].res.Blocks != one[i].res.Blocks ||
				(all[i].res.Summary == nil) != (one[i].res.Summary == nil) {
				t.Errorf("workers %d, file %d: %d records %+v; one by one %d %+v", workers, i, len(all[i].pkts), all[i].res, len(one[i].pkts), one[i].res)
			}
		}
	}
	// Errors: a file that cannot be opened, fn's error, a cancelled context.
	err := ScanFilesEach(context.Background(), append(slices.Clone(paths[:2]), filepath.Join(dir, "absent")), ScanOptions{},
		func(int, []flow.Record) error { return nil }, func(int, ScanResult, error) {})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent file: %v", err)
	}
	boom := errors.New("boom")
	err = ScanFilesEach(context.Background(), paths, ScanOptions{}, func(int, []flow.Record) error { return boom }, func(int, ScanResult, error) {})
	if !errors.Is(err, boom) {
		t.Errorf("fn's error: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = ScanFilesEach(ctx, paths, ScanOptions{}, func(int, []flow.Record) error { return nil }, func(int, ScanResult, error) {})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
