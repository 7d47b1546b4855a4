// SPDX-License-Identifier: Apache-2.0

package interop

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// sink is a UDP collector stand-in that keeps every datagram it receives,
// in order: the exact export messages, with no capture timing or drops.
type sink struct {
	ns   *testenv.NS
	port int
	conn *net.UDPConn
	mu   sync.Mutex
	msgs [][]byte
	done chan struct{}
}

func startSink(t *testing.T, ns *testenv.NS, port int) *sink {
	t.Helper()
	s := &sink{ns: ns, port: port, done: make(chan struct{})}
	err := ns.Do(func() (err error) {
		s.conn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))))
		return err
	})
	if err != nil {
		t.Fatalf("udp sink: %v", err)
	}
	_ = s.conn.SetReadBuffer(8 << 20)
	go func() {
		defer close(s.done)
		buf := make([]byte, 65536)
		for {
			n, err := s.conn.Read(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, append([]byte(nil), buf[:n]...))
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { s.conn.Close() })
	return s
}

// received returns a copy of the messages received so far.
func (s *sink) received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.msgs...)
}

// stop closes the sink and returns what it received. The senders have
// exited: what they sent is in the socket buffer, read before the close
// however far behind the reading goroutine is.
func (s *sink) stop(t *testing.T) [][]byte {
	t.Helper()
	if err := testenv.WaitRead(s.ns, "udp", s.port); err != nil {
		t.Errorf("udp sink: %v", err)
	}
	s.conn.Close()
	select {
	case <-s.done:
	case <-time.After(testenv.Patience):
		t.Fatal("udp sink reader did not end")
	}
	return s.msgs
}

// tsharkRun dissects a pcap of export messages as cflow on port.
type tsharkRun struct {
	path, decode string
}

func newTsharkRun(t *testing.T, port int, msgs [][]byte) *tsharkRun {
	t.Helper()
	path := filepath.Join(t.TempDir(), "export.pcap")
	if err := wiretest.WritePCAP(path, uint16(port), msgs); err != nil {
		t.Fatal(err)
	}
	return &tsharkRun{path: path, decode: fmt.Sprintf("udp.port==%d,cflow", port)}
}

