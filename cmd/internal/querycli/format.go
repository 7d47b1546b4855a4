// SPDX-License-Identifier: Apache-2.0

package querycli

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
	// scratch holds a field's appended value while it is padded (a
	// buffer on format's stack would escape through the tags' calls).
	scratch []byte
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
	// app, when set, appends the value (value is then the same, as a
	// string): the tags of the predefined formats append, so that a
	// listing allocates nothing per field.
	app func(b []byte, w *query.Row, o *fmtOpts) []byte
	// names: the tag prints an interface, by name when its exporter
	// gave one.
	names bool
}

// valTag is a tag whose value is a string.
func valTag(title string, width int, value func(w *query.Row, o *fmtOpts) string) tag {
	return tag{title: title, width: width, value: value}
}

// ifTag is a tag that prints the interface field(w) names.
func ifTag(title string, field func(w *query.Row) uint32) tag {
	t := valTag(title, 6, func(w *query.Row, o *fmtOpts) string { return o.rowIf(w, field(w)) })
	t.names = true
	return t
}

// appTag is a tag whose value is appended.
func appTag(title string, width int, app func(b []byte, w *query.Row, o *fmtOpts) []byte) tag {
	return tag{title: title, width: width, app: app,
		value: func(w *query.Row, o *fmtOpts) string { return string(app(nil, w, o)) }}
}

func scaled(v uint64, o *fmtOpts) string { return string(appendScaled(nil, v, o)) }

// appendScaled appends a count as nfdump prints it: in M, G or T with one
// decimal from a million on (not with -N).
func appendScaled(b []byte, v uint64, o *fmtOpts) []byte {
	var div float64
	var unit string
	switch {
	case o.plain || v < 1_000_000:
		return strconv.AppendUint(b, v, 10)
	case v < 1_000_000_000:
		div, unit = 1e6, " M"
	case v < 1_000_000_000_000:
		div, unit = 1e9, " G"
	default:
		div, unit = 1e12, " T"
	}
	b = strconv.AppendFloat(b, float64(v)/div, 'f', 1, 64)
	return append(b, unit...)
}

func fmtTS(t time.Time, o *fmtOpts) string { return string(appendTS(nil, t, o)) }

// appendTS appends a time as nfdump prints it, "2006-01-02 15:04:05.000"
// in o's zone.
func appendTS(b []byte, t time.Time, o *fmtOpts) []byte {
	if t.IsZero() {
		return append(b, "0000-00-00 00:00:00.000"...)
	}
	t = t.In(o.loc)
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, "2006-01-02 15:04:05.000")
	}
	hour, min, sec := t.Clock()
	b = appendZeros(b, uint64(year), 4)
	b = appendZeros(append(b, '-'), uint64(month), 2)
	b = appendZeros(append(b, '-'), uint64(day), 2)
	b = appendZeros(append(b, ' '), uint64(hour), 2)
	b = appendZeros(append(b, ':'), uint64(min), 2)
	b = appendZeros(append(b, ':'), uint64(sec), 2)
	return appendZeros(append(b, '.'), uint64(t.Nanosecond()/1e6), 3)
}

// fmtDuration prints milliseconds as nfdump does: HH:MM:SS.mmm.
func fmtDuration(ms uint64) string { return string(appendDuration(nil, ms)) }

