// SPDX-License-Identifier: Apache-2.0

package querycli

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// TestPadAndDuration: padding and durations are printed as fmt prints
// them (%*s, %-*s, %02d:%02d:%02d.%03d with days).
func TestPadAndDuration(t *testing.T) {
	for _, s := range []string{"", "a", "198.18.0.1", "fd00::53", "TCP", "héllo", "0123456789abcdefghij"} {
		for _, w := range []int{-20, -16, -5, -1, 0, 1, 3, 5, 16, 20} {
			want := fmt.Sprintf("%*s", w, s)
			if w < 0 {
				want = fmt.Sprintf("%-*s", -w, s)
			}
			if got := pad(s, w); got != want {
				t.Errorf("pad(%q, %d) = %q, want %q", s, w, got, want)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		ms := rng.Uint64N(1 << uint(rng.IntN(50)))
		h, m, s := ms/3_600_000, ms/60_000%60, ms/1000%60
		want := fmt.Sprintf("%02d:%02d:%02d.%03d", h, m, s, ms%1000)
		if h >= 24 {
			want = fmt.Sprintf("%dd %02d:%02d:%02d.%03d", h/24, h%24, m, s, ms%1000)
		}
		if got := fmtDuration(ms); got != want {
			t.Fatalf("fmtDuration(%d) = %q, want %q", ms, got, want)
		}
	}
}

// TestAppendedFields: the fields a listing appends are what fmt and time
// print: times as Format's "2006-01-02 15:04:05.000" in any zone, counts
// as %.1f with M, G or T, padding of bytes as of strings.
func TestAppendedFields(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	zones := []*time.Location{time.UTC, time.FixedZone("x", 5*3600+1800), time.FixedZone("y", -7*3600)}
	for range 10000 {
		ts := time.Unix(rng.Int64N(1<<34), rng.Int64N(1e9))
		o := &fmtOpts{loc: zones[rng.IntN(len(zones))]}
		if got, want := fmtTS(ts, o), ts.In(o.loc).Format("2006-01-02 15:04:05.000"); got != want {
			t.Fatalf("fmtTS(%v) = %q, want %q", ts, got, want)
		}
		v := rng.Uint64N(1 << uint(rng.IntN(64)))
		want := fmt.Sprint(v)
		switch {
		case v >= 1_000_000_000_000:
			want = fmt.Sprintf("%.1f T", float64(v)/1e12)
		case v >= 1_000_000_000:
			want = fmt.Sprintf("%.1f G", float64(v)/1e9)
		case v >= 1_000_000:
			want = fmt.Sprintf("%.1f M", float64(v)/1e6)
		}
		if got := scaled(v, o); got != want {
			t.Fatalf("scaled(%d) = %q, want %q", v, got, want)
		}
		if got := scaled(v, &fmtOpts{plain: true}); got != fmt.Sprint(v) {
			t.Fatalf("scaled(%d, -N) = %q", v, got)
		}
	}
	if got := fmtTS(time.Time{}, &fmtOpts{loc: time.UTC}); got != "0000-00-00 00:00:00.000" {
		t.Errorf("zero time: %q", got)
	}
	for _, s := range []string{"", "fd00::53", "héllo"} {
		for _, w := range []int{-8, 0, 3, 16} {
			if got, want := string(appendPadBytes(nil, []byte(s), w)), pad(s, w); got != want {
				t.Errorf("appendPadBytes(%q, %d) = %q, want %q", s, w, got, want)
			}
		}
	}
	for f := range uint16(256) {
		if got := string(appendTCPFlags(nil, f)); got != flow.TCPFlagsString(f) {
			t.Fatalf("flags %#x: %q, want %q", f, got, flow.TCPFlagsString(f))
		}
	}
}