// run returns tshark's standard output (its stderr warns about root).
func (r *tsharkRun) run(args ...string) (string, error) {
	cmd := exec.Command("tshark", append([]string{"-n", "-r", r.path, "-d", r.decode}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("tshark %v: %w\n%s%s", args, err, out, stderr.String())
	}
	return string(out), nil
}

var (
	endReason       = regexp.MustCompile(`(?m)^ +Flow End Reason: (.*)$`)
	validEndReasons = map[string]bool{"Idle timeout (1)": true, "Active timeout (2)": true,
		"End of Flow detected (3)": true, "Forced end (4)": true}
)

// dissect returns tshark's verbose dissection and fails t for each
// problem it reports (see problems).
func (r *tsharkRun) dissect(t *testing.T) string {
	t.Helper()
	out, err := r.run("-V")
	if err != nil {
		t.Fatal(err)
	}
	probs, err := r.problems(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range probs {
		t.Error(pr)
	}
	return out
}

var expertSection = regexp.MustCompile(`(?m)^(Errors|Warnings) \((\d+)\)`)

// problems returns what tshark's expert analysis reports as errors or
// warnings (malformed packets, sequence gaps, bad lengths), and the
// dissection lines that say a packet is malformed or its template
// unknown. tshark -z expert prints nothing when it has nothing to say.
func (r *tsharkRun) problems(dissection string) ([]string, error) {
	expert, err := r.run("-q", "-z", "expert")
	if err != nil {
		return nil, err
	}
	var probs []string
	for _, m := range expertSection.FindAllStringSubmatch(expert, -1) {
		if m[2] != "0" {
			probs = append(probs, fmt.Sprintf("tshark -z expert: %s %s:\n%s", m[2], m[1], expert))
		}
	}
	for _, l := range strings.Split(dissection, "\n") {
		for _, bad := range []string{"Malformed", "[Expert Info (Error", "[Expert Info (Warn", "no template found", "Template not found"} {
			if strings.Contains(l, bad) {
				probs = append(probs, "tshark -V: "+strings.TrimSpace(l))
			}
		}
	}
	return probs, nil
}

// checkTshark has tshark dissect the messages kflow sent: every message a
// CFLOW message of the format's version, templates and options templates
// announced, the interface names and exporter statistics options records
// decoded, no malformed packet, no expert error or warning, and the flow
// records' counts equal to the ground truth.
func checkTshark(t *testing.T, p *testenv.Pair, format string, port int, msgs [][]byte, truth testenv.Truth) {
	t.Helper()
	if len(msgs) < 2 {
		t.Fatalf("kflow sent %d export messages; the test wants several", len(msgs))
	}
	checkHeaders(t, format, msgs)
	r := newTsharkRun(t, port, msgs)
	version := map[string]string{"ipfix": "10", "nfv9": "9"}[format]
	fields, err := r.run("-T", "fields", "-e", "frame.number", "-e", "frame.protocols", "-e", "cflow.version")
	if err != nil {
		t.Fatal(err)
	}
	frames := strings.Split(strings.TrimSpace(fields), "\n")
	if len(frames) != len(msgs) {
		t.Errorf("tshark read %d frames, kflow sent %d messages", len(frames), len(msgs))
	}
	for _, l := range frames {
		f := strings.Split(l, "\t")
		if len(f) != 3 || !strings.HasSuffix(f[1], ":cflow") || f[2] != version {
			t.Errorf("frame not decoded as %s (cflow version %s): %q", format, version, l)
		}
	}

	out := r.dissect(t)
	want := []string{
		"IfName: " + p.AIf,      // interface names options record
		"Ignored Packets: 0",    // exporter statistics options record
		"Ignored Octets: 0",     //
		"Direction: Egress (1)", // flowDirection
		"Direction: Ingress (0)",
	}
	if format == "ipfix" {
		want = append(want, "FlowSet Id: Data Template (V10 [IPFIX]) (2)", "FlowSet Id: Options Template (V10 [IPFIX]) (3)",
			"Flow End Reason: ")
		for _, m := range endReason.FindAllStringSubmatch(out, -1) {
			if !validEndReasons[m[1]] {
				t.Errorf("tshark: flow end reason %q", m[1])
			}
		}
	} else {
		want = append(want, "FlowSet Id: Data Template (V9) (0)", "FlowSet Id: Options Template(V9) (1)")
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("tshark %s dissection lacks %q", format, w)
		}
	}
	got, err := tsharkFlows(p, out)
	if err != nil {
		t.Fatal(err)
	}
	compareFlows(t, "tshark "+format, got, fromTruth(truth, truthOpts{dir: true, flags: true}))
	if t.Failed() || testing.Verbose() {
		t.Logf("tshark -V, first lines:\n%s", head(out, 150))
	}
}

// checkHeaders checks the messages' structure and sequence numbers
// independently of tshark: IPFIX sets within their messages, templates
// before their data, sequence numbers counting every data record (RFC
// 7011); NetFlow v9 sequence numbers counting export packets (RFC 3954).
func checkHeaders(t *testing.T, format string, msgs [][]byte) {
	t.Helper()
	if format == "ipfix" {
		ms, err := walkIPFIX(msgs)
		if err != nil {
			t.Fatal(err)
		}
		if rfc, _ := ipfixSequenceGaps(ms); rfc != 0 {
			t.Errorf("%d IPFIX messages with a sequence number other than the data records before them: %+v", rfc, ms)
		}
		return
	}
	for i, m := range msgs {
		if len(m) < 20 || binary.BigEndian.Uint16(m) != 9 {
			t.Fatalf("message %d is not a NetFlow v9 packet", i)
		}
		if seq := binary.BigEndian.Uint32(m[12:]); seq != uint32(i) {
			t.Errorf("NetFlow v9 packet %d has sequence number %d", i, seq)
		}
	}
}

// tsharkFlows reads the flow records of a verbose dissection ("Flow N"
// blocks with "Octets:", addresses, ports, protocol, ICMP type, TCP flags
// and direction) and sums those of the pair's addresses.
func tsharkFlows(p *testenv.Pair, out string) (flows, error) {
	got := flows{}
	var block map[string]string
	finish := func() error {
		if block == nil || block["Octets"] == "" {
			return nil // an options record, or no block yet
		}
		rec, ok, err := tsharkRecord(p, block)
		if err != nil || !ok {
			return err
		}
		got.add(rec.id, rec.packets, rec.octets, rec.flags)
		return nil
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "        Flow ") || !strings.HasPrefix(l, "        ") {
			if err := finish(); err != nil {
				return nil, err
			}
			block = nil
			if strings.HasPrefix(l, "        Flow ") {
				block = map[string]string{}
			}
			continue
		}
		if block == nil || !strings.HasPrefix(l, "            ") || strings.HasPrefix(l, "             ") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimSpace(l), ": ")
		if ok {
			if _, dup := block[k]; !dup {
				block[k] = v
			}
		}
	}
	return got, finish()
}

