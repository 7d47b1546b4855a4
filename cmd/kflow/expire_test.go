// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeFlowFiles creates files named for slots hours ago (contents do not
// matter to retention: it reads names and sizes), in the %Y/%m/%d layout.
func writeFlowFiles(t *testing.T, dir, prefix string, hoursAgo ...int) []string {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Hour)
	var paths []string
	for _, h := range hoursAgo {
		slot := now.Add(-time.Duration(h) * time.Hour)
		p := filepath.Join(dir, slot.Format("2006/01/02"), prefix+"."+slot.Format("200601021504"))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, bytes.Repeat([]byte{1}, 1000), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

func TestFileExpire(t *testing.T) {
	requireWired(t, "file")
	dir := t.TempDir()
	files := writeFlowFiles(t, dir, "kflow", 100, 50, 30, 2, 1)
	nf := writeFlowFiles(t, dir, "nfcapd", 100)
	current := filepath.Join(dir, "kflow.current.202501010000")
	if err := os.WriteFile(current, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	// --max-age 2d removes the files of 100 and 50 hours ago.
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"file", "expire", "-j", dir, "--max-age", "2d", "--utc"}, &stdout, &stderr); code != 0 {
		t.Fatalf("file expire: %d: %s", code, stderr.String())
	}
	var out struct {
		Removed []struct{ Path string }
		Files   int
		Bytes   int64
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	var got []string
	for _, r := range out.Removed {
		got = append(got, r.Path)
	}
	if !slices.Equal(got, files[:2]) || out.Files != 2 || out.Bytes != 2000 {
		t.Errorf("removed %+v", out)
	}
	for _, p := range append(append([]string{current}, files[2:]...), nf...) {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}

	// --max-size 1500 keeps the newest file only; plain output.
	stdout.Reset()
	if code := run(context.Background(), []string{"file", "expire", dir, "--max-size", "1500", "--utc"}, &stdout, &stderr); code != 0 {
		t.Fatalf("file expire: %d: %s", code, stderr.String())
	}
	if s := stdout.String(); !strings.Contains(s, "removed "+files[2]+" (1000 bytes)") || !strings.Contains(s, "2 files removed, 2000 bytes") {
		t.Errorf("output:\n%s", s)
	}
	if _, err := os.Stat(files[4]); err != nil {
		t.Errorf("the newest file went: %v", err)
	}
	// --prefix nfcapd: nfcapd's archive.
	stdout.Reset()
	if code := run(context.Background(), []string{"file", "expire", dir, "--max-age", "3d", "--prefix", "nfcapd", "--utc"}, &stdout, &stderr); code != 0 ||
		!strings.Contains(stdout.String(), "1 files removed") {
		t.Errorf("nfcapd prefix: %d %s %s", code, stdout.String(), stderr.String())
	}

	for _, args := range [][]string{
		{"file", "expire", dir},
		{"file", "expire", "--max-age", "1d"},
		{"file", "expire", dir, "--max-size", "12Q"},
		{"file", "expire", dir, "--max-age", "soon"},
	} {
		stderr.Reset()
		if code := run(context.Background(), args, &stdout, &stderr); code != exitUsage {
			t.Errorf("%v: exit %d (%s)", args, code, stderr.String())
		}
	}
}

func TestParseAge(t *testing.T) {
	for in, want := range map[string]time.Duration{"12h": 12 * time.Hour, "30d": 30 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "90m": 90 * time.Minute, "0": 0} {
		if got, err := parseAge(in); err != nil || got != want {
			t.Errorf("parseAge(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "-1h", "1.5d", "d", "3x"} {
		if _, err := parseAge(in); err == nil {
			t.Errorf("parseAge(%q): no error", in)
		}
	}
}
