// SPDX-License-Identifier: Apache-2.0

package shipper

import (
	"strings"
	"testing"
	"time"
)

// TestPosition: a file's position names it as it is named once finished,
// with its slot read as UTC, so rows shipped from a current file sort
// with the rest of it.
func TestPosition(t *testing.T) {
	slot := time.Date(2025, 3, 14, 9, 25, 0, 0, time.UTC)
	for _, path := range []string{"/var/flows/2025/03/14/kflow.current.202503140925", "/var/flows/2025/03/14/kflow.202503140925"} {
		p := position("kflow", path)
		if p.File != "/var/flows/2025/03/14/kflow.202503140925" || !p.Slot.Equal(slot) {
			t.Errorf("%s: %+v", path, p)
		}
	}
	if p := position("kflow", "/var/flows/other"); p.File != "/var/flows/other" || !p.Slot.IsZero() {
		t.Errorf("a name without a stamp: %+v", p)
	}
}

func TestCompressionChoice(t *testing.T) {
	for _, c := range []struct {
		comp Compression
		urls []string
		want bool
	}{
		{CompressAuto, []string{"http://127.0.0.1:8123/db"}, false},
		{CompressAuto, []string{"http://localhost/db", "http://[::1]:8123/db", "http://127.0.0.2:8123/x"}, false},
		{CompressAuto, []string{"http://localhost/db", "http://ch1.example:8123/db"}, true},
		{CompressAuto, []string{"http://198.18.0.1:8123/db"}, true},
		{CompressAuto, []string{"http://[::ffff:127.0.0.1]:8123/db"}, false},
		{CompressGzip, []string{"http://127.0.0.1:8123/db"}, true},
		{CompressNone, []string{"http://ch1.example:8123/db"}, false},
	} {
		if got := gzipFor(c.comp, c.urls); got != c.want {
			t.Errorf("%s %v: gzip %v, want %v", c.comp, c.urls, got, c.want)
		}
	}
	if _, err := ParseCompression("lz4"); err == nil || !strings.Contains(err.Error(), "auto, gzip or none") {
		t.Errorf("lz4: %v", err)
	}
	if _, err := New(Options{Dir: t.TempDir(), URLs: []string{"http://127.0.0.1:1/db"}, Compression: "zstd"}); err == nil {
		t.Error("New accepted compression zstd")
	}
}
