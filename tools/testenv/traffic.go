// SPDX-License-Identifier: Apache-2.0

package testenv

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// Traffic generators. Each runs a bounded exchange between the two ends of
// a Pair and returns the ground truth it knows by construction, as seen on
// A's interface (egress: A sent it; ingress: A received it).

func (p *Pair) addrs(v6 bool) (a, b netip.Addr) {
	if v6 {
		return p.A6, p.B6
	}
	return p.A4, p.B4
}

// ipOverhead is the IP + UDP header length.
func ipOverhead(v6 bool) uint64 {
	if v6 {
		return 48
	}
	return 28
}

// UDPEcho sends one datagram of each size from A to B (source port
// srcPort, destination port dstPort) and B echoes each back. It waits for
// every echo, so the exchange is complete when it returns.
func (p *Pair) UDPEcho(v6 bool, srcPort, dstPort uint16, sizes []int) (Truth, error) {
	a, b := p.addrs(v6)
	network := "udp4"
	if v6 {
		network = "udp6"
	}
	var srv *net.UDPConn
	err := p.B.Do(func() (err error) {
		srv, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(b, dstPort)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("udp listen: %w", err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 65536)
		for range sizes {
			n, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if _, err := srv.WriteToUDPAddrPort(buf[:n], from); err != nil {
				return
			}
		}
	}()
	var cli *net.UDPConn
	err = p.A.Do(func() (err error) {
		cli, err = net.DialUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, srcPort)),
			net.UDPAddrFromAddrPort(netip.AddrPortFrom(b, dstPort)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("udp dial: %w", err)
	}
	defer cli.Close()
	truth := Truth{}
	out := FlowKey{Src: a, Dst: b, Proto: flow.ProtoUDP, SrcPort: srcPort, DstPort: dstPort, Dir: flow.Egress}
	in := FlowKey{Src: b, Dst: a, Proto: flow.ProtoUDP, SrcPort: dstPort, DstPort: srcPort, Dir: flow.Ingress}
	buf := make([]byte, 65536)
	for _, n := range sizes {
		if _, err := cli.Write(make([]byte, n)); err != nil {
			return nil, fmt.Errorf("udp send: %w", err)
		}
		truth.Add(out, uint64(n)+ipOverhead(v6), 0)
		_ = cli.SetReadDeadline(time.Now().Add(Patience))
		m, err := cli.Read(buf)
		if err != nil {
			return nil, fmt.Errorf("udp echo of %d bytes: %w", n, err)
		}
		if m != n {
			return nil, fmt.Errorf("udp echo: got %d bytes, sent %d", m, n)
		}
		truth.Add(in, uint64(n)+ipOverhead(v6), 0)
	}
	return truth, nil
}

// TCPSession opens a connection from A to B, sends the given writes, has
// B answer each with a reply of the same size, and closes both ends
// (SYN..FIN). Its packet counts depend on the kernel (ACKs, segmenting),
// so its truth comes from a Capture; it returns the client's port.
func (p *Pair) TCPSession(v6 bool, dstPort uint16, writes []int) (uint16, error) {
	_, b := p.addrs(v6)
	network := "tcp4"
	if v6 {
		network = "tcp6"
	}
	var ln net.Listener
	err := p.B.Do(func() (err error) {
		ln, err = net.Listen(network, netip.AddrPortFrom(b, dstPort).String())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("tcp listen: %w", err)
	}
	defer ln.Close()
	srvDone := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvDone <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(Patience))
		buf := make([]byte, 1<<20)
		for _, n := range writes {
			if _, err := io.ReadFull(c, buf[:n]); err != nil {
				srvDone <- fmt.Errorf("server read: %w", err)
				return
			}
			if _, err := c.Write(buf[:n]); err != nil {
				srvDone <- fmt.Errorf("server write: %w", err)
				return
			}
		}
		// Read until the client's FIN, then close: both sides FIN.
		_, err = io.Copy(io.Discard, c)
		srvDone <- err
	}()
	var conn net.Conn
	err = p.A.Do(func() (err error) {
		d := net.Dialer{Timeout: Patience}
		conn, err = d.Dial(network, netip.AddrPortFrom(b, dstPort).String())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("tcp dial: %w", err)
	}
	port := uint16(conn.LocalAddr().(*net.TCPAddr).Port)
	_ = conn.SetDeadline(time.Now().Add(Patience))
	buf := make([]byte, 1<<20)
	for _, n := range writes {
		if _, err := conn.Write(buf[:n]); err != nil {
			conn.Close()
			return 0, fmt.Errorf("client write: %w", err)
		}
		if _, err := io.ReadFull(conn, buf[:n]); err != nil {
			conn.Close()
			return 0, fmt.Errorf("client read: %w", err)
		}
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		conn.Close()
		return 0, err
	}
	// Wait for the server's FIN.
	_, rerr := io.Copy(io.Discard, conn)
	conn.Close()
	if err := <-srvDone; err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, rerr
	}
	return port, nil
}

// Ping sends count ICMP (or ICMPv6) echo requests with the given payload
// size from A to B over a raw socket and waits for each reply.
func (p *Pair) Ping(v6 bool, count, size int) (Truth, error) { return p.PingCode(v6, count, size, 0) }

