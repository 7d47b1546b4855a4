// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"io/fs"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// readTree reads every finished file under dir: record ID (Packets) → the
// file's slot and exporter directory.
func readTree(t *testing.T, dir string) (map[uint64]time.Time, map[uint64]string, int) {
	t.Helper()
	slots := map[uint64]time.Time{}
	dirs := map[uint64]string{}
	files := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n, ok := ParseName(DefaultPrefix, d.Name(), time.UTC)
		if !ok {
			t.Errorf("unexpected file %s", p)
			return nil
		}
		if n.Current {
			t.Errorf("unfinished file left: %s", p)
		}
		files++
		r, err := Open(p, ReaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		rel, _ := filepath.Rel(dir, p)
		for r.Next() {
			id := r.Record().Packets
			if _, dup := slots[id]; dup {
				t.Errorf("record %d twice", id)
			}
			slots[id] = n.Slot
			dirs[id] = filepath.Dir(rel)
		}
		if r.Err() != nil || r.End().Kind != EndClean {
			t.Errorf("%s: err %v end %v", p, r.Err(), r.End())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return slots, dirs, files
}

func TestRotatorLosesNothing(t *testing.T) {
	for _, perExporter := range []bool{false, true} {
		t.Run(map[bool]string{false: "single", true: "per-exporter"}[perExporter], func(t *testing.T) {
			dir := t.TempDir()
			clock := &fakeClock{t: time.Date(2025, 3, 14, 9, 58, 30, 0, time.UTC)}
			var mu sync.Mutex
			var closed []ClosedFile
			r, err := NewRotator(RotatorOptions{
				Dir: dir, Interval: time.Minute, Layout: LayoutYearMonthDayHour,
				PerExporter: perExporter, Location: time.UTC, Now: clock.Now,
				Writer: WriterOptions{BlockRecords: 256},
				OnClose: func(cf ClosedFile) {
					mu.Lock()
					closed = append(closed, cf)
					mu.Unlock()
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			exporters := []netip.Addr{netip.MustParseAddr("198.18.255.1"), netip.MustParseAddr("fd00::1"), {}}
			s := newSynth(11)
			const n = 40000
			want := map[uint64]time.Time{}
			wantDir := map[uint64]string{}
			for i := range n {
				rec := s.Record()
				rec.Packets = uint64(i + 1) // the record's ID
				rec.Exporter = exporters[i%3]
				now := clock.Now()
				if err := r.Append(&rec); err != nil {
					t.Fatal(err)
				}
				want[rec.Packets] = SlotStart(now, time.Minute)
				wantDir[rec.Packets] = LayoutYearMonthDayHour.Dir(want[rec.Packets])
				if perExporter {
					key := "local"
					if rec.Exporter.IsValid() {
						key = rec.Exporter.String()
					}
					wantDir[rec.Packets] = filepath.Join(key, wantDir[rec.Packets])
				}
				clock.Advance(7 * time.Millisecond) // 280 s in all: 6 slots, an hour boundary
				if i%500 == 0 {
					if err := r.Flush(); err != nil {
						t.Fatal(err)
					}
				}
			}
			clock.Advance(3 * time.Minute) // idle slots: a Flush still rotates
			if err := r.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			got, gotDir, files := readTree(t, dir)
			if len(got) != n {
				t.Fatalf("read %d records, want %d", len(got), n)
			}
			for id, slot := range want {
				if !got[id].Equal(slot) || gotDir[id] != wantDir[id] {
					t.Fatalf("record %d in %s slot %v, want %s slot %v", id, gotDir[id], got[id], wantDir[id], slot)
				}
			}
			var flows uint64
			for _, cf := range closed {
				if cf.Err != nil || len(cf.Lost) != 0 {
					t.Errorf("%s: %v, %d lost", cf.Path, cf.Err, len(cf.Lost))
				}
				flows += cf.Summary.Total.Flows
			}
			if len(closed) != files || flows != n {
				t.Fatalf("%d files reported with %d flows; %d files on disk", len(closed), flows, files)
			}
			t.Logf("%d records in %d files", n, files)
		})
	}
}

func TestRotatorRecoversAtStart(t *testing.T) {
	dir := t.TempDir()
	recs := newSynth(12).Records(500)
	for i := range recs {
		recs[i].Packets = uint64(i + 1)
	}
	slot := time.Date(2025, 3, 14, 9, 55, 0, 0, time.UTC)
	crashFile(t, filepath.Join(dir, CurrentName(DefaultPrefix, slot, 5*time.Minute)), recs, 100, []byte("torn"))
	// A finished file for the same slot already exists: never overwritten.
	final := filepath.Join(dir, "2025", "03", "14", FileName(DefaultPrefix, slot, 5*time.Minute))
	clock := &fakeClock{t: slot.Add(2 * time.Minute)}
	r, err := NewRotator(RotatorOptions{Dir: dir, Layout: LayoutYearMonthDay, Location: time.UTC, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	rec := r.Recovered()
	if len(rec) != 1 || rec[0].Err != nil || rec[0].Path != final || rec[0].Result.Summary.Total.Flows != 500 {
		t.Fatalf("recovered %+v", rec)
	}
	// The restart's own file of the same slot gets a ".1" suffix.
	x := recs[0]
	x.Packets = 1000
	if err := r.Append(&x); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	got, _, files := readTree(t, dir)
	if files != 2 || len(got) != 501 {
		t.Fatalf("%d files, %d records", files, len(got))
	}
}

func TestRotatorConcurrent(t *testing.T) {
	clock := &fakeClock{t: time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)}
	r, err := NewRotator(RotatorOptions{Dir: t.TempDir(), Interval: time.Second, Location: time.UTC, Now: clock.Now,
		Writer: WriterOptions{BlockRecords: 64}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := newSynth(uint64(g))
			for i := range 2000 {
				rec := s.Record()
				if err := r.Append(&rec); err != nil {
					t.Error(err)
					return
				}
				if i%100 == 0 {
					clock.Advance(100 * time.Millisecond)
					if err := r.Flush(); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRotatorRetention: with MaxAge the rotator removes files past it
// after each finished file, and reports them in ClosedFile.Expired.
func TestRotatorRetention(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 30, 0, time.UTC)}
	var mu sync.Mutex
	var expired []string
	r, err := NewRotator(RotatorOptions{Dir: dir, Interval: time.Minute, Location: time.UTC, Now: clock.Now,
		MaxAge: 90 * time.Second,
		OnClose: func(cf ClosedFile) {
			mu.Lock()
			defer mu.Unlock()
			if cf.Err != nil || cf.ExpireErr != nil {
				t.Errorf("closed %s: %v %v", cf.Path, cf.Err, cf.ExpireErr)
			}
			for _, x := range cf.Expired {
				expired = append(expired, filepath.Base(x.Path))
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	// One file per slot, 12:00 to 12:04, each finished at the next slot.
	for i := range 5 {
		if err := r.Append(&flow.Record{Packets: uint64(i + 1)}); err != nil {
			t.Fatal(err)
		}
		if err := r.Flush(); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	slots, _, files := readTree(t, dir)
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(expired)
	// At Close (12:05:30) the cutoff is 12:04:00: every earlier slot went.
	if want := []string{"kflow.202503011200", "kflow.202503011201", "kflow.202503011202", "kflow.202503011203"}; !slices.Equal(expired, want) || files != 1 || len(slots) != 1 {
		t.Errorf("expired %v, %d files left holding %v", expired, files, slots)
	}
}

// TestRotatorHandsOverBuffers: at a rotation the next file takes over the
// last file's block buffers (written out first), and both files hold
// every record appended to them.
func TestRotatorHandsOverBuffers(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{t: time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)}
	r, err := NewRotator(RotatorOptions{Dir: dir, Interval: time.Minute, Location: time.UTC, Now: clock.Now,
		Writer: WriterOptions{BlockRecords: 1024}})
	if err != nil {
		t.Fatal(err)
	}
	s := newSynth(5)
	appendN := func(n int) {
		for range n {
			rec := s.Record()
			if err := r.Append(&rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendN(1500) // a whole block and a partial one
	r.mu.Lock()
	first := r.files[""].w.benc
	r.mu.Unlock()
	if cap(first.cols[colFlags]) == 0 {
		t.Fatal("the first file's encoder has no buffers")
	}
	clock.Advance(time.Minute)
	appendN(700)
	r.mu.Lock()
	next := r.files[""].w.benc
	r.mu.Unlock()
	if next != first {
		t.Error("the next file grew its own block buffers")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	var files, records int
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rd, err := Open(p, ReaderOptions{})
		if err != nil {
			return err
		}
		defer rd.Close()
		files++
		for rd.Next() {
			records++
		}
		return rd.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if files != 2 || records != 2200 {
		t.Errorf("%d files with %d records, want 2 with 2200", files, records)
	}
}
