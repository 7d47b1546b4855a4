// SPDX-License-Identifier: Apache-2.0

package wire

import (
	"net/netip"
	"sort"
	"time"
)

// Helpers for encoders that write the data records of their own fixed
// templates with straight-line code instead of a PutField call per field.
// Each gives, for one field, exactly the octets PutField gives.

// PutIPv4 writes a into the 4 octets of b when it is an IPv4 address, and
// zeros otherwise (an invalid address, or IPv6 in an IPv4 field).
func PutIPv4(b []byte, a netip.Addr) {
	_ = b[3]
	if !a.Is4() {
		clear(b[:4])
		return
	}
	v := a.As4()
	copy(b[:4], v[:])
}

// PutIPv6 writes a into the 16 octets of b when it is an IPv6 address
// (IPv4-mapped included), and zeros otherwise.
func PutIPv6(b []byte, a netip.Addr) {
	_ = b[15]
	if !a.Is6() {
		clear(b[:16])
		return
	}
	if a.Zone() != "" {
		v := a.As16()
		copy(b[:16], v[:])
		return
	}
	// AppendBinary stores the two 64-bit halves straight into b; As16 goes
	// through a stack array whose 16-octet reload stalls store-to-load
	// forwarding and costs about twice as much. It also appends the zone,
	// hence the case above (zones never occur in flow records).
	_, _ = a.AppendBinary(b[:0:16])
}

// UnixMilli returns t in ms since the unix epoch, and 0 for the zero time:
// the value of flowStartMilliseconds and flowEndMilliseconds.
func UnixMilli(t time.Time) int64 { return unixMs(t) }

// Room returns how many records of size octets, at most want, still fit in
// set setID of this message. A set that holds n records holds any fewer
// (Fits is monotonic in the size, padding included), so reserving Room's
// count at once packs exactly as reserving record by record would.
func (b *Builder) Room(setID uint16, size, want int) int {
	if b.Fits(setID, want*size) {
		return want
	}
	// The first count that does not fit, less one.
	return sort.Search(want, func(k int) bool { return !b.Fits(setID, (k+1)*size) })
}
