// SPDX-License-Identifier: Apache-2.0

package nfdump

import "errors"

// An LZO1X decompressor for nfcapd -z blocks (lzo1x_1 output), written
// from the description of the stream in the Linux kernel's
// Documentation/staging/lzo.rst ("LZO stream format as understood by
// Linux's LZO decompressor"). No Go module under a licence kflow can use
// provides one.
//
// The stream is a sequence of instructions. Each copies a run of literal
// bytes from the input, or a block from the output already written (the
// dictionary) followed by 0 to 3 literals. The number of literals the
// previous instruction copied (the state: 0, 1-3, or 4 for "4 or more")
// changes the meaning of instructions 0-15. A block copy at distance 16384
// (instruction 0001HLLL with H and the distance both zero) ends the stream.
// Every read and write is bounds-checked: a stream that would read past its
// input, reach before the start of the output or write past the output's
// capacity is an error.

var (
	errLZOInput    = errors.New("lzo: input overrun")
	errLZOOutput   = errors.New("lzo: output overrun")
	errLZOLookback = errors.New("lzo: lookbehind overrun")
	errLZOTrailing = errors.New("lzo: input not consumed")
)

// lzoDecompress decodes src, appending to dst[:0] (grown as needed) at
// most max bytes, and returns the output.
func lzoDecompress(src, dst []byte, max int) ([]byte, error) {
	d := lzoState{src: src, out: dst[:0], max: max}
	if err := d.run(); err != nil {
		return nil, err
	}
	return d.out, nil
}

type lzoState struct {
	src []byte
	ip  int
	out []byte
	max int
}

// byte reads one input byte.
func (d *lzoState) byte() (int, error) {
	if d.ip >= len(d.src) {
		return 0, errLZOInput
	}
	b := d.src[d.ip]
	d.ip++
	return int(b), nil
}

// le16 reads a little-endian 16-bit operand.
func (d *lzoState) le16() (int, error) {
	if len(d.src)-d.ip < 2 {
		return 0, errLZOInput
	}
	v := int(d.src[d.ip]) | int(d.src[d.ip+1])<<8
	d.ip += 2
	return v, nil
}

// length decodes a variable length whose first part is the low bits of the
// instruction (mask is all of them set): when they are zero, each zero
// byte adds 255 and the first non-zero byte ends it.
func (d *lzoState) length(v, mask int) (int, error) {
	if v != 0 {
		return v, nil
	}
	n := mask
	for {
		b, err := d.byte()
		if err != nil {
			return 0, err
		}
		if b != 0 {
			return n + b, nil
		}
		n += 255
		if n > d.max {
			return 0, errLZOOutput
		}
	}
}

// literals copies n input bytes to the output.
func (d *lzoState) literals(n int) error {
	if len(d.src)-d.ip < n {
		return errLZOInput
	}
	if d.max-len(d.out) < n {
		return errLZOOutput
	}
	d.out = append(d.out, d.src[d.ip:d.ip+n]...)
	d.ip += n
	return nil
}

// match copies n bytes from dist bytes back in the output; the regions may
// overlap (a run), so it copies byte by byte when they do.
func (d *lzoState) match(dist, n int) error {
	if dist <= 0 || dist > len(d.out) {
		return errLZOLookback
	}
	if d.max-len(d.out) < n {
		return errLZOOutput
	}
	from := len(d.out) - dist
	if dist >= n {
		d.out = append(d.out, d.out[from:from+n]...)
		return nil
	}
	for i := range n {
		d.out = append(d.out, d.out[from+i])
	}
	return nil
}

func (d *lzoState) run() error {
	state := 0
	// The first byte: above 17 it is a literal run of (byte - 17) bytes.
	if len(d.src) > 0 && d.src[0] > 17 {
		d.ip = 1
		n := int(d.src[0]) - 17
		if err := d.literals(n); err != nil {
			return err
		}
		state = min(n, 4)
	}
	for {
		inst, err := d.byte()
		if err != nil {
			return err
		}
		var dist, n, next int
		switch {
		case inst < 16 && state == 0:
			// 0000LLLL: a literal run of 3 + L bytes (L = 0: extended).
			if n, err = d.length(inst, 15); err != nil {
				return err
			}
			if err := d.literals(n + 3); err != nil {
				return err
			}
			state = 4
			continue
		case inst < 16:
			// 0000DDSS HHHHHHHH: 2 bytes within 1 KiB after 1-3
			// literals, 3 bytes at 2-3 KiB after 4 or more.
			h, err := d.byte()
			if err != nil {
				return err
			}
			dist, n = h<<2+(inst>>2)&3+1, 2
			if state == 4 {
				dist, n = dist+2048, 3
			}
			next = inst & 3
		case inst < 32:
			// 0001HLLL, LE16 DDDDDDDD DDDDDDSS: 16-48 KiB back; distance
			// 16384 ends the stream.
			if n, err = d.length(inst&7, 7); err != nil {
				return err
			}
			v, err := d.le16()
			if err != nil {
				return err
			}
			dist = 16384 + (inst&8)<<11 + v>>2
			if dist == 16384 {
				if d.ip != len(d.src) {
					return errLZOTrailing
				}
				return nil
			}
			n, next = n+2, v&3
		case inst < 64:
			// 001LLLLL, LE16: within 16 KiB.
			if n, err = d.length(inst&31, 31); err != nil {
				return err
			}
			v, err := d.le16()
			if err != nil {
				return err
			}
			dist, n, next = v>>2+1, n+2, v&3
		default:
			// 01LDDDSS or 1LLDDDSS, HHHHHHHH: 3-4 or 5-8 bytes within
			// 2 KiB.
			h, err := d.byte()
			if err != nil {
				return err
			}
			dist, next = h<<3+(inst>>2)&7+1, inst&3
			if inst < 128 {
				n = 3 + (inst>>5)&1
			} else {
				n = 5 + (inst>>5)&3
			}
		}
		if err := d.match(dist, n); err != nil {
			return err
		}
		if err := d.literals(next); err != nil {
			return err
		}
		state = next
	}
}
