// SPDX-License-Identifier: Apache-2.0

package nfdump

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// Record types (nfdump's id.h).
const (
	recCommonV0     = 1  // layout 1 common record, 8-bit exporter id
	recExtensionMap = 2  // layout 1 extension map
	recPortHisto    = 3  // xstat histograms: no flows
	recBppHisto     = 4  //
	recLegacy1      = 5  // 1.5 records nfdump itself ignores
	recLegacy2      = 6  //
	recExporterInfo = 7  // exporter address, version, observation domain
	recExporterStat = 8  // per-exporter packets, flows, sequence failures
	recSamplerV1    = 9  // sampler (nfdump 1.6)
	recCommon       = 10 // layout 1 common record, 16-bit exporter id
	recV3           = 11 // nfdump 1.7 record of elements
	recNbar         = 12 // application names, interface and VRF names:
	recIfName       = 13 // tables, no flows
	recVrfName      = 14 //
	recSampler      = 15 // sampler (nfdump 1.7)
)

// Exporter is an exporter a file names, from nfcapd's exporter information,
// statistics and sampler records.
type Exporter struct {
	// SysID is nfcapd's number for the exporter within the file; records
	// refer to it.
	SysID uint16
	Addr  netip.Addr
	// ObservationDomain is the IPFIX observation domain, the NetFlow v9
	// source id, or the v5 engine type and id as nfcapd keeps them.
	ObservationDomain uint32
	Version           uint32 // 5, 9 or 10 (IPFIX); 9999 for sFlow
	// SamplingInterval is the exporter's default 1-in-N packet sampling,
	// 0 when none was announced.
	SamplingInterval uint32
	// From the exporter statistics record (the end of a file nfcapd
	// closed): export packets received, flows, sequence failures.
	Packets, Flows, SequenceFailures uint64
}

type samplerKey struct {
	sysid uint16
	id    int64
}

// decoder turns a file's records into flow records. It keeps what earlier
// records said (exporters, samplers, extension maps), so a file's blocks go
// through one decoder in order.
type decoder struct {
	exporters map[uint16]*Exporter
	samplers  map[samplerKey]uint32
	maps      map[uint16]*extMap

	unknownRecords    uint64
	unknownElements   uint64
	unknownExtensions uint64
}

func newDecoder() *decoder {
	return &decoder{
		exporters: map[uint16]*Exporter{},
		samplers:  map[samplerKey]uint32{},
		maps:      map[uint16]*extMap{},
	}
}

// exporterList returns the exporters seen, by SysID.
func (d *decoder) exporterList() []Exporter {
	out := make([]Exporter, 0, len(d.exporters))
	for _, e := range d.exporters {
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b Exporter) int { return int(a.SysID) - int(b.SysID) })
	return out
}

func (d *decoder) exporter(sysid uint16) *Exporter {
	e := d.exporters[sysid]
	if e == nil {
		e = &Exporter{SysID: sysid}
		d.exporters[sysid] = e
	}
	return e
}

// block decodes the records of one decompressed data block, appending the
// flows to dst.
func (d *decoder) block(data []byte, n uint32, dst []flow.Record) ([]flow.Record, error) {
	off := 0
	for i := uint32(0); i < n; i++ {
		if len(data)-off < 4 {
			return dst, fmt.Errorf("%w: record %d at block offset %d: %d bytes left for a record header", ErrCorrupt, i, off, len(data)-off)
		}
		typ, size := le16(data, off), int(le16(data, off+2))
		if size < 4 || size > len(data)-off {
			return dst, fmt.Errorf("%w: record %d at block offset %d: size %d with %d bytes left", ErrCorrupt, i, off, size, len(data)-off)
		}
		rec := data[off : off+size]
		var err error
		switch typ {
		case recV3:
			dst = append(dst, flow.Record{})
			var ok bool
			if ok, err = d.v3(rec, &dst[len(dst)-1]); !ok {
				dst = dst[:len(dst)-1]
			}
		case recCommon, recCommonV0:
			dst = append(dst, flow.Record{})
			var ok bool
			if ok, err = d.common(rec, &dst[len(dst)-1]); !ok {
				dst = dst[:len(dst)-1]
			}
		case recExtensionMap:
			d.extensionMap(rec)
		case recExporterInfo:
			err = d.exporterInfo(rec)
		case recExporterStat:
			err = d.exporterStat(rec)
		case recSampler, recSamplerV1:
			err = d.sampler(typ, rec)
		case recPortHisto, recBppHisto, recLegacy1, recLegacy2, recNbar, recIfName, recVrfName:
			// Known, and no flow in them.
		default:
			d.unknownRecords++
		}
		if err != nil {
			return dst, fmt.Errorf("%w: record %d (type %d) at block offset %d: %v", ErrCorrupt, i, typ, off, err)
		}
		off += size
	}
	return dst, nil
}

