// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestLayoutDir(t *testing.T) {
	// Expected values from strftime(3).
	for _, tc := range []struct {
		date string
		want [numLayouts]string
	}{
		{"2023-01-01 05", [numLayouts]string{"", "2023/01/01", "2023/01/01/05", "2023/00/7", "2023/00/7/05", "2023/001", "2023/001/05", "2023-01-01", "2023-01-01/05"}},
		{"2024-01-01 23", [numLayouts]string{"", "2024/01/01", "2024/01/01/23", "2024/01/1", "2024/01/1/23", "2024/001", "2024/001/23", "2024-01-01", "2024-01-01/23"}},
		{"2024-12-31 00", [numLayouts]string{"", "2024/12/31", "2024/12/31/00", "2024/53/2", "2024/53/2/00", "2024/366", "2024/366/00", "2024-12-31", "2024-12-31/00"}},
		{"2025-03-14 09", [numLayouts]string{"", "2025/03/14", "2025/03/14/09", "2025/10/5", "2025/10/5/09", "2025/073", "2025/073/09", "2025-03-14", "2025-03-14/09"}},
		{"2021-01-03 12", [numLayouts]string{"", "2021/01/03", "2021/01/03/12", "2021/00/7", "2021/00/7/12", "2021/003", "2021/003/12", "2021-01-03", "2021-01-03/12"}},
	} {
		tm, err := time.Parse("2006-01-02 15", tc.date)
		if err != nil {
			t.Fatal(err)
		}
		for l := LayoutFlat; l < numLayouts; l++ {
			if got := l.Dir(tm); got != tc.want[l] {
				t.Errorf("layout %d (%s) on %s: %q, want %q", l, l, tc.date, got, tc.want[l])
			}
		}
	}
	if l, err := ParseLayout("8"); err != nil || l != LayoutDateHour {
		t.Errorf("ParseLayout(8) = %v, %v", l, err)
	}
	for _, s := range []string{"9", "-1", "x", ""} {
		if _, err := ParseLayout(s); err == nil {
			t.Errorf("ParseLayout(%q) accepted", s)
		}
	}
}

func TestSlotsAndNames(t *testing.T) {
	utc := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, tc := range []struct {
		t        string
		interval time.Duration
		slot     string
		name     string
		current  string
	}{
		{"2025-03-14T09:26:53.5Z", 300 * time.Second, "2025-03-14T09:25:00Z", "kflow.202503140925", "kflow.current.202503140925"},
		{"2025-03-14T09:25:00Z", 300 * time.Second, "2025-03-14T09:25:00Z", "kflow.202503140925", "kflow.current.202503140925"},
		{"2025-03-14T09:24:59.999Z", 300 * time.Second, "2025-03-14T09:20:00Z", "kflow.202503140920", "kflow.current.202503140920"},
		{"2025-03-14T09:26:53Z", time.Hour, "2025-03-14T09:00:00Z", "kflow.202503140900", "kflow.current.202503140900"},
		{"2025-03-14T09:26:53Z", 20 * time.Second, "2025-03-14T09:26:40Z", "kflow.20250314092640", "kflow.current.20250314092640"},
		{"1969-12-31T23:59:59Z", time.Minute, "1969-12-31T23:59:00Z", "kflow.196912312359", "kflow.current.196912312359"},
	} {
		iv := tc.interval
		slot := SlotStart(utc(tc.t), iv)
		if !slot.Equal(utc(tc.slot)) {
			t.Errorf("SlotStart(%s, %v) = %v, want %s", tc.t, iv, slot, tc.slot)
		}
		if got := FileName("kflow", slot, iv); got != tc.name {
			t.Errorf("FileName = %q, want %q", got, tc.name)
		}
		if got := CurrentName("kflow", slot, iv); got != tc.current {
			t.Errorf("CurrentName = %q, want %q", got, tc.current)
		}
		for _, name := range []string{tc.name, tc.current, tc.name + ".2"} {
			n, ok := ParseName("kflow", name, time.UTC)
			if !ok || !n.Slot.Equal(slot) || n.Current != (name == tc.current) {
				t.Errorf("ParseName(%q) = %+v, %v", name, n, ok)
			}
		}
	}
	// Local-time names, as nfcapd writes them.
	loc := time.FixedZone("CET", 3600)
	slot := SlotStart(utc("2025-03-14T09:26:53Z").In(loc), 5*time.Minute)
	if got := FileName("nfcapd", slot, 5*time.Minute); got != "nfcapd.202503141025" {
		t.Errorf("local name %q", got)
	}
	for _, bad := range []string{"kflow.2025031409", "kflow.202503140925x", "kflow.202513140925", "kflow.202503140925.0",
		"kflow.202503140925.01", "kflowx.202503140925", "nfcapd.202503140925", "kflow.current.", "kflow.202503140925.1.2"} {
		if n, ok := ParseName("kflow", bad, time.UTC); ok {
			t.Errorf("ParseName(%q) = %+v, want no match", bad, n)
		}
	}
}

func TestExpire(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)
	var all []string
	// One 1000-byte file per hour for 10 hours, in a %Y/%m/%d/%H layout.
	for h := range 10 {
		slot := now.Add(-time.Duration(h) * time.Hour)
		p := filepath.Join(dir, LayoutYearMonthDayHour.Dir(slot), FileName("kflow", slot, time.Hour))
		all = append(all, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, 1000), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	keep := []string{
		filepath.Join(dir, "kflow.current.202001010000"), // unfinished
		filepath.Join(dir, "notes.txt"),
		filepath.Join(dir, "nfcapd.202001010000"), // another prefix
	}
	for _, p := range keep {
		os.WriteFile(p, make([]byte, 5000), 0o644)
	}
	// Removing sees each file while it still exists.
	var told []string
	removing := func(f ExpiredFile) {
		if _, err := os.Stat(f.Path); err != nil {
			t.Errorf("Removing(%s): %v", f.Path, err)
		}
		told = append(told, f.Path)
	}
	opts := ExpireOptions{MaxAge: 6*time.Hour + 30*time.Minute, Location: time.UTC, Now: func() time.Time { return now }, Removing: removing}
	removed, err := Expire(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	paths := func(fs []ExpiredFile) (out []string) {
		for _, f := range fs {
			out = append(out, f.Path)
		}
		return out
	}
	if !slices.Equal(told, paths(removed)) {
		t.Errorf("Removing told %q, removed %q", told, paths(removed))
	}
	// Hours 7, 8, 9 ago, oldest first.
	if got, want := paths(removed), []string{all[9], all[8], all[7]}; !slices.Equal(got, want) {
		t.Fatalf("by age removed %q, want %q", got, want)
	}
	if _, err := os.Stat(filepath.Dir(all[9])); !os.IsNotExist(err) {
		t.Errorf("empty hour directory left: %v", err)
	}
	// Size: 7 files of 1000 bytes remain; keep 2500 bytes → remove 5.
	opts.MaxAge, opts.MaxBytes = 0, 2500
	removed, err = Expire(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := paths(removed), []string{all[6], all[5], all[4], all[3], all[2]}; !slices.Equal(got, want) {
		t.Fatalf("by size removed %q, want %q", got, want)
	}
	for _, p := range append(keep, all[0], all[1]) {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal("base directory removed")
	}
	// ExpireFiles with no limits removes nothing.
	if removed, err := ExpireFiles(dir, 0, 0); err != nil || len(removed) != 0 {
		t.Fatalf("no limits: %v %v", removed, err)
	}
}
