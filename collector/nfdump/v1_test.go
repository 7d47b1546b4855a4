// SPDX-License-Identifier: Apache-2.0

package nfdump

import (
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/tools/testenv"
)

// A layout 1 (nfdump 1.6) file, hand-encoded from the format definition
// (nfdump's nffile.h and nfx.h): no nfcapd 1.6 is packaged for Debian 12,
// so this fixture is built here and also read back with nfdump 1.7.1,
// which reads 1.6 files.

type le []byte

func (b le) u8(v uint8) le   { return append(b, v) }
func (b le) u16(v uint16) le { return binary.LittleEndian.AppendUint16(b, v) }
func (b le) u32(v uint32) le { return binary.LittleEndian.AppendUint32(b, v) }
func (b le) u64(v uint64) le { return binary.LittleEndian.AppendUint64(b, v) }
func (b le) ip4(a string) le { return b.u32(binary.BigEndian.Uint32(netip.MustParseAddr(a).AsSlice())) }
func (b le) ip6(a string) le {
	v := netip.MustParseAddr(a).As16()
	return b.u64(binary.BigEndian.Uint64(v[:8])).u64(binary.BigEndian.Uint64(v[8:]))
}

// record prefixes body with a record header of type typ.
func record(typ uint16, body le) le {
	return le(nil).u16(typ).u16(uint16(4 + len(body))).append(body)
}

func (b le) append(x []byte) le { return append(b, x...) }

// extensionMap encodes a map record: id, size of the extensions, ids, a
// zero, padded to 32 bits.
func extensionMap(id uint16, ids ...uint16) le {
	size := 0
	for _, x := range ids {
		if int(x) < len(extSize) && extSize[x] > 0 {
			size += extSize[x]
		}
	}
	b := le(nil).u16(id).u16(uint16(size))
	for _, x := range ids {
		b = b.u16(x)
	}
	b = b.u16(0)
	for (4+len(b))%4 != 0 {
		b = b.u16(0)
	}
	return record(recExtensionMap, b)
}

// v1Common encodes a type 10 common record (or type 1 with v0) without
// its extensions.
func v1Common(v0 bool, flags, mapID uint16, r flow.Record, sysid uint16, port uint16) le {
	first, last := r.Start.UnixMilli(), r.End.UnixMilli()
	b := le(nil)
	if v0 {
		b = b.u8(uint8(flags)).u8(uint8(sysid))
	} else {
		b = b.u16(flags)
	}
	b = b.u16(mapID).u16(uint16(first % 1000)).u16(uint16(last % 1000)).u32(uint32(first / 1000)).u32(uint32(last / 1000))
	b = b.u8(0).u8(uint8(r.TCPFlags)).u8(r.Proto).u8(r.TOS).u16(r.SrcPort).u16(port)
	if !v0 {
		b = b.u16(sysid).u8(0).u8(uint8(r.EndReason))
	}
	return b
}

