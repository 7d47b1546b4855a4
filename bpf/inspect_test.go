// SPDX-License-Identifier: Apache-2.0

package bpf

import (
	"errors"
	"testing"

	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/tools/testenv"
)

// TestLoadedLinksWhileAttaching: listing the links while another
// goroutine attaches and detaches XDP links (every kernel kflow supports
// has them; TCX links came in 6.6), as another process may,
// never fails. A link has its id before the kernel settles it, and the
// kernel answers EAGAIN for it meanwhile; the listing reads on past it.
func TestLoadedLinksWhileAttaching(t *testing.T) {
	testenv.RequirePrivileged(t)
	p := testenv.NewPair(t)
	d := loadTest(t, Config{MapEntries: 16})
	const attaches, listings = 20000, 2000
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- p.A.Do(func() error {
			for range attaches {
				select {
				case <-stop:
					return nil
				default:
				}
				l, err := link.AttachXDP(link.XDPOptions{Program: d.objs.KflowXdp, Interface: p.AIndex})
				if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST) {
					// The listing holds the last link open: the
					// program is attached until it lets go.
					continue
				}
				if err != nil {
					return err
				}
				if err := l.Close(); err != nil {
					return err
				}
			}
			return nil
		})
	}()
	for n := range listings {
		if _, err := LoadedLinks(""); err != nil {
			close(stop)
			<-done
			t.Fatalf("listing %d: %v", n, err)
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("attach: %v", err)
	}
}
