// SPDX-License-Identifier: Apache-2.0

package sflow

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// TestTshark decodes the crafted datagrams and pmacctd's with Wireshark's
// sFlow dissector and compares, sample by sample, what both read: the
// datagram header, each flow sample's rate, pool and interfaces, the
// sampled packet's addresses, protocol, ports or ICMP type, IP length,
// TTL and VLAN tags, and the interface counters.
func TestTshark(t *testing.T) {
	bin := testenv.RequireTool(t, "tshark")
	dgs, _ := crafted()
	dgs = append(dgs, wiretest.ReadHexLines(t, "testdata/pmacctd.hex")...)
	path := filepath.Join(t.TempDir(), "sflow.pcap")
	if err := wiretest.WritePCAP(path, Port, dgs); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-n", "-r", path, "-T", "json", "--no-duplicate-keys").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	var pkts []struct {
		Source struct {
			Layers map[string]any `json:"layers"`
		} `json:"_source"`
	}
	if err := json.Unmarshal(out, &pkts); err != nil {
		t.Fatalf("tshark json: %v", err)
	}
	if len(pkts) != len(dgs) {
		t.Fatalf("tshark read %d packets, want %d", len(pkts), len(dgs))
	}
	var d Datagram
	compared, countersCompared := 0, 0
	for i, p := range pkts {
		sf, _ := p.Source.Layers["sflow"].(map[string]any)
		if sf == nil {
			t.Fatalf("datagram %d: tshark found no sflow layer", i)
		}
		if err := Decode(&d, dgs[i], t0); err != nil {
			t.Fatal(err)
		}
		hdr := fmt.Sprintf("%v %d %d", d.Agent, d.SubAgent, d.Sequence)
		if th := fmt.Sprintf("%s %s %s", str(sf, "sflow_245.agent", "sflow_245.agent.v6"), str(sf, "sflow_245.sub_agent_id"), str(sf, "sflow_245.sequence_number")); th != hdr {
			t.Errorf("datagram %d: header %q, tshark %q", i, hdr, th)
		}
		samples := map[string]map[string]any{}
		var counterBlocks []map[string]any
		for _, v := range sf {
			s, ok := v.(map[string]any)
			if !ok {
				continue
			}
			if seq := str(s, "sflow.flow_sample.sequence_number"); seq != "" {
				samples[seq] = s
			}
			if _, ok := s["sflow.counters_sample.sequence_number"]; ok {
				find(s, "sflow_245.ifinoct", &counterBlocks)
			}
		}
		for _, fs := range d.Flows {
			s := samples[strconv.FormatUint(uint64(fs.Sequence), 10)]
			if s == nil {
				t.Errorf("datagram %d: tshark has no flow sample %d", i, fs.Sequence)
				continue
			}
			ours := fmt.Sprintf("rate %d pool %d", fs.SamplingRate, fs.SamplePool)
			theirs := fmt.Sprintf("rate %s pool %s", str(s, "sflow.flow_sample.sampling_rate"), str(s, "sflow.flow_sample.sample_pool"))
			if fs.Record >= 0 {
				r := &d.Records[fs.Record]
				ours += fmt.Sprintf(" %v>%v proto %d ports %d>%d icmp %d/%d octets %d", r.Src, r.Dst, r.Proto, r.SrcPort, r.DstPort, r.ICMPType, r.ICMPCode, r.Octets)
				theirs += " " + packetSummary(s)
			}
			if ours != theirs {
				t.Errorf("datagram %d sample %d:\n ours   %s\n tshark %s", i, fs.Sequence, ours, theirs)
			}
			compared++
		}
		if len(counterBlocks) != len(d.Counters) {
			t.Errorf("datagram %d: %d generic counter blocks, tshark %d", i, len(d.Counters), len(counterBlocks))
			continue
		}
		for j, c := range d.Counters {
			cb := counterBlocks[j]
			ours := fmt.Sprintf("%d %d %d %d %d %d %d %d", c.IfIndex, c.IfSpeed, c.InOctets, c.InUcastPkts, c.InErrors, c.OutOctets, c.OutUcastPkts, c.OutDiscards)
			theirs := strings.Join([]string{str(cb, "sflow_245.ifindex"), str(cb, "sflow_245.ifspeed"), str(cb, "sflow_245.ifinoct"), str(cb, "sflow_245.ifinpkt"),
				str(cb, "sflow_245.ifinerr"), str(cb, "sflow_245.ifoutoct"), str(cb, "sflow_245.ifoutpkt"), str(cb, "sflow_245.ifoutdisc")}, " ")
			if ours != theirs {
				t.Errorf("datagram %d counters: ours %s, tshark %s", i, ours, theirs)
			}
			countersCompared++
		}
	}
	if compared < 30 || countersCompared < 2 {
		t.Errorf("compared %d flow samples and %d counter blocks", compared, countersCompared)
	}
}

