// SPDX-License-Identifier: Apache-2.0

package ledger

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/tools/testenv"
)

func mountBPFFS(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		t.Fatalf("mount bpffs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// TestLedger: what one exporter drained but did not hand to a collector
// is found by the next one that adopts the pins, added to that
// collector's lost totals, which stay across further restarts; a new
// collector starts with nothing lost, a ledger that does not describe
// adopted maps is replaced.
func TestLedger(t *testing.T) {
	testenv.RequirePrivileged(t)
	dir := mountBPFFS(t)
	l, err := Open(dir, false, []string{"udp", "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	udp, tcp := l.Accounts()[0], l.Accounts()[1]
	started := l.Started()
	if started.IsZero() {
		t.Fatal("a new ledger has no start")
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.Drained(Counts{10, 1000}))
	must(l.Drained(Counts{5, 500}))
	must(udp.Handed(Counts{15, 1500}))
	must(tcp.Handed(Counts{4, 400}))
	must(l.Close()) // killed: the pin stays

	l, err = Open(dir, true, []string{"tcp", "udp", "nfv9"})
	if err != nil {
		t.Fatal(err)
	}
	tcp, udp, v9 := l.Accounts()[0], l.Accounts()[1], l.Accounts()[2]
	if !l.Started().Equal(started) {
		t.Errorf("adopted: started %v, want the first exporter's %v", l.Started(), started)
	}
	if f := tcp.Found(); f != (Counts{11, 1100}) || tcp.Lost() != f {
		t.Errorf("tcp: found %+v lost %+v, want 11 packets 1100 octets", f, tcp.Lost())
	}
	if udp.Found() != (Counts{}) || v9.Found() != (Counts{}) || v9.Lost() != (Counts{}) {
		t.Errorf("udp found %+v, nfv9 found %+v lost %+v: want nothing", udp.Found(), v9.Found(), v9.Lost())
	}
	if d := l.DrainedTotal(); d != (Counts{15, 1500}) {
		t.Errorf("drained %+v, want the predecessor's 15 packets 1500 octets", d)
	}
	must(l.Drained(Counts{2, 200}))
	must(tcp.Handed(Counts{1, 100}))
	must(l.Close())

	// The next one finds tcp's new loss and keeps the old one.
	l, err = Open(dir, true, []string{"tcp"})
	if err != nil {
		t.Fatal(err)
	}
	tcp = l.Accounts()[0]
	if tcp.Found() != (Counts{1, 100}) || tcp.Lost() != (Counts{12, 1200}) {
		t.Errorf("tcp: found %+v lost %+v, want 1/100 found, 12/1200 lost in all", tcp.Found(), tcp.Lost())
	}
	must(l.Close())

	// Maps not adopted: the ledger starts again.
	l, err = Open(dir, false, []string{"tcp"})
	if err != nil {
		t.Fatal(err)
	}
	if tcp = l.Accounts()[0]; tcp.Lost() != (Counts{}) || l.DrainedTotal() != (Counts{}) {
		t.Errorf("a fresh ledger has lost %+v drained %+v", tcp.Lost(), l.DrainedTotal())
	}
	if !l.Started().After(started) {
		t.Errorf("a fresh ledger started %v, not after the old one's %v", l.Started(), started)
	}
	must(l.Unpin())
	must(l.Close())
}
