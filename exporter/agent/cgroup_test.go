// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/kflow-dev/kflow/bpf"
	"github.com/kflow-dev/kflow/exporter/cgroup"
	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/ipfix"
	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// Ports of the cgroup test's traffic: servers in A (the observed side),
// servers in B for A's client.
const (
	cgPortTCPInA, cgPortUDPInA = 7101, 7102
	cgPortTCPInB, cgPortUDPInB = 7103, 7104
	cgPortClosed               = 7105 // no socket in A
)

// The child processes of TestCgroupAttribution run this test binary
// with these variables set: the test's name, the netns and what to do.
const (
	envCgRole  = "KFLOW_CGROUP_TEST_ROLE"
	envCgNetns = "KFLOW_CGROUP_TEST_NETNS"
	envCgPeer4 = "KFLOW_CGROUP_TEST_PEER4"
	envCgPeer6 = "KFLOW_CGROUP_TEST_PEER6"
)

// TestCgroupHelperProcess is not a test: it is the body of the child
// processes TestCgroupAttribution places in its cgroups (it returns at
// once in a normal run).
func TestCgroupHelperProcess(t *testing.T) {
	role := os.Getenv(envCgRole)
	if role == "" {
		return
	}
	if err := cgHelper(role); err != nil {
		fmt.Fprintln(os.Stderr, "cgroup helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// cgHelper enters the namespace on a locked thread (sockets are created
// there) and runs the role: "server" serves one TCP connection and one
// UDP exchange per family on the peer addresses (its own), "client"
// makes them with the servers at the peer addresses.
func cgHelper(role string) error {
	runtime.LockOSThread()
	h, err := netns.GetFromName(os.Getenv(envCgNetns))
	if err != nil {
		return err
	}
	if err := netns.Set(h); err != nil {
		return err
	}
	peers := []string{os.Getenv(envCgPeer4), os.Getenv(envCgPeer6)}
	switch role {
	case "server":
		var lns []net.Listener
		var pcs []net.PacketConn
		for _, a := range peers {
			ln, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(cgPortTCPInA)))
			if err != nil {
				return err
			}
			pc, err := net.ListenPacket("udp", net.JoinHostPort(a, strconv.Itoa(cgPortUDPInA)))
			if err != nil {
				return err
			}
			lns, pcs = append(lns, ln), append(pcs, pc)
		}
		fmt.Println("ready")
		for i := range peers {
			if err := serveTCP(lns[i]); err != nil {
				return err
			}
			if err := serveUDP(pcs[i]); err != nil {
				return err
			}
		}
		return nil
	case "client":
		for _, a := range peers {
			if err := exchangeTCP(net.JoinHostPort(a, strconv.Itoa(cgPortTCPInB))); err != nil {
				return err
			}
			if err := exchangeUDP(net.JoinHostPort(a, strconv.Itoa(cgPortUDPInB))); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown role %q", role)
}

// serveTCP accepts one connection, reads it to the end and answers.
func serveTCP(ln net.Listener) error {
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testenv.Patience))
	if _, err := io.Copy(io.Discard, c); err != nil {
		return err
	}
	_, err = c.Write([]byte(strings.Repeat("pong", 100)))
	return err
}

// serveUDP answers one datagram with three.
func serveUDP(pc net.PacketConn) error {
	_ = pc.SetDeadline(time.Now().Add(testenv.Patience))
	buf := make([]byte, 2048)
	_, from, err := pc.ReadFrom(buf)
	if err != nil {
		return err
	}
	for range 3 {
		if _, err := pc.WriteTo([]byte("pong"), from); err != nil {
			return err
		}
	}
	return nil
}

// exchangeTCP sends to addr, closes its side and reads the answer.
func exchangeTCP(addr string) error {
	c, err := net.DialTimeout("tcp", addr, testenv.Patience)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testenv.Patience))
	if _, err := c.Write([]byte(strings.Repeat("ping", 300))); err != nil {
		return err
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, c)
	return err
}

