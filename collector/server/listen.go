// SPDX-License-Identifier: Apache-2.0

package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Default listening addresses: NetFlow, IPFIX and sFlow over UDP on IPv4
// and IPv6 (every port takes every version: 2055 NetFlow's, 4739 IPFIX's,
// 9995 nfcapd's, 6343 sFlow's), IPFIX over TCP.
var DefaultListen = []string{"udp://[::]:2055", "udp://[::]:4739", "udp://[::]:9995", "udp://[::]:6343", "tcp://[::]:4739"}

// DefaultReceiveBuffer is the UDP socket receive buffer asked for.
const DefaultReceiveBuffer = 32 << 20

// Endpoint is a parsed --listen value.
type Endpoint struct {
	Network string // "udp" or "tcp"
	Addr    string // host:port
}

func (e Endpoint) String() string { return e.Network + "://" + e.Addr }

// ParseEndpoint parses udp://HOST:PORT or tcp://HOST:PORT. An empty host
// means every address, IPv4 and IPv6.
func ParseEndpoint(s string) (Endpoint, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Endpoint{}, fmt.Errorf("listen address %q: %w", s, err)
	}
	if u.Scheme != "udp" && u.Scheme != "tcp" {
		return Endpoint{}, fmt.Errorf("listen address %q: want udp://HOST:PORT or tcp://HOST:PORT", s)
	}
	if u.Path != "" || u.RawQuery != "" || u.User != nil {
		return Endpoint{}, fmt.Errorf("listen address %q: unexpected path, query or user", s)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		return Endpoint{}, fmt.Errorf("listen address %q: no port", s)
	}
	if host == "" {
		host = "::"
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return Endpoint{}, fmt.Errorf("listen address %q: host must be an IP address", s)
	}
	return Endpoint{Network: u.Scheme, Addr: net.JoinHostPort(host, port)}, nil
}

// setRxqOvfl asks the kernel to report its drop counter with every
// datagram (SO_RXQ_OVFL) and sets the receive buffer (SO_RCVBUFFORCE when
// privileged, else SO_RCVBUF, capped by net.core.rmem_max).
func setSockopts(rc syscall.RawConn, rcvbuf int) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1); err != nil {
			serr = fmt.Errorf("set SO_RXQ_OVFL: %w", err)
			return
		}
		if rcvbuf > 0 {
			if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf); err != nil {
				if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf); err != nil {
					serr = fmt.Errorf("set SO_RCVBUF %d: %w", rcvbuf, err)
				}
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}

func listenUDP(ctx context.Context, addr string, rcvbuf int) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error { return setSockopts(rc, rcvbuf) }}
	pc, err := lc.ListenPacket(ctx, "udp", addr)
	if err != nil && isWildcard6(addr) && errors.Is(err, unix.EAFNOSUPPORT) {
		// No IPv6 on this host: every IPv4 address instead.
		_, port, _ := net.SplitHostPort(addr)
		pc, err = lc.ListenPacket(ctx, "udp4", net.JoinHostPort("0.0.0.0", port))
	}
	if err != nil {
		return nil, fmt.Errorf("listen udp %s: %w", addr, err)
	}
	return pc.(*net.UDPConn), nil
}

func listenTCP(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil && isWildcard6(addr) && errors.Is(err, unix.EAFNOSUPPORT) {
		_, port, _ := net.SplitHostPort(addr)
		l, err = lc.Listen(ctx, "tcp4", net.JoinHostPort("0.0.0.0", port))
	}
	if err != nil {
		return nil, fmt.Errorf("listen tcp %s: %w", addr, err)
	}
	return l, nil
}

func isWildcard6(addr string) bool {
	h, _, err := net.SplitHostPort(addr)
	return err == nil && h == "::"
}

// listener is one socket and its counters.
type listener struct {
	name    string
	pc      net.PacketConn // UDP
	ln      net.Listener   // TCP
	packets atomic.Uint64
	drops   atomic.Uint64 // last SO_RXQ_OVFL value seen
	conns   atomic.Uint64
	refused atomic.Uint64
}

func (l *listener) stats() ListenerStats {
	return ListenerStats{Addr: l.name, Packets: l.packets.Load(), KernelDrops: l.drops.Load(),
		Conns: l.conns.Load(), ConnsRefused: l.refused.Load()}
}

// rxqOvfl returns the drop counter of an SO_RXQ_OVFL control message. It
// runs for every datagram, so it parses in place rather than allocating
// the list unix.ParseSocketControlMessage returns.
func rxqOvfl(oob []byte) (uint32, bool) {
	for len(oob) > 0 {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return 0, false
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SO_RXQ_OVFL && len(data) >= 4 {
			return binary.NativeEndian.Uint32(data), true
		}
		oob = rest
	}
	return 0, false
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, context.Canceled) || isTimeout(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func listenerName(network string, a net.Addr) string {
	s := a.String()
	if ap, err := netip.ParseAddrPort(s); err == nil {
		s = ap.String()
	}
	return network + "://" + strings.TrimPrefix(s, network+"://")
}
