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
	err := eachTable(ns, network, func(table []byte) error {
		q, err := queued(table, port)
		total += q
		return err
	})
	return total, err
}

// eachTable calls fn with /proc/net's table of network and network+"6"
// (udp, tcp) inside ns, or in the process's own namespace when ns is nil.
func eachTable(ns *NS, network string, fn func(table []byte) error) error {
	read := func() error {
		for _, f := range []string{network, network + "6"} {
			// thread-self: /proc/net is the namespace of the thread
			// group leader, not of a thread locked inside ns.
			b, err := os.ReadFile("/proc/thread-self/net/" + f)
			if err != nil {
				return err
			}
			if err := fn(b); err != nil {
				return fmt.Errorf("/proc/net/%s: %w", f, err)
			}
		}
		return nil
	}
	if ns == nil {
		return read()
	}
	if err := ns.Do(read); err != nil {
		return fmt.Errorf("in %s: %w", ns.Name, err)
	}
	return nil
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

// Drops returns the datagrams the kernel dropped at the UDP sockets whose
// local port is port (IPv4 and IPv6), inside ns: the drops column of
// /proc/net/udp, which counts datagrams refused because the socket's
// receive buffer was full (and failed checksums).
func Drops(ns *NS, port int) (uint64, error) {
	var total uint64
	err := eachTable(ns, "udp", func(table []byte) error {
		n, err := dropped(table, port)
		total += n
		return err
	})
	return total, err
}

// dropped sums the last column (drops) of the lines of a /proc/net/udp
// table whose local port is port.
func dropped(table []byte, port int) (uint64, error) {
	var total uint64
	err := portLines(table, port, 13, func(f []string) error {
		n, err := strconv.ParseUint(f[len(f)-1], 10, 64)
		if err != nil {
			return fmt.Errorf("drops %q: %w", f[len(f)-1], err)
		}
		total += n
		return nil
	})
	return total, err
}

// queued sums the rx_queue column of the lines of a /proc/net/udp or tcp
// table whose local port is port.
func queued(table []byte, port int) (int, error) {
	total := 0
	// sl local_address rem_address st tx_queue:rx_queue ...
	err := portLines(table, port, 5, func(f []string) error {
		_, rx, ok := strings.Cut(f[4], ":")
		if !ok {
			return fmt.Errorf("queues %q", f[4])
		}
		q, err := strconv.ParseUint(rx, 16, 32)
		if err != nil {
			return fmt.Errorf("rx_queue %q: %w", rx, err)
		}
		total += int(q)
		return nil
	})
	return total, err
}

// portLines calls fn with the fields of each line of a /proc/net table
// whose local port is port; a line of fewer than minFields is an error.
func portLines(table []byte, port, minFields int, fn func(fields []string) error) error {
	sc := bufio.NewScanner(bytes.NewReader(table))
	sc.Scan() // the header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < minFields {
			return fmt.Errorf("short line %q", sc.Text())
		}
		_, lport, ok := strings.Cut(f[1], ":")
		if !ok {
			return fmt.Errorf("local address %q", f[1])
		}
		p, err := strconv.ParseUint(lport, 16, 16)
		if err != nil {
			return fmt.Errorf("local port %q: %w", lport, err)
		}
		if int(p) != port {
			continue
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return sc.Err()
}
