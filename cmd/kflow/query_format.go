// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kflow-dev/kflow/collector/query"
	"github.com/kflow-dev/kflow/collector/service"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// Record output of "kflow file query": nfdump's predefined formats and
// user formats built from nfdump's %tags.

// fmtOpts are the rendering choices.
type fmtOpts struct {
	loc   *time.Location
	plain bool // -N: no scaling of large numbers
	// ifName, when set, names interfaces for %in and %out ("" when
	// unknown: the number is printed).
	ifName func(uint32) string
	// names, when set, names interfaces by the exporter of the record
	// (what exporters said in options records, kept in flow files).
	names *query.IfNames
}

// rowIf prints interface i of the row's exporter: by the name the
// exporter gave it, else as ifText does.
func (o *fmtOpts) rowIf(w *query.Row, i uint32) string {
	if i != 0 {
		if n := o.names.Name(w.Exporter, w.ObservationDomain, i); n != "" {
			return n
		}
	}
	return o.ifText(i)
}

// ifText prints an interface as its name when known, else its number.
func (o *fmtOpts) ifText(i uint32) string {
	if o.ifName != nil && i != 0 {
		if n := o.ifName(i); n != "" {
			return n
		}
	}
	return strconv.FormatUint(uint64(i), 10)
}

// Predefined formats, as nfdump defines them.
var predefinedFormats = map[string]string{
	"line":     "%ts %td %pr %sap -> %dap %pkt %byt %fl",
	"long":     "%ts %td %pr %sap -> %dap %flg %tos %pkt %byt %fl",
	"extended": "%ts %td %pr %sap -> %dap %flg %tos %pkt %byt %pps %bps %bpp %fl",
	"biline":   "%ts %td %pr %sap <-> %dap %opkt %ipkt %obyt %ibyt %fl",
	"bilong":   "%ts %td %pr %sap <-> %dap %flg %tos %opkt %ipkt %obyt %ibyt %fl",
}

// tag is one %tag of a user format.
type tag struct {
	title string
	width int // negative: left aligned
	value func(w *query.Row, o *fmtOpts) string
}

func scaled(v uint64, o *fmtOpts) string {
	switch {
	case o.plain || v < 1_000_000:
		return strconv.FormatUint(v, 10)
	case v < 1_000_000_000:
		return fmt.Sprintf("%.1f M", float64(v)/1e6)
	case v < 1_000_000_000_000:
		return fmt.Sprintf("%.1f G", float64(v)/1e9)
	}
	return fmt.Sprintf("%.1f T", float64(v)/1e12)
}

func fmtTS(t time.Time, o *fmtOpts) string {
	if t.IsZero() {
		return "0000-00-00 00:00:00.000"
	}
	return t.In(o.loc).Format("2006-01-02 15:04:05.000")
}

// fmtDuration prints milliseconds as nfdump does: HH:MM:SS.mmm.
func fmtDuration(ms uint64) string {
	h := ms / 3_600_000
	m := ms / 60_000 % 60
	s := ms / 1000 % 60
	b := make([]byte, 0, 24)
	if h >= 24 {
		b = strconv.AppendUint(b, h/24, 10)
		b = append(b, "d "...)
		h %= 24
	}
	b = appendZeros(b, h, 2)
	b = appendZeros(append(b, ':'), m, 2)
	b = appendZeros(append(b, ':'), s, 2)
	b = appendZeros(append(b, '.'), ms%1000, 3)
	return string(b)
}

// appendZeros appends v in decimal, zero padded to width digits (as
// fmt's %0*d).
func appendZeros(b []byte, v uint64, width int) []byte {
	var d [20]byte
	t := strconv.AppendUint(d[:0], v, 10)
	for n := width - len(t); n > 0; n-- {
		b = append(b, '0')
	}
	return append(b, t...)
}

