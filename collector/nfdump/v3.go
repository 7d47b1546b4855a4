// SPDX-License-Identifier: Apache-2.0

package nfdump

import (
	"fmt"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// nfdump 1.7's V3 record: a 12-byte header (type, size, element count,
// engine type and id, exporter sysid, flags, NetFlow version) and elements,
// each a 4-byte header (type, length including the header) and its value.
// The element values this reader maps (nfxV3.h), offsets from the value:
const (
	v3HeaderLen = 12
	v3Sampled   = 0x02 // header flags: counters were scaled by a sampling rate

	elemGeneric     = 1  // msecFirst 0, msecLast 8, msecReceived 16, packets 24, bytes 32, srcPort 40, dstPort 42, proto 44, tcpFlags 45, fwdStatus 46, tos 47
	elemIPv4        = 2  // src 0, dst 4
	elemIPv6        = 3  // src 0, dst 16
	elemMisc        = 4  // input 0, output 4, srcMask 8, dstMask 9, dir 10, dstTos 11, biFlowDir 12, flowEndReason 13
	elemCounters    = 5  // aggregated flows, out packets, out bytes: not in kflow's record model
	elemVLAN        = 6  // srcVlan 0, dstVlan 4 (32-bit)
	elemAS          = 7  // srcAS 0, dstAS 4
	elemBGPNextHop4 = 8  // not in kflow's record model
	elemBGPNextHop6 = 9  //
	elemNextHop4    = 10 // ip 0
	elemNextHop6    = 11 // ip 0
	elemExporter4   = 12 // the address the export came from
	elemExporter6   = 13 //
	elemSampler     = 18 // selector id 0 (int64), exporter sysid 8
	elemObservation = 33 // point id 0, domain id 8
	// elemMax is the highest element type nfdump 1.7 defines; the ones not
	// mapped above (MPLS, MAC, latency, NSEL/NEL, payload, tunnels, names,
	// pf info ...) hold nothing kflow's record model keeps.
	elemMax = 37
)

// elemMin is the value length each mapped element needs.
var elemMin = [...]int{
	elemGeneric: 48, elemIPv4: 8, elemIPv6: 32, elemMisc: 14, elemVLAN: 8, elemAS: 8,
	elemNextHop4: 4, elemNextHop6: 16, elemExporter4: 4, elemExporter6: 16,
	elemSampler: 10, elemObservation: 12,
}

// v3 decodes a V3 record into r; ok is false for a record that is not a
// flow (no generic flow element).
func (d *decoder) v3(rec []byte, r *flow.Record) (ok bool, err error) {
	if len(rec) < v3HeaderLen {
		return false, fmt.Errorf("record of %d bytes", len(rec))
	}
	n := int(le16(rec, 4))
	sysid, flags := le16(rec, 8), rec[10]
	var selector int64
	var hasSelector, generic bool
	off := v3HeaderLen
	for i := range n {
		if len(rec)-off < 4 {
			return false, fmt.Errorf("element %d at record offset %d: %d bytes left for its header", i, off, len(rec)-off)
		}
		typ, length := int(le16(rec, off)), int(le16(rec, off+2))
		if length < 4 || length > len(rec)-off {
			return false, fmt.Errorf("element %d (type %d) at record offset %d: length %d with %d bytes left", i, typ, off, length, len(rec)-off)
		}
		v := rec[off+4 : off+length]
		off += length
		if typ < len(elemMin) && elemMin[typ] > 0 && len(v) < elemMin[typ] {
			return false, fmt.Errorf("element %d (type %d): %d bytes, want %d", i, typ, len(v), elemMin[typ])
		}
		switch typ {
		case elemGeneric:
			generic = true
			r.Start, r.End = msTime(le64(v, 0)), msTime(le64(v, 8))
			r.Packets, r.Octets = le64(v, 24), le64(v, 32)
			r.SrcPort, r.DstPort = le16(v, 40), le16(v, 42)
			r.Proto, r.TCPFlags, r.TOS = v[44], uint16(v[45]), v[47]
		case elemIPv4:
			r.Src, r.Dst = addr4(v), addr4(v[4:])
		case elemIPv6:
			r.Src, r.Dst = addr6(v), addr6(v[16:])
		case elemMisc:
			r.InIf, r.OutIf = le32(v, 0), le32(v, 4)
			r.SrcMask, r.DstMask = v[8], v[9]
			r.Direction, r.EndReason = flow.Direction(v[10]), flow.EndReason(v[13])
		case elemVLAN:
			r.VLAN = uint16(le32(v, 0))
		case elemAS:
			r.SrcAS, r.DstAS = le32(v, 0), le32(v, 4)
		case elemNextHop4:
			r.NextHop = addr4(v)
		case elemNextHop6:
			r.NextHop = addr6(v)
		case elemExporter4:
			r.Exporter = addr4(v)
		case elemExporter6:
			r.Exporter = addr6(v)
		case elemSampler:
			selector, hasSelector = int64(le64(v, 0)), true
		case elemObservation:
			r.ObservationDomain = le32(v, 8)
		default:
			if typ == 0 || typ > elemMax {
				d.unknownElements++
			}
		}
	}
	if !generic {
		d.unknownRecords++
		return false, nil
	}
	d.finish(r, sysid, flags&v3Sampled != 0, selector, hasSelector)
	return true, nil
}
