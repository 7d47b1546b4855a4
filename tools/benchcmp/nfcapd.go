// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// nfcapd receives every row's export on A's loopback; nfdump reads its
// files back. nfdump is the common yardstick: every probe's records go
// through the same collector and the same reader.

const nfcapdPort = 9995

// Nfcapd is a running nfcapd.
type Nfcapd struct {
	proc *Proc
	Dir  string
}

// StartNfcapd starts nfcapd in A, writing under dir (which it creates),
// rotating hourly: one run makes one file.
func (e *Env) StartNfcapd(dir string, extra ...string) (*Nfcapd, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	args := append([]string{"-w", dir, "-b", "127.0.0.1", "-p", strconv.Itoa(nfcapdPort), "-t", "3600", "-B", "33554432"}, extra...)
	p, err := e.Start(e.A, "nfcapd", args...)
	if err != nil {
		return nil, err
	}
	// Ready when the port is bound: nfcapd prints nothing reliable.
	ok := waitFor(5*time.Second, func() bool {
		out, _ := exec.Command("ip", "netns", "exec", e.A.Name, "ss", "-Hlun", "sport", "= :"+strconv.Itoa(nfcapdPort)).Output()
		return len(strings.TrimSpace(string(out))) > 0 || p.Exited()
	})
	if !ok || p.Exited() {
		p.kill()
		return nil, fmt.Errorf("nfcapd did not start: %s", lastLines(p.Output(), 5))
	}
	return &Nfcapd{proc: p, Dir: dir}, nil
}

// Stop ends nfcapd cleanly: it writes and closes its file.
func (n *Nfcapd) Stop() error {
	if err := n.proc.Stop(syscall.SIGTERM, 20*time.Second); err != nil {
		return fmt.Errorf("nfcapd: %w: %s", err, lastLines(n.proc.Output(), 5))
	}
	return nil
}

// nfdumpFormat prints one flow per line: addresses, ports, protocol,
// packets, bytes. -N: plain numbers; -6: IPv6 addresses in full; -q: no
// header or summary.
const nfdumpFormat = "fmt:%sa %da %sp %dp %pr %pkt %byt"

// ReadNfdump reads every flow under dir and sums them by key.
func ReadNfdump(dir string) (Truth, int, error) {
	cmd := exec.Command("nfdump", "-R", dir, "-q", "-N", "-6", "-o", nfdumpFormat)
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return nil, 0, fmt.Errorf("nfdump -R %s: %w: %s", dir, err, ee.Stderr)
		}
		return nil, 0, err
	}
	return parseNfdump(string(out))
}

// parseNfdump parses lines of nfdumpFormat. nfdump prints an ICMP flow's
// type and code as the destination port "type.code".
func parseNfdump(s string) (Truth, int, error) {
	t := Truth{}
	records := 0
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || sc.Text() == "No matching flows" {
			continue
		}
		if len(f) != 7 {
			return nil, 0, fmt.Errorf("nfdump line %q: %d fields", sc.Text(), len(f))
		}
		src, err1 := netip.ParseAddr(f[0])
		dst, err2 := netip.ParseAddr(f[1])
		sp, err3 := parsePort(f[2])
		dp, err4 := parsePort(f[3])
		proto, err5 := parseProto(f[4])
		pkts, err6 := strconv.ParseUint(f[5], 10, 64)
		byts, err7 := strconv.ParseUint(f[6], 10, 64)
		for _, err := range []error{err1, err2, err3, err4, err5, err6, err7} {
			if err != nil {
				return nil, 0, fmt.Errorf("nfdump line %q: %w", sc.Text(), err)
			}
		}
		if proto == 1 || proto == 58 {
			sp = 0
		}
		t.Add(Key{Src: src.Unmap(), Dst: dst.Unmap(), Proto: proto, SrcPort: sp, DstPort: dp}, pkts, byts)
		records++
	}
	return t, records, sc.Err()
}

func parsePort(s string) (uint16, error) {
	if a, b, ok := strings.Cut(s, "."); ok { // ICMP type.code
		t, err1 := strconv.ParseUint(a, 10, 8)
		c, err2 := strconv.ParseUint(b, 10, 8)
		if err1 != nil || err2 != nil {
			return 0, fmt.Errorf("port %q", s)
		}
		return uint16(t)<<8 | uint16(c), nil
	}
	p, err := strconv.ParseUint(s, 10, 16)
	return uint16(p), err
}

var protoNames = map[string]uint8{"ICMP": 1, "TCP": 6, "UDP": 17, "ICMP6": 58, "IPv6-ICMP": 58, "SCTP": 132}

func parseProto(s string) (uint8, error) {
	if p, ok := protoNames[strings.ToUpper(s)]; ok {
		return p, nil
	}
	p, err := strconv.ParseUint(s, 10, 8)
	return uint8(p), err
}

// splitPhases splits reported flows by traffic phase.
func splitPhases(t Truth) map[string]Truth {
	out := map[string]Truth{}
	for k, c := range t {
		ph := phaseOf(k.Src)
		if out[ph] == nil {
			out[ph] = Truth{}
		}
		out[ph].Add(k, c.Packets, c.Bytes)
	}
	return out
}

// dirSize is the total size of the files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// waitFor polls cond every 50ms for at most d.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
