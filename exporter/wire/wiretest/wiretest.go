// SPDX-License-Identifier: Apache-2.0

// Package wiretest holds test helpers for the wire format packages: golden
// hex files with annotations, pcap files checked with tshark, and the
// records, clock, sink, session adapter, message builders and benchmarks
// the IPFIX and NetFlow v9 tests share.
package wiretest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/tools/testenv"
)

// Span annotates Len octets at Off of a message.
type Span struct {
	Off, Len int
	Note     string
}

// FormatGolden renders messages as annotated hex: one line per span, the
// hex first, "#" and the note after. Octets no span covers are printed
// as "unannotated". ParseGolden reads the hex back, ignoring the notes.
func FormatGolden(title string, msgs [][]byte, spans [][]Span) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n# Regenerate with: go test -run Golden -update\n", title)
	for i, m := range msgs {
		fmt.Fprintf(&b, "\n# message %d, %d octets\n", i, len(m))
		off := 0
		for _, s := range spans[i] {
			if s.Off > off {
				line(&b, m[off:s.Off], "unannotated")
			}
			end := min(s.Off+s.Len, len(m))
			if s.Off < off || end < s.Off {
				continue
			}
			line(&b, m[s.Off:end], s.Note)
			off = end
		}
		if off < len(m) {
			line(&b, m[off:], "unannotated")
		}
		b.WriteString("--\n")
	}
	return b.String()
}

func line(b *strings.Builder, v []byte, note string) {
	for len(v) > 0 {
		n := min(len(v), 24)
		fmt.Fprintf(b, "%-48s # %s\n", hex.EncodeToString(v[:n]), note)
		v = v[n:]
		note = "..."
	}
}

// ParseGolden returns the messages of a file written by FormatGolden.
func ParseGolden(text string) ([][]byte, error) {
	var msgs [][]byte
	var cur []byte
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		l := sc.Text()
		if l == "--" {
			msgs = append(msgs, cur)
			cur = nil
			continue
		}
		if i := strings.IndexByte(l, '#'); i >= 0 {
			l = l[:i]
		}
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		v, err := hex.DecodeString(l)
		if err != nil {
			return nil, fmt.Errorf("golden line %q: %w", l, err)
		}
		cur = append(cur, v...)
	}
	return msgs, sc.Err()
}

// ReadHexLines reads a file of datagrams kept as text, one a line in
// hex; blank lines and lines starting with # are skipped.
func ReadHexLines(tb testing.TB, path string) [][]byte {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		b, err := hex.DecodeString(l)
		if err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		out = append(out, b)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// Golden compares msgs with the golden file path, or rewrites the file
// when update is set.
func Golden(t *testing.T, path string, update bool, title string, msgs [][]byte, spans [][]Span) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, []byte(FormatGolden(title, msgs, spans)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	want, err := ParseGolden(string(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != len(msgs) {
		t.Fatalf("%d messages, golden file has %d", len(msgs), len(want))
	}
	for i := range msgs {
		if !bytes.Equal(msgs[i], want[i]) {
			t.Errorf("message %d differs from %s:\ngot  %x\nwant %x", i, path, msgs[i], want[i])
		}
	}
}

// WritePCAP writes payloads as IPv4/UDP datagrams from 198.18.0.1 to
// 198.18.0.2:port in a classic pcap file (Ethernet link type).
func WritePCAP(path string, port uint16, payloads [][]byte) error {
	var b bytes.Buffer
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 65535)
	binary.LittleEndian.PutUint32(hdr[20:], 1) // LINKTYPE_ETHERNET
	b.Write(hdr)
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, p := range payloads {
		frame := make([]byte, 14+20+8+len(p))
		copy(frame[0:6], []byte{2, 0, 0, 0, 0, 2})
		copy(frame[6:12], []byte{2, 0, 0, 0, 0, 1})
		binary.BigEndian.PutUint16(frame[12:], 0x0800)
		ip := frame[14:34]
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(p)))
		binary.BigEndian.PutUint16(ip[4:], uint16(i))
		ip[8] = 64
		ip[9] = 17
		copy(ip[12:16], []byte{198, 18, 0, 1})
		copy(ip[16:20], []byte{198, 18, 0, 2})
		var sum uint32
		for j := 0; j < 20; j += 2 {
			sum += uint32(binary.BigEndian.Uint16(ip[j:]))
		}
		for sum > 0xffff {
			sum = sum>>16 + sum&0xffff
		}
		binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
		udp := frame[34:42]
		binary.BigEndian.PutUint16(udp[0:], 50000)
		binary.BigEndian.PutUint16(udp[2:], port)
		binary.BigEndian.PutUint16(udp[4:], uint16(8+len(p)))
		copy(frame[42:], p)
		rec := make([]byte, 16)
		t := ts.Add(time.Duration(i) * time.Millisecond)
		binary.LittleEndian.PutUint32(rec[0:], uint32(t.Unix()))
		binary.LittleEndian.PutUint32(rec[4:], uint32(t.Nanosecond()/1000))
		binary.LittleEndian.PutUint32(rec[8:], uint32(len(frame)))
		binary.LittleEndian.PutUint32(rec[12:], uint32(len(frame)))
		b.Write(rec)
		b.Write(frame)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

var expertProblem = regexp.MustCompile(`(?i)malformed|\b(error|warn)\b`)

// Tshark writes payloads to a pcap, dissects it with tshark as cflow on
// port and returns the verbose dissection. When tshark is not installed it
// skips the test, or fails it with KFLOW_REQUIRE_PRIVILEGED=1 (CI);
// it fails the test when tshark's expert info reports malformed packets,
// errors or warnings.
func Tshark(t *testing.T, port uint16, payloads [][]byte) string {
	t.Helper()
	bin := testenv.RequireTool(t, "tshark")
	path := t.TempDir() + "/flows.pcap"
	if err := WritePCAP(path, port, payloads); err != nil {
		t.Fatal(err)
	}
	decode := fmt.Sprintf("udp.port==%d,cflow", port)
	out, err := exec.Command(bin, "-n", "-r", path, "-V", "-d", decode).CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	expert, err := exec.Command(bin, "-n", "-q", "-r", path, "-d", decode, "-z", "expert").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark -z expert: %v\n%s", err, expert)
	}
	if expertProblem.Match(expert) || bytes.Contains(out, []byte("Malformed")) {
		t.Errorf("tshark reports problems:\n%s", expert)
	}
	return string(out)
}
