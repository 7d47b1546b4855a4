// SPDX-License-Identifier: Apache-2.0

// Package pcapfilter compiles capture filters written in tcpdump's syntax
// (pcap-filter(7), the primitives kflow supports) into the decision
// program the datapath runs on every parsed packet, and runs such a
// program in Go (Match), the reference the kernel's interpreter is tested
// against.
package pcapfilter

import (
	"fmt"
	"net/netip"
)

// Op is the test one instruction makes.
type Op uint8

// The tests, numbered as enum filter_op in bpf/kflow_abi.h. Every test
// first requires the packet's IP version to be Insn.Version when that is
// not 0.
const (
	OpVersion Op = iota // nothing more: the IP version test alone
	OpSrcNet            // (source address & Mask) == Addr
	OpDstNet            // (destination address & Mask) == Addr
	OpSrcPort           // a TCP, UDP or SCTP source port in [Lo, Hi]
	OpDstPort           // a TCP, UDP or SCTP destination port in [Lo, Hi]
	OpProto             // the transport protocol is Proto
	OpVLAN              // the outer VLAN id is Lo
	OpTagged            // the frame has a VLAN tag (a non-zero id)
	numOps
)

// Jump targets that end the program.
const (
	Accept = 254
	Reject = 255
)

// MaxInsns is the longest program the datapath runs (FILTER_MAX_INSNS).
const MaxInsns = 64

// Insn is one instruction: a test, and where to go when it holds (JT) or
// not (JF): the index of a later instruction, Accept or Reject.
type Insn struct {
	Op      Op
	Version uint8 // 4 or 6: the packet must be of that IP version; 0 any
	JT, JF  uint8
	Proto   uint8
	Lo, Hi  uint16 // port range, VLAN id
	// Addr and Mask are 16-byte addresses as the datapath keys them:
	// IPv4 as IPv4-mapped IPv6.
	Addr, Mask [16]byte
}

// Program is a compiled filter. An empty program accepts everything.
type Program []Insn

// Packet is what a program tests: the fields of the datapath's parsed
// packet.
type Packet struct {
	Version          uint8      // 4 or 6
	Src, Dst         netip.Addr // IPv4 or IPv6
	Proto            uint8
	SrcPort, DstPort uint16
	// Ports is set when the ports were read: TCP, UDP (and UDP-Lite) and
	// SCTP, except non-first fragments.
	Ports bool
	VLAN  uint16 // outer VLAN id, 0 untagged
}

// portProto reports whether pcap's port primitives apply to protocol p.
func portProto(p uint8) bool { return p == 6 || p == 17 || p == 132 }

// test runs one instruction's test on p.
func (in *Insn) test(p *Packet) bool {
	if in.Version != 0 && in.Version != p.Version {
		return false
	}
	switch in.Op {
	case OpVersion:
		return true
	case OpSrcNet:
		return masked(p.Src, &in.Mask) == in.Addr
	case OpDstNet:
		return masked(p.Dst, &in.Mask) == in.Addr
	case OpSrcPort:
		return p.Ports && portProto(p.Proto) && p.SrcPort >= in.Lo && p.SrcPort <= in.Hi
	case OpDstPort:
		return p.Ports && portProto(p.Proto) && p.DstPort >= in.Lo && p.DstPort <= in.Hi
	case OpProto:
		return p.Proto == in.Proto
	case OpVLAN:
		return p.VLAN == in.Lo
	case OpTagged:
		return p.VLAN != 0
	}
	return false
}

func masked(a netip.Addr, m *[16]byte) [16]byte {
	b := a.As16() // IPv4 as IPv4-mapped, as the datapath keys it
	for i := range b {
		b[i] &= m[i]
	}
	return b
}

// Match runs the program on p as the datapath does.
func (prog Program) Match(p *Packet) bool {
	if len(prog) == 0 {
		return true
	}
	pc := 0
	for range MaxInsns {
		if pc >= len(prog) {
			break
		}
		in := &prog[pc]
		next := in.JF
		if in.test(p) {
			next = in.JT
		}
		switch next {
		case Accept:
			return true
		case Reject:
			return false
		}
		pc = int(next)
	}
	return true // not reached by a program Check accepts
}

// Check verifies what the datapath relies on: at most MaxInsns
// instructions, known tests, and every jump forward or to Accept/Reject.
func (prog Program) Check() error {
	if len(prog) > MaxInsns {
		return fmt.Errorf("filter program of %d tests: at most %d", len(prog), MaxInsns)
	}
	for i, in := range prog {
		if in.Op >= numOps {
			return fmt.Errorf("filter instruction %d: unknown test %d", i, in.Op)
		}
		for _, j := range []uint8{in.JT, in.JF} {
			if j != Accept && j != Reject && (int(j) <= i || int(j) >= len(prog)) {
				return fmt.Errorf("filter instruction %d: jump to %d", i, j)
			}
		}
	}
	return nil
}