func fmtEpoch(t time.Time) string {
	if t.IsZero() {
		return "0.000"
	}
	return fmt.Sprintf("%d.%03d", t.Unix(), t.Nanosecond()/1e6)
}

func addrOr0(a netip.Addr, v6 bool) string {
	if a.IsValid() {
		return a.String()
	}
	if v6 {
		return "::"
	}
	return "0.0.0.0"
}

// ports returns the source and destination port as nfdump prints them:
// ICMP shows type.code as the destination port.
func ports(r *flow.Record) (string, string) {
	if r.IsICMP() {
		return "0", fmt.Sprintf("%d.%d", r.ICMPType, r.ICMPCode)
	}
	return strconv.Itoa(int(r.SrcPort)), strconv.Itoa(int(r.NfDstPort()))
}

// addrPort prints ADDR:PORT as nfdump's line format does: the address
// right aligned, IPv6 with a '.' before the port.
func addrPort(a netip.Addr, port string, v6 bool) string {
	sep := ":"
	if v6 {
		sep = "."
	}
	b := make([]byte, 0, 40)
	b = appendPad(b, addrOr0(a, v6), 16)
	b = append(b, sep...)
	return string(appendPad(b, port, -5))
}

// protoName names a protocol as nfdump prints it.
func protoName(p uint8) string { return flow.ProtoName(p) }

