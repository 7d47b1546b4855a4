// SPDX-License-Identifier: Apache-2.0

// Package flowfile writes and reads the collector's flow files: a versioned
// header, independently zstd-compressed and CRC32C-checksummed blocks of
// column-encoded flow records, and a closing summary. It also holds the
// nfcapd-style file naming, subdirectory layouts, wall-clock rotation
// (Rotator), crash recovery (Recover) and retention (ExpireFiles).
//
// The byte layout is specified in docs/flowfile-format.md.
package flowfile
