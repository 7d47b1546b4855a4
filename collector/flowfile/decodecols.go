// SPDX-License-Identifier: Apache-2.0

package flowfile

// colBuf holds the columns of one piece of a block (ScanOptions.Columns).
type colBuf struct {
	block            Block
	srcPort, dstPort []uint16
	icmp             []uint16
	packets, octets  []uint64
	start, end       []int64
	times            []uint8
}

// grow makes every column of c hold n values.
func (c *colBuf) grow(n int) {
	if cap(c.times) >= n {
		return
	}
	c.srcPort, c.dstPort, c.icmp = make([]uint16, n), make([]uint16, n), make([]uint16, n)
	c.packets, c.octets = make([]uint64, n), make([]uint64, n)
	c.start, c.end, c.times = make([]int64, n), make([]int64, n), make([]uint8, n)
}

// decodeCols is decodeChunk into columns (d.colOut.block) instead of
// records: the fields need (within ColumnFields) of the n records from
// record lo of the block. It returns the first malformed column found,
// or -1.
func (d *blockDecoder) decodeCols(n int, flags []uint16, lo int, need Fields) (int, error) {
	hi := lo + n
	c := &d.colOut
	c.grow(decodeChunk)
	b := Block{Len: n}
	dc := &d.cols
	if need&FieldProto != 0 {
		b.Proto = dc[colProto].b[lo:hi]
	}
	if need&FieldSrc != 0 {
		idx := d.srcIdx[lo:hi]
		if !decodeIndexes(&dc[colSrc], len(d.addrs), idx) {
			return colSrc, nil
		}
		b.SrcAddr = idx
	}
	if need&FieldDst != 0 {
		idx := d.dstIdx[lo:hi]
		if !decodeIndexes(&dc[colDst], len(d.addrs), idx) {
			return colDst, nil
		}
		b.DstAddr = idx
	}
	if need&(FieldSrcPort|FieldDstPort) != 0 {
		sp, dp := dc[colSrcPort].b, dc[colDstPort].b
		j := dc[colSrcPort].i
		src, dstp := c.srcPort[:n], c.dstPort[:n]
		for k, f := range flags {
			if f&fPorts == 0 {
				src[k], dstp[k] = 0, 0
				continue
			}
			if j+2 > len(sp) || j+2 > len(dp) {
				return colSrcPort, nil
			}
			src[k] = uint16(sp[j])<<8 | uint16(sp[j+1])
			dstp[k] = uint16(dp[j])<<8 | uint16(dp[j+1])
			j += 2
		}
		dc[colSrcPort].i = j
		if need&FieldSrcPort != 0 {
			b.SrcPort = src
		}
		if need&FieldDstPort != 0 {
			b.DstPort = dstp
		}
	}
	if need&FieldICMP != 0 {
		ic := &dc[colICMP]
		out := c.icmp[:n]
		for k, f := range flags {
			out[k] = 0
			if f&fICMP != 0 {
				if ic.i+2 > len(ic.b) {
					return colICMP, nil
				}
				out[k] = uint16(ic.b[ic.i])<<8 | uint16(ic.b[ic.i+1])
				ic.i += 2
			}
		}
		b.ICMP = out
	}
	if need&FieldPackets != 0 {
		if !decodeUvarints(&dc[colPackets], c.packets[:n]) {
			return colPackets, nil
		}
		b.Packets = c.packets[:n]
	}
	if need&FieldOctets != 0 {
		if !decodeUvarints(&dc[colOctets], c.octets[:n]) {
			return colOctets, nil
		}
		b.Octets = c.octets[:n]
	}
	if need&FieldTimes != 0 {
		if bad, err := d.decodeTimesNs(c.start[:n], c.end[:n], c.times[:n], flags); bad >= 0 || err != nil {
			return bad, err
		}
		b.Start, b.End, b.Times = c.start[:n], c.end[:n], c.times[:n]
	}
	c.block = b
	return -1, nil
}

