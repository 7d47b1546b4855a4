// SPDX-License-Identifier: Apache-2.0

package testenv

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Unread returns the bytes waiting in the receive queues of the sockets
// of network ("udp" or "tcp") whose local port is port (any address, IPv4
// and IPv6), as /proc/net/udp and tcp show them (for a listening TCP
// socket: the connections not yet accepted), inside ns, or in the test
// process's own namespace when ns is nil. Zero once the processes that own
// them have read everything: a test that stopped the senders waits for it
// before stopping a collector, so nothing sent is left unread.
func Unread(ns *NS, network string, port int) (int, error) {
	if network != "udp" && network != "tcp" {
		return 0, fmt.Errorf("unread: network %q: want udp or tcp", network)
	}
	total := 0
	read := func() error {
		for _, f := range []string{network, network + "6"} {
			// thread-self: /proc/net is the namespace of the thread
			// group leader, not of a thread locked inside ns.
			b, err := os.ReadFile("/proc/thread-self/net/" + f)
			if err != nil {
				return err
			}
			q, err := queued(b, port)
			if err != nil {
				return fmt.Errorf("/proc/net/%s: %w", f, err)
			}
			total += q
		}
		return nil
	}
	if ns == nil {
		return total, read()
	}
	if err := ns.Do(read); err != nil {
		return 0, fmt.Errorf("in %s: %w", ns.Name, err)
	}
	return total, nil
}

// WaitRead waits (at most Patience) until the sockets of network bound
// to port (inside ns, or in the test's own namespace when ns is nil) have
// nothing left to read.
func WaitRead(ns *NS, network string, port int) error {
	var q int
	var err error
	if WaitFor(Patience, func() bool {
		q, err = Unread(ns, network, port)
		return err == nil && q == 0
	}) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("%s port %d: %d bytes still unread after %v: %w", network, port, q, Patience, ErrTimeout)
}

// queued sums the rx_queue column of the lines of a /proc/net/udp or tcp
// table whose local port is port.
func queued(table []byte, port int) (int, error) {
	total := 0
	sc := bufio.NewScanner(bytes.NewReader(table))
	sc.Scan() // the header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// sl local_address rem_address st tx_queue:rx_queue ...
		if len(f) < 5 {
			return 0, fmt.Errorf("short line %q", sc.Text())
		}
		_, lport, ok := strings.Cut(f[1], ":")
		if !ok {
			return 0, fmt.Errorf("local address %q", f[1])
		}
		p, err := strconv.ParseUint(lport, 16, 16)
		if err != nil {
			return 0, fmt.Errorf("local port %q: %w", lport, err)
		}
		if int(p) != port {
			continue
		}
		_, rx, ok := strings.Cut(f[4], ":")
		if !ok {
			return 0, fmt.Errorf("queues %q", f[4])
		}
		q, err := strconv.ParseUint(rx, 16, 32)
		if err != nil {
			return 0, fmt.Errorf("rx_queue %q: %w", rx, err)
		}
		total += int(q)
	}
	return total, sc.Err()
}
