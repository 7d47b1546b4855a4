// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// Format constants. See docs/flowfile-format.md.
const (
	// Version is the format version this package writes. Readers accept
	// files whose version they know (1 and 2) and reject the rest with
	// ErrUnsupportedVersion. Version 2 added auxiliary sections.
	Version = 2

	// DefaultBlockRecords is the number of records per block when
	// WriterOptions.BlockRecords is zero. Larger blocks compress better
	// (the address dictionary is per block, and zstd sees more of each
	// column); 32768 records take about 18.5 bytes a flow on many distinct
	// flows against 22 at 4096. The collector's flush interval cuts blocks
	// earlier when the rate is low.
	DefaultBlockRecords = 32768
	// MaxBlockRecords bounds the records of one block, for writers and
	// readers alike.
	MaxBlockRecords = 1 << 16
	// MaxBlockBytes bounds both the compressed and the decompressed size of
	// one block. A larger length field is corruption, never an allocation.
	MaxBlockBytes = 64 << 20
	// MaxIdentLen bounds the header's ident string.
	MaxIdentLen = 1024
	// maxSummaryBytes bounds the summary section.
	maxSummaryBytes = 16 << 20
	// maxRecordRaw bounds the decoded bytes one record may account for in a
	// block (columns plus its share of the address dictionary).
	maxRecordRaw = 1400
	// maxZoneLen bounds an IPv6 zone stored in a file.
	maxZoneLen = 255
)

const (
	fileMagic    = "\x89KFLOW\r\n"
	blockMagic   = "KFBK"
	summaryMagic = "KFSM"
	footerMagic  = "KFND"

	compressionZstd = 1

	// file header: magic(8) version(2) compression(1) reserved(1)
	// created(8) identLen(2) ident(n) crc(4)
	headerFixed = 8 + 2 + 1 + 1 + 8 + 2
	// section header: magic(4) length(4) rawLength(4) count(4)
	// payloadCRC(4) headerCRC(4)
	sectionHeaderLen = 24
	// footer: magic(4) summaryOffset(8) crc(4)
	footerLen = 16
)

// Sentinel errors. Callers branch on them with errors.Is.
var (
	// ErrNotFlowFile: the input does not start with the flow-file magic.
	ErrNotFlowFile = errors.New("not a kflow flow file")
	// ErrUnsupportedVersion: the file's format version or compression is
	// unknown to this reader.
	ErrUnsupportedVersion = errors.New("unsupported flow file version")
	// ErrCorrupt: a checksum or structural check failed. A
	// *CorruptBlockError wraps it for blocks.
	ErrCorrupt = errors.New("corrupt flow file")
	// ErrTruncated: the file ends inside its header.
	ErrTruncated = errors.New("truncated flow file")
	// ErrRejected: Append did not store the record (the writer's buffer is
	// full after write failures, or the writer is broken or closed). The
	// caller must count the record as dropped.
	ErrRejected = errors.New("record rejected")
	// ErrBroken: a write failed and the file could not be restored to its
	// last whole block; the writer accepts no more records. Unwritten
	// returns what it still held.
	ErrBroken = errors.New("flow file writer broken")
	// ErrClosed: the writer, reader or rotator is closed.
	ErrClosed = errors.New("flow file closed")
	// ErrInvalidRecord: the record cannot be stored exactly (a time outside
	// the representable range, an IPv6 zone longer than 255 bytes).
	ErrInvalidRecord = errors.New("invalid flow record")
)

// CorruptBlockError reports a block that failed a check. The reader skips it
// when asked to continue.
type CorruptBlockError struct {
	Index  int   // block index in the file, from 0
	Offset int64 // file offset of the block header
	Reason string
}

func (e *CorruptBlockError) Error() string {
	return fmt.Sprintf("corrupt block %d at offset %d: %s", e.Index, e.Offset, e.Reason)
}

// Unwrap makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptBlockError) Unwrap() error { return ErrCorrupt }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Header is the file header.
type Header struct {
	Version uint16
	Created time.Time // creation time, nanosecond precision, UTC
	Ident   string    // free text naming the writer (collector ident)
}

func appendHeader(dst []byte, h Header) []byte {
	start := len(dst)
	dst = append(dst, fileMagic...)
	dst = binary.LittleEndian.AppendUint16(dst, h.Version)
	dst = append(dst, compressionZstd, 0)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(h.Created.UnixNano()))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(h.Ident)))
	dst = append(dst, h.Ident...)
	return binary.LittleEndian.AppendUint32(dst, crc(dst[start:]))
}

