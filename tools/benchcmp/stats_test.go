// SPDX-License-Identifier: Apache-2.0

package main

import "testing"

func TestSpread(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want string
	}{
		{nil, "—"},
		{[]float64{3}, "3"},
		{[]float64{5, 1, 3}, "3 (1–5)"},
		{[]float64{4, 1, 2, 3}, "2.5 (1–4)"},
		{[]float64{2, 2}, "2"},
	} {
		if got := spread(tt.in).Format("%.4g"); got != tt.want {
			t.Errorf("spread(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