// packetSummary prints what tshark read of a flow sample's packet in the
// form the test prints the record.
func packetSummary(s map[string]any) string {
	if ip := findOne(s, "sflow_245.ipv4_src", "sflow_245.ipv6_src"); ip != nil {
		// A sampled IPv4 or IPv6 record.
		proto := str(ip, "sflow.ip_protocol")
		sport, dport := str(ip, "sflow_245.ip.source_port"), str(ip, "sflow.ip.destination_port")
		icmp := "0/0"
		if proto == "1" || proto == "58" {
			icmp, sport, dport = sport+"/"+dport, "0", "0"
		}
		return fmt.Sprintf("%s>%s proto %s ports %s>%s icmp %s octets %s", str(ip, "sflow_245.ipv4_src", "sflow_245.ipv6_src"),
			str(ip, "sflow_245.ipv4_dst", "sflow_245.ipv6_dst"), proto, sport, dport, icmp, str(ip, "sflow_245.ip.length"))
	}
	tree := findOne(s, "sflow_245.header_tree")
	if tree == nil {
		return "no header"
	}
	h, _ := tree["sflow_245.header_tree"].(map[string]any)
	var src, dst, proto, octets string
	if ip, ok := h["ip"].(map[string]any); ok {
		src, dst, proto, octets = str(ip, "ip.src"), str(ip, "ip.dst"), str(ip, "ip.proto"), str(ip, "ip.len")
	} else if ip6, ok := h["ipv6"].(map[string]any); ok {
		src, dst = str(ip6, "ipv6.src"), str(ip6, "ipv6.dst")
		plen, _ := strconv.Atoi(str(ip6, "ipv6.plen"))
		octets = strconv.Itoa(plen + 40)
		proto = str(ip6, "ipv6.nxt")
		for _, ext := range []string{"ipv6.hopopts", "ipv6.routing", "ipv6.dstopts", "ipv6.fraghdr"} {
			if e, ok := ip6[ext].(map[string]any); ok {
				for k, v := range e {
					if strings.HasSuffix(k, ".nxt") {
						proto, _ = v.(string)
					}
				}
			}
		}
	}
	sport, dport, icmp := "0", "0", "0/0"
	for _, l4 := range []string{"tcp", "udp"} {
		if m, ok := h[l4].(map[string]any); ok {
			sport, dport = str(m, l4+".srcport"), str(m, l4+".dstport")
		}
	}
	if m, ok := h["icmp"].(map[string]any); ok {
		icmp = str(m, "icmp.type") + "/" + str(m, "icmp.code")
	}
	if m, ok := h["icmpv6"].(map[string]any); ok {
		icmp = str(m, "icmpv6.type") + "/" + str(m, "icmpv6.code")
	}
	return fmt.Sprintf("%s>%s proto %s ports %s>%s icmp %s octets %s", src, dst, proto, sport, dport, icmp, octets)
}

// str returns the first of keys present in m, as a string.
func str(m map[string]any, keys ...string) string {
	for _, k := range keys {
		if v, ok := m[k].(string); ok {
			return v
		}
	}
	return ""
}

// findOne returns the first object under o (o included) holding one of
// keys, without going into a sampled packet's own tree.
func findOne(o map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		if _, ok := o[k]; ok {
			return o
		}
	}
	for k, v := range o {
		if m, ok := v.(map[string]any); ok && k != "sflow_245.header_tree" {
			if f := findOne(m, keys...); f != nil {
				return f
			}
		}
	}
	return nil
}

// find appends every object under o holding key.
func find(o map[string]any, key string, out *[]map[string]any) {
	if _, ok := o[key]; ok {
		*out = append(*out, o)
		return
	}
	for _, v := range o {
		if m, ok := v.(map[string]any); ok {
			find(m, key, out)
		}
	}
}
