// SPDX-License-Identifier: Apache-2.0

package testenv

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NS is a named network namespace a test created.
type NS struct {
	Name   string
	handle netns.NsHandle
}

// Do runs fn on an OS thread that is inside the namespace. Sockets and
// netlink handles created by fn belong to the namespace.
func (n *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread is left locked, so the runtime discards it after
		// this goroutine: it never goes back to the pool inside the ns.
		runtime.LockOSThread()
		if err := netns.Set(n.handle); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", n.Name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Exec runs a command inside the namespace (ip netns exec). It needs
// iproute2 on the host: the helpers every test uses (NewPair, Sysctl,
// DisableIPv6) do not, so they also work in vmtest's minimal guests.
func (n *NS) Exec(name string, args ...string) ([]byte, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %v in %s: %w: %s", name, args, n.Name, err, out)
	}
	return out, nil
}

// Pair is two namespaces joined by a veth pair, with IPv4 addresses from
// 198.18.0.0/15 and IPv6 addresses from fd00::/8 on both ends.
type Pair struct {
	A, B       *NS
	AIf, BIf   string // veth names, in A and in B
	AIndex     int    // ifindex of AIf inside A
	BIndex     int
	A4, B4     netip.Addr
	A6, B6     netip.Addr
	AMAC, BMAC []byte
}

var seq atomic.Uint32

// NewPair creates the namespaces and the veth pair and removes them when
// the test ends. Offloads (TSO, GSO, GRO) are turned off so every frame on
// the veth is a wire-sized packet, and static neighbours avoid ARP and
// neighbour discovery traffic.
func NewPair(tb testing.TB) *Pair {
	tb.Helper()
	p, cleanup, err := NewPairE("test")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cleanup)
	return p
}

// NewPairE is NewPair for programs that are not tests: the namespaces are
// named kflow-PURPOSE-a-ID and -b-ID, and the caller runs cleanup.
func NewPairE(purpose string) (*Pair, func(), error) {
	n := seq.Add(1)
	id := fmt.Sprintf("%d-%d", os.Getpid()%100000, n)
	p := newPairAddrs(n)
	cleanup := func() {
		if p.A != nil {
			p.A.remove()
		}
		if p.B != nil {
			p.B.remove()
		}
	}
	var err error
	if p.A, err = newNS("kflow-" + purpose + "-a-" + id); err != nil {
		return nil, cleanup, err
	}
	if p.B, err = newNS("kflow-" + purpose + "-b-" + id); err != nil {
		cleanup()
		return nil, func() {}, err
	}
	if err := p.setup(); err != nil {
		cleanup()
		return nil, func() {}, fmt.Errorf("set up veth pair: %w", err)
	}
	return p, cleanup, nil
}

// NewPairIn is NewPairE with A an existing namespace (several pairs
// sharing one observed end): only B is created, and cleanup removes B,
// which takes the veth pair with it.
func NewPairIn(a *NS, purpose string) (*Pair, func(), error) {
	n := seq.Add(1)
	p := newPairAddrs(n)
	p.A = a
	var err error
	if p.B, err = newNS(fmt.Sprintf("kflow-%s-b-%d-%d", purpose, os.Getpid()%100000, n)); err != nil {
		return nil, func() {}, err
	}
	cleanup := func() { p.B.remove() }
	if err := p.setup(); err != nil {
		cleanup()
		return nil, func() {}, fmt.Errorf("set up veth pair: %w", err)
	}
	return p, cleanup, nil
}

// Recreate deletes the veth pair and creates it again with the same names
// and addresses (an interface unplugged and plugged back): the ends get new
// ifindexes.
func (p *Pair) Recreate() error {
	err := p.A.Do(func() error {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer h.Close()
		l, err := h.LinkByName(p.AIf)
		if err != nil {
			return err
		}
		return h.LinkDel(l)
	})
	if err != nil {
		return fmt.Errorf("delete %s: %w", p.AIf, err)
	}
	if err := p.setup(); err != nil {
		return fmt.Errorf("re-create %s: %w", p.AIf, err)
	}
	return nil
}

func newPairAddrs(n uint32) *Pair {
	return &Pair{
		AIf: "kfa" + fmt.Sprint(n), BIf: "kfb" + fmt.Sprint(n),
		A4: netip.AddrFrom4([4]byte{198, 18, byte(n), 1}),
		B4: netip.AddrFrom4([4]byte{198, 18, byte(n), 2}),
		A6: netip.MustParseAddr(fmt.Sprintf("fd00:18:%x::1", n)),
		B6: netip.MustParseAddr(fmt.Sprintf("fd00:18:%x::2", n)),
	}
}

