// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"math/rand/v2"
	"testing"
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
