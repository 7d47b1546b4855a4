// SPDX-License-Identifier: Apache-2.0

package promtext

import (
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses; fields as in proc(5).
	line := "4242 (kflow (a) b) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 123456 987654321 2500 18446744073709551615"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st != (procStat{utime: 250, stime: 75, starttime: 123456, vsize: 987654321, rss: 2500}) {
		t.Errorf("%+v", st)
	}
	for _, bad := range []string{"4242 kflow S 1", "4242 (kflow) S 1 2 3", "4242 (kflow) S 1 4242 4242 0 -1 4194560 1000 0 0 0 x 75 0 0 20 0 9 0 123456 987654321 2500"} {
		if _, err := parseStat([]byte(bad)); err == nil || !strings.Contains(err.Error(), "/proc/self/stat") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestStartTime(t *testing.T) {
	p := NewProcess()
	w := &Writer{known: map[*Desc]bool{}, families: map[*Desc]*family{}}
	for _, d := range p.Describe() {
		w.known[d] = true
	}
	p.Collect(w)
	if w.err != nil {
		t.Fatal(w.err)
	}
	f := w.families[p.start]
	if f == nil {
		t.Fatal("no process_start_time_seconds")
	}
	// The test binary started within the last hour, not in the future
	// (the clock's tick is 10 ms).
	start := time.Unix(0, int64(f.samples[0].value*1e9))
	if d := time.Since(start); d < -time.Second || d > time.Hour {
		t.Errorf("start time %v, %v ago", start, d)
	}
}