// exchangeUDP sends one datagram to addr and reads three answers.
func exchangeUDP(addr string) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testenv.Patience))
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	buf := make([]byte, 2048)
	for range 3 {
		if _, err := c.Read(buf); err != nil {
			return err
		}
	}
	return nil
}

// testCgroups makes a test-owned subtree of the cgroup v2 hierarchy with
// the named leaves, removed when the test ends (after its processes).
func testCgroups(t *testing.T, leaves ...string) (root string, dirs map[string]string) {
	t.Helper()
	mnt, err := cgroup.Mount()
	testenv.RequireFeature(t, "cgroup v2 mount", err)
	root = filepath.Join(mnt, fmt.Sprintf("kflow-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatalf("create test cgroup: %v", err)
	}
	dirs = map[string]string{}
	t.Cleanup(func() {
		for _, d := range dirs {
			if err := os.Remove(d); err != nil {
				t.Errorf("remove test cgroup: %v", err)
			}
		}
		if err := os.Remove(root); err != nil {
			t.Errorf("remove test cgroup: %v", err)
		}
	})
	for _, l := range leaves {
		d := filepath.Join(root, l)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatalf("create test cgroup: %v", err)
		}
		dirs[l] = d
	}
	return root, dirs
}

// startInCgroup starts this test binary as a helper of role in netns ns
// and directly in cgroup dir (clone3 with CLONE_INTO_CGROUP: the process
// never runs elsewhere).
func startInCgroup(t *testing.T, dir, role string, ns *testenv.NS, peer4, peer6 netip.Addr) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	fd, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCgroupHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envCgRole+"="+role, envCgNetns+"="+ns.Name,
		envCgPeer4+"="+peer4.String(), envCgPeer6+"="+peer6.String())
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(fd.Fd())}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		testenv.RequireFeature(t, "starting a process into a cgroup (CLONE_INTO_CGROUP, Linux 5.7)", err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, bufio.NewReader(out)
}

