// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"time"
)

// Address kinds in the block dictionary and the summary.
const (
	addrInvalid = 0
	addrV4      = 1
	addrV6      = 2
	addrV6Zone  = 3
)

func appendAddr(dst []byte, a netip.Addr) []byte {
	switch {
	case !a.IsValid():
		return append(dst, addrInvalid)
	case a.Is4():
		b := a.As4()
		return append(append(dst, addrV4), b[:]...)
	case a.Zone() == "":
		b := a.As16()
		return append(append(dst, addrV6), b[:]...)
	default:
		b := a.As16()
		dst = append(append(dst, addrV6Zone), b[:]...)
		dst = binary.AppendUvarint(dst, uint64(len(a.Zone())))
		return append(dst, a.Zone()...)
	}
}

func validAddr(a netip.Addr) bool { return len(a.Zone()) <= maxZoneLen }

// validTime reports whether t survives the millisecond + sub-millisecond
// encoding exactly (it does for every year within ±292 million).
func validTime(t time.Time) bool {
	if t.IsZero() {
		return true
	}
	if s := t.Unix(); s > -9e15 && s < 9e15 {
		// Far from where milliseconds overflow an int64 (±9.22e15 s):
		// the split is exact, no need to join it back (the writer checks
		// two times a record).
		return true
	}
	ms, sub := splitTime(t)
	return joinTime(ms, sub).Equal(t)
}

func splitTime(t time.Time) (ms int64, subNs uint64) {
	return t.UnixMilli(), uint64(t.Nanosecond() % 1e6)
}

func joinTime(ms int64, subNs uint64) time.Time {
	return time.UnixMilli(ms).Add(time.Duration(subNs)).UTC()
}

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

var errShort = errors.New("short or malformed data")

// cursor reads varints and bytes from a slice; the first failure sticks.
type cursor struct {
	b   []byte
	bad bool
}

func (c *cursor) uvarint() uint64 {
	v, n := binary.Uvarint(c.b)
	if n <= 0 {
		c.fail()
		return 0
	}
	c.b = c.b[n:]
	return v
}

// u32 reads a uvarint that must fit 32 bits.
func (c *cursor) u32() uint32 {
	v := c.uvarint()
	if v > 1<<32-1 {
		c.fail()
		return 0
	}
	return uint32(v)
}

func (c *cursor) byte() byte {
	if len(c.b) < 1 {
		c.fail()
		return 0
	}
	v := c.b[0]
	c.b = c.b[1:]
	return v
}

func (c *cursor) bytes(n int) []byte {
	if n < 0 || len(c.b) < n {
		c.fail()
		return nil
	}
	v := c.b[:n]
	c.b = c.b[n:]
	return v
}

func (c *cursor) fail() { c.bad = true; c.b = nil }

func (c *cursor) addr() netip.Addr {
	switch c.byte() {
	case addrInvalid:
		return netip.Addr{}
	case addrV4:
		b := c.bytes(4)
		if c.bad {
			return netip.Addr{}
		}
		return netip.AddrFrom4([4]byte(b))
	case addrV6:
		b := c.bytes(16)
		if c.bad {
			return netip.Addr{}
		}
		return netip.AddrFrom16([16]byte(b))
	case addrV6Zone:
		b := c.bytes(16)
		n := c.uvarint()
		if n == 0 || n > maxZoneLen {
			c.fail()
		}
		z := c.bytes(int(n))
		if c.bad {
			return netip.Addr{}
		}
		return netip.AddrFrom16([16]byte(b)).WithZone(string(z))
	}
	c.fail()
	return netip.Addr{}
}

// appendTime encodes an optional time: presence byte, zigzag ms, sub-ms ns.
func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, 0)
	}
	ms, sub := splitTime(t)
	dst = append(dst, 1)
	dst = binary.AppendUvarint(dst, zigzag(ms))
	return binary.AppendUvarint(dst, sub)
}

func (c *cursor) time() time.Time {
	switch c.byte() {
	case 0:
		return time.Time{}
	case 1:
		ms := unzigzag(c.uvarint())
		sub := c.uvarint()
		if sub >= 1e6 {
			c.fail()
		}
		if c.bad {
			return time.Time{}
		}
		return joinTime(ms, sub)
	}
	c.fail()
	return time.Time{}
}