// tags are nfdump 1.7's %tags: the title as nfdump prints it in the
// header line (its spacing included), the width of the value (negative:
// left aligned) and the value.
var tags = map[string]tag{
	"ts":  {"Date first seen        ", -23, func(w *query.Row, o *fmtOpts) string { return fmtTS(w.Start, o) }},
	"tfs": {"Date first seen        ", -23, func(w *query.Row, o *fmtOpts) string { return fmtTS(w.Start, o) }},
	"te":  {"Date last seen         ", -23, func(w *query.Row, o *fmtOpts) string { return fmtTS(w.End, o) }},
	"tsr": {"Date first seen (raw)    ", 14, func(w *query.Row, o *fmtOpts) string { return fmtEpoch(w.Start) }},
	"ter": {"Date last seen (raw)     ", 14, func(w *query.Row, o *fmtOpts) string { return fmtEpoch(w.End) }},
	"td":  {"    Duration    ", 16, func(w *query.Row, o *fmtOpts) string { return fmtDurationOpt(w.DurationMs(), o) }},
	"pr":  {"Proto", -5, func(w *query.Row, o *fmtOpts) string { return protoText(w.Proto, o) }},
	"sa":  {"     Src IP Addr", 16, func(w *query.Row, o *fmtOpts) string { return addrOr0(w.Src, w.Dst.Is6()) }},
	"da":  {"     Dst IP Addr", 16, func(w *query.Row, o *fmtOpts) string { return addrOr0(w.Dst, w.Src.Is6()) }},
	"sap": {"     Src IP Addr:Port ", 22, func(w *query.Row, o *fmtOpts) string {
		sp, _ := ports(&w.Record)
		return addrPort(w.Src, sp, w.Src.Is6() || w.Dst.Is6())
	}},
	"dap": {"     Dst IP Addr:Port ", 22, func(w *query.Row, o *fmtOpts) string {
		_, dp := ports(&w.Record)
		return addrPort(w.Dst, dp, w.Src.Is6() || w.Dst.Is6())
	}},
	"sp":   {"Src Pt", 6, func(w *query.Row, o *fmtOpts) string { sp, _ := ports(&w.Record); return sp }},
	"dp":   {"Dst Pt", 6, func(w *query.Row, o *fmtOpts) string { _, dp := ports(&w.Record); return dp }},
	"it":   {"ICMP-T", 6, func(w *query.Row, o *fmtOpts) string { return strconv.Itoa(int(w.ICMPType)) }},
	"ic":   {"ICMP-C", 6, func(w *query.Row, o *fmtOpts) string { return strconv.Itoa(int(w.ICMPCode)) }},
	"pkt":  {" Packets", 8, func(w *query.Row, o *fmtOpts) string { return scaled(w.Packets, o) }},
	"ipkt": {"  In Pkt", 8, func(w *query.Row, o *fmtOpts) string { return scaled(w.Packets, o) }},
	"opkt": {" Out Pkt", 8, func(w *query.Row, o *fmtOpts) string { return scaled(w.OutPackets, o) }},
	"byt":  {"   Bytes", 8, func(w *query.Row, o *fmtOpts) string { return scaled(w.Octets, o) }},
	"ibyt": {" In Byte", 8, func(w *query.Row, o *fmtOpts) string { return scaled(w.Octets, o) }},
	"obyt": {"Out Byte", 8, func(w *query.Row, o *fmtOpts) string { return scaled(w.OutBytes, o) }},
	"fl":   {"Flows", 5, func(w *query.Row, o *fmtOpts) string { return strconv.FormatUint(w.Flows, 10) }},
	"flg":  {"   Flags", -8, func(w *query.Row, o *fmtOpts) string { return flow.TCPFlagsString(w.TCPFlags) }},
	"tos":  {"Tos", 3, func(w *query.Row, o *fmtOpts) string { return strconv.Itoa(int(w.TOS)) }},
	"stos": {"STos", 4, func(w *query.Row, o *fmtOpts) string { return strconv.Itoa(int(w.TOS)) }},
	// Rates and sizes are of the input direction over the record's span,
	// as nfdump computes them (for a bidirectional pair too).
	"pps": {"     pps", 8, func(w *query.Row, o *fmtOpts) string {
		return scaled(flow.Rate(w.Packets, w.DurationMs()), o)
	}},
	"bps": {"     bps", 8, func(w *query.Row, o *fmtOpts) string {
		return scaled(flow.Rate(8*w.Octets, w.DurationMs()), o)
	}},
	"bpp": {"   Bpp", 6, func(w *query.Row, o *fmtOpts) string {
		return strconv.FormatUint(flow.PerPacket(w.Octets, w.Packets), 10)
	}},
	"in":   {" Input", 6, func(w *query.Row, o *fmtOpts) string { return o.rowIf(w, w.InIf) }},
	"out":  {"Output", 6, func(w *query.Row, o *fmtOpts) string { return o.rowIf(w, w.OutIf) }},
	"dir":  {"Dir", 3, func(w *query.Row, o *fmtOpts) string { return map[flow.Direction]string{0: "I", 1: "E"}[w.Direction] }},
	"svln": {"SVlan", 5, func(w *query.Row, o *fmtOpts) string { return strconv.Itoa(int(w.VLAN)) }},
	"dvln": {"DVlan", 5, func(w *query.Row, o *fmtOpts) string { return strconv.Itoa(int(w.InnerVLAN)) }},
	"sas":  {"Src AS", 6, func(w *query.Row, o *fmtOpts) string { return strconv.FormatUint(uint64(w.SrcAS), 10) }},
	"das":  {"Dst AS", 6, func(w *query.Row, o *fmtOpts) string { return strconv.FormatUint(uint64(w.DstAS), 10) }},
	"smk":  {"SMask", 5, func(w *query.Row, o *fmtOpts) string { return strconv.Itoa(int(w.SrcMask)) }},
	"dmk":  {"DMask", 5, func(w *query.Row, o *fmtOpts) string { return strconv.Itoa(int(w.DstMask)) }},
	"nh":   {"     Next-hop IP", 16, func(w *query.Row, o *fmtOpts) string { return addrOr0(w.NextHop, false) }},
	"ra":   {"       Router IP", 16, func(w *query.Row, o *fmtOpts) string { return addrOr0(w.Exporter, false) }},
	"exp":  {"Exp ID", 6, func(w *query.Row, o *fmtOpts) string { return strconv.FormatUint(uint64(w.ObservationDomain), 10) }},
	"odid": {"obsDomainID", 11, func(w *query.Row, o *fmtOpts) string { return fmt.Sprintf("0x%09x", w.ObservationDomain) }},
	"ttl": {"TTL", 7, func(w *query.Row, o *fmtOpts) string {
		return fmt.Sprintf("%d-%d", w.MinTTL, w.MaxTTL)
	}},
	// Service names (kflow's tags: nfdump prints ports as numbers): the
	// record's service, and each port's name or number.
	"svc": {"Service        ", -15, func(w *query.Row, o *fmtOpts) string {
		return service.Text(w.Proto, service.Of(&w.Record))
	}},
	"ssvc": {"Src Service    ", -15, func(w *query.Row, o *fmtOpts) string { return portService(w.Proto, w.SrcPort) }},
	"dsvc": {"Dst Service    ", -15, func(w *query.Row, o *fmtOpts) string { return portService(w.Proto, w.DstPort) }},
	"end":  {"End reason", -17, func(w *query.Row, o *fmtOpts) string { return w.EndReason.String() }},
	// kflow's own: the local socket's cgroup (--cgroups), "-" for none.
	"app":  {"Application", -20, func(w *query.Row, o *fmtOpts) string { return orDash(w.CgroupNames().AppName(w.Cgroup)) }},
	"cgrp": {"Cgroup", -30, func(w *query.Row, o *fmtOpts) string { return orDash(w.Cgroup) }},
	"unit": {"Unit", -20, func(w *query.Row, o *fmtOpts) string { return orDash(w.CgroupNames().Unit) }},
}

