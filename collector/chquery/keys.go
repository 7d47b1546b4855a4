// SPDX-License-Identifier: Apache-2.0

package chquery

import (
	"fmt"

	"github.com/kflow-dev/kflow/collector/query"
)

// valueKey is the SQL of an element's or a dimension's value: its
// columns (three for an address: addrKey's fam, hi and lo; one for a
// number), computed on each record row, after join when set (an
// arrayJoin aliased "a": the elements that count a record under two
// values, as ip, port and if do).
type valueKey struct {
	cols []string
	addr bool
	str  bool // a string column, given in hex (strValue)
	join string
}

// read reads a value of the key from a row.
func (k valueKey) read(c *cells) query.Value {
	switch {
	case k.addr:
		return query.Value{Addr: c.addr()}
	case k.str:
		return query.Value{Str: c.hexStr()}
	}
	return query.Value{Num: uint32(c.u64())}
}

func (d dialect) addrValue(col string, flowAddr bool, bits4, bits6 int) valueKey {
	k := d.addrKeyOf(col, flowAddr).masked(bits4, bits6)
	return valueKey{cols: []string{k.fam, k.hi, k.lo}, addr: true}
}

func numValue(col string) valueKey { return valueKey{cols: []string{col}} }

// strValue is a string column's key: its bytes in hexadecimal, so that
// any bytes come back intact and order as Go's strings do (bytewise).
func strValue(col string) valueKey { return valueKey{cols: []string{"hex(" + col + ")"}, str: true} }

// strElems are the elements whose values are a string column.
var strElems = map[query.Element]string{
	query.ElemUnit: "unit", query.ElemContainer: "container", query.ElemPod: "pod", query.ElemCgroup: "cgroup",
}

// elemKey is the key of a statistic's element (not ElemRecord).
func (d dialect) elemKey(e query.Element) (valueKey, error) {
	switch e {
	case query.ElemSrcIP:
		return d.addrValue("src", true, -1, -1), nil
	case query.ElemDstIP:
		return d.addrValue("dst", true, -1, -1), nil
	case query.ElemIP:
		k := d.addrValue("a", true, -1, -1)
		k.join = "arrayJoin(if(src = dst, [src], [src, dst])) AS a"
		return k, nil
	case query.ElemExporter:
		return d.addrValue("exporter", false, -1, -1), nil
	case query.ElemPort:
		k := numValue("a")
		k.join = fmt.Sprintf("arrayJoin(if(src_port = %s, [toUInt32(src_port)], [toUInt32(src_port), %s])) AS a", nfDstPort, nfDstPort)
		return k, nil
	case query.ElemIf:
		k := numValue("a")
		k.join = "arrayJoin(if(in_if = out_if, [in_if], [in_if, out_if])) AS a"
		return k, nil
	case query.ElemAS: // both, equal or not, as nfdump counts them
		k := numValue("a")
		k.join = "arrayJoin([src_as, dst_as]) AS a"
		return k, nil
	case query.ElemNextHop:
		return d.addrValue("next_hop", false, -1, -1), nil
	}
	if col, ok := numElems[e]; ok {
		return numValue(col), nil
	}
	if col, ok := strElems[e]; ok {
		return strValue(col), nil
	}
	return valueKey{}, fmt.Errorf("%w: clickhouse: statistic %s: not supported on ClickHouse; ask the flow files (-R DIR)", query.ErrRequest, e.Name())
}

// numElems are the numeric single-valued elements.
var numElems = map[query.Element]string{
	query.ElemSrcPort: "src_port", query.ElemDstPort: nfDstPort, query.ElemProto: "proto", query.ElemFlags: "tcp_flags",
	query.ElemTOS: "tos", query.ElemInIf: "in_if", query.ElemOutIf: "out_if", query.ElemVLAN: "vlan", query.ElemDir: "direction",
	query.ElemSrcAS: "src_as", query.ElemDstAS: "dst_as",
}

// dimKey is the key of a series dimension, addresses cut to its prefix
// lengths.
func (d dialect) dimKey(dim query.Dim) (valueKey, error) {
	bits := func(n int) int {
		if n == 0 {
			return -1
		}
		return n
	}
	switch dim.Element {
	case query.ElemSrcIP:
		return d.addrValue("src", true, bits(dim.Bits4), bits(dim.Bits6)), nil
	case query.ElemDstIP:
		return d.addrValue("dst", true, bits(dim.Bits4), bits(dim.Bits6)), nil
	case query.ElemExporter:
		return d.addrValue("exporter", false, bits(dim.Bits4), bits(dim.Bits6)), nil
	}
	return d.elemKey(dim.Element)
}
