// SPDX-License-Identifier: Apache-2.0

package bpf

import "github.com/kflow-dev/kflow/exporter/flow"

// Record returns the entry as a flow record, without times: the entry's
// are in the datapath's clock (FirstSeen, LastSeen), which only the
// exporter converts to wall-clock times. The interface is the input
// interface of an ingress entry and the output interface of an egress one.
func (e *FlowEntry) Record() flow.Record {
	r := flow.Record{Src: e.Src, Dst: e.Dst, SrcPort: e.SrcPort, DstPort: e.DstPort, Proto: e.Proto,
		ICMPType: e.ICMPType, ICMPCode: e.ICMPCode, VLAN: e.VLAN, InnerVLAN: e.InnerVLAN, Direction: e.Direction,
		Packets: e.Packets, Octets: e.Octets, TCPFlags: e.TCPFlags, TOS: e.TOS, MinTTL: e.MinTTL, MaxTTL: e.MaxTTL,
		CgroupID: e.CgroupID}
	if e.Direction == flow.Egress {
		r.OutIf = e.Ifindex
	} else {
		r.InIf = e.Ifindex
	}
	return r
}