type tsharkRec struct {
	id              flowID
	packets, octets uint64
	flags           uint8
}

func tsharkRecord(p *testenv.Pair, b map[string]string) (tsharkRec, bool, error) {
	var r tsharkRec
	src, err1 := netip.ParseAddr(b["SrcAddr"])
	dst, err2 := netip.ParseAddr(b["DstAddr"])
	if err1 != nil || err2 != nil {
		return r, false, fmt.Errorf("tshark flow %v: addresses: %v %v", b, err1, err2)
	}
	if !p.Owns(src) || !p.Owns(dst) {
		return r, false, nil
	}
	var errs []error
	num := func(s string, base int, bits int) uint64 {
		s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
		v, err := strconv.ParseUint(s, base, bits)
		if err != nil {
			errs = append(errs, err)
		}
		return v
	}
	// "Protocol: UDP (17)", "TCP Flags: 0x001b, ACK, ...", "Direction: Egress (1)".
	paren := func(s string) string {
		if i := strings.LastIndexByte(s, '('); i >= 0 {
			return strings.TrimSuffix(s[i+1:], ")")
		}
		return s
	}
	r.id = flowID{Src: src, Dst: dst, Proto: uint8(num(paren(b["Protocol"]), 10, 8)),
		SrcPort: uint16(num(b["SrcPort"], 10, 16)), DstPort: uint16(num(b["DstPort"], 10, 16))}
	switch b["Direction"] {
	case "Ingress (0)":
		r.id.Dir = "in"
	case "Egress (1)":
		r.id.Dir = "out"
	default:
		errs = append(errs, fmt.Errorf("direction %q", b["Direction"]))
	}
	if r.id.Proto == 1 || r.id.Proto == 58 {
		if v, ok := b["IPv6 ICMP Type"]; ok { // IPFIX icmpTypeCodeIPv6, shown split
			r.id.DstPort = uint16(num(v, 10, 8))<<8 | uint16(num(b["IPv6 ICMP Code"], 10, 8))
		} else {
			r.id.DstPort = uint16(num(b["ICMP Type"], 16, 16))
		}
	}
	flags, _, _ := strings.Cut(b["TCP Flags"], ",")
	r.flags = uint8(num(flags, 16, 16))
	r.packets, r.octets = num(b["Packets"], 10, 64), num(b["Octets"], 10, 64)
	for _, err := range errs {
		if err != nil {
			return r, false, fmt.Errorf("tshark flow %v: %w", b, err)
		}
	}
	return r, true, nil
}

func head(s string, lines int) string {
	l := strings.SplitN(s, "\n", lines+1)
	if len(l) > lines {
		l = l[:lines]
	}
	return strings.Join(l, "\n")
}

// TestTsharkProblems is the control of checkTshark: a message whose set
// runs past its end, and a data record whose template is unknown, must be
// reported.
func TestTsharkProblems(t *testing.T) {
	testenv.RequireTool(t, "tshark")
	for name, bad := range map[string][]byte{
		// A template set of one template announcing two fields but
		// holding one.
		"short template": {0, 10, 0, 28, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 12, 1, 0, 0, 2, 0, 8, 0, 4},
		// A data set of a template never announced.
		"no template": {0, 10, 0, 28, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8},
	} {
		r := newTsharkRun(t, 4739, [][]byte{bad})
		out, err := r.run("-V")
		if err != nil {
			t.Fatal(err)
		}
		probs, err := r.problems(out)
		if err != nil {
			t.Fatal(err)
		}
		if len(probs) == 0 {
			t.Errorf("%s: no problem reported:\n%s", name, out)
		}
		t.Logf("%s: reported %q", name, probs)
	}
}
