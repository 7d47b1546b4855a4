// SPDX-License-Identifier: Apache-2.0

package sflow

import (
	"encoding/binary"
	"net/netip"
)

// A small sFlow v5 encoder for tests: each function appends XDR.

func u32(b []byte, v ...uint32) []byte {
	for _, x := range v {
		b = binary.BigEndian.AppendUint32(b, x)
	}
	return b
}

func u64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

func opaque(b, v []byte) []byte {
	b = u32(b, uint32(len(v)))
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func addr(b []byte, a netip.Addr) []byte {
	switch {
	case a.Is4():
		v := a.As4()
		return append(u32(b, 1), v[:]...)
	case a.Is6():
		v := a.As16()
		return append(u32(b, 2), v[:]...)
	}
	return u32(b, 0)
}

// element is a format and a body: a sample or a record.
func element(format uint32, body []byte) []byte {
	return append(u32(nil, format, uint32(len(body))), body...)
}

func datagram(agent netip.Addr, subAgent, seq uint32, samples ...[]byte) []byte {
	b := u32(nil, Version)
	b = addr(b, agent)
	b = u32(b, subAgent, seq, 123456, uint32(len(samples)))
	for _, s := range samples {
		b = append(b, s...)
	}
	return b
}

type sampleHdr struct {
	seq, srcType, srcIndex, rate, pool, drops uint32
	inFmt, in, outFmt, out                    uint32
}

func flowSample(h sampleHdr, records ...[]byte) []byte {
	b := u32(nil, h.seq, h.srcType<<24|h.srcIndex, h.rate, h.pool, h.drops, h.inFmt<<30|h.in, h.outFmt<<30|h.out, uint32(len(records)))
	for _, r := range records {
		b = append(b, r...)
	}
	return element(formatFlowSample, b)
}

func expandedFlowSample(h sampleHdr, records ...[]byte) []byte {
	b := u32(nil, h.seq, h.srcType, h.srcIndex, h.rate, h.pool, h.drops, h.inFmt, h.in, h.outFmt, h.out, uint32(len(records)))
	for _, r := range records {
		b = append(b, r...)
	}
	return element(formatFlowSampleExpanded, b)
}

func rawHeader(proto, frameLen, stripped uint32, hdr []byte) []byte {
	return element(recordRawHeader, opaque(u32(nil, proto, frameLen, stripped), hdr))
}

func extSwitch(srcVLAN, dstVLAN uint32) []byte {
	return element(recordExtendedSwitch, u32(nil, srcVLAN, 0, dstVLAN, 0))
}

func extRouter(nh netip.Addr, srcMask, dstMask uint32) []byte {
	return element(recordExtendedRouter, u32(addr(nil, nh), srcMask, dstMask))
}

func extGateway(nh netip.Addr, own, srcAS, peerAS uint32, path ...uint32) []byte {
	b := u32(addr(nil, nh), own, srcAS, peerAS)
	if len(path) == 0 {
		b = u32(b, 0)
	} else {
		b = u32(b, 1, 2, uint32(len(path)))
		b = u32(b, path...)
	}
	b = u32(b, 0, 100) // no communities, local preference
	return element(recordExtendedGateway, b)
}

func counterSample(seq, srcType, srcIndex uint32, records ...[]byte) []byte {
	b := u32(nil, seq, srcType<<24|srcIndex, uint32(len(records)))
	for _, r := range records {
		b = append(b, r...)
	}
	return element(formatCounterSample, b)
}

func expandedCounterSample(seq, srcType, srcIndex uint32, records ...[]byte) []byte {
	b := u32(nil, seq, srcType, srcIndex, uint32(len(records)))
	for _, r := range records {
		b = append(b, r...)
	}
	return element(formatCounterSampleExpanded, b)
}

func genericCounters(c InterfaceCounters) []byte {
	b := u32(nil, c.IfIndex, c.IfType)
	b = u64(b, c.IfSpeed)
	b = u32(b, c.IfDirection, c.IfStatus)
	b = u64(b, c.InOctets)
	b = u32(b, c.InUcastPkts, c.InMulticastPkts, c.InBroadcastPkts, c.InDiscards, c.InErrors, c.InUnknownProtos)
	b = u64(b, c.OutOctets)
	b = u32(b, c.OutUcastPkts, c.OutMulticastPkts, c.OutBroadcastPkts, c.OutDiscards, c.OutErrors, c.PromiscuousMode)
	return element(counterGenericInterface, b)
}

// Packets.

var (
	macA = []byte{2, 0, 0, 0, 0, 1}
	macB = []byte{2, 0, 0, 0, 0, 2}
)

func ether(etherType uint16, vlans []uint16, payload []byte) []byte {
	b := append(append([]byte{}, macB...), macA...)
	tpid := []uint16{0x88a8, 0x8100}
	if len(vlans) == 1 {
		tpid = tpid[1:]
	}
	for i, v := range vlans {
		b = binary.BigEndian.AppendUint16(b, tpid[i])
		b = binary.BigEndian.AppendUint16(b, 3<<13|v)
	}
	b = binary.BigEndian.AppendUint16(b, etherType)
	return append(b, payload...)
}

// ipv4 builds an IPv4 header announcing total octets, followed by l4.
func ipv4(src, dst string, proto, tos, ttl uint8, total int, frag uint16, l4 []byte) []byte {
	b := []byte{0x45, tos, 0, 0, 0, 1, 0, 0, ttl, proto, 0, 0}
	binary.BigEndian.PutUint16(b[2:], uint16(total))
	binary.BigEndian.PutUint16(b[6:], frag)
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	b = append(append(b, s[:]...), d[:]...)
	return append(b, l4...)
}

// ipv6 builds an IPv6 header announcing payload octets, then rest.
func ipv6(src, dst string, next, tclass, hops uint8, payload int, rest []byte) []byte {
	b := []byte{0x60 | tclass>>4, tclass << 4, 0, 0, 0, 0, next, hops}
	binary.BigEndian.PutUint16(b[4:], uint16(payload))
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	b = append(append(b, s[:]...), d[:]...)
	return append(b, rest...)
}

// udp builds a UDP header (length 8: the test headers end there).
func udp(sport, dport uint16) []byte {
	b := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, sport), dport)
	return append(b, 0, 8, 0, 0)
}

func tcp(sport, dport uint16, flags uint16) []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint16(b, sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	b[12] = 5<<4 | byte(flags>>8)
	b[13] = byte(flags)
	return b
}
