// SPDX-License-Identifier: Apache-2.0

package interop

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/sflow"
	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// sfacctdConfig is nfacctdConfig for pmacct's sFlow collector.
const sfacctdConfig = `daemonize: false
sfacctd_ip: 127.0.0.1
sfacctd_port: %d
plugins: print[flows]
print_output[flows]: csv
print_output_file[flows]: %s
print_output_file_append[flows]: true
print_refresh_time[flows]: 1
print_num_protos[flows]: true
aggregate[flows]: src_host,dst_host,src_port,dst_port,proto
`

// TestSfacctdSameSamples sends the sFlow datagrams pmacctd's sfprobe
// recorded (collector/sflow's test data: UDP, ICMP, TCP over IPv4 and
// IPv6, sampled 1 in 1) to pmacct's sfacctd and decodes them with kflow's
// decoder: the same flows with the same packets, and sfacctd's bytes are
// kflow's plus 18 a packet. sfacctd counts the sample's frame length (the
// Ethernet header, 14, and the FCS pmacctd's frame length includes, 4);
// kflow counts the IP length, the convention of all its records.
func TestSfacctdSameSamples(t *testing.T) {
	testenv.RequirePrivileged(t)
	bin := testenv.RequireTool(t, "sfacctd")
	dgs := wiretest.ReadHexLines(t, filepath.Join("..", "..", "collector", "sflow", "testdata", "pmacctd.hex"))
	// The datagrams' own addresses stand for the pair's in the csv reader.
	ends := &testenv.Pair{A4: netip.MustParseAddr("198.18.50.1"), B4: netip.MustParseAddr("198.18.50.2"),
		A6: netip.MustParseAddr("fd00:50::1"), B6: netip.MustParseAddr("fd00:50::2")}
	want := flows{}
	var d sflow.Datagram
	for i, b := range dgs {
		if err := sflow.Decode(&d, b, time.Now()); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		for _, r := range d.Records {
			if !ends.Owns(r.Src) || !ends.Owns(r.Dst) {
				continue
			}
			n := uint64(max(r.SamplingInterval, 1))
			id := flowID{Src: r.Src, Dst: r.Dst, Proto: r.Proto, SrcPort: r.SrcPort, DstPort: r.DstPort}
			want.add(id, r.Packets*n, (r.Octets+18)*n, 0)
		}
	}
	if len(want) < 6 {
		t.Fatalf("only %d flows in the test data", len(want))
	}

	p := testenv.NewPair(t)
	const port = 6343
	dir := t.TempDir()
	out := filepath.Join(dir, "flows.csv")
	conf := filepath.Join(dir, "sfacctd.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(sfacctdConfig, port, out)), 0o644); err != nil {
		t.Fatal(err)
	}
	proc := testenv.StartIn(t, p.A, bin, "-f", conf)
	if !testenv.WaitFor(testenv.Patience, func() bool {
		return strings.Contains(proc.Output(), "waiting for sFlow data") || proc.Exited()
	}) || proc.Exited() {
		t.Fatalf("sfacctd did not start:\n%s", proc.Output())
	}
	sf := &nfacctd{proc: proc, ns: p.A, port: port, csv: out}
	send := func(dgs ...[]byte) {
		t.Helper()
		err := p.A.Do(func() error {
			c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
			if err != nil {
				return err
			}
			defer c.Close()
			for _, b := range dgs {
				if _, err := c.Write(b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// sfacctd loses datagrams that arrive while it is still starting, and
	// says nothing: send probes (the first datagram with 198.18.51.x for
	// 198.18.50.x and fd00:51:: for fd00:50::, flows the comparison leaves
	// out) until one shows in the csv, then the datagrams once.
	probe := bytes.ReplaceAll(dgs[0], []byte{198, 18, 50}, []byte{198, 18, 51})
	probe = bytes.ReplaceAll(probe, []byte{0xfd, 0, 0, 0x50}, []byte{0xfd, 0, 0, 0x51})
	if !testenv.WaitFor(testenv.Patience, func() bool {
		send(probe)
		b, _ := os.ReadFile(out)
		return bytes.Contains(b, []byte("198.18.51."))
	}) {
		t.Fatalf("sfacctd stored no probe within %v:\n%s", testenv.Patience, proc.Output())
	}
	send(dgs...)
	got := sf.waitFlows(t, ends, want)
	sf.stop(t)
	compareFlows(t, "sfacctd", got, want)
}
