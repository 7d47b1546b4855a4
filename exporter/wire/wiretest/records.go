// SPDX-License-Identifier: Apache-2.0

package wiretest

import (
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// RandomRecord returns a flow record with random values in every field an
// encoder may write, edge cases included: invalid, IPv4, IPv6,
// IPv4-mapped and zoned addresses in any combination, zero and pre-1970
// times, and values that fill all bits of their type.
func RandomRecord(rng *rand.Rand) flow.Record {
	addr := func() netip.Addr {
		var a16 [16]byte
		for i := range a16 {
			a16[i] = byte(rng.Uint32())
		}
		switch rng.IntN(6) {
		case 0:
			return netip.Addr{}
		case 1, 2:
			return netip.AddrFrom4([4]byte(a16[:4]))
		case 3:
			return netip.AddrFrom16(netip.AddrFrom4([4]byte(a16[:4])).As16()) // IPv4-mapped
		case 4:
			return netip.AddrFrom16(a16).WithZone("eth0")
		}
		return netip.AddrFrom16(a16)
	}
	when := func() time.Time {
		switch rng.IntN(4) {
		case 0:
			return time.Time{}
		case 1:
			return time.Unix(-rng.Int64N(1<<40), rng.Int64N(1e9)) // before 1970
		}
		return time.Unix(rng.Int64N(1<<36), rng.Int64N(1e9))
	}
	return flow.Record{
		Src: addr(), Dst: addr(),
		SrcPort: uint16(rng.Uint32()), DstPort: uint16(rng.Uint32()),
		Proto: uint8(rng.Uint32()), ICMPType: uint8(rng.Uint32()), ICMPCode: uint8(rng.Uint32()),
		VLAN: uint16(rng.Uint32()), InnerVLAN: uint16(rng.Uint32()),
		InIf: rng.Uint32(), OutIf: rng.Uint32(),
		Direction: flow.Direction(rng.Uint32()),
		Packets:   rng.Uint64(), Octets: rng.Uint64(),
		Start: when(), End: when(),
		TCPFlags: uint16(rng.Uint32()), TOS: uint8(rng.Uint32()),
		MinTTL: uint8(rng.Uint32()), MaxTTL: uint8(rng.Uint32()),
		EndReason: flow.EndReason(rng.Uint32()),
	}
}
