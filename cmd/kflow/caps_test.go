// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/tools/testenv"
)

// capEff reads a process's effective capability set.
func capEff(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no CapEff in /proc/PID/status")
	return 0
}

// TestExporterDropsCapabilities runs the exporter binary as root: once
// attached it keeps only CAP_BPF and CAP_NET_ADMIN, says so, and still
// attaches an interface that appears afterwards.
func TestExporterDropsCapabilities(t *testing.T) {
	testenv.RequirePrivileged(t)
	bin := testenv.KflowBinary(t)
	p := testenv.NewPair(t)
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	proc := testenv.StartIn(t, p.A, bin, "exporter", "run", "-i", "kfa*", "-i", "late*", "--pin-dir", "",
		"--dir", filepath.Join(dir, "flows"), "--ready-file", ready, "--drain-interval", "100ms")
	if err := testenv.WaitFile(ready, testenv.Patience, proc); err != nil {
		t.Fatalf("exporter not ready: %v\n%s", err, proc.Output())
	}
	want := uint64(1)<<unix.CAP_BPF | uint64(1)<<unix.CAP_NET_ADMIN
	if got := capEff(t, proc.PID()); got != want {
		t.Errorf("effective capabilities %#x once attached, want %#x (CAP_BPF, CAP_NET_ADMIN)", got, want)
	}
	if !strings.Contains(proc.Output(), "dropped capabilities") {
		t.Errorf("the exporter did not say it dropped capabilities:\n%s", proc.Output())
	}
	// An interface that appears now is still attached.
	if err := p.A.Do(func() error {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "late0"}, PeerName: "late1"}
		if err := netlink.LinkAdd(v); err != nil {
			return err
		}
		for _, n := range []string{"late0", "late1"} {
			l, err := netlink.LinkByName(n)
			if err != nil {
				return err
			}
			if err := netlink.LinkSetUp(l); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !testenv.WaitFor(testenv.Patience, func() bool {
		return strings.Contains(proc.Output(), "interface=late0") && strings.Contains(proc.Output(), "interface=late1")
	}) {
		t.Errorf("late interfaces not attached after dropping capabilities:\n%s", proc.Output())
	}
	if err := proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := proc.Wait(testenv.Patience); err != nil {
		t.Errorf("exporter exit: %v\n%s", err, proc.Output())
	}
}