// decodeIndexes decodes the next len(idx) dictionary indexes of c, each
// below n; false if c does not hold them.
func decodeIndexes(c *fcur, n int, idx []uint32) bool {
	b, i := c.b, c.i
	for k := range idx {
		var a uint64
		if i < len(b) && b[i] < 0x80 {
			a = uint64(b[i])
			i++
		} else if i+1 < len(b) && b[i+1] < 0x80 {
			a = uint64(b[i]&0x7f) | uint64(b[i+1])<<7
			i += 2
		} else if a, i = uvAtSlow(b, i); i < 0 {
			return false
		}
		if a >= uint64(n) {
			return false
		}
		idx[k] = uint32(a)
	}
	c.i = i
	return true
}

// decodeUvarints decodes the next len(dst) uvarints of c.
func decodeUvarints(c *fcur, dst []uint64) bool {
	b, i := c.b, c.i
	for k := range dst {
		if i < len(b) && b[i] < 0x80 {
			dst[k] = uint64(b[i])
			i++
		} else if i+1 < len(b) && b[i+1] < 0x80 {
			dst[k] = uint64(b[i]&0x7f) | uint64(b[i+1])<<7
			i += 2
		} else if dst[k], i = uvAtSlow(b, i); i < 0 {
			return false
		}
	}
	c.i = i
	return true
}

// decodeTimesNs is decodeTimes into Unix nanoseconds: the value
// time.Time.UnixNano gives for the times decodeTimes makes (ms·10⁶ plus
// the sub-millisecond part, wrapping as UnixNano does).
func (d *blockDecoder) decodeTimesNs(start, end []int64, times []uint8, flags []uint16) (int, error) {
	tc, dc, sc := &d.cols[colTime], &d.cols[colDuration], &d.cols[colSubMs]
	tb, db := tc.b, dc.b
	ti, di := tc.i, dc.i
	prev := d.prev
	if d.bothTimes {
		// The common block: no flags to look at.
		for k := range flags {
			var u, v uint64
			if ti < len(tb) && tb[ti] < 0x80 {
				u = uint64(tb[ti])
				ti++
			} else if u, ti = uvAtSlow(tb, ti); ti < 0 {
				return colTime, nil
			}
			if di < len(db) && db[di] < 0x80 {
				v = uint64(db[di])
				di++
			} else if di+1 < len(db) && db[di+1] < 0x80 {
				v = uint64(db[di]&0x7f) | uint64(db[di+1])<<7
				di += 2
			} else if v, di = uvAtSlow(db, di); di < 0 {
				return colDuration, nil
			}
			prev += unzigzag(u)
			start[k], end[k], times[k] = (prev-unzigzag(v))*1e6, prev*1e6, TimeStart|TimeEnd
		}
		tc.i, dc.i, d.prev = ti, di, prev
		return -1, nil
	}
	for k, f := range flags {
		if f&(fStart|fEnd) == 0 {
			start[k], end[k], times[k] = 0, 0, 0
			continue
		}
		var u uint64
		if ti < len(tb) && tb[ti] < 0x80 {
			u = uint64(tb[ti])
			ti++
		} else if ti+1 < len(tb) && tb[ti+1] < 0x80 {
			u = uint64(tb[ti]&0x7f) | uint64(tb[ti+1])<<7
			ti += 2
		} else if u, ti = uvAtSlow(tb, ti); ti < 0 {
			return colTime, nil
		}
		t := prev + unzigzag(u)
		prev = t
		var startSub, endSub uint64
		if f&fSubMs != 0 {
			var ok bool
			if startSub, endSub, ok = sc.subMs(f); !ok {
				return colSubMs, errSubMsRange
			}
		}
		switch f & (fStart | fEnd) {
		case fStart:
			start[k], end[k], times[k] = t*1e6+int64(startSub), 0, TimeStart
		case fEnd:
			start[k], end[k], times[k] = 0, t*1e6+int64(endSub), TimeEnd
		default:
			if di < len(db) && db[di] < 0x80 {
				u = uint64(db[di])
				di++
			} else if di+1 < len(db) && db[di+1] < 0x80 {
				u = uint64(db[di]&0x7f) | uint64(db[di+1])<<7
				di += 2
			} else if u, di = uvAtSlow(db, di); di < 0 {
				return colDuration, nil
			}
			start[k] = (t-unzigzag(u))*1e6 + int64(startSub)
			end[k], times[k] = t*1e6+int64(endSub), TimeStart|TimeEnd
		}
	}
	tc.i, dc.i, d.prev = ti, di, prev
	return -1, nil
}