// parseHeaderFixed checks the fixed part of a header and returns the ident
// length.
func parseHeaderFixed(b []byte) (int, error) {
	if string(b[:8]) != fileMagic {
		return 0, ErrNotFlowFile
	}
	v := binary.LittleEndian.Uint16(b[8:])
	if v != 1 && v != Version {
		return 0, fmt.Errorf("%w: version %d", ErrUnsupportedVersion, v)
	}
	if b[10] != compressionZstd {
		return 0, fmt.Errorf("%w: compression %d", ErrUnsupportedVersion, b[10])
	}
	n := int(binary.LittleEndian.Uint16(b[20:]))
	if n > MaxIdentLen {
		return 0, fmt.Errorf("%w: header ident length %d", ErrCorrupt, n)
	}
	return n, nil
}

func parseHeader(b []byte) (Header, error) {
	n := len(b) - 4
	if got, want := crc(b[:n]), binary.LittleEndian.Uint32(b[n:]); got != want {
		return Header{}, fmt.Errorf("%w: header checksum %08x, want %08x", ErrCorrupt, got, want)
	}
	return Header{
		Version: binary.LittleEndian.Uint16(b[8:]),
		Created: time.Unix(0, int64(binary.LittleEndian.Uint64(b[12:]))).UTC(),
		Ident:   string(b[headerFixed:n]),
	}, nil
}

// section is a decoded section header (block or summary).
type section struct {
	magic      string
	length     uint32 // stored payload bytes
	rawLength  uint32 // decompressed payload bytes (blocks)
	count      uint32 // records (blocks)
	payloadCRC uint32
}

func appendSectionHeader(dst []byte, s section) []byte {
	start := len(dst)
	dst = append(dst, s.magic...)
	dst = binary.LittleEndian.AppendUint32(dst, s.length)
	dst = binary.LittleEndian.AppendUint32(dst, s.rawLength)
	dst = binary.LittleEndian.AppendUint32(dst, s.count)
	dst = binary.LittleEndian.AppendUint32(dst, s.payloadCRC)
	return binary.LittleEndian.AppendUint32(dst, crc(dst[start:]))
}

// parseSectionHeader checks magic and header checksum; ok is false when b
// is not a valid section header.
func parseSectionHeader(b []byte) (section, bool) {
	m := string(b[:4])
	if m != blockMagic && m != summaryMagic && m != auxMagic {
		return section{}, false
	}
	if crc(b[:20]) != binary.LittleEndian.Uint32(b[20:]) {
		return section{}, false
	}
	return section{
		magic:      m,
		length:     binary.LittleEndian.Uint32(b[4:]),
		rawLength:  binary.LittleEndian.Uint32(b[8:]),
		count:      binary.LittleEndian.Uint32(b[12:]),
		payloadCRC: binary.LittleEndian.Uint32(b[16:]),
	}, true
}

// sane reports whether a valid-checksum block header also has lengths this
// reader accepts.
func (s section) sane() string {
	switch {
	case s.magic == summaryMagic:
		if s.length > maxSummaryBytes {
			return fmt.Sprintf("summary length %d exceeds %d", s.length, maxSummaryBytes)
		}
	case s.magic == auxMagic:
		if s.length > MaxAuxBytes || s.rawLength > MaxAuxBytes || s.count != 0 {
			return fmt.Sprintf("auxiliary section length %d/%d or count %d out of range", s.length, s.rawLength, s.count)
		}
	case s.length == 0 || s.length > MaxBlockBytes:
		return fmt.Sprintf("block length %d out of range", s.length)
	case s.rawLength > MaxBlockBytes:
		return fmt.Sprintf("block raw length %d exceeds %d", s.rawLength, MaxBlockBytes)
	case s.count == 0 || s.count > MaxBlockRecords:
		return fmt.Sprintf("block record count %d out of range", s.count)
	case uint64(s.rawLength) > 64+uint64(s.count)*maxRecordRaw:
		return fmt.Sprintf("block raw length %d too large for %d records", s.rawLength, s.count)
	}
	return ""
}

func appendFooter(dst []byte, summaryOffset int64) []byte {
	start := len(dst)
	dst = append(dst, footerMagic...)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(summaryOffset))
	return binary.LittleEndian.AppendUint32(dst, crc(dst[start:]))
}

func parseFooter(b []byte) (int64, bool) {
	if string(b[:4]) != footerMagic || crc(b[:12]) != binary.LittleEndian.Uint32(b[12:]) {
		return 0, false
	}
	off := binary.LittleEndian.Uint64(b[4:])
	if off > 1<<62 {
		return 0, false
	}
	return int64(off), true
}
