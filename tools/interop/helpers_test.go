// SPDX-License-Identifier: Apache-2.0

package interop

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.RemoveBuilds()
	os.Exit(code)
}

// kflowRun is the kflow exporter running inside namespace A.
type kflowRun struct {
	proc *testenv.Proc
}

// startKflow runs "kflow exporter run" inside A, observing A's veth end and
// exporting to collector, with short timeouts so flows end quickly; extra
// options come last and override. It returns once kflow wrote its ready
// file (attached and exporting).
func startKflow(t *testing.T, p *testenv.Pair, collector string, extra ...string) *kflowRun {
	t.Helper()
	bin := testenv.KflowBinary(t)
	ready := filepath.Join(t.TempDir(), "kflow.ready")
	args := append([]string{"exporter", "run", "-i", p.AIf, "-c", collector, "--pin-dir", "",
		"--ready-file", ready, "--idle-timeout", "1s", "--drain-interval", "200ms"}, extra...)
	proc := testenv.StartIn(t, p.A, bin, args...)
	if err := testenv.WaitFile(ready, testenv.Patience, proc); err != nil {
		t.Fatalf("kflow not ready: %v\n%s", err, proc.Output())
	}
	return &kflowRun{proc: proc}
}

// stop ends kflow with SIGINT, which drains the kernel maps one last time
// and exports every cached flow, and returns its log. kflow must exit 0.
func (k *kflowRun) stop(t *testing.T) string {
	t.Helper()
	err := k.proc.Stop(syscall.SIGINT, testenv.Patience)
	out := k.proc.Output()
	if err != nil {
		t.Fatalf("kflow exporter run: %v\n%s", err, out)
	}
	if testing.Verbose() {
		t.Logf("kflow log:\n%s", out)
	}
	return out
}

// traffic runs the standard exchange between the pair's ends and returns its
// ground truth as seen on A's interface: every IP packet of the pair's own
// addresses, counted by a packet capture on B (directions inverted), which
// must also hold the flows the generators know by construction. IPv4 UDP
// datagrams of 0 to 17 bytes make frames shorter than the 60-byte Ethernet
// minimum (padded on the wire; kflow counts IP octets, not the padding).
// With a sink (the messages kflow sent, or their copies), the UDP and ICMP
// flows are exported before the TCP sessions start, so they leave in
// earlier messages: the collectors see several messages and check their
// sequence numbers.
func traffic(t *testing.T, p *testenv.Pair, s *sink) testenv.Truth {
	t.Helper()
	capture, err := testenv.StartCapture(p.B, p.BIndex, true)
	if err != nil {
		t.Fatal(err)
	}
	known := testenv.Truth{}
	merge := func(tr testenv.Truth, err error) {
		t.Helper()
		if err != nil {
			capture.Stop()
			t.Fatal(err)
		}
		for k, c := range tr {
			known[k] = c
		}
	}
	merge(p.UDPEcho(false, 40001, 5001, []int{0, 1, 17, 18, 100, 512, 1000, 1472}))
	merge(p.UDPEcho(true, 40002, 5002, []int{0, 1, 17, 100, 512, 1000, 1452}))
	merge(p.Ping(false, 3, 56))
	merge(p.Ping(true, 2, 0))
	if s != nil {
		// They end by idle timeout (1s): wait for their records, not for
		// a time.
		if !testenv.WaitFor(testenv.Patience, func() bool { return exportedAll(t, s.received(), known) }) {
			capture.Stop()
			t.Fatalf("the UDP and ICMP flows were not exported within %v", testenv.Patience)
		}
	}
	writes := []int{1, 100, 1448, 5000, 20000}
	tcpPorts := map[uint16]bool{}
	for i, v6 := range []bool{false, true} {
		port, err := p.TCPSession(v6, uint16(5003+i), writes)
		if err != nil {
			capture.Stop()
			t.Fatal(err)
		}
		tcpPorts[port] = true
	}
	truth, err := capture.Stop()
	if err != nil {
		t.Fatal(err)
	}
	truth = p.OwnFlows(truth)
	for k, c := range known {
		if truth[k] != c {
			t.Fatalf("capture disagrees with the generator on %v: captured %+v, sent %+v", k, truth[k], c)
		}
	}
	// Both TCP sessions are in the truth, complete in both directions.
	var tcp int
	for k, c := range truth {
		if k.Proto != flow.ProtoTCP {
			continue
		}
		tcp++
		const want = flow.TCPSyn | flow.TCPFin | flow.TCPAck
		if c.TCPFlags&want != want || c.Packets < 5 {
			t.Fatalf("captured TCP flow %v: %+v, want SYN|FIN|ACK and at least 5 packets", k, c)
		}
		if !tcpPorts[k.SrcPort] && !tcpPorts[k.DstPort] {
			t.Fatalf("captured TCP flow %v of no session", k)
		}
	}
	if tcp != 4 {
		t.Fatalf("captured %d TCP flows, want 4 (two sessions, both directions)", tcp)
	}
	return truth
}

// flowID is a flow as every collector can name it. ICMP type and code are
// in DstPort as type*256+code (the NetFlow v5 custom nfdump and pmacct
// follow). Dir is "in" or "out" where the collector reports kflow's
// flowDirection, else empty.
type flowID struct {
	Src, Dst         netip.Addr
	Proto            uint8
	SrcPort, DstPort uint16
	Dir              string
}