// portService is a port's service name, else its number.
func portService(proto uint8, port uint16) string {
	if n := service.Name(proto, port); n != "" {
		return n
	}
	return strconv.Itoa(int(port))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// fmtDurationOpt is %td: HH:MM:SS.mmm, or seconds with -N, as nfdump.
func fmtDurationOpt(ms uint64, o *fmtOpts) string {
	if o.plain {
		return fmt.Sprintf("%d.%03d", ms/1000, ms%1000)
	}
	return fmtDuration(ms)
}

// protoText is %pr: the protocol's name, or its number with -N, as nfdump.
func protoText(p uint8, o *fmtOpts) string {
	if o.plain {
		return strconv.Itoa(int(p))
	}
	return protoName(p)
}

// fmtElem is a literal or a tag of a compiled format.
type fmtElem struct {
	lit string
	tag *tag
}

type recordFormat []fmtElem

// compileFormat compiles "fmt:..." text or a predefined format's name.
// %line, %long and the other predefined names expand in place; %n is a
// newline.
func compileFormat(spec string) (recordFormat, error) {
	text, ok := strings.CutPrefix(spec, "fmt:")
	if !ok {
		f, ok := predefinedFormats[spec]
		if !ok {
			return nil, fmt.Errorf("unknown output format %q (want line, long, extended, biline, bilong, csv, json, ndjson, kflow-csv, kflow-json or fmt:...)", spec)
		}
		text = f
	}
	return compileFmtText(text, 0)
}

func compileFmtText(text string, depth int) (recordFormat, error) {
	var out recordFormat
	lit := strings.Builder{}
	flush := func() {
		if lit.Len() > 0 {
			out = append(out, fmtElem{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(text); {
		if text[i] != '%' {
			lit.WriteByte(text[i])
			i++
			continue
		}
		j := i + 1
		for j < len(text) && (text[j] >= 'a' && text[j] <= 'z' || text[j] >= '0' && text[j] <= '9') {
			j++
		}
		name := text[i+1 : j]
		// The longest tag that prefixes the word: "%sap:" style text.
		found := ""
		for k := len(name); k > 0; k-- {
			if _, ok := tags[name[:k]]; ok {
				found = name[:k]
				break
			}
			if _, ok := predefinedFormats[name[:k]]; ok {
				found = name[:k]
				break
			}
			if name[:k] == "n" {
				found = "n"
				break
			}
		}
		switch {
		case found == "n":
			lit.WriteByte('\n')
		case found != "" && predefinedFormats[found] != "":
			if depth > 2 {
				return nil, fmt.Errorf("output format: %%%s nested too deep", found)
			}
			sub, err := compileFmtText(predefinedFormats[found], depth+1)
			if err != nil {
				return nil, err
			}
			flush()
			out = append(out, sub...)
		case found != "":
			flush()
			t := tags[found]
			out = append(out, fmtElem{tag: &t})
		default:
			return nil, fmt.Errorf("output format: unknown tag %q", text[i:j])
		}
		i += 1 + len(found)
		if found == "" {
			i = j
		}
	}
	flush()
	return out, nil
}

func pad(s string, width int) string {
	return string(appendPad(nil, s, width))
}

// appendPad appends s padded with spaces to width runes, as fmt's %*s
// does: on the left, or on the right for a negative width.
func appendPad(b []byte, s string, width int) []byte {
	left := width < 0
	if left {
		width = -width
	}
	n := width - utf8.RuneCountInString(s)
	if left {
		b = append(b, s...)
	}
	for ; n > 0; n-- {
		b = append(b, ' ')
	}
	if !left {
		b = append(b, s...)
	}
	return b
}

// header returns the column titles line.
func (f recordFormat) header() string {
	var b strings.Builder
	for _, e := range f {
		if e.tag == nil {
			b.WriteString(strings.Repeat(" ", len(e.lit)))
			continue
		}
		b.WriteString(e.tag.title)
	}
	return b.String()
}

func (f recordFormat) format(b []byte, w *query.Row, o *fmtOpts) []byte {
	for _, e := range f {
		if e.tag == nil {
			b = append(b, e.lit...)
			continue
		}
		b = appendPad(b, e.tag.value(w, o), e.tag.width)
	}
	return b
}

// kflow-csv: nfdump's column names for the fields kflow records hold,
// with the flow count and observation domain.

const csvHeader = "ts,te,td,sa,da,sp,dp,pr,flg,stos,ipkt,ibyt,opkt,obyt,fl,in,out,sas,das,smk,dmk,dir,nh,svln,dvln,ra,odid"

func csvRow(b []byte, w *query.Row, o *fmtOpts) []byte {
	r := &w.Record
	sp, dp := strconv.Itoa(int(r.SrcPort)), strconv.Itoa(int(r.NfDstPort()))
	v6 := r.Src.Is6() || r.Dst.Is6()
	f := []string{
		fmtTS(r.Start, o), fmtTS(r.End, o), fmt.Sprintf("%.3f", float64(r.DurationMs())/1000),
		addrOr0(r.Src, v6), addrOr0(r.Dst, v6), sp, dp, protoName(r.Proto), flow.TCPFlagsString(r.TCPFlags),
		strconv.Itoa(int(r.TOS)),
		strconv.FormatUint(r.Packets, 10), strconv.FormatUint(r.Octets, 10),
		strconv.FormatUint(w.OutPackets, 10), strconv.FormatUint(w.OutBytes, 10), strconv.FormatUint(w.Flows, 10),
		strconv.FormatUint(uint64(r.InIf), 10), strconv.FormatUint(uint64(r.OutIf), 10),
		strconv.FormatUint(uint64(r.SrcAS), 10), strconv.FormatUint(uint64(r.DstAS), 10),
		strconv.Itoa(int(r.SrcMask)), strconv.Itoa(int(r.DstMask)), strconv.Itoa(int(r.Direction)),
		addrOr0(r.NextHop, v6), strconv.Itoa(int(r.VLAN)), strconv.Itoa(int(r.InnerVLAN)),
		addrOr0(r.Exporter, false), strconv.FormatUint(uint64(r.ObservationDomain), 10),
	}
	return append(b, strings.Join(f, ",")...)
}
