// SPDX-License-Identifier: Apache-2.0

package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// Conn sends export messages to one collector.
type Conn interface {
	// Ensure makes sure a stream is open before a batch of messages. It
	// reports fresh when a new TCP connection started, so the caller
	// sends templates first. UDP is always ready.
	Ensure() (fresh bool, err error)
	// Send writes one message. After an error, a TCP Conn is closed and
	// the next Ensure reconnects after a backoff.
	Send(msg []byte) error
	// SendBatch writes several messages with as few system calls as the
	// transport allows (sendmmsg for UDP, writev for TCP). It returns how
	// many leading messages were sent; on error the rest were not.
	SendBatch(msgs [][]byte) (int, error)
	Close() error
}

// Undeliverer is a Conn (TCP) that can tell, after a send failed and the
// connection ended, how many bytes of whole messages it had written on
// that connection that the collector never acknowledged: they sat in the
// socket's send queue and are lost with the connection, though the
// writes that queued them succeeded.
type Undeliverer interface {
	// Undelivered returns those bytes for the last failure (once; 0 when
	// the kernel cannot tell).
	Undelivered() int64
}

// ErrBackoff is returned while a TCP Conn waits before reconnecting.
var ErrBackoff = errors.New("collector unreachable: waiting before reconnecting")

// ErrNotConnected is returned by Send on a TCP Conn that Ensure did not open.
var ErrNotConnected = errors.New("not connected to collector")

// Dial opens a Conn for the target. UDP never fails here for an
// unreachable collector; TCP connects lazily on the first Send.
func Dial(ctx context.Context, t Target) (Conn, error) {
	if t.TCP {
		return &tcpConn{target: t, ctx: ctx, dial: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			ns: newNetnsDialer(), backoff: backoff{min: 500 * time.Millisecond, max: 30 * time.Second}}, nil
	}
	c, err := (&net.Dialer{}).DialContext(ctx, "udp", t.Addr)
	if err != nil {
		return nil, fmt.Errorf("udp collector %s: %w", t.Addr, err)
	}
	u := &udpConn{c: c}
	if ua, ok := c.RemoteAddr().(*net.UDPAddr); ok && ua.IP.To4() != nil {
		u.batch4 = ipv4.NewPacketConn(c.(*net.UDPConn))
	} else {
		u.batch6 = ipv6.NewPacketConn(c.(*net.UDPConn))
	}
	return u, nil
}

type udpConn struct {
	c      net.Conn
	batch4 *ipv4.PacketConn
	batch6 *ipv6.PacketConn
	msgs   []ipv4.Message
	// noGSO is set once the kernel or the route refused a segmented
	// send: from then on every message is a datagram of its own.
	noGSO bool
	oob   []byte // one UDP_SEGMENT control message per GSO send
}

// maxBatch bounds the sends of one sendmmsg call.
const maxBatch = 64

// Bounds of one UDP GSO send (UDP_SEGMENT, Linux 4.18): the kernel's
// UDP_MAX_SEGMENTS, and a UDP payload that fits an IPv4 datagram.
const (
	gsoMaxSegments = 64
	gsoMaxBytes    = 65507
)

// gsoRun returns how many of msgs, from the first, go out in one GSO
// send: messages of the first one's length, and at most one shorter
// message to end the run (the kernel cuts a GSO payload into datagrams
// of one size, the last possibly shorter).
func gsoRun(msgs [][]byte) int {
	size := len(msgs[0])
	n, total := 1, size
	for n < len(msgs) && n < gsoMaxSegments && total+len(msgs[n]) <= gsoMaxBytes {
		l := len(msgs[n])
		if l > size || l == 0 {
			break
		}
		total += l
		n++
		if l < size {
			break
		}
	}
	return n
}

// SendBatch sends with sendmmsg. Messages of one length in a row go out
// as one UDP GSO send each (up to 64 messages): the stack is walked once
// for the run and the kernel (or the NIC) cuts it into the datagrams a
// collector receives, one message each, as separate sends would. When
// the kernel or the route refuses segmentation (no UDP_SEGMENT, IPsec,
// a path MTU below the message size), SendBatch goes on with one datagram
// per message, without losing any.
func (u *udpConn) SendBatch(msgs [][]byte) (int, error) {
	sent := 0
	for sent < len(msgs) {
		// runs[i] is how many messages u.msgs[i] carries.
		var runs [maxBatch]int
		u.msgs, u.oob = u.msgs[:0], u.oob[:0]
		for next := sent; next < len(msgs) && len(u.msgs) < maxBatch; {
			n := 1
			if !u.noGSO {
				n = gsoRun(msgs[next:])
			}
			m := ipv4.Message{Buffers: msgs[next : next+n]}
			if n > 1 {
				m.OOB = u.segmentCmsg(len(msgs[next]))
			}
			runs[len(u.msgs)] = n
			u.msgs = append(u.msgs, m)
			next += n
		}
		var n int
		var err error
		if u.batch4 != nil {
			n, err = u.batch4.WriteBatch(u.msgs, 0)
		} else {
			n, err = u.batch6.WriteBatch(u.msgs, 0)
		}
		if n < 0 { // sendmmsg failed on the first message
			n = 0
		}
		for _, r := range runs[:n] {
			sent += r
		}
		if err != nil && n < len(u.msgs) && runs[n] > 1 && gsoRefused(err) {
			// Nothing of the refused run was sent: send it again, and
			// everything after, without segmentation.
			u.noGSO = true
			continue
		}
		if err != nil {
			return sent, err
		}
		if n == 0 {
			return sent, fmt.Errorf("udp collector: sendmmsg sent nothing")
		}
	}
	return sent, nil
}