func appendDuration(b []byte, ms uint64) []byte {
	h := ms / 3_600_000
	m := ms / 60_000 % 60
	s := ms / 1000 % 60
	if h >= 24 {
		b = strconv.AppendUint(b, h/24, 10)
		b = append(b, "d "...)
		h %= 24
	}
	b = appendZeros(b, h, 2)
	b = appendZeros(append(b, ':'), m, 2)
	b = appendZeros(append(b, ':'), s, 2)
	return appendZeros(append(b, '.'), ms%1000, 3)
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

func addrOr0(a netip.Addr, v6 bool) string { return string(appendAddrOr0(nil, a, v6)) }

// appendAddrOr0 appends an address, or the unspecified address of the
// row's family for none.
func appendAddrOr0(b []byte, a netip.Addr, v6 bool) []byte {
	if a.IsValid() {
		return a.AppendTo(b)
	}
	if v6 {
		return append(b, "::"...)
	}
	return append(b, "0.0.0.0"...)
}

// Ports returns the source and destination port as nfdump prints them:
// ICMP shows type.code as the destination port.
func Ports(r *flow.Record) (string, string) {
	return string(appendSrcPort(nil, r)), string(appendDstPort(nil, r))
}

func appendSrcPort(b []byte, r *flow.Record) []byte {
	if r.IsICMP() {
		return append(b, '0')
	}
	return strconv.AppendUint(b, uint64(r.SrcPort), 10)
}

func appendDstPort(b []byte, r *flow.Record) []byte {
	if r.IsICMP() {
		b = strconv.AppendUint(b, uint64(r.ICMPType), 10)
		b = append(b, '.')
		return strconv.AppendUint(b, uint64(r.ICMPCode), 10)
	}
	return strconv.AppendUint(b, uint64(r.NfDstPort()), 10)
}

// appendAddrPort appends ADDR:PORT as nfdump's line format prints it: the
// address right aligned to 16, IPv6 with a '.' before the port, the port
// left aligned to 5.
func appendAddrPort(b []byte, a netip.Addr, r *flow.Record, src, v6 bool) []byte {
	var tmp [48]byte
	b = appendPadBytes(b, appendAddrOr0(tmp[:0], a, v6), 16)
	if v6 {
		b = append(b, '.')
	} else {
		b = append(b, ':')
	}
	var p []byte
	if src {
		p = appendSrcPort(tmp[:0], r)
	} else {
		p = appendDstPort(tmp[:0], r)
	}
	return appendPadBytes(b, p, -5)
}

// protoName names a protocol as nfdump prints it.
func protoName(p uint8) string { return flow.ProtoName(p) }

// tags are nfdump 1.7's %tags: the title as nfdump prints it in the
// header line (its spacing included), the width of the value (negative:
// left aligned) and the value.
var tags = map[string]tag{
	"ts":  appTag("Date first seen        ", -23, func(b []byte, w *query.Row, o *fmtOpts) []byte { return appendTS(b, w.Start, o) }),
	"tfs": appTag("Date first seen        ", -23, func(b []byte, w *query.Row, o *fmtOpts) []byte { return appendTS(b, w.Start, o) }),
	"te":  appTag("Date last seen         ", -23, func(b []byte, w *query.Row, o *fmtOpts) []byte { return appendTS(b, w.End, o) }),
	"tsr": valTag("Date first seen (raw)    ", 14, func(w *query.Row, o *fmtOpts) string { return fmtEpoch(w.Start) }),
	"ter": valTag("Date last seen (raw)     ", 14, func(w *query.Row, o *fmtOpts) string { return fmtEpoch(w.End) }),
	"td": appTag("    Duration    ", 16, func(b []byte, w *query.Row, o *fmtOpts) []byte {
		return appendDurationOpt(b, w.DurationMs(), o)
	}),
	"pr": valTag("Proto", -5, func(w *query.Row, o *fmtOpts) string { return protoText(w.Proto, o) }),
	"sa": appTag("     Src IP Addr", 16, func(b []byte, w *query.Row, o *fmtOpts) []byte {
		return appendAddrOr0(b, w.Src, w.Dst.Is6())
	}),
	"da": appTag("     Dst IP Addr", 16, func(b []byte, w *query.Row, o *fmtOpts) []byte {
		return appendAddrOr0(b, w.Dst, w.Src.Is6())
	}),
	"sap": appTag("     Src IP Addr:Port ", 22, func(b []byte, w *query.Row, o *fmtOpts) []byte {
		return appendAddrPort(b, w.Src, &w.Record, true, w.Src.Is6() || w.Dst.Is6())
	}),
	"dap": appTag("     Dst IP Addr:Port ", 22, func(b []byte, w *query.Row, o *fmtOpts) []byte {
		return appendAddrPort(b, w.Dst, &w.Record, false, w.Src.Is6() || w.Dst.Is6())
	}),
	"sp":   appTag("Src Pt", 6, func(b []byte, w *query.Row, o *fmtOpts) []byte { return appendSrcPort(b, &w.Record) }),
	"dp":   appTag("Dst Pt", 6, func(b []byte, w *query.Row, o *fmtOpts) []byte { return appendDstPort(b, &w.Record) }),
	"it":   valTag("ICMP-T", 6, func(w *query.Row, o *fmtOpts) string { return strconv.Itoa(int(w.ICMPType)) }),
	"ic":   valTag("ICMP-C", 6, func(w *query.Row, o *fmtOpts) string { return strconv.Itoa(int(w.ICMPCode)) }),
	"pkt":  appTag(" Packets", 8, func(b []byte, w *query.Row, o *fmtOpts) []byte { return appendScaled(b, w.Packets, o) }),
	"ipkt": appTag("  In Pkt", 8, func(b []byte, w *query.Row, o *fmtOpts) []byte { return appendScaled(b, w.Packets, o) }),
	"opkt": appTag(" Out Pkt", 8, func(b []byte, w *query.Row, o *fmtOpts) []byte { return appendScaled(b, w.OutPackets, o) }),
	"byt":  appTag("   Bytes", 8, func(b []byte, w *query.Row, o *fmtOpts) []byte { return appendScaled(b, w.Octets, o) }),
	"ibyt": appTag(" In Byte", 8, func(b []byte, w *query.Row, o *fmtOpts) []byte { return appendScaled(b, w.Octets, o) }),
	"obyt": appTag("Out Byte", 8, func(b []byte, w *query.Row, o *fmtOpts) []byte { return appendScaled(b, w.OutBytes, o) }),
	"fl":   appTag("Flows", 5, func(b []byte, w *query.Row, o *fmtOpts) []byte { return strconv.AppendUint(b, w.Flows, 10) }),
	"flg":  appTag("   Flags", -8, func(b []byte, w *query.Row, o *fmtOpts) []byte { return appendTCPFlags(b, w.TCPFlags) }),
	"tos":  appTag("Tos", 3, func(b []byte, w *query.Row, o *fmtOpts) []byte { return strconv.AppendUint(b, uint64(w.TOS), 10) }),
	"stos": appTag("STos", 4, func(b []byte, w *query.Row, o *fmtOpts) []byte { return strconv.AppendUint(b, uint64(w.TOS), 10) }),
	// Rates and sizes are of the input direction over the record's span,
	// as nfdump computes them (for a bidirectional pair too).
	"pps": appTag("     pps", 8, func(b []byte, w *query.Row, o *fmtOpts) []byte {
		return appendScaled(b, flow.Rate(w.Packets, w.DurationMs()), o)
	}),
	"bps": appTag("     bps", 8, func(b []byte, w *query.Row, o *fmtOpts) []byte {
		return appendScaled(b, flow.Rate(8*w.Octets, w.DurationMs()), o)
	}),
	"bpp": appTag("   Bpp", 6, func(b []byte, w *query.Row, o *fmtOpts) []byte {
		return strconv.AppendUint(b, flow.PerPacket(w.Octets, w.Packets), 10)
	}),
	"in":   ifTag(" Input", func(w *query.Row) uint32 { return w.InIf }),
	"out":  ifTag("Output", func(w *query.Row) uint32 { return w.OutIf }),
	"dir":  valTag("Dir", 3, func(w *query.Row, o *fmtOpts) string { return map[flow.Direction]string{0: "I", 1: "E"}[w.Direction] }),
	"svln": valTag("SVlan", 5, func(w *query.Row, o *fmtOpts) string { return strconv.Itoa(int(w.VLAN)) }),
	"dvln": valTag("DVlan", 5, func(w *query.Row, o *fmtOpts) string { return strconv.Itoa(int(w.InnerVLAN)) }),
	"sas":  valTag("Src AS", 6, func(w *query.Row, o *fmtOpts) string { return strconv.FormatUint(uint64(w.SrcAS), 10) }),
	"das":  valTag("Dst AS", 6, func(w *query.Row, o *fmtOpts) string { return strconv.FormatUint(uint64(w.DstAS), 10) }),
	"smk":  valTag("SMask", 5, func(w *query.Row, o *fmtOpts) string { return strconv.Itoa(int(w.SrcMask)) }),
	"dmk":  valTag("DMask", 5, func(w *query.Row, o *fmtOpts) string { return strconv.Itoa(int(w.DstMask)) }),
	"nh":   valTag("     Next-hop IP", 16, func(w *query.Row, o *fmtOpts) string { return addrOr0(w.NextHop, false) }),
	"ra":   valTag("       Router IP", 16, func(w *query.Row, o *fmtOpts) string { return addrOr0(w.Exporter, false) }),
	"exp":  valTag("Exp ID", 6, func(w *query.Row, o *fmtOpts) string { return strconv.FormatUint(uint64(w.ObservationDomain), 10) }),
	"odid": valTag("obsDomainID", 11, func(w *query.Row, o *fmtOpts) string { return fmt.Sprintf("0x%09x", w.ObservationDomain) }),
	"ttl": valTag("TTL", 7, func(w *query.Row, o *fmtOpts) string {
		return fmt.Sprintf("%d-%d", w.MinTTL, w.MaxTTL)
	}),
	// Service names (kflow's tags: nfdump prints ports as numbers): the
	// record's service, and each port's name or number.
	"svc": valTag("Service        ", -15, func(w *query.Row, o *fmtOpts) string {
		return service.Text(w.Proto, service.Of(&w.Record))
	}),
	"ssvc": valTag("Src Service    ", -15, func(w *query.Row, o *fmtOpts) string { return portService(w.Proto, w.SrcPort) }),
	"dsvc": valTag("Dst Service    ", -15, func(w *query.Row, o *fmtOpts) string { return portService(w.Proto, w.DstPort) }),
	"end":  valTag("End reason", -17, func(w *query.Row, o *fmtOpts) string { return w.EndReason.String() }),
	// kflow's own: the local socket's cgroup (--cgroups), "-" for none.
	"app":  valTag("Application", -20, func(w *query.Row, o *fmtOpts) string { return orDash(w.CgroupNames().AppName(w.Cgroup)) }),
	"cgrp": valTag("Cgroup", -30, func(w *query.Row, o *fmtOpts) string { return orDash(w.Cgroup) }),
	"unit": valTag("Unit", -20, func(w *query.Row, o *fmtOpts) string { return orDash(w.CgroupNames().Unit) }),
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
func fmtDurationOpt(ms uint64, o *fmtOpts) string { return string(appendDurationOpt(nil, ms, o)) }

func appendDurationOpt(b []byte, ms uint64, o *fmtOpts) []byte {
	if o.plain {
		b = strconv.AppendUint(b, ms/1000, 10)
		return appendZeros(append(b, '.'), ms%1000, 3)
	}
	return appendDuration(b, ms)
}

// appendTCPFlags appends flow.TCPFlagsString's form of f.
func appendTCPFlags(b []byte, f uint16) []byte {
	for i, c := range "CEUAPRSF" {
		if f&(0x80>>i) != 0 {
			b = append(b, byte(c))
		} else {
			b = append(b, '.')
		}
	}
	return b
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

// namesInterfaces reports whether the format prints interfaces (%in,
// %out), which are printed by the names their exporters gave.
func (f recordFormat) namesInterfaces() bool {
	for _, e := range f {
		if e.tag != nil && e.tag.names {
			return true
		}
	}
	return false
}

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
	return appendPadded(b, s, utf8.RuneCountInString(s), width)
}

// appendPadBytes is appendPad for bytes.
func appendPadBytes(b, s []byte, width int) []byte {
	return appendPadded(b, s, utf8.RuneCount(s), width)
}

func appendPadded[S string | []byte](b []byte, s S, runes, width int) []byte {
	left := width < 0
	if left {
		width = -width
	}
	n := width - runes
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
		switch {
		case e.tag == nil:
			b = append(b, e.lit...)
		case e.tag.app != nil:
			o.scratch = e.tag.app(o.scratch[:0], w, o)
			b = appendPadBytes(b, o.scratch, e.tag.width)
		default:
			b = appendPad(b, e.tag.value(w, o), e.tag.width)
		}
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
