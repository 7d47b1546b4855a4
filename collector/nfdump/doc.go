// SPDX-License-Identifier: Apache-2.0

// Package nfdump reads the flow files nfcapd and nfdump write
// (nfcapd.YYYYMMDDhhmm) into flow.Record, so kflow's queries can read the
// archives nfcapd already wrote.
//
// Two layouts exist, both little endian:
//
//   - Layout 1 (nfdump 1.6): a 140-byte file header (magic 0xA50C,
//     version 1, compression flags, block count, 128-byte ident), a
//     136-byte statistics record, then data blocks of type 2. Flow records
//     are "common records" (type 10, or type 1 from older writers) whose
//     optional fields are described by extension map records (type 2)
//     written earlier in the file.
//   - Layout 2 (nfdump 1.7): a 40-byte file header (magic, version 2,
//     writer version, creation time, compression, appendix offset and
//     block counts), data blocks of type 3, and an appendix (blocks at the
//     offset the header names) holding the ident and a 144-byte
//     statistics record. Flow records are V3 records (type 11): a 12-byte
//     header and a list of typed elements, each with its own length.
//
// In both, every data block is a 12-byte header (record count, payload
// size, block type, flags) and a payload compressed as a whole with the
// file's compression: none, LZO1X, bzip2, LZ4 (raw block) or zstd.
// Exporter information (type 7), exporter statistics (type 8) and sampler
// records (types 9 and 15) are interleaved with the flows and tie a
// record's exporter id to the exporter's address, observation domain and
// sampling rate.
//
// What the reader does with what it does not know: records of an unknown
// type, V3 elements of an unknown type and layout 1 records whose
// extension map names an unknown extension are skipped and counted
// (ScanResult), never fatal. A damaged file (a length that does not fit, a
// block that does not decompress) is an *Error naming the file and the
// offset; the records before it have been delivered.
//
// The format was learnt from nfdump's public sources (nffileV2.h, nfx.h,
// nfxV3.h, nffile.c) and checked against files nfcapd 1.7.1 writes.
package nfdump
