// SPDX-License-Identifier: Apache-2.0

package flowfile

import "github.com/kflow-dev/kflow/exporter/flow"

// Fields is a set of flow.Record fields. A scan given fields decodes only
// those and leaves the others zero (ScanOptions.Fields); a block's columns
// are stored one after another with their lengths up front, so a column
// nobody reads is only checked, not decoded.
type Fields uint32

// The fields, one per column (a few columns hold two record fields).
const (
	FieldProto     Fields = 1 << iota
	FieldSrc              // Src
	FieldDst              // Dst
	FieldSrcPort          // SrcPort
	FieldDstPort          // DstPort
	FieldICMP             // ICMPType, ICMPCode
	FieldVLAN             // VLAN, InnerVLAN
	FieldInIf             // InIf
	FieldOutIf            // OutIf
	FieldDirection        // Direction
	FieldPackets          // Packets
	FieldOctets           // Octets
	FieldTimes            // Start, End
	FieldTCPFlags         // TCPFlags
	FieldTOS              // TOS
	FieldTTL              // MinTTL, MaxTTL
	FieldEndReason        // EndReason
	FieldNextHop          // NextHop
	FieldAS               // SrcAS, DstAS
	FieldMask             // SrcMask, DstMask
	FieldSampling         // SamplingInterval
	FieldExporter         // Exporter, ObservationDomain
	FieldCgroup           // CgroupID, Cgroup

	// AllFields is every field of flow.Record.
	AllFields = 1<<iota - 1
)

// Has reports whether f holds every field of g.
func (f Fields) Has(g Fields) bool { return f&g == g }

// Keep returns r with the fields outside f zeroed: what a scan for f
// returns for a record r.
func (f Fields) Keep(r flow.Record) flow.Record {
	var o flow.Record
	if f.Has(FieldProto) {
		o.Proto = r.Proto
	}
	if f.Has(FieldSrc) {
		o.Src = r.Src
	}
	if f.Has(FieldDst) {
		o.Dst = r.Dst
	}
	if f.Has(FieldSrcPort) {
		o.SrcPort = r.SrcPort
	}
	if f.Has(FieldDstPort) {
		o.DstPort = r.DstPort
	}
	if f.Has(FieldICMP) {
		o.ICMPType, o.ICMPCode = r.ICMPType, r.ICMPCode
	}
	if f.Has(FieldVLAN) {
		o.VLAN, o.InnerVLAN = r.VLAN, r.InnerVLAN
	}
	if f.Has(FieldInIf) {
		o.InIf = r.InIf
	}
	if f.Has(FieldOutIf) {
		o.OutIf = r.OutIf
	}
	if f.Has(FieldDirection) {
		o.Direction = r.Direction
	}
	if f.Has(FieldPackets) {
		o.Packets = r.Packets
	}
	if f.Has(FieldOctets) {
		o.Octets = r.Octets
	}
	if f.Has(FieldTimes) {
		o.Start, o.End = r.Start, r.End
	}
	if f.Has(FieldTCPFlags) {
		o.TCPFlags = r.TCPFlags
	}
	if f.Has(FieldTOS) {
		o.TOS = r.TOS
	}
	if f.Has(FieldTTL) {
		o.MinTTL, o.MaxTTL = r.MinTTL, r.MaxTTL
	}
	if f.Has(FieldEndReason) {
		o.EndReason = r.EndReason
	}
	if f.Has(FieldNextHop) {
		o.NextHop = r.NextHop
	}
	if f.Has(FieldAS) {
		o.SrcAS, o.DstAS = r.SrcAS, r.DstAS
	}
	if f.Has(FieldMask) {
		o.SrcMask, o.DstMask = r.SrcMask, r.DstMask
	}
	if f.Has(FieldSampling) {
		o.SamplingInterval = r.SamplingInterval
	}
	if f.Has(FieldExporter) {
		o.Exporter, o.ObservationDomain = r.Exporter, r.ObservationDomain
	}
	if f.Has(FieldCgroup) {
		o.CgroupID, o.Cgroup = r.CgroupID, r.Cgroup
	}
	return o
}
