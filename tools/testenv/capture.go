// SPDX-License-Identifier: Apache-2.0

package testenv

import (
	"fmt"
	"net/netip"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// FlowKey identifies a flow the way kflow's datapath keys it (without
// interface and VLAN, which a test knows).
type FlowKey struct {
	Src, Dst           netip.Addr
	Proto              uint8
	SrcPort, DstPort   uint16
	ICMPType, ICMPCode uint8
	Dir                flow.Direction
}

func (k FlowKey) String() string {
	return fmt.Sprintf("%s %s:%d > %s:%d proto %d icmp %d/%d", k.Dir, k.Src, k.SrcPort, k.Dst, k.DstPort, k.Proto, k.ICMPType, k.ICMPCode)
}

// Counts are a flow's totals.
type Counts struct {
	Packets, Octets uint64
	TCPFlags        uint16
}

// Truth is per-flow ground truth.
type Truth map[FlowKey]Counts

// Add adds one packet.
func (t Truth) Add(k FlowKey, octets uint64, flags uint16) {
	c := t[k]
	c.Packets++
	c.Octets += octets
	c.TCPFlags |= flags
	t[k] = c
}

// KeyOf returns the truth key of a record.
func KeyOf(r *flow.Record) FlowKey {
	return FlowKey{Src: r.Src, Dst: r.Dst, Proto: r.Proto, SrcPort: r.SrcPort, DstPort: r.DstPort,
		ICMPType: r.ICMPType, ICMPCode: r.ICMPCode, Dir: r.Direction}
}

// Sum aggregates records by key.
func Sum(recs []flow.Record) Truth {
	t := Truth{}
	for i := range recs {
		k := KeyOf(&recs[i])
		c := t[k]
		c.Packets += recs[i].Packets
		c.Octets += recs[i].Octets
		c.TCPFlags |= recs[i].TCPFlags
		t[k] = c
	}
	return t
}

// Capture counts every IP packet crossing one interface with an AF_PACKET
// socket: an independent observer for ground truth.
type Capture struct {
	fd     int
	invert bool
	mu     sync.Mutex
	truth  Truth
	done   chan struct{}
	exited chan struct{}
	err    error
}

// StartCapture opens the capture on ifindex inside ns. With invert set the
// directions are those seen from the veth peer (the capture runs on B and
// kflow observes A): frames B sends are ingress at A.
func StartCapture(ns *NS, ifindex int, invert bool) (*Capture, error) {
	c := &Capture{invert: invert, truth: Truth{}, done: make(chan struct{}), exited: make(chan struct{})}
	err := ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		// FORCE: above net.core.rmem_max, which would cap a plain SO_RCVBUF.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20); err != nil {
			unix.Close(fd)
			return err
		}
		sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}
		if err := unix.Bind(fd, sa); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind packet socket: %w", err)
		}
		tv := unix.Timeval{Usec: 50000}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return err
		}
		c.fd = fd
		return nil
	})
	if err != nil {
		return nil, err
	}
	go c.loop()
	return c, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// captureQuiet is how long no frame may reach the capture socket before
// Stop ends it: frames the kernel was still delivering (a last ACK the
// peer's softirq had not processed yet) arrive within it.
const captureQuiet = 100 * time.Millisecond

// Stop ends the capture once no frame has reached the socket for a quiet
// period (counted by the kernel, not by how fast this process reads), then
// reads every frame queued by then, however busy the machine, and returns
// what it saw. It fails if the kernel dropped frames for the capture
// socket.
func (c *Capture) Stop() (Truth, error) {
	var drops uint64
	// PACKET_STATISTICS counts the frames the kernel queued since the
	// previous call: none during a whole quiet period means nothing was
	// in flight any more. Patience only bounds traffic that never stops.
	for deadline := time.Now().Add(Patience); ; {
		time.Sleep(captureQuiet)
		st, err := c.stats()
		if err != nil {
			close(c.done)
			<-c.exited
			unix.Close(c.fd)
			return nil, err
		}
		drops += uint64(st.Drops)
		if st.Packets == 0 || time.Now().After(deadline) {
			break
		}
	}
	close(c.done)
	<-c.exited
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.stats()
	unix.Close(c.fd)
	if err != nil {
		return nil, err
	}
	drops += uint64(st.Drops)
	if c.err != nil {
		return nil, c.err
	}
	if drops != 0 {
		return nil, fmt.Errorf("capture dropped %d frames: ground truth incomplete", drops)
	}
	return c.truth, nil
}

