// SPDX-License-Identifier: Apache-2.0

package cache

import (
	"encoding/binary"
	"net/netip"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// key is a flow's identity packed into a fixed-size, comparable array: the
// index compares keys with one memory compare and hashes them with the
// runtime's seeded memory hash, and the array holds no pointers, so the
// garbage collector never scans the entries.
//
// Layout (little endian):
//
//	 0..16  source address (IPv4 as IPv4-mapped IPv6)
//	16..32  destination address
//	32..34  source port      34..36  destination port
//	36..40  InIf             40..44  OutIf
//	44..46  VLAN             46..48  InnerVLAN
//	48 proto  49 ICMP type  50 ICMP code  51 direction
//	52 source family  53 destination family (4, 6, or 0 for no address)
//
// Address zones are not part of the key; the kernel never produces them.
type key [keySize]byte

const keySize = 54

// set makes k the key of r.
func (k *key) set(r *flow.Record) {
	*(*[16]byte)(k[0:16]) = r.Src.As16()
	*(*[16]byte)(k[16:32]) = r.Dst.As16()
	k[52] = family(r.Src)
	k[53] = family(r.Dst)
	binary.LittleEndian.PutUint16(k[32:], r.SrcPort)
	binary.LittleEndian.PutUint16(k[34:], r.DstPort)
	binary.LittleEndian.PutUint32(k[36:], r.InIf)
	binary.LittleEndian.PutUint32(k[40:], r.OutIf)
	binary.LittleEndian.PutUint16(k[44:], r.VLAN)
	binary.LittleEndian.PutUint16(k[46:], r.InnerVLAN)
	k[48] = r.Proto
	k[49] = r.ICMPType
	k[50] = r.ICMPCode
	k[51] = uint8(r.Direction)
}

// fill writes the key's fields into r and leaves the other fields alone.
func (k *key) fill(r *flow.Record) {
	r.Src = getAddr(k[0:16], k[52])
	r.Dst = getAddr(k[16:32], k[53])
	r.SrcPort = binary.LittleEndian.Uint16(k[32:])
	r.DstPort = binary.LittleEndian.Uint16(k[34:])
	r.InIf = binary.LittleEndian.Uint32(k[36:])
	r.OutIf = binary.LittleEndian.Uint32(k[40:])
	r.VLAN = binary.LittleEndian.Uint16(k[44:])
	r.InnerVLAN = binary.LittleEndian.Uint16(k[46:])
	r.Proto = k[48]
	r.ICMPType = k[49]
	r.ICMPCode = k[50]
	r.Direction = flow.Direction(k[51])
}

func (k *key) proto() uint8 { return k[48] }

// family tells IPv4, IPv4-mapped IPv6 and no address apart, which share
// their As16 form.
func family(a netip.Addr) uint8 {
	switch {
	case a.Is4():
		return 4
	case a.Is6():
		return 6
	}
	return 0
}

func getAddr(b []byte, family uint8) netip.Addr {
	switch family {
	case 4:
		return netip.AddrFrom16([16]byte(b[:16])).Unmap()
	case 6:
		return netip.AddrFrom16([16]byte(b[:16]))
	}
	return netip.Addr{}
}

func (k *key) srcPort() uint16 { return binary.LittleEndian.Uint16(k[32:]) }
func (k *key) dstPort() uint16 { return binary.LittleEndian.Uint16(k[34:]) }

// reverse writes into rk the key of the other direction of k's flow on
// the same interface: addresses, ports and interfaces swapped, direction
// flipped, an ICMP request's type turned into its reply's. It returns
// false for flows without another direction (ICMP types other than
// requests and replies, unknown directions).
func (k *key) reverse(rk *key) bool {
	if k[51] > uint8(flow.Egress) {
		return false
	}
	*rk = *k
	copy(rk[0:16], k[16:32])
	copy(rk[16:32], k[0:16])
	copy(rk[32:34], k[34:36])
	copy(rk[34:36], k[32:34])
	copy(rk[36:40], k[40:44])
	copy(rk[40:44], k[36:40])
	rk[51] = k[51] ^ 1
	rk[52], rk[53] = k[53], k[52]
	if k[48] == flow.ProtoICMP || k[48] == flow.ProtoICMPv6 {
		t, ok := flow.ICMPReplyType(k[48], k[49])
		if !ok {
			return false
		}
		rk[49] = t
	}
	return true
}

// fillReverse writes into r the identity of the other direction of k's
// flow; a flow without one (an ICMP type that is neither request nor
// reply) gets its addresses, ports and interfaces swapped all the same.
func (k *key) fillReverse(r *flow.Record) {
	var rk key
	k.reverse(&rk)
	rk.fill(r)
}

func (k *key) isICMP() bool { return k[48] == flow.ProtoICMP || k[48] == flow.ProtoICMPv6 }

// icmpType returns the ICMP type of k's flow, or with reverse of the
// other direction's.
func (k *key) icmpType(reverse bool) uint8 {
	if !reverse {
		return k[49]
	}
	t, _ := flow.ICMPReplyType(k[48], k[49])
	return t
}