// segmentCmsg appends a UDP_SEGMENT control message for datagrams of
// size octets to u.oob and returns it.
func (u *udpConn) segmentCmsg(size int) []byte {
	start := len(u.oob)
	u.oob = append(u.oob, make([]byte, unix.CmsgSpace(2))...)
	b := u.oob[start:]
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = unix.SOL_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&b[unix.CmsgLen(0)])) = uint16(size)
	return b[:len(b):len(b)]
}

// gsoRefused reports whether a GSO send failed because of the
// segmentation itself: EINVAL (an unknown control message before Linux
// 4.18, a segment larger than the path MTU, checksums turned off) or EIO
// (IPsec, UDP-Lite, a device that cannot checksum).
func gsoRefused(err error) bool {
	return errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EIO) || errors.Is(err, unix.ENOPROTOOPT) ||
		errors.Is(err, unix.EOPNOTSUPP)
}

func (u *udpConn) Ensure() (bool, error) { return false, nil }

func (u *udpConn) Send(msg []byte) error {
	_, err := u.c.Write(msg)
	return err
}

func (u *udpConn) Close() error { return u.c.Close() }

// backoff doubles the wait after each failure, up to max.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
	until    time.Time
}

func (b *backoff) fail(now time.Time) {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	b.until = now.Add(b.cur)
}

func (b *backoff) reset() { b.cur, b.until = 0, time.Time{} }

type tcpConn struct {
	target  Target
	ctx     context.Context
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	ns      *netnsDialer
	mu      sync.Mutex
	c       net.Conn
	backoff backoff
	now     func() time.Time
	// written counts the bytes of whole messages written on the current
	// connection; undelivered is the unacknowledged part of them when it
	// failed.
	written, undelivered int64
}

func (t *tcpConn) clock() time.Time {
	if t.now != nil {
		return t.now()
	}
	return time.Now()
}

func (t *tcpConn) Ensure() (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.c != nil {
		return false, nil
	}
	now := t.clock()
	if now.Before(t.backoff.until) {
		return false, fmt.Errorf("tcp collector %s: %w", t.target.Addr, ErrBackoff)
	}
	c, err := t.ns.dial(t.ctx, t.dial, "tcp", t.target.Addr)
	if err != nil {
		t.backoff.fail(now)
		return false, fmt.Errorf("tcp collector %s: %w", t.target.Addr, err)
	}
	t.c = c
	t.written = 0
	t.backoff.reset()
	return true, nil
}

// fail ends the connection after a failed write, keeping what of the
// written messages the collector never acknowledged.
func (t *tcpConn) fail() {
	t.undelivered = max(0, t.unacked())
	t.c.Close()
	t.c = nil
	t.backoff.fail(t.clock())
}

// unacked returns the bytes of whole messages written on the current
// connection that the peer has not acknowledged, -1 if the kernel cannot
// tell.
func (t *tcpConn) unacked() int64 {
	tc, ok := t.c.(syscallConner)
	if !ok {
		return -1
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return -1
	}
	u := int64(-1)
	_ = rc.Control(func(fd uintptr) {
		ti, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil || ti.Bytes_acked == 0 {
			return
		}
		// bytes_acked counts the SYN too.
		u = max(0, t.written-int64(ti.Bytes_acked-1))
	})
	return u
}

type syscallConner interface {
	SyscallConn() (syscall.RawConn, error)
}

func (t *tcpConn) Undelivered() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.undelivered
	t.undelivered = 0
	return u
}

func (t *tcpConn) Send(msg []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.c == nil {
		return fmt.Errorf("tcp collector %s: %w", t.target.Addr, ErrNotConnected)
	}
	_ = t.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := t.c.Write(msg); err != nil {
		t.fail()
		return fmt.Errorf("tcp collector %s: %w", t.target.Addr, err)
	}
	t.written += int64(len(msg))
	return nil
}

func (t *tcpConn) SendBatch(msgs [][]byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.c == nil {
		return 0, fmt.Errorf("tcp collector %s: %w", t.target.Addr, ErrNotConnected)
	}
	_ = t.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	bufs := net.Buffers(append([][]byte(nil), msgs...))
	n, err := bufs.WriteTo(t.c)
	if err != nil {
		// Messages written whole before the error count as sent.
		sent := 0
		for _, m := range msgs {
			if n < int64(len(m)) {
				break
			}
			n -= int64(len(m))
			t.written += int64(len(m))
			sent++
		}
		t.fail()
		return sent, fmt.Errorf("tcp collector %s: %w", t.target.Addr, err)
	}
	for _, m := range msgs {
		t.written += int64(len(m))
	}
	return len(msgs), nil
}

func (t *tcpConn) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ns.close()
	if t.c == nil {
		return nil
	}
	err := t.c.Close()
	t.c = nil
	return err
}
