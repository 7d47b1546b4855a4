// SPDX-License-Identifier: Apache-2.0

package flow

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// JSON is kflow's JSON encoding of a record, the one every view prints
// (`-j` of file dump, file query, flow list, map dump; file query -o
// ndjson; the exporter's /flows; the web API). It round-trips every field
// of Record: NewJSON then Record gives the record back exactly. The derived
// values (duration_ms, proto_name, pps, bps, bpp, unit, container, pod)
// are for readers and are
// ignored when decoding. docs/json.md is its reference; fields are only
// ever added.
type JSON struct {
	First      *time.Time `json:"first,omitempty"`
	Last       *time.Time `json:"last,omitempty"`
	DurationMs uint64     `json:"duration_ms"`
	Proto      uint8      `json:"proto"`
	ProtoName  string     `json:"proto_name"`
	Src        string     `json:"src"`
	Dst        string     `json:"dst"`
	SrcPort    uint16     `json:"src_port"`
	DstPort    uint16     `json:"dst_port"`
	ICMPType   uint8      `json:"icmp_type,omitempty"`
	ICMPCode   uint8      `json:"icmp_code,omitempty"`
	Packets    uint64     `json:"packets"`
	Bytes      uint64     `json:"bytes"`
	PPS        uint64     `json:"pps"`
	BPS        uint64     `json:"bps"`
	BPP        uint64     `json:"bpp"`
	TCPFlags   uint16     `json:"tcp_flags,omitempty"`
	TOS        uint8      `json:"tos,omitempty"`
	MinTTL     uint8      `json:"min_ttl,omitempty"`
	MaxTTL     uint8      `json:"max_ttl,omitempty"`
	VLAN       uint16     `json:"vlan,omitempty"`
	InnerVLAN  uint16     `json:"inner_vlan,omitempty"`
	InIf       uint32     `json:"in_if,omitempty"`
	OutIf      uint32     `json:"out_if,omitempty"`
	Direction  string     `json:"direction"`
	EndReason  string     `json:"end_reason,omitempty"`
	NextHop    string     `json:"next_hop,omitempty"`
	SrcAS      uint32     `json:"src_as,omitempty"`
	DstAS      uint32     `json:"dst_as,omitempty"`
	SrcMask    uint8      `json:"src_mask,omitempty"`
	DstMask    uint8      `json:"dst_mask,omitempty"`
	Sampling   uint32     `json:"sampling_interval,omitempty"`
	Exporter   string     `json:"exporter,omitempty"`
	Domain     uint32     `json:"observation_domain,omitempty"`
	CgroupID   uint64     `json:"cgroup_id,omitempty"`
	Cgroup     string     `json:"cgroup,omitempty"`
	// Derived from Cgroup (ignored when decoding).
	Unit      string `json:"unit,omitempty"`
	Container string `json:"container,omitempty"`
	Pod       string `json:"pod,omitempty"`
}

func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func timeRef(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// NewJSON returns r's JSON encoding. Times are in UTC.
func NewJSON(r *Record) JSON {
	j := JSON{
		First: timeRef(r.Start), Last: timeRef(r.End), DurationMs: r.DurationMs(),
		Proto: r.Proto, ProtoName: r.ProtoName(), Src: addrText(r.Src), Dst: addrText(r.Dst),
		SrcPort: r.SrcPort, DstPort: r.DstPort, ICMPType: r.ICMPType, ICMPCode: r.ICMPCode,
		Packets: r.Packets, Bytes: r.Octets, PPS: r.PPS(), BPS: r.BPS(), BPP: r.BPP(),
		TCPFlags: r.TCPFlags, TOS: r.TOS, MinTTL: r.MinTTL, MaxTTL: r.MaxTTL,
		VLAN: r.VLAN, InnerVLAN: r.InnerVLAN, InIf: r.InIf, OutIf: r.OutIf,
		Direction: r.Direction.String(), NextHop: addrText(r.NextHop),
		SrcAS: r.SrcAS, DstAS: r.DstAS, SrcMask: r.SrcMask, DstMask: r.DstMask,
		Sampling: r.SamplingInterval, Exporter: addrText(r.Exporter), Domain: r.ObservationDomain,
		CgroupID: r.CgroupID, Cgroup: r.Cgroup,
	}
	if r.Cgroup != "" {
		n := ParseCgroup(r.Cgroup)
		j.Unit, j.Container, j.Pod = n.Unit, n.Container, n.Pod
	}
	if r.Direction > Egress {
		j.Direction = strconv.Itoa(int(r.Direction))
	}
	if r.EndReason != EndUnknown {
		j.EndReason = r.EndReason.String()
		if j.EndReason == "unknown" {
			j.EndReason = strconv.Itoa(int(r.EndReason))
		}
	}
	return j
}

func parseAddrText(field, s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("flow json: %s: %w", field, err)
	}
	return a, nil
}

// Record decodes the encoding back into a record.
func (j *JSON) Record() (Record, error) {
	r := Record{
		Proto: j.Proto, SrcPort: j.SrcPort, DstPort: j.DstPort, ICMPType: j.ICMPType, ICMPCode: j.ICMPCode,
		Packets: j.Packets, Octets: j.Bytes, TCPFlags: j.TCPFlags, TOS: j.TOS, MinTTL: j.MinTTL, MaxTTL: j.MaxTTL,
		VLAN: j.VLAN, InnerVLAN: j.InnerVLAN, InIf: j.InIf, OutIf: j.OutIf,
		SrcAS: j.SrcAS, DstAS: j.DstAS, SrcMask: j.SrcMask, DstMask: j.DstMask,
		SamplingInterval: j.Sampling, ObservationDomain: j.Domain, CgroupID: j.CgroupID, Cgroup: j.Cgroup,
	}
	if j.First != nil {
		r.Start = j.First.UTC()
	}
	if j.Last != nil {
		r.End = j.Last.UTC()
	}
	var err error
	for _, a := range []struct {
		name string
		text string
		dst  *netip.Addr
	}{{"src", j.Src, &r.Src}, {"dst", j.Dst, &r.Dst}, {"next_hop", j.NextHop, &r.NextHop}, {"exporter", j.Exporter, &r.Exporter}} {
		if *a.dst, err = parseAddrText(a.name, a.text); err != nil {
			return Record{}, err
		}
	}
	if r.Direction, err = parseDirection(j.Direction); err != nil {
		return Record{}, err
	}
	if r.EndReason, err = parseEndReason(j.EndReason); err != nil {
		return Record{}, err
	}
	return r, nil
}

func parseDirection(s string) (Direction, error) {
	switch s {
	case "", Ingress.String():
		return Ingress, nil
	case Egress.String():
		return Egress, nil
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("flow json: direction %q: want ingress or egress", s)
	}
	return Direction(n), nil
}

func parseEndReason(s string) (EndReason, error) {
	if s == "" {
		return EndUnknown, nil
	}
	for r := EndIdle; r <= EndLackOfResources; r++ {
		if r.String() == s {
			return r, nil
		}
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("flow json: end_reason %q: want idle, active, end-of-flow, forced or lack-of-resources", s)
	}
	return EndReason(n), nil
}