func addr4(b []byte) netip.Addr {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], le32(b, 0))
	return netip.AddrFrom4(a)
}

// addr6 reads an IPv6 address as nfdump stores it: two 64-bit halves, each
// in host (little endian) order.
func addr6(b []byte) netip.Addr {
	var a [16]byte
	binary.BigEndian.PutUint64(a[:8], le64(b, 0))
	binary.BigEndian.PutUint64(a[8:], le64(b, 8))
	return netip.AddrFrom16(a)
}

// finish applies what every flow record gets: ICMP type and code out of the
// destination port (nfdump keeps type*256+code there), addresses unmapped
// when both are IPv4 in IPv6, and the exporter's address, domain and
// sampling where the record did not name them.
func (d *decoder) finish(r *flow.Record, sysid uint16, sampled bool, selector int64, hasSelector bool) {
	if r.IsICMP() {
		r.ICMPType, r.ICMPCode = uint8(r.DstPort>>8), uint8(r.DstPort)
		r.SrcPort, r.DstPort = 0, 0
	}
	if r.Src.Is4In6() && r.Dst.Is4In6() {
		r.Src, r.Dst = r.Src.Unmap(), r.Dst.Unmap()
	}
	e := d.exporters[sysid]
	if e != nil {
		if !r.Exporter.IsValid() {
			r.Exporter = e.Addr
		}
		if r.ObservationDomain == 0 {
			r.ObservationDomain = e.ObservationDomain
		}
	}
	if sampled {
		if rate, ok := d.samplers[samplerKey{sysid, selector}]; ok && hasSelector {
			r.SamplingInterval = rate
		} else if e != nil {
			r.SamplingInterval = e.SamplingInterval
		}
	}
}

// exporterInfo reads an exporter information record (type 7): version,
// address (16 bytes as nfdump keeps addresses), family, sysid, id.
func (d *decoder) exporterInfo(rec []byte) error {
	if len(rec) < 32 {
		return fmt.Errorf("exporter record of %d bytes", len(rec))
	}
	e := d.exporter(le16(rec, 26))
	e.Version = le32(rec, 4)
	switch family := le16(rec, 24); family {
	case 10: // AF_INET6
		e.Addr = addr6(rec[8:])
	default: // AF_INET: the address is in the third 32-bit word
		e.Addr = addr4(rec[16:])
	}
	e.ObservationDomain = le32(rec, 28)
	return nil
}

// exporterStat reads an exporter statistics record (type 8): a count, then
// per exporter its sysid, sequence failures, packets and flows.
func (d *decoder) exporterStat(rec []byte) error {
	if len(rec) < 8 {
		return fmt.Errorf("exporter statistics record of %d bytes", len(rec))
	}
	n := int(le32(rec, 4))
	if n > (len(rec)-8)/24 {
		return fmt.Errorf("exporter statistics record of %d bytes for %d exporters", len(rec), n)
	}
	for i := range n {
		s := rec[8+24*i:]
		sysid := le32(s, 0)
		if sysid > 0xffff {
			continue
		}
		e := d.exporter(uint16(sysid))
		e.SequenceFailures += uint64(le32(s, 4))
		e.Packets += le64(s, 8)
		e.Flows += le64(s, 16)
	}
	return nil
}

// sampler reads a sampler record: nfdump 1.7's (type 15: exporter sysid,
// algorithm, selector id, packet interval, packet space) or 1.6's (type 9:
// id, interval, mode, exporter sysid). A negative id is the exporter's
// default sampler.
func (d *decoder) sampler(typ uint16, rec []byte) error {
	var sysid uint16
	var id int64
	var rate uint32
	if typ == recSampler {
		if len(rec) < 24 {
			return fmt.Errorf("sampler record of %d bytes", len(rec))
		}
		sysid, id = le16(rec, 4), int64(le64(rec, 8))
		if packets, space := le32(rec, 16), le32(rec, 20); packets > 0 {
			rate = uint32((uint64(packets) + uint64(space)) / uint64(packets))
		}
	} else {
		if len(rec) < 16 {
			return fmt.Errorf("sampler record of %d bytes", len(rec))
		}
		id, rate, sysid = int64(int32(le32(rec, 4))), le32(rec, 8), le16(rec, 14)
	}
	d.samplers[samplerKey{sysid, id}] = rate
	if id < 0 {
		d.exporter(sysid).SamplingInterval = rate
	}
	return nil
}
