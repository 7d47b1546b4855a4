// SPDX-License-Identifier: Apache-2.0

package interop

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/exporter/netflow9"
	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// TestQinQNetFlowV9: double-tagged (802.1ad outer 300, 802.1Q inner 400)
// frames leave A; kflow exports NetFlow v9 with the inner VLAN in IPFIX's
// dot1qCustomerVlanId (245), which v9 has no field for. Wireshark and
// kflow's decoder read it; nfcapd 1.7.1 skips it and stores the rest (the
// outer VLAN as src_vlan, exact counts), as does nfacctd.
func TestQinQNetFlowV9(t *testing.T) {
	testenv.RequirePrivileged(t)
	p := testenv.NewPair(t)
	const port, sinkPort, frames, payload = 9995, 9996, 7, 100
	sink := startSink(t, p.A, sinkPort)
	nf := startNfcapd(t, p.A, port)
	k := startKflow(t, p, fmt.Sprintf("nfv9://127.0.0.1:%d", port), "-c", fmt.Sprintf("nfv9://127.0.0.1:%d", sinkPort))
	sendQinQ(t, p, 300, 400, frames, payload)
	k.stop(t)
	nf.stop(t)
	msgs := sink.stop(t)

	// kflow's decoder: both tags.
	s := netflow9.NewSession(wire.Limits{})
	var m netflow9.Message
	var found bool
	for _, b := range msgs {
		if err := s.Decode(&m, b); err != nil {
			t.Fatal(err)
		}
		for _, r := range m.Records {
			if r.SrcPort == 4000 {
				found = true
				if r.VLAN != 300 || r.InnerVLAN != 400 || r.Packets != frames || r.Octets != frames*(20+8+payload) {
					t.Errorf("kflow decoder: vlan %d/%d, %d packets %d octets", r.VLAN, r.InnerVLAN, r.Packets, r.Octets)
				}
			}
		}
	}
	if !found {
		t.Fatal("the QinQ flow is not in kflow's messages")
	}
	// tshark: the inner VLAN by its IPFIX name, no malformed packet.
	r := newTsharkRun(t, sinkPort, msgs)
	out := r.dissect(t)
	for _, w := range []string{"Vlan Id: 300", "Dot1q Customer Vlan Id: 400"} {
		if !strings.Contains(out, w) {
			t.Errorf("tshark shows no %q", w)
		}
	}
	// nfdump: the record with the outer VLAN and exact counts.
	js, err := exec.Command("nfdump", "-R", nf.dir, "-q", "-o", "json", "src port 4000").Output()
	if err != nil {
		t.Fatalf("nfdump: %v", err)
	}
	// nfdump 1.7.1 prints one object per record (no array with -q).
	var recs []map[string]any
	dec := json.NewDecoder(strings.NewReader(string(js)))
	for dec.More() {
		var rec map[string]any
		if err := dec.Decode(&rec); err != nil {
			t.Fatalf("nfdump json: %v\n%s", err, js)
		}
		recs = append(recs, rec)
	}
	if len(recs) != 1 || recs[0]["src_vlan"] != float64(300) || recs[0]["in_packets"] != float64(frames) ||
		recs[0]["in_bytes"] != float64(frames*(20+8+payload)) {
		t.Errorf("nfdump: %s", js)
	}
}

// sendQinQ sends UDP frames from A to B with an 802.1ad outer and an
// 802.1Q inner tag, with a packet socket on A's veth (source port 4000).
func sendQinQ(t *testing.T, p *testenv.Pair, outer, inner uint16, n, payload int) {
	t.Helper()
	f := append([]byte{}, p.BMAC...)
	f = append(f, p.AMAC...)
	f = binary.BigEndian.AppendUint16(f, 0x88a8)
	f = binary.BigEndian.AppendUint16(f, outer)
	f = binary.BigEndian.AppendUint16(f, 0x8100)
	f = binary.BigEndian.AppendUint16(f, inner)
	f = binary.BigEndian.AppendUint16(f, 0x0800)
	ip := make([]byte, 20)
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+payload))
	a, b := p.A4.As4(), p.B4.As4()
	copy(ip[12:], a[:])
	copy(ip[16:], b[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	sum = sum&0xffff + sum>>16
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum+sum>>16))
	f = append(f, ip...)
	f = binary.BigEndian.AppendUint16(f, 4000)
	f = binary.BigEndian.AppendUint16(f, 4001)
	f = binary.BigEndian.AppendUint16(f, uint16(8+payload))
	f = append(f, 0, 0)
	f = append(f, make([]byte, payload)...)
	err := p.A.Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		to := &unix.SockaddrLinklayer{Ifindex: p.AIndex, Halen: 6}
		copy(to.Addr[:], p.BMAC)
		for range n {
			if err := unix.Sendto(fd, f, 0, to); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("send QinQ frames: %v", err)
	}
}