// stats reads and resets the socket's packet statistics.
func (c *Capture) stats() (unix.TpacketStats, error) {
	var st unix.TpacketStats
	sz := uint32(unsafe.Sizeof(st))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(c.fd), unix.SOL_PACKET, unix.PACKET_STATISTICS,
		uintptr(unsafe.Pointer(&st)), uintptr(unsafe.Pointer(&sz)), 0)
	if e != 0 {
		return st, fmt.Errorf("capture statistics: %w", e)
	}
	return st, nil
}

func (c *Capture) loop() {
	defer close(c.exited)
	buf := make([]byte, 65536)
	stopping := false
	for {
		if !stopping {
			select {
			case <-c.done:
				stopping = true
			default:
			}
		}
		rflags := 0
		if stopping {
			rflags = unix.MSG_DONTWAIT // read what is queued, then end
		}
		n, from, err := unix.Recvfrom(c.fd, buf, rflags)
		if err == unix.EAGAIN || err == unix.EINTR {
			if stopping && err == unix.EAGAIN {
				return
			}
			continue
		}
		if err != nil {
			c.mu.Lock()
			c.err = fmt.Errorf("capture: %w", err)
			c.mu.Unlock()
			return
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok {
			continue
		}
		out := ll.Pkttype == unix.PACKET_OUTGOING
		dir := flow.Ingress
		if out != c.invert {
			dir = flow.Egress
		}
		k, octets, flags, ok := ParseFrame(buf[:n])
		if !ok {
			continue
		}
		k.Dir = dir
		c.mu.Lock()
		c.truth.Add(k, octets, flags)
		c.mu.Unlock()
	}
}

// ParseFrame keys an untagged Ethernet frame the way the datapath does,
// independently of it: addresses, protocol, ports or ICMP type/code, L3
// octets from the IP header, TCP flags including NS.
func ParseFrame(b []byte) (k FlowKey, octets uint64, flags uint16, ok bool) {
	if len(b) < 14 {
		return k, 0, 0, false
	}
	et := uint16(b[12])<<8 | uint16(b[13])
	p := b[14:]
	var l4 []byte
	switch et {
	case 0x0800:
		if len(p) < 20 {
			return k, 0, 0, false
		}
		ihl := int(p[0]&0x0f) * 4
		k.Src = netip.AddrFrom4([4]byte(p[12:16]))
		k.Dst = netip.AddrFrom4([4]byte(p[16:20]))
		k.Proto = p[9]
		octets = uint64(p[2])<<8 | uint64(p[3])
		if (uint16(p[6])<<8|uint16(p[7]))&0x1fff == 0 && len(p) >= ihl {
			l4 = p[ihl:]
		}
	case 0x86dd:
		if len(p) < 40 {
			return k, 0, 0, false
		}
		k.Src = netip.AddrFrom16([16]byte(p[8:24]))
		k.Dst = netip.AddrFrom16([16]byte(p[24:40]))
		k.Proto = p[6]
		octets = 40 + (uint64(p[4])<<8 | uint64(p[5]))
		l4 = p[40:] // tests send no extension headers
	default:
		return k, 0, 0, false
	}
	switch k.Proto {
	case 6:
		if len(l4) >= 14 {
			flags = uint16(l4[12]&1)<<8 | uint16(l4[13])
		}
		fallthrough
	case 17, 132:
		if len(l4) >= 4 {
			k.SrcPort = uint16(l4[0])<<8 | uint16(l4[1])
			k.DstPort = uint16(l4[2])<<8 | uint16(l4[3])
		}
	case 1, 58:
		if len(l4) >= 2 {
			k.ICMPType, k.ICMPCode = l4[0], l4[1]
		}
	}
	return k, octets, flags, true
}

// Owns reports whether a is one of the pair's own addresses (IPv4-mapped
// IPv6 addresses included).
func (p *Pair) Owns(a netip.Addr) bool {
	a = a.Unmap()
	return a == p.A4 || a == p.B4 || a == p.A6 || a == p.B6
}

// OwnFlows keeps the flows of t between the pair's own addresses: not the
// kernel's IPv6 link-local and multicast housekeeping on a new link.
func (p *Pair) OwnFlows(t Truth) Truth {
	out := Truth{}
	for k, c := range t {
		if p.Owns(k.Src) && p.Owns(k.Dst) {
			out[k] = c
		}
	}
	return out
}
