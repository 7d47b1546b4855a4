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
// of network ("udp" or "tcp") whose local port is port inside the
// namespace (any address, IPv4 and IPv6), as /proc/net/udp and tcp show
// them (for a listening TCP socket: the connections not yet accepted).
// Zero once the processes that own them have read everything: a test
// that stopped the senders waits for it before stopping a collector, so
// nothing sent is left unread.
func (n *NS) Unread(network string, port int) (int, error) {
	if network != "udp" && network != "tcp" {
		return 0, fmt.Errorf("unread: network %q: want udp or tcp", network)
	}
	total := 0
	err := n.Do(func() error {
		for _, f := range []string{network, network + "6"} {
			// thread-self: /proc/net is the namespace of the thread
			// group leader, not of this (locked) thread.
			b, err := os.ReadFile("/proc/thread-self/net/" + f)
			if err != nil {
				return err
			}
			q, err := queued(b, port)
			if err != nil {
				return fmt.Errorf("/proc/net/%s in %s: %w", f, n.Name, err)
			}
			total += q
		}
		return nil
	})
	return total, err
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

// WaitRead waits (at most Patience) until the sockets of network bound
// to port inside the namespace have nothing left to read.
func (n *NS) WaitRead(network string, port int) error {
	var q int
	var err error
	if WaitFor(Patience, func() bool {
		q, err = n.Unread(network, port)
		return err == nil && q == 0
	}) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("%s port %d in %s: %d bytes still unread after %v: %w", network, port, n.Name, q, Patience, ErrTimeout)
}
