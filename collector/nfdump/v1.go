// SPDX-License-Identifier: Apache-2.0

package nfdump

import (
	"fmt"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// nfdump 1.6's common record (nfx.h). Type 10:
//
//	0 type  2 size  4 flags(16)  6 extension map id  8 msec first
//	10 msec last  12 first (s)  16 last (s)  20 forwarding status
//	21 tcp flags  22 protocol  23 tos  24 src port  26 dst port
//	28 exporter sysid(16)  30 biflow direction  31 end reason  32 data
//
// Type 1 (older writers) has an 8-bit flags field and an 8-bit exporter
// sysid at 4 and 5, nothing at 28-31, and its data at 28. The data are the
// three required extensions (addresses, packets, bytes; their sizes follow
// the flags), then the optional extensions the map lists, in its order.
const (
	v1FlagIPv6     = 0x01
	v1FlagPkts64   = 0x02
	v1FlagBytes64  = 0x04
	v1FlagSampled  = 0x80
	commonLen      = 32
	commonV0Len    = 28
	extMapHeaderLn = 8 // type, size, map id, extension size
)

// extSize is the size of each optional extension, by id; -1 for ids nfdump
// 1.6 reserves or does not define.
var extSize = func() [50]int {
	var s [50]int
	for i := range s {
		s[i] = -1
	}
	for id, n := range map[int]int{
		4: 4, 5: 8, 6: 4, 7: 8, 8: 4, 9: 4, 10: 16, 11: 4, 12: 16, 13: 4,
		14: 4, 15: 8, 16: 4, 17: 8, 18: 4, 19: 8, 20: 16, 21: 16, 22: 40,
		23: 4, 24: 16, 25: 4, 26: 8, 27: 8,
		37: 20, 38: 4, 39: 8, 40: 32, 41: 24, 42: 24, 43: 72,
		45: 24, 46: 12, 47: 0, 48: 8,
	} {
		s[id] = n
	}
	return s
}()

// The optional extensions this reader maps.
const (
	extIf16     = 4  // input, output (16 bit)
	extIf32     = 5  // input, output (32 bit)
	extAS16     = 6  // src, dst AS (16 bit)
	extAS32     = 7  // src, dst AS (32 bit)
	extMultiple = 8  // dst tos, direction, src mask, dst mask
	extNextHop4 = 9  // next hop
	extNextHop6 = 10 //
	extVLAN     = 13 // src vlan, dst vlan (16 bit)
	extRouter4  = 23 // the exporter's address
	extRouter6  = 24 //
)

// extMap is an extension map: the optional extensions of the records that
// name it. usable is false when it names an extension this reader does not
// know, or its sizes disagree: its records are skipped and counted.
type extMap struct {
	ids    []uint16
	usable bool
}

// extensionMap reads an extension map record (type 2): map id, the size of
// its extensions, and the extension ids up to a zero.
func (d *decoder) extensionMap(rec []byte) {
	if len(rec) < extMapHeaderLn {
		return
	}
	m := &extMap{usable: true}
	id, want := le16(rec, 4), int(le16(rec, 6))
	total := 0
	for off := extMapHeaderLn; off+2 <= len(rec); off += 2 {
		x := le16(rec, off)
		if x == 0 {
			break
		}
		if int(x) >= len(extSize) || extSize[x] < 0 {
			m.usable = false
			continue
		}
		m.ids = append(m.ids, x)
		total += extSize[x]
	}
	if total != want {
		m.usable = false
	}
	d.maps[id] = m
}

// common decodes a layout 1 common record into r; ok is false when the
// record was skipped (its map is missing or unusable).
func (d *decoder) common(rec []byte, r *flow.Record) (ok bool, err error) {
	typ := le16(rec, 0)
	var flags, sysid uint16
	p := commonLen
	if typ == recCommonV0 {
		if len(rec) < commonV0Len {
			return false, fmt.Errorf("record of %d bytes", len(rec))
		}
		flags, sysid, p = uint16(rec[4]), uint16(rec[5]), commonV0Len
	} else {
		if len(rec) < commonLen {
			return false, fmt.Errorf("record of %d bytes", len(rec))
		}
		flags, sysid = le16(rec, 4), le16(rec, 28)
		r.EndReason = flow.EndReason(rec[31])
	}
	m := d.maps[le16(rec, 6)]
	if m == nil || !m.usable {
		d.unknownExtensions++
		return false, nil
	}
	r.Start = msTime(uint64(le32(rec, 12))*1000 + uint64(le16(rec, 8)))
	r.End = msTime(uint64(le32(rec, 16))*1000 + uint64(le16(rec, 10)))
	r.TCPFlags, r.Proto, r.TOS = uint16(rec[21]), rec[22], rec[23]
	r.SrcPort, r.DstPort = le16(rec, 24), le16(rec, 26)

	take := func(n int) ([]byte, error) {
		if n > len(rec)-p {
			return nil, fmt.Errorf("extension of %d bytes at record offset %d past the record's %d bytes", n, p, len(rec))
		}
		v := rec[p : p+n]
		p += n
		return v, nil
	}
	size := func(flag uint16, small, large int) int {
		if flags&flag != 0 {
			return large
		}
		return small
	}
	v, err := take(size(v1FlagIPv6, 8, 32))
	if err != nil {
		return false, err
	}
	if flags&v1FlagIPv6 != 0 {
		r.Src, r.Dst = addr6(v), addr6(v[16:])
	} else {
		r.Src, r.Dst = addr4(v), addr4(v[4:])
	}
	for _, c := range []struct {
		flag uint16
		dst  *uint64
	}{{v1FlagPkts64, &r.Packets}, {v1FlagBytes64, &r.Octets}} {
		if v, err = take(size(c.flag, 4, 8)); err != nil {
			return false, err
		}
		if len(v) == 8 {
			*c.dst = le64(v, 0)
		} else {
			*c.dst = uint64(le32(v, 0))
		}
	}
	for _, x := range m.ids {
		if v, err = take(extSize[x]); err != nil {
			return false, err
		}
		switch x {
		case extIf16:
			r.InIf, r.OutIf = uint32(le16(v, 0)), uint32(le16(v, 2))
		case extIf32:
			r.InIf, r.OutIf = le32(v, 0), le32(v, 4)
		case extAS16:
			r.SrcAS, r.DstAS = uint32(le16(v, 0)), uint32(le16(v, 2))
		case extAS32:
			r.SrcAS, r.DstAS = le32(v, 0), le32(v, 4)
		case extMultiple:
			r.Direction, r.SrcMask, r.DstMask = flow.Direction(v[1]), v[2], v[3]
		case extNextHop4:
			r.NextHop = addr4(v)
		case extNextHop6:
			r.NextHop = addr6(v)
		case extVLAN:
			r.VLAN = le16(v, 0)
		case extRouter4:
			r.Exporter = addr4(v)
		case extRouter6:
			r.Exporter = addr6(v)
		}
	}
	d.finish(r, sysid, flags&v1FlagSampled != 0, 0, false)
	return true, nil
}
