// SPDX-License-Identifier: Apache-2.0

package main

import (
	"net/netip"
	"os"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// A command name with a space and a parenthesis, as /proc prints it.
	s := "4242 (my (odd) prog) S 17 4242 4242 0 -1 4194560 1200 0 3 0 250 75 0 0 20 0 4 0 123 0 0\n"
	c, err := parseProcStat(s)
	if err != nil {
		t.Fatal(err)
	}
	if c.PPID != 17 || c.User != 2500*time.Millisecond || c.System != 750*time.Millisecond {
		t.Errorf("got %+v", c)
	}
	if _, err := parseProcStat("4242 (x) S 1 2"); err == nil {
		t.Error("short line accepted")
	}
	// This process's own stat parses.
	if _, err := readProcCPU(os.Getpid()); err != nil {
		t.Error(err)
	}
}

func TestParseVmHWM(t *testing.T) {
	s := "Name:\tkflow\nVmPeak:\t  123456 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10000 kB\n"
	n, err := parseVmHWM(s)
	if err != nil || n != 20480*1024 {
		t.Errorf("got %d, %v", n, err)
	}
	if _, err := parseVmHWM("Name:\tx\n"); err == nil {
		t.Error("missing VmHWM accepted")
	}
}

func TestParseSysStat(t *testing.T) {
	s := "cpu  100 5 50 1000 20 3 7 1 0 0\ncpu0 50 2 25 500 10 1 3 0 0 0\nintr 1 2 3\n"
	c, err := parseSysStat(s)
	if err != nil {
		t.Fatal(err)
	}
	// busy: user+nice+system+irq+softirq+steal = 100+5+50+3+7+1 = 166 ticks
	if c.Busy != 1660*time.Millisecond || c.Idle != 10200*time.Millisecond {
		t.Errorf("got %+v", c)
	}
}

func TestParseNfdump(t *testing.T) {
	out := "198.18.240.1 198.19.240.1 20000 80 TCP 7 826\n" +
		"198.18.240.1 198.19.240.1 20000 80 TCP 1 40\n" +
		"fd00:bc:1::1 fd00:bc:2::1 0 128.0 ICMP6 2 96\n" +
		"198.18.240.2 198.19.240.2 0 8.0 ICMP 1 28\n" +
		"No matching flows\n"
	tr, n, err := parseNfdump(out)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 || len(tr) != 3 {
		t.Fatalf("%d records, %d flows", n, len(tr))
	}
	k := Key{Src: netipMust("198.18.240.1"), Dst: netipMust("198.19.240.1"), Proto: 6, SrcPort: 20000, DstPort: 80}
	if c := tr[k]; c.Packets != 8 || c.Bytes != 866 {
		t.Errorf("tcp: %+v", c)
	}
	k6 := Key{Src: netipMust("fd00:bc:1::1"), Dst: netipMust("fd00:bc:2::1"), Proto: 58, DstPort: 128 << 8}
	if c := tr[k6]; c.Packets != 2 {
		t.Errorf("icmpv6: %+v", c)
	}
	if _, _, err := parseNfdump("1.2.3.4 5.6.7.8 1 2\n"); err == nil {
		t.Error("short line accepted")
	}
}

func netipMust(s string) netip.Addr { return netip.MustParseAddr(s) }
