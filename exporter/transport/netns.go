// SPDX-License-Identifier: Apache-2.0

package transport

import (
	"context"
	"fmt"
	"net"
	"runtime"

	"golang.org/x/sys/unix"
)

// netnsDialer dials in the network namespace that was current when it was
// made. A TCP Conn reconnects from whatever goroutine sends, and Go may run
// it on any thread: when that thread is in another namespace (a caller that
// entered one on a locked thread), the dial enters the remembered one on a
// thread of its own. A process whose threads share one namespace (the
// daemon) never switches, and so never needs CAP_SYS_ADMIN for it.
type netnsDialer struct {
	fd  int // the namespace, or -1
	ino uint64
}

func netnsInode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

func newNetnsDialer() *netnsDialer {
	d := &netnsDialer{fd: -1}
	fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return d // no procfs: dial wherever we are
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return d
	}
	d.fd, d.ino = fd, st.Ino
	return d
}

func (d *netnsDialer) dial(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), network, addr string) (net.Conn, error) {
	if d.fd < 0 {
		return dial(ctx, network, addr)
	}
	if ino, err := netnsInode("/proc/thread-self/ns/net"); err == nil && ino == d.ino {
		return dial(ctx, network, addr)
	}
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread stays locked: the runtime discards it afterwards
		// instead of reusing a thread in another namespace.
		runtime.LockOSThread()
		if err := unix.Setns(d.fd, unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("enter the exporter's network namespace: %w", err)}
			return
		}
		c, err := dial(ctx, network, addr)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

func (d *netnsDialer) close() {
	if d.fd >= 0 {
		unix.Close(d.fd)
		d.fd = -1
	}
}
