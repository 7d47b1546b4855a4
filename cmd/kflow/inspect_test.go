// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/bpf"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// What the prog, map, link and net tests share: a datapath loaded with
// its pins on a private bpffs, attached to one end of a veth pair inside
// a test namespace.

type dpFixture struct {
	p        *testenv.Pair
	d        *bpf.Datapath
	pin      string
	hook     bpf.Hook
	released bool
}

// inspectHooks are the hooks the tests attach with.
func inspectHooks() []bpf.Hook {
	hooks := []bpf.Hook{bpf.HookTC, bpf.HookXDP}
	if bpf.HaveTCX() {
		hooks = append([]bpf.Hook{bpf.HookTCX}, hooks...)
	}
	return hooks
}

// hookName names a hook's golden files: XDP takes egress with TCX or TC.
func hookName(hook bpf.Hook) string {
	if hook != bpf.HookXDP {
		return string(hook)
	}
	if bpf.HaveTCX() {
		return "xdp_tcx"
	}
	return "xdp_tc"
}

// mountBPFFS mounts a private bpffs for a test's pins.
func mountBPFFS(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		t.Fatalf("mount bpffs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

func newDatapath(t *testing.T, hook bpf.Hook) *dpFixture {
	t.Helper()
	return newDatapathConfig(t, hook, bpf.Config{})
}

// newDatapathConfig is newDatapath with datapath options (PinDir is set).
func newDatapathConfig(t *testing.T, hook bpf.Hook, cfg bpf.Config) *dpFixture {
	t.Helper()
	testenv.RequirePrivileged(t)
	f := &dpFixture{p: testenv.NewPair(t), hook: hook}
	// No IPv6 housekeeping: the flow maps hold only the test's traffic.
	if err := f.p.DisableIPv6(); err != nil {
		t.Fatal(err)
	}
	f.pin = filepath.Join(mountBPFFS(t), "kflow")
	cfg.PinDir = f.pin
	d, err := bpf.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.d = d
	t.Cleanup(func() {
		if !f.released {
			_ = d.Close()
		}
	})
	err = f.p.A.Do(func() error {
		_, err := d.Attach(f.p.AIf, hook)
		return err
	})
	if err != nil {
		t.Fatalf("attach %s: %v", hook, err)
	}
	return f
}

// release stops "the exporter" leaving its programs attached and pinned.
func (f *dpFixture) release(t *testing.T) {
	t.Helper()
	if err := f.d.Release(); err != nil {
		t.Fatal(err)
	}
	f.released = true
}

// run runs kflow in the host namespace, or in A's with inA.
func (f *dpFixture) run(t *testing.T, inA bool, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	var code int
	do := func() error {
		code = run(context.Background(), args, &stdout, &stderr)
		return nil
	}
	if inA {
		if err := f.p.A.Do(do); err != nil {
			t.Fatal(err)
		}
	} else {
		_ = do()
	}
	return code, stdout.String(), stderr.String()
}

// mustRun is run that fails the test unless kflow exits 0 silently.
func (f *dpFixture) mustRun(t *testing.T, inA bool, args ...string) string {
	t.Helper()
	code, out, errOut := f.run(t, inA, args...)
	if code != exitOK || errOut != "" {
		t.Fatalf("kflow %s: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
	}
	return out
}

var masks = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`(?m)^\d+:`), "ID:"},
	{regexp.MustCompile(`map_ids [\d,]*`), "map_ids IDS"},
	{regexp.MustCompile(`tag [0-9a-f]+`), "tag TAG"},
	{regexp.MustCompile(`loaded_at \S+`), "loaded_at TIME"},
	{regexp.MustCompile(`holds map \d+`), "holds map ID"},
	{regexp.MustCompile(`map \d+`), "map ID"},
	{regexp.MustCompile(`\bentries \d+`), "entries N"},
}

// mask replaces what changes from run to run: ids, tags, times, the pin
// directory and the pair's names and addresses.
func (f *dpFixture) mask(s string) string {
	s = strings.NewReplacer(f.pin, "PINDIR", f.p.AIf, "IFACE", f.p.BIf, "PEER",
		f.p.A4.String(), "A4", f.p.B4.String(), "B4").Replace(s)
	for _, m := range masks {
		s = m.re.ReplaceAllString(s, m.with)
	}
	return s
}

// maskTable masks a table's id columns (0-based) and joins its cells with
// one space, since widths follow the ids.
func (f *dpFixture) maskTable(s string, idCols ...int) string {
	if s == "" {
		return ""
	}
	var b strings.Builder
	for i, line := range strings.Split(strings.TrimRight(f.mask(s), "\n"), "\n") {
		cells := strings.Fields(line)
		if i > 0 {
			for _, c := range idCols {
				if c < len(cells) {
					cells[c] = "ID"
				}
			}
		}
		fmt.Fprintln(&b, strings.Join(cells, " "))
	}
	return b.String()
}
