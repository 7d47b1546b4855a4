// SPDX-License-Identifier: Apache-2.0

package server

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsgReader reads up to len(hdrs) datagrams per recvmmsg(2) call into
// buffers it owns, each with its source address and its control messages
// (SO_RXQ_OVFL), without allocating: golang.org/x/net's ReadBatch made a
// net.UDPAddr per datagram, the collector's main garbage. It waits for
// the socket through the runtime's poller, so read deadlines and Close
// end a read as for any net.Conn.
type mmsgReader struct {
	rc    syscall.RawConn
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // large enough for either family
	oob   []byte
	bufs  []byte
	size  int // of each buffer
	cs    int // control space of each datagram
	// The result of the last call, set inside rc.Read's callback.
	n     int
	errno syscall.Errno
	read  func(fd uintptr) bool
}

// mmsghdr is struct mmsghdr: a msghdr and the length received.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

func newMMsgReader(rc syscall.RawConn, batch, size int) *mmsgReader {
	r := &mmsgReader{
		rc:    rc,
		hdrs:  make([]mmsghdr, batch),
		iovs:  make([]unix.Iovec, batch),
		names: make([]unix.RawSockaddrInet6, batch),
		bufs:  make([]byte, batch*size),
		size:  size,
		cs:    unix.CmsgSpace(4),
	}
	r.oob = make([]byte, batch*r.cs)
	for i := range r.hdrs {
		r.iovs[i].Base = &r.bufs[i*size]
		r.iovs[i].SetLen(size)
		h := &r.hdrs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
		h.Control = &r.oob[i*r.cs]
	}
	r.read = r.recvmmsg
	return r
}

// recvmmsg is the callback of rc.Read: false asks the poller to wait
// until the socket is readable.
//
// The call is raw (no entersyscall/exitsyscall): with MSG_DONTWAIT it
// never blocks, and every non-raw system call wakes the runtime's sysmon
// thread when it sleeps, which then polls every 20 µs for a millisecond
// or more. Between bursts of datagrams the collector is idle, so each
// burst woke it again: 7 % of the collector's CPU in
// BenchmarkCollectorReplay went to sysmon, and half its context switches.
func (r *mmsgReader) recvmmsg(fd uintptr) bool {
	for i := range r.hdrs {
		h := &r.hdrs[i].hdr
		h.Namelen = uint32(unsafe.Sizeof(r.names[i]))
		h.SetControllen(r.cs)
		h.Flags = 0
	}
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(len(r.hdrs)), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		r.n, r.errno = int(n), e
		return true
	}
}

// Read reads at least one datagram and returns how many it read.
func (r *mmsgReader) Read() (int, error) {
	r.n, r.errno = 0, 0
	if err := r.rc.Read(r.read); err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, fmt.Errorf("recvmmsg: %w", r.errno)
	}
	return r.n, nil
}

// Datagram returns the i-th datagram of the last Read, its source and its
// control messages. b is valid until the next Read.
func (r *mmsgReader) Datagram(i int) (b []byte, from netip.AddrPort, oob []byte) {
	h := &r.hdrs[i]
	b = r.bufs[i*r.size : i*r.size+int(h.len)]
	oob = r.oob[i*r.cs : i*r.cs+int(h.hdr.Controllen)]
	return b, sockaddrAddrPort(&r.names[i], h.hdr.Namelen), oob
}

// sockaddrAddrPort returns the address and port of an AF_INET or AF_INET6
// socket address (IPv4-mapped IPv6 addresses stay as they are).
func sockaddrAddrPort(sa *unix.RawSockaddrInet6, l uint32) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		if l < unix.SizeofSockaddrInet4 {
			return netip.AddrPort{}
		}
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port(sa4.Port))
	case unix.AF_INET6:
		if l < unix.SizeofSockaddrInet6 {
			return netip.AddrPort{}
		}
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port(sa.Port))
	}
	return netip.AddrPort{}
}

// port converts a port in network byte order, as the kernel stores it.
func port(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return binary.BigEndian.Uint16(b[:])
}