// v1Fixture returns a layout 1 file with compression comp (Uncompressed
// or LZ4), and the flows a reader must find in it. With unknown, it also
// holds an extension map naming an extension nfdump never defined (and a
// record of that map) and a record of an undefined type: this reader
// skips and counts them, nfdump 1.7.1 stops at the map.
func v1Fixture(t testing.TB, comp Compression, unknown bool) ([]byte, []flow.Record) {
	t0 := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	var want []flow.Record
	var recs le
	n := 0
	add := func(b le) { recs = append(recs, b...); n++ }

	// Two exporters (sysid 1: NetFlow v9 from 198.51.100.7, source id 42;
	// sysid 2: IPFIX from fd00::7, domain 43), and a 1.6 sampler (1 in 100)
	// for exporter 1.
	add(record(recExporterInfo, le(nil).u32(9).u64(0).ip4("198.51.100.7").u32(0).u16(2).u16(1).u32(42)))
	add(record(recExporterInfo, le(nil).u32(10).ip6("fd00::7").u16(10).u16(2).u32(43)))
	add(record(recSamplerV1, le(nil).u32(0xffffffff).u32(100).u16(0).u16(1)))
	// Maps: 1 with 16-bit interfaces, 32-bit AS, tos/dir/masks, IPv4 next
	// hop, VLAN, IPv4 router, router id; 2 with 32-bit interfaces, 16-bit
	// AS, IPv6 next hop, IPv4 BGP next hop, IPv6 router, received time;
	// 3 names extension 60, which nfdump 1.6 never defined.
	add(extensionMap(1, 4, 7, 8, 9, 13, 23, 25))
	add(extensionMap(2, 5, 6, 8, 10, 11, 24, 27))
	if unknown {
		add(extensionMap(3, 4, 60))
	}

	r := flow.Record{
		Src: netip.MustParseAddr("198.18.1.1"), Dst: netip.MustParseAddr("198.19.2.2"), Proto: flow.ProtoTCP,
		SrcPort: 40001, DstPort: 80, TCPFlags: 0x1b, TOS: 8, Packets: 12, Octets: 3456,
		Start: t0.Add(123 * time.Millisecond), End: t0.Add(4567 * time.Millisecond), EndReason: flow.EndOfFlow,
		InIf: 3, OutIf: 4, SrcAS: 65551, DstAS: 4200000001, Direction: flow.Egress, SrcMask: 24, DstMask: 16,
		NextHop: netip.MustParseAddr("198.18.1.254"), VLAN: 301,
		Exporter: netip.MustParseAddr("198.51.100.9"), ObservationDomain: 42,
	}
	ext1 := func(r flow.Record, router string) le {
		return le(nil).u16(uint16(r.InIf)).u16(uint16(r.OutIf)).u32(r.SrcAS).u32(r.DstAS).
			u8(0).u8(uint8(r.Direction)).u8(r.SrcMask).u8(r.DstMask).ip4(r.NextHop.String()).
			u16(r.VLAN).u16(0).ip4(router).u16(0).u8(0).u8(5)
	}
	add(record(recCommon, v1Common(false, 0, 1, r, 1, r.DstPort).ip4("198.18.1.1").ip4("198.19.2.2").u32(12).u32(3456).append(ext1(r, "198.51.100.9"))))
	want = append(want, r)

	r6 := flow.Record{
		Src: netip.MustParseAddr("fd00::1:1"), Dst: netip.MustParseAddr("fd00:2::2"), Proto: flow.ProtoUDP,
		SrcPort: 53, DstPort: 5353, Packets: 1<<32 + 3, Octets: 1<<40 + 5,
		Start: t0.Add(time.Second), End: t0.Add(2 * time.Second), EndReason: flow.EndIdle,
		InIf: 100000, OutIf: 200000, SrcAS: 64512, DstAS: 64513, Direction: flow.Ingress, SrcMask: 64, DstMask: 56,
		NextHop:  netip.MustParseAddr("fd00::fe"),
		Exporter: netip.MustParseAddr("fd00::7"), ObservationDomain: 43,
	}
	add(record(recCommon, v1Common(false, v1FlagIPv6|v1FlagPkts64|v1FlagBytes64, 2, r6, 2, r6.DstPort).
		ip6("fd00::1:1").ip6("fd00:2::2").u64(r6.Packets).u64(r6.Octets).
		u32(r6.InIf).u32(r6.OutIf).u16(uint16(r6.SrcAS)).u16(uint16(r6.DstAS)).
		u8(0).u8(0).u8(64).u8(56).ip6("fd00::fe").ip4("198.18.0.254").ip6("fd00::7").u64(uint64(t0.UnixMilli()))))
	want = append(want, r6)

	// ICMP, sampled: type and code in the destination port.
	ri := r
	ri.Proto, ri.SrcPort, ri.DstPort, ri.ICMPType, ri.ICMPCode, ri.TCPFlags = flow.ProtoICMP, 0, 0, 3, 1, 0
	ri.SamplingInterval = 100
	add(record(recCommon, v1Common(false, v1FlagSampled, 1, ri, 1, 3<<8|1).ip4("198.18.1.1").ip4("198.19.2.2").u32(12).u32(3456).append(ext1(ri, "198.51.100.9"))))
	want = append(want, ri)

	if unknown {
		// A record of map 3: skipped and counted.
		add(record(recCommon, v1Common(false, 0, 3, r, 1, 80).ip4("198.18.1.1").ip4("198.19.2.2").u32(1).u32(2).u16(1).u16(2).u32(0)))
	}
	// A type 1 (older) common record.
	r0 := r
	r0.EndReason, r0.Proto, r0.TCPFlags, r0.SrcPort, r0.DstPort = 0, flow.ProtoUDP, 0, 1234, 4321
	add(record(recCommonV0, v1Common(true, 0, 1, r0, 1, r0.DstPort).ip4("198.18.1.1").ip4("198.19.2.2").u32(12).u32(3456).append(ext1(r0, "198.51.100.9"))))
	want = append(want, r0)
	if unknown {
		// A record type nfdump never defined: skipped and counted.
		add(record(99, le(nil).u32(7)))
	}
	add(record(recExporterStat, le(nil).u32(2).u32(1).u32(3).u64(10).u64(3).u32(2).u32(0).u64(20).u64(1)))

	payload := []byte(recs)
	flags := uint32(0)
	if comp == LZ4 {
		payload, flags = lz4Block(payload), flagV1LZ4
	}
	ident := make([]byte, identV1Len)
	copy(ident, "fixture-1.6")
	f := le(nil).u16(magic).u16(LayoutV1).u32(flags).u32(1).append(ident)
	// Statistics record: 4 flows, their bytes and packets, per protocol,
	// the time window (seconds and ms apart), 3 sequence failures.
	f = f.u64(4).u64(3456*3 + r6.Octets).u64(36 + r6.Packets)
	f = f.u64(1).u64(2).u64(1).u64(0).u64(3456).u64(3456 + r6.Octets).u64(3456).u64(0).u64(12).u64(12 + r6.Packets).u64(12).u64(0)
	f = f.u32(uint32(t0.Unix())).u32(uint32(t0.Unix()) + 4).u16(123).u16(567).u32(3)
	f = f.u32(uint32(n)).u32(uint32(len(payload))).u16(blockTypeV1).u16(0).append(payload)
	return f, want
}

