// SPDX-License-Identifier: Apache-2.0

package query

import (
	"strconv"
	"strings"

	"github.com/kflow-dev/kflow/collector/filter"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// flagLetters are the TCP flags the filter language names, by bit.
var flagLetters = []struct {
	bit    uint16
	letter byte
}{{flow.TCPFin, 'F'}, {flow.TCPSyn, 'S'}, {flow.TCPRst, 'R'}, {flow.TCPPsh, 'P'}, {flow.TCPAck, 'A'},
	{flow.TCPUrg, 'U'}, {flow.TCPEce, 'E'}, {flow.TCPCwr, 'C'}}

// term returns the filter primitive selecting records whose value of d
// is v, or false when the language cannot say it exactly.
func (d Dim) term(v Value) (string, bool) {
	addr := func(kw string) (string, bool) {
		a := v.Addr
		if !a.IsValid() {
			return "", false
		}
		bits := d.Bits6
		if a.Is4() {
			bits = d.Bits4
		}
		if bits == 0 || bits == a.BitLen() {
			return kw + " ip " + a.String(), true
		}
		return kw + " net " + a.String() + "/" + strconv.Itoa(bits), true
	}
	n := strconv.FormatUint(uint64(v.Num), 10)
	switch d.Element {
	case ElemSrcIP:
		return addr("src")
	case ElemDstIP:
		return addr("dst")
	case ElemExporter:
		if !v.Addr.IsValid() || d.Bits4 != 0 && v.Addr.Is4() && d.Bits4 != 32 || d.Bits6 != 0 && v.Addr.Is6() && d.Bits6 != 128 {
			return "", false
		}
		return "exporter " + v.Addr.String(), true
	case ElemSrcPort:
		return "src port " + n, true
	case ElemDstPort:
		return "dst port " + n, true
	case ElemProto:
		return "proto " + n, true
	case ElemTOS:
		return "tos " + n, true
	case ElemInIf:
		return "in if " + n, true
	case ElemOutIf:
		return "out if " + n, true
	case ElemVLAN:
		return "vlan " + n, true
	case ElemDir:
		return "flowdir " + flow.Direction(v.Num).String(), true
	case ElemFlags:
		// One letter per primitive: the language reads "flags SA" as all
		// set but, under a "not", as any set, so only single letters mean
		// the same at every depth.
		var parts []string
		rest := uint16(v.Num)
		for _, f := range flagLetters {
			if rest&f.bit != 0 {
				parts = append(parts, "flags "+string(f.letter))
			} else {
				parts = append(parts, "not flags "+string(f.letter))
			}
			rest &^= f.bit
		}
		if rest != 0 {
			return "", false // a flag the language has no letter for (NS)
		}
		return strings.Join(parts, " and "), true
	case ElemUnit, ElemContainer, ElemPod:
		return cgroupTerm(d.Element.Name(), v.Str)
	}
	return "", false
}

// cgroupTerm returns "unit NAME" (container ID, pod UID) when the filter
// language reads it back as exactly that name: not for records without
// one (""), nor for a name that is not one word of the language. A
// "cgroup PATH" primitive also selects the cgroups below PATH, so cgroup
// lines have no filter.
func cgroupTerm(kind, v string) (string, bool) {
	if v == "" {
		return "", false
	}
	t := kind + " " + v
	f, err := filter.Parse(t)
	if err != nil || f.Expr() != (filter.Cgroup{Kind: kind, Value: v}) {
		return "", false
	}
	return t, true
}

// LineFilter returns the filter (nfdump's language) that selects exactly
// the records of a line, within the series' own request: its key's
// values, for Other none of the other lines' keys, "any" for the total.
// It is false when the language cannot say it (a key without an
// address, a flag without a letter): the web page then offers no link
// from the line to its flows.
func (s *Series) LineFilter(l *Line) (string, bool) {
	key := func(k []Value) (string, bool) {
		if len(k) == 0 {
			return "any", true
		}
		terms := make([]string, len(k))
		for i, v := range k {
			t, ok := s.Dims[i].term(v)
			if !ok {
				return "", false
			}
			terms[i] = t
		}
		return strings.Join(terms, " and "), true
	}
	if !l.Other {
		return key(l.Key)
	}
	var alts []string
	for i := range s.Lines {
		if s.Lines[i].Other {
			continue
		}
		f, ok := key(s.Lines[i].Key)
		if !ok {
			return "", false
		}
		alts = append(alts, "("+f+")")
	}
	if len(alts) == 0 {
		return "any", true
	}
	return "not (" + strings.Join(alts, " or ") + ")", true
}
