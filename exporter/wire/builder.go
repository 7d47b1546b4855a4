// SPDX-License-Identifier: Apache-2.0

package wire

import "encoding/binary"

// Builder packs records into sets and sets into one message of at most a
// given size. It writes set headers (id, length) itself; the caller writes
// the message header into the first HeaderLen octets once the message is
// complete. Set padding to a multiple of Align octets (NetFlow v9 pads
// FlowSets to 4 octets; IPFIX needs none) is counted in the set length.
type Builder struct {
	buf      []byte
	max      int
	hdrLen   int
	align    int
	setStart int // offset of the open set header, -1 when none
	setID    uint16

	// Counts of what the message holds so far.
	Templates   int // template and options template records
	DataRecords int // data records, flow and options
	FlowRecords int // flow data records only
}

// NewBuilder returns a builder for messages of at most max octets with a
// header of hdrLen octets.
func NewBuilder(max, hdrLen, align int) *Builder {
	b := &Builder{buf: make([]byte, 0, max), max: max, hdrLen: hdrLen, align: align}
	b.Reset()
	return b
}

// Reset starts a new, empty message.
func (b *Builder) Reset() {
	b.buf = b.buf[:b.hdrLen]
	clear(b.buf)
	b.setStart = -1
	b.Templates, b.DataRecords, b.FlowRecords = 0, 0, 0
}

// Empty reports whether the message holds no set.
func (b *Builder) Empty() bool { return len(b.buf) == b.hdrLen }

func (b *Builder) pad(n int) int {
	if b.align <= 1 {
		return 0
	}
	return (b.align - n%b.align) % b.align
}

// Fits reports whether n more octets in set setID fit in this message.
func (b *Builder) Fits(setID uint16, n int) bool {
	if b.setStart >= 0 && b.setID == setID {
		setLen := len(b.buf) - b.setStart + n
		return len(b.buf)+n+b.pad(setLen) <= b.max
	}
	used := len(b.buf)
	if b.setStart >= 0 {
		used += b.pad(len(b.buf) - b.setStart)
	}
	return used+4+n+b.pad(4+n) <= b.max
}

// Reserve returns n zeroed octets at the end of set setID, opening that set
// (and closing the previous one) as needed, or nil when they do not fit.
func (b *Builder) Reserve(setID uint16, n int) []byte {
	if !b.Fits(setID, n) {
		return nil
	}
	if b.setStart < 0 || b.setID != setID {
		b.closeSet()
		b.setStart = len(b.buf)
		b.setID = setID
		b.buf = append(b.buf, byte(setID>>8), byte(setID), 0, 0)
	}
	l := len(b.buf)
	b.buf = b.buf[:l+n]
	clear(b.buf[l:])
	return b.buf[l:]
}

// CloseSet ends the open set, so that the next Reserve starts a new one
// even for the same set id.
func (b *Builder) CloseSet() { b.closeSet() }

func (b *Builder) closeSet() {
	if b.setStart < 0 {
		return
	}
	for range b.pad(len(b.buf) - b.setStart) {
		b.buf = append(b.buf, 0)
	}
	binary.BigEndian.PutUint16(b.buf[b.setStart+2:], uint16(len(b.buf)-b.setStart))
	b.setStart = -1
}

// Finish closes the open set and returns the message; its first HeaderLen
// octets are zero for the caller to fill. The slice is valid until Reset.
func (b *Builder) Finish() []byte {
	b.closeSet()
	return b.buf
}