func TestLayoutV1(t *testing.T) {
	for _, comp := range []Compression{Uncompressed, LZ4} {
		b, want := v1Fixture(t, comp, true)
		got, res, err := readBytes(t, b, 2)
		if err != nil {
			t.Fatalf("%v: %v", comp, err)
		}
		compareRecords(t, "layout 1 "+comp.String(), want, got)
		h := res.Header
		t0 := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
		if h.Layout != LayoutV1 || h.Ident != "fixture-1.6" || h.Compression != comp || h.Blocks != 1 || !h.HasStat ||
			h.Stat.Flows != 4 || h.Stat.FlowsUDP != 2 || h.Stat.SequenceFailures != 3 ||
			!h.Stat.FirstSeen.Equal(t0.Add(123*time.Millisecond)) || !h.Stat.LastSeen.Equal(t0.Add(4567*time.Millisecond)) {
			t.Errorf("%v: header %+v", comp, h)
		}
		if res.UnknownExtensions != 1 || res.UnknownRecords != 1 || res.Records != 4 {
			t.Errorf("%v: result %+v", comp, res)
		}
		if len(res.Exporters) != 2 || res.Exporters[0].SamplingInterval != 100 || res.Exporters[0].Flows != 3 ||
			res.Exporters[0].SequenceFailures != 3 || res.Exporters[1].Addr != netip.MustParseAddr("fd00::7") {
			t.Errorf("%v: exporters %+v", comp, res.Exporters)
		}
	}
}

// TestLayoutV1Nfdump reads the fixture with nfdump 1.7.1 too: the same
// flows, record by record, but for what nfdump does not print or read.
// The fixture is hand-made, so this checks the reader and the fixture
// against nfdump's own reading of the format.
func TestLayoutV1Nfdump(t *testing.T) {
	testenv.RequireTool(t, "nfdump")
	b, want := v1Fixture(t, Uncompressed, false)
	p := filepath.Join(t.TempDir(), "nfcapd.202405060705")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	got := nfdumpJSON(t, p)
	// nfdump 1.7.1 skips type 1 common records (the older 1.6 form) in
	// silence; this reader decodes them by nfx.h's common_record_v0_t.
	want = want[:len(want)-1]
	for i := range want {
		want[i] = asNfdumpJSON(want[i])
	}
	compareRecords(t, "nfdump -o json", want, got)
}
