// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"testing"

	"github.com/kflow-dev/kflow/tools/vmtest/internal/guest"
)

// TestConsoleFilter feeds a console stream in every chunk size: only the
// test's bytes pass, exactly, and the exit status is read from the marker.
func TestConsoleFilter(t *testing.T) {
	const nonce = "0123abcd"
	test := "=== RUN   TestX\n--- PASS: TestX (0.00s)\nPASS\nno newline at the end"
	stream := "[    0.1] kernel noise\r\n\n" + guest.StartMarker(nonce) + "\n" + test +
		"\n" + guest.ExitMarker(nonce, 3) + "\n[    9.9] reboot: Power down\r\n"
	for size := 1; size <= len(stream); size++ {
		var out bytes.Buffer
		f := newConsoleFilter(&out, nonce)
		for i := 0; i < len(stream); i += size {
			if _, err := f.Write([]byte(stream[i:min(i+size, len(stream))])); err != nil {
				t.Fatal(err)
			}
		}
		f.Flush()
		if out.String() != test {
			t.Fatalf("chunks of %d: output %q, want %q", size, out.String(), test)
		}
		if f.status != 3 {
			t.Fatalf("chunks of %d: status %d, want 3", size, f.status)
		}
	}
}

// TestConsoleFilterNoExit: a VM that stops early yields no status and
// keeps what the test printed.
func TestConsoleFilterNoExit(t *testing.T) {
	var out bytes.Buffer
	f := newConsoleFilter(&out, "ff")
	_, _ = f.Write([]byte("boot\n" + guest.StartMarker("ff") + "\npartial <<<vmtest-ex"))
	f.Flush()
	if out.String() != "partial <<<vmtest-ex" || f.status != -1 {
		t.Fatalf("output %q status %d", out.String(), f.status)
	}
}

func TestGuestArgs(t *testing.T) {
	var dirs []string
	got := guestArgs([]string{"-test.paniconexit0", "-test.testlogfile=/tmp/x/testlog.txt",
		"-test.gocoverdir=/tmp/cov", "-test.run=^TestA$"}, &dirs)
	want := []string{"-test.paniconexit0", "-test.gocoverdir=/tmp/cov", "-test.run=^TestA$"}
	if len(got) != len(want) || len(dirs) != 1 || dirs[0] != "/tmp/cov" {
		t.Fatalf("got %q dirs %q", got, dirs)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}
