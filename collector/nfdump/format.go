// SPDX-License-Identifier: Apache-2.0

package nfdump

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"
)

// Layouts of nfdump files.
const (
	LayoutV1 = 1 // nfdump 1.6: header, statistics record, type 2 blocks
	LayoutV2 = 2 // nfdump 1.7: header, type 3 blocks, appendix
)

// Compression is a file's block compression, numbered as nfdump 1.7
// numbers it in the layout 2 header.
type Compression uint8

// The compressions nfcapd writes.
const (
	Uncompressed Compression = 0
	LZO          Compression = 1 // LZO1X-1 (nfcapd -z)
	BZ2          Compression = 2 // bzip2 (nfcapd -j)
	LZ4          Compression = 3 // LZ4 raw blocks (nfcapd -y)
	ZSTD         Compression = 4 // zstd frames (nfcapd -z=zstd, when built with it)
)

func (c Compression) String() string {
	switch c {
	case Uncompressed:
		return "none"
	case LZO:
		return "lzo"
	case BZ2:
		return "bzip2"
	case LZ4:
		return "lz4"
	case ZSTD:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", uint8(c))
}

const (
	magic = 0xA50C

	headerV1Len = 2 + 2 + 4 + 4 + identV1Len
	identV1Len  = 128
	statV1Len   = 15*8 + 4 + 4 + 2 + 2 + 4
	headerV2Len = 40
	statV2Len   = 18 * 8

	blockHeaderLen = 12

	// maxBlockBytes bounds a block's payload, compressed or not: nfdump
	// allocates 5 MiB buffers (BUFFSIZE) for blocks and never writes more.
	maxBlockBytes = 5 << 20

	// Layout 1 header flags.
	flagV1LZO = 0x01
	flagV1BZ2 = 0x08
	flagV1LZ4 = 0x10

	// Block types.
	blockTypeV1 = 2 // layout 1: common records and extension maps
	blockTypeV3 = 3 // layout 2: records with their own headers

	// Appendix record types.
	typeIdent = 0x8001
	typeStat  = 0x8002
)

// Stat is the statistics record nfcapd keeps per file (what nfdump -I
// prints): totals per protocol, the time window and sequence failures.
type Stat struct {
	Flows, Packets, Bytes                             uint64
	FlowsTCP, FlowsUDP, FlowsICMP, FlowsOther         uint64
	PacketsTCP, PacketsUDP, PacketsICMP, PacketsOther uint64
	BytesTCP, BytesUDP, BytesICMP, BytesOther         uint64
	FirstSeen, LastSeen                               time.Time // zero when the file holds no flow
	SequenceFailures                                  uint64
}

// Header is what a file says about itself before its records.
type Header struct {
	Layout      int    // LayoutV1 or LayoutV2
	Version     uint32 // nfdump version that wrote a layout 2 file (0x01070100 for 1.7.1); 0 for layout 1
	Ident       string // nfcapd's -I ident; "" when the file has none
	Compression Compression
	// Created is the creation time a layout 2 file records (zero for
	// layout 1, which has none; nfdump shows the file's mtime then).
	Created time.Time
	Creator uint32 // layout 2: the program that wrote it (1 nfcapd, 4 nfdump, ...)
	// Blocks is the number of data blocks the header announces (0 for a
	// layout 2 file nfcapd had not closed).
	Blocks uint32
	// Stat is the file's statistics record. For a layout 2 file it is in
	// the appendix, which a file nfcapd had not closed (nfcapd.current.*)
	// lacks: HasStat is false then.
	Stat    Stat
	HasStat bool
	// Anonymized is the layout 1 flag saying the addresses were anonymized.
	Anonymized bool

	// dataEnd is where data blocks end: the appendix offset, or the file
	// size for a file without appendix.
	dataEnd  int64
	dataFrom int64 // offset of the first data block
	closed   bool  // layout 2: the file has an appendix
}

func le16(b []byte, off int) uint16 { return binary.LittleEndian.Uint16(b[off:]) }
func le32(b []byte, off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
func le64(b []byte, off int) uint64 { return binary.LittleEndian.Uint64(b[off:]) }

// cString returns b up to its first NUL.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func msTime(ms uint64) time.Time {
	if ms == 0 || ms > 1<<62 {
		return time.Time{}
	}
	return time.UnixMilli(int64(ms)).UTC()
}

// parseHeaderV2 parses the 40-byte layout 2 header.
func parseHeaderV2(b []byte, size int64) (Header, error) {
	h := Header{
		Layout:      LayoutV2,
		Version:     le32(b, 4),
		Compression: Compression(b[16]),
		Creator:     le32(b, 20),
		Blocks:      le32(b, 36),
		dataFrom:    headerV2Len,
	}
	if c := int64(le64(b, 8)); c > 0 && c < 1<<40 {
		h.Created = time.Unix(c, 0).UTC()
	}
	if b[17] != 0 {
		return h, fmt.Errorf("%w: encrypted file (encryption %d)", ErrUnsupported, b[17])
	}
	if h.Compression > ZSTD {
		return h, fmt.Errorf("%w: compression %d", ErrUnsupported, b[16])
	}
	appendixBlocks := le16(b, 18)
	off := int64(le64(b, 24))
	h.dataEnd = size
	if appendixBlocks > 0 {
		if off < headerV2Len || off >= size {
			return h, fmt.Errorf("%w: appendix offset %d outside the file of %d bytes", ErrCorrupt, off, size)
		}
		h.dataEnd, h.closed = off, true
	}
	return h, nil
}

// parseHeaderV1 parses the layout 1 header and the statistics record that
// follows it (b holds both).
func parseHeaderV1(b []byte) (Header, error) {
	flags := le32(b, 4)
	h := Header{
		Layout:     LayoutV1,
		Blocks:     le32(b, 8),
		Ident:      cString(b[12 : 12+identV1Len]),
		Anonymized: flags&0x02 != 0,
		dataFrom:   headerV1Len + statV1Len,
	}
	switch {
	case flags&flagV1LZO != 0:
		h.Compression = LZO
	case flags&flagV1BZ2 != 0:
		h.Compression = BZ2
	case flags&flagV1LZ4 != 0:
		h.Compression = LZ4
	}
	s := b[headerV1Len:]
	h.Stat = parseCounters(s)
	first := uint64(le32(s, 120))*1000 + uint64(le16(s, 128))
	last := uint64(le32(s, 124))*1000 + uint64(le16(s, 130))
	h.Stat.FirstSeen, h.Stat.LastSeen = msTime(first), msTime(last)
	h.Stat.SequenceFailures = uint64(le32(s, 132))
	h.HasStat = true
	return h, nil
}

// parseCounters reads the 15 counters both statistics records start with.
func parseCounters(s []byte) Stat {
	v := func(i int) uint64 { return le64(s, 8*i) }
	return Stat{
		Flows: v(0), Bytes: v(1), Packets: v(2),
		FlowsTCP: v(3), FlowsUDP: v(4), FlowsICMP: v(5), FlowsOther: v(6),
		BytesTCP: v(7), BytesUDP: v(8), BytesICMP: v(9), BytesOther: v(10),
		PacketsTCP: v(11), PacketsUDP: v(12), PacketsICMP: v(13), PacketsOther: v(14),
	}
}

// parseStatV2 parses the appendix statistics record (144 bytes).
func parseStatV2(s []byte) Stat {
	st := parseCounters(s)
	st.FirstSeen, st.LastSeen = msTime(le64(s, 120)), msTime(le64(s, 128))
	st.SequenceFailures = le64(s, 136)
	return st
}

// blockHeader is the 12-byte header of every data block.
type blockHeader struct {
	records uint32
	size    uint32
	typ     uint16
	flags   uint16
}

func parseBlockHeader(b []byte) blockHeader {
	return blockHeader{records: le32(b, 0), size: le32(b, 4), typ: le16(b, 8), flags: le16(b, 10)}
}