func (f flowID) String() string {
	s := fmt.Sprintf("%s %s:%d > %s:%d", protoName(f.Proto), f.Src, f.SrcPort, f.Dst, f.DstPort)
	if f.Dir != "" {
		s += " " + f.Dir
	}
	return s
}

func protoName(p uint8) string {
	switch p {
	case flow.ProtoTCP:
		return "tcp"
	case flow.ProtoUDP:
		return "udp"
	case flow.ProtoICMP:
		return "icmp"
	case flow.ProtoICMPv6:
		return "icmp6"
	}
	return fmt.Sprint(p)
}

// tally is what a collector reports of a flow, summed over its records.
type tally struct {
	Packets, Octets uint64
	Flags           uint8 // TCP flags (8 bits: every collector here keeps 8)
	Records         int   // not compared with the truth
}

func (c tally) String() string {
	return fmt.Sprintf("packets %d octets %d flags %#02x", c.Packets, c.Octets, c.Flags)
}

// flows is a collector's (or the truth's) view: flows summed by flowID.
type flows map[flowID]tally

func (f flows) add(id flowID, packets, octets uint64, tcpFlags uint8) {
	c := f[id]
	c.Packets += packets
	c.Octets += octets
	c.Flags |= tcpFlags
	c.Records++
	f[id] = c
}

// truthOpts choose how the truth is named for one collector.
type truthOpts struct {
	dir    bool // the collector reports the flow direction
	flags  bool // the collector reports TCP flags
	v4Only bool // NetFlow v5: IPv6 flows are not exportable
	// noICMPPort: the collector leaves ICMP flows' ports zero (it does not
	// read the ICMP type/code elements into the port field).
	noICMPPort bool
}

func fromTruth(t testenv.Truth, o truthOpts) flows {
	out := flows{}
	for k, c := range t {
		if o.v4Only && !k.Src.Is4() {
			continue
		}
		id := flowID{Src: k.Src, Dst: k.Dst, Proto: k.Proto, SrcPort: k.SrcPort, DstPort: k.DstPort}
		if k.Proto == flow.ProtoICMP || k.Proto == flow.ProtoICMPv6 {
			id.SrcPort, id.DstPort = 0, uint16(k.ICMPType)<<8|uint16(k.ICMPCode)
			if o.noICMPPort {
				id.DstPort = 0
			}
		}
		if o.dir {
			id.Dir = dirName(k.Dir)
		}
		var fl uint8
		if o.flags {
			fl = uint8(c.TCPFlags)
		}
		out.add(id, c.Packets, c.Octets, fl)
	}
	return out
}

func dirName(d flow.Direction) string {
	if d == flow.Egress {
		return "out"
	}
	return "in"
}

// compareFlows fails the test unless the collector holds exactly the flows
// of the truth with the same counts.
func compareFlows(t *testing.T, what string, got, want flows) {
	t.Helper()
	var diffs []string
	for id, w := range want {
		g, ok := got[id]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("missing %v: want %v", id, w))
		case g.Packets != w.Packets || g.Octets != w.Octets || g.Flags != w.Flags:
			diffs = append(diffs, fmt.Sprintf("%v: got %v in %d records, want %v", id, g, g.Records, w))
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			diffs = append(diffs, fmt.Sprintf("unexpected %v: %v", id, g))
		}
	}
	sort.Strings(diffs)
	for _, d := range diffs {
		t.Errorf("%s: %s", what, d)
	}
	if len(diffs) == 0 {
		t.Logf("%s: %d flows match the ground truth exactly", what, len(want))
	}
}

// parseFlags reads TCP flags as nfdump prints them: "...A.R.." (CWR ECE
// URG ACK PSH RST SYN FIN, a dot for a clear bit) or a number.
func parseFlags(s string) (uint8, error) {
	s = strings.TrimSpace(s)
	const names = "CEUAPRSF"
	if len(s) == 8 && strings.Trim(s, names+".") == "" {
		var v uint8
		for i := 0; i < 8; i++ {
			if s[i] == names[i] {
				v |= 1 << (7 - i)
			} else if s[i] != '.' {
				return 0, fmt.Errorf("tcp flags %q: %q at %d", s, s[i], i)
			}
		}
		return v, nil
	}
	var v uint8
	if _, err := fmt.Sscan(s, &v); err != nil {
		return 0, fmt.Errorf("tcp flags %q: %w", s, err)
	}
	return v, nil
}

// parseProto reads a protocol as a number or as nfdump's name for it.
func parseProto(s string) (uint8, error) {
	s = strings.TrimSpace(s)
	switch strings.ToUpper(s) {
	case "TCP":
		return flow.ProtoTCP, nil
	case "UDP":
		return flow.ProtoUDP, nil
	case "ICMP":
		return flow.ProtoICMP, nil
	case "ICMP6", "IPV6-ICMP":
		return flow.ProtoICMPv6, nil
	}
	var v uint8
	if _, err := fmt.Sscan(s, &v); err != nil {
		return 0, fmt.Errorf("protocol %q: %w", s, err)
	}
	return v, nil
}