// PingCode is Ping with the given ICMP code in the echo requests. Linux
// answers an echo whatever its code and copies the code into the reply,
// so the code tells apart flows that would otherwise share a key.
func (p *Pair) PingCode(v6 bool, count, size int, code uint8) (Truth, error) {
	a, b := p.addrs(v6)
	var fd int
	err := p.A.Do(func() (err error) {
		if v6 {
			fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
		} else {
			fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("raw icmp socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(Patience))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, err
	}
	var to unix.Sockaddr
	if v6 {
		to = &unix.SockaddrInet6{Addr: b.As16()}
	} else {
		to = &unix.SockaddrInet4{Addr: b.As4()}
	}
	reqType, repType, proto := uint8(8), uint8(0), flow.ProtoICMP
	hdr := uint64(20 + 8)
	if v6 {
		reqType, repType, proto = 128, 129, flow.ProtoICMPv6
		hdr = 40 + 8
	}
	truth := Truth{}
	out := FlowKey{Src: a, Dst: b, Proto: proto, ICMPType: reqType, ICMPCode: code, Dir: flow.Egress}
	in := FlowKey{Src: b, Dst: a, Proto: proto, ICMPType: repType, ICMPCode: code, Dir: flow.Ingress}
	id := uint16(0x4b00 | count&0xff)
	buf := make([]byte, 65536)
	for seq := 0; seq < count; seq++ {
		msg := make([]byte, 8+size)
		msg[0], msg[1] = reqType, code
		msg[4], msg[5] = byte(id>>8), byte(id)
		msg[6], msg[7] = byte(seq>>8), byte(seq)
		if !v6 {
			cs := checksum(msg)
			msg[2], msg[3] = byte(cs>>8), byte(cs)
		}
		if err := unix.Sendto(fd, msg, 0, to); err != nil {
			return nil, fmt.Errorf("send echo: %w", err)
		}
		truth.Add(out, hdr+uint64(size), 0)
		if err := awaitReply(fd, buf, v6, repType, id, uint16(seq)); err != nil {
			return nil, err
		}
		truth.Add(in, hdr+uint64(size), 0)
	}
	return truth, nil
}

func awaitReply(fd int, buf []byte, v6 bool, repType uint8, id, seq uint16) error {
	for tries := 0; tries < 64; tries++ {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("await echo reply %d: %w", seq, err)
		}
		m := buf[:n]
		if !v6 {
			if n < 20 {
				continue
			}
			m = m[int(m[0]&0x0f)*4:] // raw IPv4 sockets deliver the IP header
		}
		if len(m) >= 8 && m[0] == repType && uint16(m[4])<<8|uint16(m[5]) == id && uint16(m[6])<<8|uint16(m[7]) == seq {
			return nil
		}
	}
	return errors.New("no echo reply among 64 packets")
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// UDPBlast sends count datagrams of size bytes from A to B, spread over
// flows distinct source ports starting at basePort, to a B socket that
// absorbs them. It returns what A's egress carried: exactly the datagrams
// whose send succeeded.
func (p *Pair) UDPBlast(v6 bool, basePort uint16, flows, count, size int) (Truth, error) {
	return p.UDPBlastTo(v6, basePort, 9, flows, count, size)
}

// UDPBlastTo is UDPBlast to the given destination port.
func (p *Pair) UDPBlastTo(v6 bool, basePort, dstPort uint16, flows, count, size int) (Truth, error) {
	a, b := p.addrs(v6)
	network := "udp4"
	if v6 {
		network = "udp6"
	}
	var sink *net.UDPConn
	err := p.B.Do(func() (err error) {
		sink, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(b, dstPort)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("udp sink: %w", err)
	}
	defer sink.Close()
	var received atomic.Int64
	go func() {
		buf := make([]byte, 65536)
		for {
			if _, err := sink.Read(buf); err != nil {
				return
			}
			received.Add(1)
		}
	}()
	var sent int64
	// Before the sink closes, every packet sent must have reached it or
	// been dropped at its socket: one that arrived after would draw a
	// port unreachable, traffic the tests did not make (a slow machine
	// delivers the last packets well after they were sent).
	defer func() {
		WaitFor(Patience, func() bool {
			drops, err := Drops(p.B, int(dstPort))
			return err != nil || received.Load()+int64(drops) >= sent
		})
	}()
	truth := Truth{}
	payload := make([]byte, size)
	var to unix.Sockaddr
	if v6 {
		to = &unix.SockaddrInet6{Addr: b.As16(), Port: int(dstPort)}
	} else {
		to = &unix.SockaddrInet4{Addr: b.As4(), Port: int(dstPort)}
	}
	// One socket per flow, bound to its source port.
	socks := make([]int, flows)
	defer func() {
		for _, s := range socks {
			if s > 0 {
				unix.Close(s)
			}
		}
	}()
	err = p.A.Do(func() error {
		for i := range socks {
			fam := unix.AF_INET
			if v6 {
				fam = unix.AF_INET6
			}
			s, err := unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			socks[i] = s
			var sa unix.Sockaddr
			if v6 {
				sa = &unix.SockaddrInet6{Addr: a.As16(), Port: int(basePort) + i}
			} else {
				sa = &unix.SockaddrInet4{Addr: a.As4(), Port: int(basePort) + i}
			}
			if err := unix.Bind(s, sa); err != nil {
				return fmt.Errorf("bind port %d: %w", int(basePort)+i, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := 0; i < count; i++ {
		f := i % flows
		if err := unix.Sendto(socks[f], payload, 0, to); err != nil {
			if errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.EAGAIN) {
				continue // not sent: not on the wire
			}
			return nil, fmt.Errorf("send: %w", err)
		}
		sent++
		truth.Add(FlowKey{Src: a, Dst: b, Proto: flow.ProtoUDP, SrcPort: basePort + uint16(f), DstPort: dstPort, Dir: flow.Egress},
			uint64(size)+ipOverhead(v6), 0)
	}
	return truth, nil
}
