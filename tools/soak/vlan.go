// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"net"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// vlanBlast writes count 802.1Q-tagged UDP frames (VLAN vid, flows
// source ports from srcPort, to dstPort) out of A's interface with a
// packet socket, and returns what A's egress carried: each frame whose
// send succeeded. The addresses are the pair's own; B's end has no VLAN
// interface and drops the frames, which the exporter has already counted
// on A's egress.
func vlanBlast(p *testenv.Pair, v6 bool, vid uint16, srcPort, dstPort uint16, flows, count, size int) (testenv.Truth, error) {
	src, dst := p.A4, p.B4
	etype := layers.EthernetTypeIPv4
	if v6 {
		src, dst = p.A6, p.B6
		etype = layers.EthernetTypeIPv6
	}
	frames := make([][]byte, flows)
	octets := make([]uint64, flows)
	for f := range frames {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(p.AMAC), DstMAC: net.HardwareAddr(p.BMAC), EthernetType: layers.EthernetTypeDot1Q}
		tag := &layers.Dot1Q{VLANIdentifier: vid, Type: etype}
		udp := &layers.UDP{SrcPort: layers.UDPPort(srcPort + uint16(f)), DstPort: layers.UDPPort(dstPort)}
		var ip gopacket.NetworkLayer
		if v6 {
			ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
			ip = ip6
		} else {
			ip = &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			return nil, err
		}
		buf := gopacket.NewSerializeBuffer()
		err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			eth, tag, ip.(gopacket.SerializableLayer), udp, gopacket.Payload(make([]byte, size)))
		if err != nil {
			return nil, fmt.Errorf("vlan frame: %w", err)
		}
		frames[f] = buf.Bytes()
		octets[f] = uint64(len(frames[f]) - 18) // L3: less the Ethernet header and the tag
	}
	var fd int
	err := p.A.Do(func() (err error) {
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Ifindex: p.AIndex}
	truth := testenv.Truth{}
	for i := 0; i < count; i++ {
		f := i % flows
		if err := unix.Sendto(fd, frames[f], 0, to); err != nil {
			if err == unix.ENOBUFS || err == unix.EAGAIN {
				continue // not sent: not on the wire
			}
			return nil, fmt.Errorf("send vlan frame: %w", err)
		}
		truth.Add(testenv.FlowKey{Src: src, Dst: dst, Proto: flow.ProtoUDP, SrcPort: srcPort + uint16(f), DstPort: dstPort, Dir: flow.Egress},
			octets[f], 0)
	}
	return truth, nil
}
