// SPDX-License-Identifier: Apache-2.0

package bpf

import (
	"net"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/testenv"
)

func udp4Frame(t *testing.T, payload int) []byte {
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{198, 18, 0, 1}, DstIP: net.IP{198, 18, 0, 2}}
	udp := &layers.UDP{SrcPort: 1234, DstPort: 53}
	udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(make([]byte, payload))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRunSmoke(t *testing.T) {
	testenv.RequirePrivileged(t)
	d, err := Load(Config{MapEntries: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	frame := udp4Frame(t, 100)
	ret, err := d.objs.KflowTcxIngress.Run(&ebpf.RunOptions{Data: frame, Repeat: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ret %d", int32(ret))
	recs, st, err := d.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v %+v", recs, st)
	if len(recs) != 1 || recs[0].Packets != 3 || recs[0].Octets != 3*128 || recs[0].Direction != flow.Ingress {
		t.Fatalf("got %+v", recs)
	}
}