// NewNS creates a named network namespace with its loopback up, for
// programs that are not tests; the caller runs the returned cleanup.
func NewNS(name string) (*NS, func(), error) {
	ns, err := newNS(name)
	if err != nil {
		return nil, func() {}, err
	}
	err = ns.Do(func() error {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer h.Close()
		lo, err := h.LinkByName("lo")
		if err != nil {
			return err
		}
		return h.LinkSetUp(lo)
	})
	if err != nil {
		ns.remove()
		return nil, func() {}, fmt.Errorf("loopback up in %s: %w", name, err)
	}
	return ns, ns.remove, nil
}

func newNS(name string) (*NS, error) {
	errc := make(chan error, 1)
	var h netns.NsHandle
	go func() {
		runtime.LockOSThread()
		// NewNamed moves this thread into the new namespace; the thread
		// stays locked and is discarded when the goroutine ends.
		var err error
		h, err = netns.NewNamed(name)
		if err != nil {
			errc <- fmt.Errorf("create netns %s: %w", name, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	return &NS{Name: name, handle: h}, nil
}

func (n *NS) remove() {
	n.handle.Close()
	_ = netns.DeleteNamed(n.Name)
}

// Setup creates the veth pair described by p (namespaces, names and
// addresses already set) as NewPair does: offloads off, addresses, static
// neighbours. It is for links NewPair's naming does not fit (a link that an
// exporter's interface glob must not match).
func (p *Pair) Setup() error { return p.setup() }

func (p *Pair) setup() error {
	err := p.A.Do(func() error {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer h.Close()
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: p.AIf},
			PeerName:      p.BIf,
			PeerNamespace: netlink.NsFd(p.B.handle),
		}
		if err := h.LinkAdd(veth); err != nil {
			return fmt.Errorf("add veth: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, ns := range []*NS{p.A, p.B} {
		if err := ns.Sysctl(map[string]string{
			"net.ipv6.conf.all.accept_dad":               "0",
			"net.ipv6.conf.default.accept_dad":           "0",
			"net.ipv6.conf.default.router_solicitations": "0",
			"net.ipv6.conf.all.router_solicitations":     "0",
		}); err != nil {
			return err
		}
	}
	if err := p.A.Do(func() error { return disableOffloads(p.AIf) }); err != nil {
		return err
	}
	if err := p.B.Do(func() error { return disableOffloads(p.BIf) }); err != nil {
		return err
	}
	if err := p.configure(p.A, p.AIf, p.A4, p.A6, &p.AIndex, &p.AMAC); err != nil {
		return err
	}
	if err := p.configure(p.B, p.BIf, p.B4, p.B6, &p.BIndex, &p.BMAC); err != nil {
		return err
	}
	if err := p.neighbour(p.A, p.AIndex, p.B4, p.B6, p.BMAC); err != nil {
		return err
	}
	return p.neighbour(p.B, p.BIndex, p.A4, p.A6, p.AMAC)
}

func (p *Pair) configure(ns *NS, ifname string, a4, a6 netip.Addr, index *int, mac *[]byte) error {
	return ns.Do(func() error {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer h.Close()
		l, err := h.LinkByName(ifname)
		if err != nil {
			return err
		}
		*index = l.Attrs().Index
		*mac = append([]byte(nil), l.Attrs().HardwareAddr...)
		for _, pfx := range []netip.Prefix{netip.PrefixFrom(a4, 24), netip.PrefixFrom(a6, 64)} {
			addr, _ := netlink.ParseAddr(pfx.String())
			addr.Flags = unix.IFA_F_NODAD
			if err := h.AddrAdd(l, addr); err != nil {
				return fmt.Errorf("add %s to %s: %w", pfx, ifname, err)
			}
		}
		if err := h.LinkSetUp(l); err != nil {
			return err
		}
		lo, err := h.LinkByName("lo")
		if err != nil {
			return err
		}
		return h.LinkSetUp(lo)
	})
}

func (p *Pair) neighbour(ns *NS, index int, peer4, peer6 netip.Addr, mac []byte) error {
	return ns.Do(func() error {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer h.Close()
		for _, a := range []netip.Addr{peer4, peer6} {
			fam := unix.AF_INET
			if a.Is6() {
				fam = unix.AF_INET6
			}
			if err := h.NeighSet(&netlink.Neigh{
				LinkIndex: index, Family: fam, State: netlink.NUD_PERMANENT,
				IP: a.AsSlice(), HardwareAddr: mac,
			}); err != nil {
				return fmt.Errorf("neighbour %s: %w", a, err)
			}
		}
		return nil
	})
}

// DisableIPv6 turns IPv6 off on both ends, for tests that must see no
// traffic but their own (IPv6 sends multicast listener reports on its own
// for a while after a link comes up).
func (p *Pair) DisableIPv6() error {
	if err := p.A.Sysctl(map[string]string{"net.ipv6.conf." + p.AIf + ".disable_ipv6": "1"}); err != nil {
		return err
	}
	return p.B.Sysctl(map[string]string{"net.ipv6.conf." + p.BIf + ".disable_ipv6": "1"})
}
