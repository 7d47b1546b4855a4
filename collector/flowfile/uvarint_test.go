// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// TestCheckUvarints: the word-at-a-time check answers as the one that
// reads each varint, on columns of short and long varints, damaged ones
// and every bound the block decoder uses.
func TestCheckUvarints(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	bounds := []uint64{0, 1, 126, 127, 128, 300, 16383, 16384, 1<<16 - 1, 1<<32 - 1, 1<<35 - 1, 1 << 62, 1<<63 - 1, ^uint64(0)}
	valid := 0
	for iter := range 20000 {
		n := rng.IntN(40)
		var b []byte
		for range n {
			var v uint64
			switch rng.IntN(4) {
			case 0:
				v = rng.Uint64N(128)
			case 1:
				v = rng.Uint64N(1 << 16)
			case 2:
				v = rng.Uint64() >> rng.UintN(64)
			default:
				v = rng.Uint64()
			}
			b = binary.AppendUvarint(b, v)
		}
		switch iter % 5 {
		case 1: // a damaged byte
			if len(b) > 0 {
				b[rng.IntN(len(b))] ^= 1 << rng.UintN(8)
			}
		case 2: // cut short
			if len(b) > 0 {
				b = b[:rng.IntN(len(b))]
			}
		case 3: // an overlong varint
			at := rng.IntN(len(b) + 1)
			long := make([]byte, 9+rng.IntN(4))
			for i := range long {
				long[i] = 0x80 | byte(rng.IntN(256))
			}
			long[len(long)-1] &= byte(rng.IntN(128))
			b = append(b[:at:at], append(long, b[at:]...)...)
		}
		for _, hi := range bounds {
			for _, hi2 := range []uint64{hi, bounds[rng.IntN(len(bounds))]} {
				for _, pairs := range []bool{false, true} {
					m := n + rng.IntN(3) - 1
					if pairs {
						m = (m + 1) / 2
					}
					m = max(m, 0)
					got := checkUvarints(b, m, hi, hi2, pairs)
					want := checkUvarintsSlow(b, m, hi, hi2, pairs)
					if got != want {
						t.Fatalf("checkUvarints(% x, %d, %d, %d, %v) = %v, reading each varint says %v", b, m, hi, hi2, pairs, got, want)
					}
					if got {
						valid++
					}
				}
			}
		}
	}
	if valid < 10000 {
		t.Errorf("only %d valid columns among the cases: the test checks too little", valid)
	}
}

// TestTwoByteUvarintsAtMost: the word-at-a-time bound check of
// dictionary indexes answers as reading each varint, with values around
// every bound the dictionary sizes give.
func TestTwoByteUvarintsAtMost(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	fails := 0
	for range 20000 {
		bound := 127 + rng.Uint64N(16383-127)
		n := rng.IntN(60)
		var b []byte
		for range n {
			v := rng.Uint64N(bound + 1)
			switch rng.IntN(5) {
			case 0:
				v = rng.Uint64N(128)
			case 1:
				v = bound - rng.Uint64N(3)
			case 2:
				v = min(bound+1+rng.Uint64N(3), 16383)
			}
			b = binary.AppendUvarint(b, v)
		}
		want := true
		for i := 0; i < len(b); {
			v, k := binary.Uvarint(b[i:])
			want = want && v <= bound
			i += k
		}
		if got := twoByteUvarintsAtMost(b, bound); got != want {
			t.Fatalf("twoByteUvarintsAtMost(% x, %d) = %v, want %v", b, bound, got, want)
		}
		if !want {
			fails++
		}
	}
	if fails < 1000 {
		t.Errorf("only %d columns over their bound: the test checks too little", fails)
	}
}
