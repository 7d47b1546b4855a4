// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"net/netip"
	"sort"
)

// Key identifies a flow the way every probe in the comparison can report
// it: no direction (libpcap probes have none) and, for ICMP, the type and
// code in the destination port (type*256 + code), as NetFlow carries them.
type Key struct {
	Src, Dst         netip.Addr
	Proto            uint8
	SrcPort, DstPort uint16
}

func (k Key) String() string {
	return fmt.Sprintf("%s:%d > %s:%d proto %d", k.Src, k.SrcPort, k.Dst, k.DstPort, k.Proto)
}

// Counts are a flow's totals. Bytes are L3 bytes: the IP total length
// (IPv6: the payload length plus the 40-byte header), what NetFlow and
// IPFIX octet counters hold.
type Counts struct {
	Packets, Bytes uint64
}

// Truth is per-flow ground truth.
type Truth map[Key]Counts

// Add adds packets carrying bytes L3 bytes in total to k.
func (t Truth) Add(k Key, packets, bytes uint64) {
	c := t[k]
	c.Packets += packets
	c.Bytes += bytes
	t[k] = c
}

// Total sums every flow.
func (t Truth) Total() Counts {
	var c Counts
	for _, v := range t {
		c.Packets += v.Packets
		c.Bytes += v.Bytes
	}
	return c
}

// Match is how a probe's flows compare with the ground truth.
type Match struct {
	Want, Got      Counts // totals
	Flows          int    // flows in the truth
	ExactFlows     int    // truth flows reported with exactly their counts
	ExtraFlows     int    // reported flows the truth does not have
	FirstMismatch  string // an example, for the log
	MissingPackets int64  // Want.Packets - Got.Packets: unaccounted (negative: counted twice)
}

// Exact reports whether every flow, packet and byte is accounted for.
func (m Match) Exact() bool {
	return m.ExactFlows == m.Flows && m.ExtraFlows == 0 && m.Got == m.Want
}

// Compare compares reported flows with the truth. With perFlow false only
// the totals are compared (the truth is known in total only).
func Compare(want, got Truth, perFlow bool) Match {
	m := Match{Want: want.Total(), Got: got.Total(), Flows: len(want)}
	m.MissingPackets = int64(m.Want.Packets) - int64(m.Got.Packets)
	if !perFlow {
		if m.Got == m.Want {
			m.ExactFlows = m.Flows
		}
		return m
	}
	keys := make([]Key, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, k := range keys {
		w, g := want[k], got[k]
		if w == g {
			m.ExactFlows++
		} else if m.FirstMismatch == "" {
			m.FirstMismatch = fmt.Sprintf("%v: got %d packets %d bytes, want %d packets %d bytes", k, g.Packets, g.Bytes, w.Packets, w.Bytes)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			m.ExtraFlows++
			if m.FirstMismatch == "" {
				m.FirstMismatch = fmt.Sprintf("unexpected flow %v: %d packets %d bytes", k, g.Packets, g.Bytes)
			}
		}
	}
	return m
}
