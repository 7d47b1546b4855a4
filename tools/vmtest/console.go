// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"io"

	"github.com/kflow-dev/kflow/tools/vmtest/internal/guest"
)

// consoleFilter takes the guest's serial console and passes on exactly
// the test's output: what comes before the start marker (the kernel's and
// init's own messages) is kept aside for diagnostics, what comes after the
// exit marker ends the stream and yields the test's status.
type consoleFilter struct {
	out    io.Writer
	start  []byte // "START\n"
	exit   []byte // "\nEXIT-PREFIX"
	state  int
	buf    []byte // unmatched bytes held back
	boot   bytes.Buffer
	tail   []byte // after the exit marker
	status int
}

const (
	stBoot = iota
	stTest
	stDone
)

// bootKeep bounds the boot log kept for diagnostics.
const bootKeep = 64 << 10

func newConsoleFilter(out io.Writer, nonce string) *consoleFilter {
	return &consoleFilter{
		out:    out,
		start:  []byte(guest.StartMarker(nonce) + "\n"),
		exit:   []byte("\n" + guest.ExitMarkerPrefix(nonce)),
		status: -1,
	}
}

func (f *consoleFilter) Write(p []byte) (int, error) {
	n := len(p)
	f.buf = append(f.buf, p...)
	for {
		switch f.state {
		case stBoot:
			i := bytes.Index(f.buf, f.start)
			if i < 0 {
				// Keep what could be the start of the marker.
				keep := max(0, len(f.buf)-len(f.start))
				f.keepBoot(f.buf[:keep])
				f.buf = append(f.buf[:0], f.buf[keep:]...)
				return n, nil
			}
			f.keepBoot(f.buf[:i])
			f.buf = append(f.buf[:0], f.buf[i+len(f.start):]...)
			f.state = stTest
		case stTest:
			i := bytes.Index(f.buf, f.exit)
			if i < 0 {
				keep := len(f.buf) - partialSuffix(f.buf, f.exit)
				if _, err := f.out.Write(f.buf[:keep]); err != nil {
					return n, err
				}
				f.buf = append(f.buf[:0], f.buf[keep:]...)
				return n, nil
			}
			if _, err := f.out.Write(f.buf[:i]); err != nil {
				return n, err
			}
			f.buf = append(f.buf[:0], f.buf[i+1:]...) // the marker, without our newline
			f.state = stDone
		case stDone:
			if len(f.tail) < bootKeep {
				f.tail = append(f.tail, f.buf...)
			}
			f.buf = f.buf[:0]
			if f.status < 0 {
				if s, ok := guest.ParseExit(string(f.tail)); ok {
					f.status = s
				}
			}
			return n, nil
		}
	}
}

// partialSuffix is the length of the longest suffix of b that is a proper
// prefix of marker.
func partialSuffix(b, marker []byte) int {
	for n := min(len(b), len(marker)-1); n > 0; n-- {
		if bytes.HasSuffix(b, marker[:n]) {
			return n
		}
	}
	return 0
}

func (f *consoleFilter) keepBoot(b []byte) {
	f.boot.Write(b)
	if f.boot.Len() > 2*bootKeep {
		rest := f.boot.Bytes()[f.boot.Len()-bootKeep:]
		f.boot.Reset()
		f.boot.Write(rest)
	}
}

// Flush writes out held-back bytes when the console closes early.
func (f *consoleFilter) Flush() {
	if f.state == stTest && len(f.buf) > 0 {
		_, _ = f.out.Write(f.buf)
		f.buf = f.buf[:0]
	}
	if f.state == stBoot {
		f.keepBoot(f.buf)
		f.buf = f.buf[:0]
	}
}

// BootLog is what the console printed before the test started (the last
// 64 KiB or so), and what came after the exit marker.
func (f *consoleFilter) BootLog() string {
	b := f.boot.Bytes()
	if len(b) > bootKeep {
		b = b[len(b)-bootKeep:]
	}
	return string(b) + string(f.tail)
}
