// SPDX-License-Identifier: Apache-2.0

package wire

import (
	"bytes"
	"encoding/binary"
	"math"
	"net/netip"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// ntpEpochOffset is the number of seconds from 1900-01-01 (NTP era 0) to
// 1970-01-01: dateTimeMicroseconds and dateTimeNanoseconds use the NTP
// timestamp format (RFC 7011 section 6.1.9).
const ntpEpochOffset = 2208988800

// getUint decodes an unsigned integer of 1 to 8 octets, big endian: this
// covers reduced-size encoding (RFC 7011 section 6.2). ok is false for
// other lengths.
func getUint(v []byte) (u uint64, ok bool) {
	if len(v) == 0 || len(v) > 8 {
		return 0, false
	}
	for _, c := range v {
		u = u<<8 | uint64(c)
	}
	return u, true
}

// putUint encodes v into all of b, big endian, saturating when v does not
// fit in len(b) octets.
func putUint(b []byte, v uint64) {
	if n := len(b); n < 8 && v>>(8*uint(n)) != 0 {
		v = 1<<(8*uint(n)) - 1
	}
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

func putAddr(b []byte, a netip.Addr) {
	switch {
	case len(b) == 4 && a.Is4():
		v := a.As4()
		copy(b, v[:])
	case len(b) == 16 && a.Is6():
		v := a.As16()
		copy(b, v[:])
	default:
		clear(b)
	}
}

func unixMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// PutField writes the value of information element id taken from r into b,
// which is exactly the field's length. sysInitMs is the unix time in ms at
// which the exporter's sysUpTime was zero, for IEs 21 and 22. Elements the
// record model does not carry are written as zeros.
func PutField(b []byte, id uint16, r *flow.Record, sysInitMs int64) {
	switch id {
	case IEOctetDeltaCount:
		putUint(b, r.Octets)
	case IEPacketDeltaCount:
		putUint(b, r.Packets)
	case IEProtocolIdentifier:
		putUint(b, uint64(r.Proto))
	case IEIPClassOfService:
		putUint(b, uint64(r.TOS))
	case IETCPControlBits:
		putUint(b, uint64(r.TCPFlags&(1<<(8*uint(len(b)))-1)))
	case IESourceTransportPort:
		putUint(b, uint64(r.SrcPort))
	case IEDestinationTransportPort:
		putUint(b, uint64(r.DstPort))
	case IESourceIPv4Address, IESourceIPv6Address:
		putAddr(b, r.Src)
	case IEDestinationIPv4Address, IEDestinationIPv6Address:
		putAddr(b, r.Dst)
	case IEIPNextHopIPv4Address, IEIPNextHopIPv6Address:
		putAddr(b, r.NextHop)
	case IESourceIPv4PrefixLength, IESourceIPv6PrefixLength:
		putUint(b, uint64(r.SrcMask))
	case IEDestinationIPv4PrefixLength, IEDestinationIPv6PrefixLength:
		putUint(b, uint64(r.DstMask))
	case IEBGPSourceASNumber:
		putUint(b, uint64(r.SrcAS))
	case IEBGPDestinationASNumber:
		putUint(b, uint64(r.DstAS))
	case IEIngressInterface:
		putUint(b, uint64(r.InIf))
	case IEEgressInterface:
		putUint(b, uint64(r.OutIf))
	case IEICMPTypeCodeIPv4, IEICMPTypeCodeIPv6:
		putUint(b, uint64(r.ICMPTypeCode()))
	case IEMinimumTTL:
		putUint(b, uint64(r.MinTTL))
	case IEMaximumTTL:
		putUint(b, uint64(r.MaxTTL))
	case IEVlanID, IEDot1qVlanID:
		putUint(b, uint64(r.VLAN))
	case IEDot1qCustomerVlanID:
		putUint(b, uint64(r.InnerVLAN))
	case IEIPVersion:
		putUint(b, uint64(r.IPVersion()))
	case IEFlowDirection:
		putUint(b, uint64(r.Direction))
	case IEFlowEndReason:
		putUint(b, uint64(r.EndReason))
	case IESamplingInterval:
		putUint(b, uint64(r.SamplingInterval))
	case IEFlowStartMilliseconds:
		putUint(b, uint64(unixMs(r.Start)))
	case IEFlowEndMilliseconds:
		putUint(b, uint64(unixMs(r.End)))
	case IEFlowStartSeconds:
		putUint(b, uint64(unixMs(r.Start)/1000))
	case IEFlowEndSeconds:
		putUint(b, uint64(unixMs(r.End)/1000))
	case IEFlowStartSysUpTime:
		putUint(b, uint64(uint32(unixMs(r.Start)-sysInitMs)))
	case IEFlowEndSysUpTime:
		putUint(b, uint64(uint32(unixMs(r.End)-sysInitMs)))
	default:
		clear(b)
	}
}

// Bits of recState.seen.
const (
	seenOctets = 1 << iota
	seenPackets
	seenOctetTotal
	seenPacketTotal
	seenStartNs
	seenEndNs
	seenStartMs
	seenEndMs
	seenStartSec
	seenEndSec
	seenStartDelta
	seenEndDelta
	seenStartUp
	seenEndUp
	seenInit
	seenICMP
	seenSampling
	seenDirection
)

// recState collects the values of a data record that can only be resolved
// once the whole record is read: timestamps of several precisions, totals
// used when deltas are absent, sampling.
type recState struct {
	seen                  uint32
	octetTotal, pktTotal  uint64
	startNs, endNs        int64 // unix ns
	startMs, endMs        int64
	startSec, endSec      int64
	startDelta, endDelta  uint64 // µs before export time
	startUp, endUp        uint32 // ms since system init
	sysInitMs             int64
	sampling              uint32
	pktInterval, pktSpace uint64
	samplerID             uint64 // samplerId (48) or selectorId (302)
	haveSamplerID         bool
	app                   uint64 // kflow's cgroup applicationId; 0 none
}

// appID returns the cgroup id of a kflow applicationId, or 0.
func appID(v []byte) uint64 {
	if len(v) != AppIDLen || v[0] != AppEngineUserDefined {
		return 0
	}
	return binary.BigEndian.Uint64(v[1:])
}

func ntpToUnixNs(v uint64) int64 {
	sec := int64(v>>32) - ntpEpochOffset
	frac := (v & 0xffffffff) * 1e9 >> 32
	return sec*1e9 + int64(frac)
}

func addr4(v []byte) (netip.Addr, bool) {
	if len(v) != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte(v)), true
}

func addr16(v []byte) (netip.Addr, bool) {
	if len(v) != 16 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom16([16]byte(v)), true
}

// apply stores the value of one field of a data record. Values of an
// unexpected length are ignored, never fatal.
func (rs *recState) apply(r *flow.Record, id uint16, v []byte) {
	switch id {
	case IEApplicationID:
		rs.app = appID(v)
		return
	case IESourceIPv4Address:
		if a, ok := addr4(v); ok {
			r.Src = a
		}
		return
	case IEDestinationIPv4Address:
		if a, ok := addr4(v); ok {
			r.Dst = a
		}
		return
	case IESourceIPv6Address:
		if a, ok := addr16(v); ok {
			r.Src = a
		}
		return
	case IEDestinationIPv6Address:
		if a, ok := addr16(v); ok {
			r.Dst = a
		}
		return
	case IEIPNextHopIPv4Address, IEBGPNextHopIPv4Address:
		// 0.0.0.0 and :: mean "no next hop".
		if a, ok := addr4(v); ok && !a.IsUnspecified() && (id == IEIPNextHopIPv4Address || !r.NextHop.IsValid()) {
			r.NextHop = a
		}
		return
	case IEIPNextHopIPv6Address, IEBGPNextHopIPv6Address:
		if a, ok := addr16(v); ok && !a.IsUnspecified() && (id == IEIPNextHopIPv6Address || !r.NextHop.IsValid()) {
			r.NextHop = a
		}
		return
	}
	u, ok := getUint(v)
	if !ok {
		return
	}
	switch id {
	case IEOctetDeltaCount:
		r.Octets = u
		rs.seen |= seenOctets
	case IEPacketDeltaCount:
		r.Packets = u
		rs.seen |= seenPackets
	case IEOctetTotalCount:
		rs.octetTotal = u
		rs.seen |= seenOctetTotal
	case IEPacketTotalCount:
		rs.pktTotal = u
		rs.seen |= seenPacketTotal
	case IEProtocolIdentifier:
		r.Proto = uint8(u)
	case IEIPClassOfService:
		r.TOS = uint8(u)
	case IETCPControlBits:
		r.TCPFlags = uint16(u)
	case IESourceTransportPort:
		r.SrcPort = uint16(u)
	case IEDestinationTransportPort:
		r.DstPort = uint16(u)
	case IESourceIPv4PrefixLength, IESourceIPv6PrefixLength:
		r.SrcMask = uint8(u)
	case IEDestinationIPv4PrefixLength, IEDestinationIPv6PrefixLength:
		r.DstMask = uint8(u)
	case IEBGPSourceASNumber:
		r.SrcAS = uint32(u)
	case IEBGPDestinationASNumber:
		r.DstAS = uint32(u)
	case IEIngressInterface:
		r.InIf = uint32(u)
	case IEEgressInterface:
		r.OutIf = uint32(u)
	case IEICMPTypeCodeIPv4, IEICMPTypeCodeIPv6:
		r.ICMPType, r.ICMPCode = uint8(u>>8), uint8(u)
		rs.seen |= seenICMP
	case IEICMPTypeIPv4, IEICMPTypeIPv6:
		r.ICMPType = uint8(u)
		rs.seen |= seenICMP
	case IEICMPCodeIPv4, IEICMPCodeIPv6:
		r.ICMPCode = uint8(u)
		rs.seen |= seenICMP
	case IEMinimumTTL:
		r.MinTTL = uint8(u)
	case IEMaximumTTL:
		r.MaxTTL = uint8(u)
	case IEVlanID, IEDot1qVlanID:
		r.VLAN = uint16(u)
	case IEDot1qCustomerVlanID:
		r.InnerVLAN = uint16(u)
	case IEFlowDirection:
		r.Direction = flow.Direction(u)
		rs.seen |= seenDirection
	case IEFlowEndReason:
		r.EndReason = flow.EndReason(u)
	case IESamplingInterval, IESamplerRandomInterval:
		rs.sampling = uint32(u)
		rs.seen |= seenSampling
	case IESamplerID, IESelectorID:
		rs.samplerID, rs.haveSamplerID = u, true
	case IESamplingPacketInterval:
		rs.pktInterval = u
	case IESamplingPacketSpace:
		rs.pktSpace = u
	case IEFlowStartNanoseconds, IEFlowStartMicroseconds:
		if len(v) == 8 {
			rs.startNs = ntpToUnixNs(u)
			rs.seen |= seenStartNs
		}
	case IEFlowEndNanoseconds, IEFlowEndMicroseconds:
		if len(v) == 8 {
			rs.endNs = ntpToUnixNs(u)
			rs.seen |= seenEndNs
		}
	case IEFlowStartMilliseconds:
		rs.startMs = int64(u)
		rs.seen |= seenStartMs
	case IEFlowEndMilliseconds:
		rs.endMs = int64(u)
		rs.seen |= seenEndMs
	case IEFlowStartSeconds:
		rs.startSec = int64(u)
		rs.seen |= seenStartSec
	case IEFlowEndSeconds:
		rs.endSec = int64(u)
		rs.seen |= seenEndSec
	case IEFlowStartDeltaMicroseconds:
		rs.startDelta = u
		rs.seen |= seenStartDelta
	case IEFlowEndDeltaMicroseconds:
		rs.endDelta = u
		rs.seen |= seenEndDelta
	case IEFlowStartSysUpTime:
		rs.startUp = uint32(u)
		rs.seen |= seenStartUp
	case IEFlowEndSysUpTime:
		rs.endUp = uint32(u)
		rs.seen |= seenEndUp
	case IESystemInitTimeMilliseconds:
		rs.sysInitMs = int64(u)
		rs.seen |= seenInit
	}
}

// resolveTime picks the most precise timestamp the record carried.
func (rs *recState) resolveTime(ctx *Context, sysInitMs int64, ns, ms, sec, delta, up int64, bits [5]uint32) time.Time {
	switch {
	case rs.seen&bits[0] != 0:
		return time.Unix(0, ns).UTC()
	case rs.seen&bits[1] != 0:
		if ms == 0 {
			return time.Time{}
		}
		return time.UnixMilli(ms).UTC()
	case rs.seen&bits[2] != 0:
		if sec == 0 {
			return time.Time{}
		}
		return time.Unix(sec, 0).UTC()
	case rs.seen&bits[3] != 0:
		return time.UnixMicro(ctx.ExportMs*1000 - delta).UTC()
	case rs.seen&bits[4] != 0:
		if ctx.UptimeMs >= 0 {
			// NetFlow v9/v5: relative to the header's sysUptime, with
			// 32-bit wrap-around.
			d := int32(uint32(ctx.UptimeMs) - uint32(up))
			return time.UnixMilli(ctx.ExportMs - int64(d)).UTC()
		}
		if sysInitMs != 0 {
			return time.UnixMilli(sysInitMs + up).UTC()
		}
	}
	return time.Time{}
}

// finishRecord resolves what recState collected into r.
func (s *Templates) finishRecord(out *Data, r *flow.Record, ctx *Context, rs *recState) {
	init := rs.sysInitMs
	if rs.seen&seenInit == 0 || init == 0 {
		init = s.SysInit(ctx.Domain)
	} else if st := s.domain(ctx.Domain, true); st != nil {
		// A data record's own systemInitTimeMilliseconds (RouterOS 7's
		// "sys-init-time") holds for the domain's later records too.
		st.sysInitMs = init
	}
	if init == 0 && ctx.UptimeMs < 0 && rs.seen&(seenStartUp|seenEndUp) != 0 {
		// IPFIX sysUpTime-relative times and no init time known: resolved
		// by resolvePending once the whole set is read.
		s.pending = append(s.pending, pendingTime{index: len(out.Records) - 1, rs: *rs})
	}
	r.Start = rs.resolveTime(ctx, init, rs.startNs, rs.startMs, rs.startSec, int64(rs.startDelta), int64(rs.startUp),
		[5]uint32{seenStartNs, seenStartMs, seenStartSec, seenStartDelta, seenStartUp})
	r.End = rs.resolveTime(ctx, init, rs.endNs, rs.endMs, rs.endSec, int64(rs.endDelta), int64(rs.endUp),
		[5]uint32{seenEndNs, seenEndMs, seenEndSec, seenEndDelta, seenEndUp})
	if rs.seen&seenOctets == 0 && rs.seen&seenOctetTotal != 0 {
		r.Octets = rs.octetTotal
	}
	if rs.seen&seenPackets == 0 && rs.seen&seenPacketTotal != 0 {
		r.Packets = rs.pktTotal
	}
	if rs.seen&seenICMP == 0 && r.IsICMP() {
		switch {
		case r.SrcPort == 0 && r.DstPort != 0:
			// Many exporters carry ICMP type and code in the destination
			// port: type*256 + code.
			r.ICMPType, r.ICMPCode = uint8(r.DstPort>>8), uint8(r.DstPort)
			r.DstPort = 0
		case r.SrcPort != 0 && r.SrcPort < 256 && r.DstPort < 256:
			// fprobe: the type in the source port, the code in the
			// destination port.
			r.ICMPType, r.ICMPCode = uint8(r.SrcPort), uint8(r.DstPort)
			r.SrcPort, r.DstPort = 0, 0
		}
	}
	switch {
	case rs.seen&seenSampling != 0:
		r.SamplingInterval = rs.sampling
	case rs.pktInterval > 0:
		r.SamplingInterval = packetSampling(rs.pktInterval, rs.pktSpace)
	case rs.haveSamplerID && s.samplerKnown(ctx.Domain, rs.samplerID):
		// The sampler the record names, each sampler of a domain with
		// its own rate.
		r.SamplingInterval = s.SamplerSampling(ctx.Domain, rs.samplerID)
	default:
		r.SamplingInterval = s.Sampling(ctx.Domain)
	}
	r.ObservationDomain = ctx.Domain
	if rs.app != 0 {
		r.CgroupID = rs.app
		if st := s.domain(ctx.Domain, false); st != nil {
			r.Cgroup = st.apps[rs.app]
		}
	}
	s.appendReverse(out, r, ctx, rs, init)
}

// packetSampling turns samplingPacketInterval/samplingPacketSpace (RFC 5477)
// into a 1-in-N interval.
func packetSampling(interval, space uint64) uint32 {
	n := (interval + space) / interval
	if n > 1<<32-1 {
		n = 1<<32 - 1
	}
	return uint32(n)
}

// optState collects one options data record.
type optState struct {
	domain                uint32
	haveIf, haveName      bool
	ifIndex               uint32
	scopeIn, scopeOut     uint32 // interface scope fields, for filter counts
	scopeIf               bool
	haveDir               bool
	dir                   flow.Direction
	name                  []byte
	haveStats             bool
	stats                 ExporterStats
	sysInitMs             int64
	haveSampling          bool
	sampling              uint32
	algorithm             uint8
	pktInterval, pktSpace uint64
	probability           float64
	samplerID             uint64 // samplerId (48) or selectorId (302)
	haveSamplerID         bool
	app                   uint64 // scope applicationId (kflow's cgroups)
	appDesc               []byte
	haveDesc              bool
}

func (o *optState) apply(id uint16, v []byte, scope bool) {
	switch id {
	case IEInterfaceName:
		o.name = bytes.TrimRight(v, "\x00")
		o.haveName = true
		return
	case IEApplicationID:
		o.app = appID(v)
		return
	case IEApplicationDescription:
		// NetFlow v9's is of fixed length, padded with zeros.
		o.appDesc, o.haveDesc = bytes.TrimRight(v, "\x00"), true
		return
	case IESamplingProbability:
		// float64, or float32 in reduced-size encoding (RFC 7011 6.2).
		switch len(v) {
		case 8:
			o.probability = math.Float64frombits(binary.BigEndian.Uint64(v))
		case 4:
			o.probability = float64(math.Float32frombits(binary.BigEndian.Uint32(v)))
		}
		return
	}
	u, ok := getUint(v)
	if !ok {
		return
	}
	switch id {
	case IEIngressInterface, IEEgressInterface:
		if !o.haveIf || scope {
			o.ifIndex = uint32(u)
			o.haveIf = true
		}
		if scope {
			o.scopeIf = true
			if id == IEIngressInterface {
				o.scopeIn = uint32(u)
			} else {
				o.scopeOut = uint32(u)
			}
		}
	case IEFlowDirection:
		o.dir, o.haveDir = flow.Direction(u), true
	case IEExportedOctetTotalCount:
		o.stats.Octets, o.haveStats = u, true
	case IEExportedMessageTotalCount:
		o.stats.Messages, o.haveStats = u, true
	case IEExportedFlowRecordTotalCount:
		o.stats.Records, o.haveStats = u, true
	case IEIgnoredPacketTotalCount:
		o.stats.IgnoredPackets, o.haveStats = u, true
	case IEIgnoredOctetTotalCount:
		o.stats.IgnoredOctets, o.haveStats = u, true
	case IESystemInitTimeMilliseconds:
		o.sysInitMs, o.haveStats = int64(u), true
	case IESamplingInterval, IESamplerRandomInterval:
		o.sampling, o.haveSampling = uint32(u), true
	case IESamplingAlgorithm, IESamplerMode:
		o.algorithm = uint8(u)
	case IESelectorAlgorithm:
		switch uint16(u) {
		case SelectorCountBased:
			o.algorithm = SamplingDeterministic
		case SelectorRandomNofN, SelectorUniformProbabilistic:
			o.algorithm = SamplingRandom
		}
	case IESamplingPacketInterval:
		o.pktInterval = u
	case IESamplingPacketSpace:
		o.pktSpace = u
	case IESamplerID, IESelectorID:
		o.samplerID, o.haveSamplerID = u, true
	}
}

func (s *Templates) finishOptions(out *Data, o *optState) {
	if o.scopeIf && o.haveStats && o.stats.Messages == 0 && o.stats.Records == 0 {
		// Ignored counts scoped by an interface: a capture filter's
		// counts (kflow's filter statistics), not exporter statistics.
		fc := FilterCount{Domain: o.domain, Ifindex: o.ifIndex, Direction: o.dir,
			Packets: o.stats.IgnoredPackets, Octets: o.stats.IgnoredOctets}
		if !o.haveDir {
			fc.Ifindex, fc.Direction = o.scopeIn, flow.Ingress
			if o.scopeIn == 0 {
				fc.Ifindex, fc.Direction = o.scopeOut, flow.Egress
			}
		}
		out.Filtered = append(out.Filtered, fc)
		o.haveStats = false
	}
	if o.app != 0 && o.haveDesc {
		if st := s.domain(o.domain, true); st != nil {
			if st.apps == nil || len(st.apps) >= maxApps {
				st.apps = make(map[uint64]string)
			}
			st.apps[o.app] = string(o.appDesc)
		}
	}
	if o.haveName {
		out.Interfaces = append(out.Interfaces, Interface{Domain: o.domain, Index: o.ifIndex, Name: string(o.name)})
	}
	if o.haveStats {
		o.stats.Domain = o.domain
		if o.sysInitMs != 0 {
			o.stats.SystemInit = time.UnixMilli(o.sysInitMs).UTC()
			if st := s.domain(o.domain, true); st != nil {
				st.sysInitMs = o.sysInitMs
			}
		}
		out.Stats = append(out.Stats, o.stats)
	}
	if !o.haveSampling && o.pktInterval > 0 {
		o.sampling, o.haveSampling = packetSampling(o.pktInterval, o.pktSpace), true
	}
	if !o.haveSampling && o.probability > 0 && o.probability <= 1 {
		// Uniform probabilistic sampling: one packet in 1/p on average.
		o.sampling, o.haveSampling = uint32(min(math.Round(1/o.probability), math.MaxUint32)), true
	}
	if o.haveSampling {
		out.Sampling = append(out.Sampling, Sampling{Domain: o.domain, Interval: o.sampling, Algorithm: o.algorithm,
			SamplerID: o.samplerID, HasSamplerID: o.haveSamplerID})
		if st := s.domain(o.domain, true); st != nil {
			// The domain's rate is the last announced (for records that
			// name no sampler); a sampler's is kept under its id.
			st.sampling = o.sampling
			if o.haveSamplerID {
				st.setSampler(o.samplerID, o.sampling)
			}
		}
	}
}
