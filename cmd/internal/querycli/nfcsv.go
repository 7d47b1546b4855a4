// SPDX-License-Identifier: Apache-2.0

package querycli

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/kflow-dev/kflow/collector/query"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// nfdump 1.7's -o csv and -o json, column for column and key for key, so
// that scripts written for nfdump read kflow's output. Fields kflow does
// not store print as nfdump prints them absent (MAC addresses, MPLS
// labels, latencies, BGP next hop, engine); nfdump's received time and
// exporter sysid, which kflow does not have, are left out of the JSON
// and printed zero in the CSV.

const nfCSVHeader = "ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt,in,out,sas,das,smk,dmk,dtos,dir,nh,nhb,svln,dvln," +
	"ismc,odmc,idmc,osmc,mpls1,mpls2,mpls3,mpls4,mpls5,mpls6,mpls7,mpls8,mpls9,mpls10,cl,sl,al,ra,eng,exid,tr"

// nfCSVAbsent are the columns kflow does not store, as nfdump prints them
// for a record without them: MACs, MPLS labels, latencies.
var nfCSVAbsent = strings.Repeat("00:00:00:00:00:00,", 4) + strings.Repeat("0-0-0,", 10) + strings.Repeat("    0.000,", 3)

func nfCSVTime(w *query.Row, o *fmtOpts, end bool) string {
	t := w.Start
	if end {
		t = w.End
	}
	if t.IsZero() {
		return "0000-00-00 00:00:00"
	}
	return t.In(o.loc).Format("2006-01-02 15:04:05")
}

// nfAddr prints an address nfdump's way: 0.0.0.0 when absent.
func nfAddr(a netip.Addr) string {
	if !a.IsValid() {
		return "0.0.0.0"
	}
	return a.String()
}

func nfCSVRow(b []byte, w *query.Row, o *fmtOpts) []byte {
	r := &w.Record
	v6 := r.Src.Is6() || r.Dst.Is6()
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	f := []string{
		nfCSVTime(w, o, false), nfCSVTime(w, o, true), fmt.Sprintf("%d.%03d", r.DurationMs()/1000, r.DurationMs()%1000),
		addrOr0(r.Src, v6), addrOr0(r.Dst, v6), u(uint64(r.SrcPort)), u(uint64(r.NfDstPort())), protoName(r.Proto),
		flow.TCPFlagsString(r.TCPFlags), "0", u(uint64(r.TOS)),
		u(r.Packets), u(r.Octets), u(w.OutPackets), u(w.OutBytes), u(uint64(r.InIf)), u(uint64(r.OutIf)),
		u(uint64(r.SrcAS)), u(uint64(r.DstAS)), u(uint64(r.SrcMask)), u(uint64(r.DstMask)), "0", u(uint64(r.Direction)),
		nfAddr(r.NextHop), "0.0.0.0", u(uint64(r.VLAN)), u(uint64(r.InnerVLAN)),
	}
	b = append(b, strings.Join(f, ",")...)
	b = append(b, ',')
	b = append(b, nfCSVAbsent...)
	return append(b, nfAddr(r.Exporter)+",0/0,0,0000-00-00 00:00:00.000"...)
}

// nfCSVFooter is nfdump's closing summary of -o csv.
func nfCSVFooter(t *query.Counter) string {
	return fmt.Sprintf("Summary\nflows,bytes,packets,avg_bps,avg_pps,avg_bpp\n%d,%d,%d,%d,%d,%d\n",
		t.Flows, t.Bytes, t.Packets, t.BPS(), t.PPS(), t.BPP())
}

// nfJSONRecord appends one record as nfdump 1.7's -o json prints it: its
// extensions in nfdump's order, with nfdump's keys.
func nfJSONRecord(b []byte, w *query.Row, o *fmtOpts) []byte {
	r := &w.Record
	kv := func(k, v string) { b = append(b, "\t\""+k+"\" : "+v+",\n"...) }
	str := func(s string) string { return strconv.Quote(s) }
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	ts := func(t string) string { return str(t) }
	b = append(b, "{\n"...)
	kv("type", str("FLOW"))
	sampled := uint64(0)
	if r.SamplingInterval > 1 {
		sampled = 1
	}
	kv("sampled", u(sampled))
	kv("first", ts(r.Start.In(o.loc).Format("2006-01-02T15:04:05.000")))
	kv("last", ts(r.End.In(o.loc).Format("2006-01-02T15:04:05.000")))
	kv("in_packets", u(r.Packets))
	kv("in_bytes", u(r.Octets))
	kv("proto", u(uint64(r.Proto)))
	if r.IsICMP() {
		kv("icmp_type", u(uint64(r.ICMPType)))
		kv("icmp_code", u(uint64(r.ICMPCode)))
	} else {
		kv("tcp_flags", str(flow.TCPFlagsString(r.TCPFlags)))
		kv("src_port", u(uint64(r.SrcPort)))
		kv("dst_port", u(uint64(r.DstPort)))
	}
	kv("src_tos", u(uint64(r.TOS)))
	fam := "4"
	if r.Src.Is6() || r.Dst.Is6() {
		fam = "6"
	}
	kv("src"+fam+"_addr", str(addrOr0(r.Src, fam == "6")))
	kv("dst"+fam+"_addr", str(addrOr0(r.Dst, fam == "6")))
	kv("input_snmp", u(uint64(r.InIf)))
	kv("output_snmp", u(uint64(r.OutIf)))
	kv("src_mask", u(uint64(r.SrcMask)))
	kv("dst_mask", u(uint64(r.DstMask)))
	kv("src_net", str(maskedNet(r.Src, r.SrcMask, r.SrcMask != 0 || r.DstMask != 0)))
	kv("dst_net", str(maskedNet(r.Dst, r.DstMask, r.SrcMask != 0 || r.DstMask != 0)))
	kv("fwd_status", "0")
	kv("direction", u(uint64(r.Direction)))
	kv("dst_tos", "0")
	if w.OutPackets > 0 || w.OutBytes > 0 || w.Flows > 1 {
		kv("out_packets", u(w.OutPackets))
		kv("out_bytes", u(w.OutBytes))
		kv("aggr_flows", u(w.Flows))
	}
	kv("src_vlan", u(uint64(r.VLAN)))
	kv("dst_vlan", u(uint64(r.InnerVLAN)))
	if r.SrcAS != 0 || r.DstAS != 0 {
		kv("src_as", u(uint64(r.SrcAS)))
		kv("dst_as", u(uint64(r.DstAS)))
	}
	if r.NextHop.IsValid() {
		nf := "4"
		if r.NextHop.Is6() {
			nf = "6"
		}
		kv("ip"+nf+"_next_hop", str(r.NextHop.String()))
	}
	if r.Exporter.IsValid() {
		nf := "4"
		if r.Exporter.Is6() {
			nf = "6"
		}
		kv("ip"+nf+"_router", str(r.Exporter.String()))
	}
	b = append(b, "\t\"label\" : \"<none>\"\n}"...)
	return b
}

// maskedNet is nfdump's src_net/dst_net: the address cut to its mask,
// empty when the record has no masks.
func maskedNet(a netip.Addr, bits uint8, any bool) string {
	if !any || !a.IsValid() {
		return ""
	}
	p, err := a.Prefix(int(bits))
	if err != nil {
		return ""
	}
	return p.Addr().String()
}
