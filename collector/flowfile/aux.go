// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/klauspost/compress/zstd"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// Auxiliary sections (format version 2): named, compressed, checksummed
// payloads written between the last block and the summary when a file is
// closed: what other packages store next to the records (pre-aggregated
// series, what exporters said about themselves). The summary ends with an
// index of them (name and offset), so a reader finds one in three reads
// from the end of the file; sequential readers and scans skip them.

const (
	auxMagic = "KFAX"
	// MaxAuxBytes bounds an auxiliary section, compressed and raw.
	MaxAuxBytes = 64 << 20
	// maxAuxSections bounds the sections of one file.
	maxAuxSections = 64
	// maxAuxName bounds a section name.
	maxAuxName = 64
)

// AuxBuilder computes an auxiliary section from the records of a file.
// The Writer feeds it each record as the record is appended (so a file's
// sections are ready when it is closed, at no cost of reading it back),
// and leaves the sections out of a file that ends without some of the
// records it was fed (a failed write); Recover feeds it the records of the
// readable blocks of a crashed file.
type AuxBuilder interface {
	// Name names the section ("rollup/1"); at most 64 bytes.
	Name() string
	// Fields are the record fields Add reads (0: all).
	Fields() Fields
	// Add is called with the file's records, in order: by the Writer one
	// at a time with every field set, by Recover a block at a time with
	// at least Fields set.
	Add(recs []flow.Record)
	// Payload returns the section when the file is closed; nil for none.
	// A payload over MaxAuxBytes is left out.
	Payload() []byte
}

// auxRef is an index entry: a section's name and the file offset of its
// section header.
type auxRef struct {
	name string
	off  int64
}

func appendAuxIndex(dst []byte, refs []auxRef) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(refs)))
	for _, a := range refs {
		dst = binary.AppendUvarint(dst, uint64(len(a.name)))
		dst = append(dst, a.name...)
		dst = binary.AppendUvarint(dst, uint64(a.off))
	}
	return dst
}

func (c *cursor) auxIndex() []auxRef {
	n := c.uvarint()
	if c.bad || n > maxAuxSections {
		c.fail()
		return nil
	}
	refs := make([]auxRef, 0, n)
	for range n {
		l := c.uvarint()
		if l == 0 || l > maxAuxName {
			c.fail()
			return nil
		}
		name := string(c.bytes(int(l)))
		off := c.uvarint()
		if c.bad || off > 1<<62 {
			c.fail()
			return nil
		}
		refs = append(refs, auxRef{name, int64(off)})
	}
	return refs
}

// auxSections encodes the named payloads as sections starting at file
// offset off, and returns them with their index entries.
func auxSections(enc *zstd.Encoder, off int64, names []string, payloads map[string][]byte) ([]byte, []auxRef, error) {
	var b []byte
	var refs []auxRef
	for _, name := range names {
		raw := payloads[name]
		if len(name) == 0 || len(name) > maxAuxName {
			return nil, nil, fmt.Errorf("auxiliary section name %q: want 1 to %d bytes", name, maxAuxName)
		}
		if len(raw) > MaxAuxBytes {
			continue
		}
		z := enc.EncodeAll(raw, nil)
		if len(z) > MaxAuxBytes {
			continue
		}
		refs = append(refs, auxRef{name, off + int64(len(b))})
		b = appendSectionHeader(b, section{magic: auxMagic, length: uint32(len(z)), rawLength: uint32(len(raw)), payloadCRC: crc(z)})
		b = append(b, z...)
	}
	return b, refs, nil
}

// SetAux stores payload as the auxiliary section name when the file is
// closed (replacing a builder's or an earlier call's section of that
// name). Up to 64 sections, names of 1 to 64 bytes.
func (w *Writer) SetAux(name string, payload []byte) {
	if w.static == nil {
		w.static = make(map[string][]byte)
	}
	w.static[name] = payload
}

var errAuxCorrupt = errors.New("block unreadable")

// closingAux returns the auxiliary sections to write at offset off.
func (w *Writer) closingAux(off int64) ([]byte, []auxRef, error) {
	payloads := map[string][]byte{}
	var names []string
	add := func(name string, p []byte) {
		if p == nil {
			return
		}
		if _, ok := payloads[name]; !ok {
			names = append(names, name)
		}
		payloads[name] = p
	}
	for _, a := range w.aux {
		add(a.Name(), a.Payload())
	}
	static := make([]string, 0, len(w.static))
	for n := range w.static {
		static = append(static, n)
	}
	slices.Sort(static)
	for _, n := range static {
		add(n, w.static[n])
	}
	if len(names) > maxAuxSections {
		return nil, nil, fmt.Errorf("%d auxiliary sections exceed %d", len(names), maxAuxSections)
	}
	return auxSections(w.enc, off, names, payloads)
}

// AuxNames lists the auxiliary sections of a file closed cleanly.
func (r *Reader) AuxNames() []string {
	names := make([]string, len(r.aux))
	for i, a := range r.aux {
		names[i] = a.name
	}
	return names
}

// Aux returns the content of the auxiliary section name; ok is false when
// the file has none (or was not closed cleanly). A damaged section is an
// error wrapping ErrCorrupt.
func (r *Reader) Aux(name string) (payload []byte, ok bool, err error) {
	i := slices.IndexFunc(r.aux, func(a auxRef) bool { return a.name == name })
	if i < 0 {
		return nil, false, nil
	}
	off := r.aux[i].off
	var h [sectionHeaderLen]byte
	if err := r.readAt(h[:], off); err != nil {
		return nil, false, fmt.Errorf("read auxiliary section %s at offset %d: %w", name, off, err)
	}
	s, valid := parseSectionHeader(h[:])
	if !valid || s.magic != auxMagic || s.sane() != "" {
		return nil, false, fmt.Errorf("%w: auxiliary section %s at offset %d: bad header", ErrCorrupt, name, off)
	}
	z := make([]byte, s.length)
	if err := r.readAt(z, off+sectionHeaderLen); err != nil {
		return nil, false, fmt.Errorf("read auxiliary section %s at offset %d: %w", name, off, err)
	}
	if crc(z) != s.payloadCRC {
		return nil, false, fmt.Errorf("%w: auxiliary section %s at offset %d: checksum", ErrCorrupt, name, off)
	}
	if err := r.decoder(); err != nil {
		return nil, false, err
	}
	raw, err := r.dec.DecodeAll(z, make([]byte, 0, s.rawLength))
	if err != nil || len(raw) != int(s.rawLength) {
		return nil, false, fmt.Errorf("%w: auxiliary section %s at offset %d: decompress", ErrCorrupt, name, off)
	}
	return raw, true, nil
}