// TestCgroupAttribution: two processes the test starts in cgroups of its
// own, a server and a client, talk TCP and UDP over IPv4 and IPv6 with
// peers in the other namespace; every flow on the observed interface
// carries its process's cgroup path exactly, ingress and egress, and
// the unit its name shows; a packet no local socket receives carries
// none.
func TestCgroupAttribution(t *testing.T) {
	testenv.RequirePrivileged(t)
	p := testenv.NewPair(t)
	_, dirs := testCgroups(t, "kflowtest-server.service", "kflowtest-client.service")
	mnt, _ := cgroup.Mount()
	rel := func(leaf string) string { return strings.TrimPrefix(dirs[leaf], mnt) }

	// The local flow files' records and an IPFIX collector's.
	a, sink, col, stop := runToIPFIX(t, p, Config{Datapath: bpf.Config{Cgroups: true}})

	// B's servers for A's client, in the test process.
	var lns []net.Listener
	var pcs []net.PacketConn
	if err := p.B.Do(func() error {
		for _, a := range []netip.Addr{p.B4, p.B6} {
			ln, err := net.Listen("tcp", net.JoinHostPort(a.String(), strconv.Itoa(cgPortTCPInB)))
			if err != nil {
				return err
			}
			pc, err := net.ListenPacket("udp", net.JoinHostPort(a.String(), strconv.Itoa(cgPortUDPInB)))
			if err != nil {
				return err
			}
			lns, pcs = append(lns, ln), append(pcs, pc)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, l := range lns {
			l.Close()
		}
		for _, c := range pcs {
			c.Close()
		}
	}()
	served := make(chan error, 1)
	go func() {
		for i := range lns {
			if err := serveTCP(lns[i]); err != nil {
				served <- err
				return
			}
			if err := serveUDP(pcs[i]); err != nil {
				served <- err
				return
			}
		}
		served <- nil
	}()

	server, out := startInCgroup(t, dirs["kflowtest-server.service"], "server", p.A, p.A4, p.A6)
	if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("server helper: %q, %v", line, err)
	}
	client, _ := startInCgroup(t, dirs["kflowtest-client.service"], "client", p.A, p.B4, p.B6)

	// B's client of A's server, and a datagram to a port without socket.
	if err := p.B.Do(func() error {
		for _, a := range []netip.Addr{p.A4, p.A6} {
			if err := exchangeTCP(net.JoinHostPort(a.String(), strconv.Itoa(cgPortTCPInA))); err != nil {
				return err
			}
			if err := exchangeUDP(net.JoinHostPort(a.String(), strconv.Itoa(cgPortUDPInA))); err != nil {
				return err
			}
			c, err := net.Dial("udp", net.JoinHostPort(a.String(), strconv.Itoa(cgPortClosed)))
			if err != nil {
				return err
			}
			_, err = c.Write([]byte("nobody"))
			c.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*exec.Cmd{server, client} {
		if err := c.Wait(); err != nil {
			t.Fatalf("helper %v: %v", c.Args, err)
		}
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	stop()
	s := ipfix.NewSession(wire.Limits{})
	var fromIPFIX []flow.Record
	var m ipfix.Message
	for _, b := range col.received(t, a) {
		if err := s.Decode(&m, b); err != nil {
			t.Fatal(err)
		}
		fromIPFIX = append(fromIPFIX, m.Data.Records...)
	}
	checkCgroups(t, "flow files", sink.all(), p, rel)
	checkCgroups(t, "IPFIX", fromIPFIX, p, rel)
}

// checkCgroups checks the records of TestCgroupAttribution.
func checkCgroups(t *testing.T, where string, recs []flow.Record, p *testenv.Pair, rel func(string) string) {
	t.Helper()
	// Every TCP and UDP flow between the pair's addresses: which process
	// it belongs to follows from its A-side port.
	want := map[string]string{}
	got := map[string]string{}
	for _, fam := range []struct {
		a, b netip.Addr
		name string
	}{{p.A4, p.B4, "ipv4"}, {p.A6, p.B6, "ipv6"}} {
		for _, proto := range []string{"tcp", "udp"} {
			for _, dir := range []string{"egress", "ingress"} {
				want[fmt.Sprintf("%s %s %s server", fam.name, proto, dir)] = rel("kflowtest-server.service")
				want[fmt.Sprintf("%s %s %s client", fam.name, proto, dir)] = rel("kflowtest-client.service")
			}
		}
		want[fmt.Sprintf("%s udp ingress nobody", fam.name)] = ""
	}
	for _, r := range recs {
		if r.Proto != flow.ProtoTCP && r.Proto != flow.ProtoUDP {
			continue
		}
		aPort := r.SrcPort
		fam := "ipv4"
		if r.Src.Is6() {
			fam = "ipv6"
		}
		if r.Direction == flow.Ingress {
			aPort = r.DstPort
		}
		who := "client"
		switch aPort {
		case cgPortTCPInA, cgPortUDPInA:
			who = "server"
		case cgPortClosed:
			who = "nobody"
		}
		k := fmt.Sprintf("%s %s %s %s", fam, map[uint8]string{6: "tcp", 17: "udp"}[r.Proto], r.Direction, who)
		if prev, ok := got[k]; ok && prev != r.Cgroup {
			t.Errorf("%s: %s: records with cgroups %q and %q", where, k, prev, r.Cgroup)
		}
		got[k] = r.Cgroup
		if r.Cgroup != "" {
			if u := r.CgroupNames().Unit; u != "kflowtest-"+who+".service" {
				t.Errorf("%s: %s: unit %q", where, k, u)
			}
		}
	}
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s: %s: no record", where, k)
		case g != w:
			t.Errorf("%s: %s: cgroup %q, want %q", where, k, g, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: %s: a flow the test did not make", where, k)
		}
	}
}
