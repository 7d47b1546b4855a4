// SPDX-License-Identifier: Apache-2.0

package wire

import (
	"encoding/binary"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// A decode plan is a flow template compiled once for its data records:
// the offset of every field and an operation chosen from its element and
// length, so that decoding a record is a loop over precomputed operations
// instead of a length check and a switch over element ids per field. It
// is the decode-side twin of the encoders' fixed-layout writers. Only flow
// templates whose fields all have a fixed length get a plan; the others
// take the generic path (decodeRecord). Both give the same records:
// fields the generic path ignores (enterprise elements, unknown elements,
// unexpected lengths) get no operation, the others are applied in
// template order, and elements without a fast operation go through
// recState.apply.
type planOp struct {
	off  uint16
	len  uint8
	code opCode
	id   uint16 // for opApply
}

type opCode uint8

const (
	opApply opCode = iota // recState.apply(id, value)
	opSrc4
	opDst4
	opSrc6
	opDst6
	opOctets
	opPackets
	opProto
	opTOS
	opTCPFlags
	opSrcPort
	opDstPort
	opInIf
	opOutIf
	opStartMs
	opEndMs
	opDirection
	opEndReason
	opICMPTypeCode
	opMinTTL
	opMaxTTL
	opVLAN
	opInnerVLAN
)

// plan is the compiled form of a template.
type plan struct {
	ops    []planOp
	recLen int // fixed record length
}

// compile returns the plan of t, or nil when t has none (options
// templates, biflow templates, variable-length fields, records longer
// than 65535 octets).
func compile(t *Template) *plan {
	if t.IsOptions() || hasReverse(t.Fields) {
		return nil
	}
	p := &plan{}
	off := 0
	for _, f := range t.Fields {
		if f.Length == VarLen || off > 0xffff {
			return nil
		}
		n := int(f.Length)
		if op, ok := fieldOp(f); ok && n <= 0xff {
			op.off, op.len = uint16(off), uint8(n)
			p.ops = append(p.ops, op)
		} else if ok {
			return nil // a longer field the fast path does not carry
		}
		off += n
	}
	if off > 0xffff || off == 0 {
		return nil
	}
	p.recLen = off
	return p
}

// fieldOp returns the operation for a field, and false for a field the
// generic path ignores whatever its value.
func fieldOp(f Field) (planOp, bool) {
	if f.Enterprise != 0 {
		return planOp{}, false
	}
	n := f.Length
	uintOK := n >= 1 && n <= 8
	op := func(c opCode) (planOp, bool) { return planOp{code: c}, true }
	switch f.ID {
	case IESourceIPv4Address:
		if n == 4 {
			return op(opSrc4)
		}
		return planOp{}, false
	case IEDestinationIPv4Address:
		if n == 4 {
			return op(opDst4)
		}
		return planOp{}, false
	case IESourceIPv6Address:
		if n == 16 {
			return op(opSrc6)
		}
		return planOp{}, false
	case IEDestinationIPv6Address:
		if n == 16 {
			return op(opDst6)
		}
		return planOp{}, false
	case IEIPNextHopIPv4Address, IEBGPNextHopIPv4Address, IEIPNextHopIPv6Address, IEBGPNextHopIPv6Address, IEApplicationID:
		return planOp{code: opApply, id: f.ID}, true
	}
	if !uintOK {
		// recState.apply ignores integers of other lengths.
		return planOp{}, false
	}
	if f.ID == IEIPVersion {
		return planOp{}, false // derived from the addresses
	}
	if c, ok := uintOps[f.ID]; ok {
		return op(c)
	}
	return planOp{code: opApply, id: f.ID}, true
}

// uintOps are the fast operations of integer elements (of 1 to 8
// octets); the other integers go through recState.apply.
var uintOps = map[uint16]opCode{
	IEOctetDeltaCount:          opOctets,
	IEPacketDeltaCount:         opPackets,
	IEProtocolIdentifier:       opProto,
	IEIPClassOfService:         opTOS,
	IETCPControlBits:           opTCPFlags,
	IESourceTransportPort:      opSrcPort,
	IEDestinationTransportPort: opDstPort,
	IEIngressInterface:         opInIf,
	IEEgressInterface:          opOutIf,
	IEFlowStartMilliseconds:    opStartMs,
	IEFlowEndMilliseconds:      opEndMs,
	IEFlowDirection:            opDirection,
	IEFlowEndReason:            opEndReason,
	IEICMPTypeCodeIPv4:         opICMPTypeCode,
	IEICMPTypeCodeIPv6:         opICMPTypeCode,
	IEMinimumTTL:               opMinTTL,
	IEMaximumTTL:               opMaxTTL,
	IEVlanID:                   opVLAN,
	IEDot1qVlanID:              opVLAN,
	IEDot1qCustomerVlanID:      opInnerVLAN,
}

// beUint decodes 1 to 8 octets, big endian.
func beUint(v []byte) uint64 {
	switch len(v) {
	case 1:
		return uint64(v[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(v))
	case 4:
		return uint64(binary.BigEndian.Uint32(v))
	case 8:
		return binary.BigEndian.Uint64(v)
	}
	var u uint64
	for _, c := range v {
		u = u<<8 | uint64(c)
	}
	return u
}

// run decodes one record of the plan's length from b into r.
func (p *plan) run(rs *recState, r *flow.Record, b []byte) {
	b = b[:p.recLen]
	for i := range p.ops {
		op := &p.ops[i]
		v := b[op.off : int(op.off)+int(op.len)]
		switch op.code {
		case opSrc4:
			r.Src, _ = addr4(v)
		case opDst4:
			r.Dst, _ = addr4(v)
		case opSrc6:
			r.Src, _ = addr16(v)
		case opDst6:
			r.Dst, _ = addr16(v)
		case opOctets:
			r.Octets = beUint(v)
			rs.seen |= seenOctets
		case opPackets:
			r.Packets = beUint(v)
			rs.seen |= seenPackets
		case opProto:
			r.Proto = uint8(beUint(v))
		case opTOS:
			r.TOS = uint8(beUint(v))
		case opTCPFlags:
			r.TCPFlags = uint16(beUint(v))
		case opSrcPort:
			r.SrcPort = uint16(beUint(v))
		case opDstPort:
			r.DstPort = uint16(beUint(v))
		case opInIf:
			r.InIf = uint32(beUint(v))
		case opOutIf:
			r.OutIf = uint32(beUint(v))
		case opStartMs:
			rs.startMs = int64(beUint(v))
			rs.seen |= seenStartMs
		case opEndMs:
			rs.endMs = int64(beUint(v))
			rs.seen |= seenEndMs
		case opDirection:
			r.Direction = flow.Direction(beUint(v))
			rs.seen |= seenDirection
		case opEndReason:
			r.EndReason = flow.EndReason(beUint(v))
		case opICMPTypeCode:
			u := beUint(v)
			r.ICMPType, r.ICMPCode = uint8(u>>8), uint8(u)
			rs.seen |= seenICMP
		case opMinTTL:
			r.MinTTL = uint8(beUint(v))
		case opMaxTTL:
			r.MaxTTL = uint8(beUint(v))
		case opVLAN:
			r.VLAN = uint16(beUint(v))
		case opInnerVLAN:
			r.InnerVLAN = uint16(beUint(v))
		default:
			rs.apply(r, op.id, v)
		}
	}
}
