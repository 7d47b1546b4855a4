// SPDX-License-Identifier: Apache-2.0

package nfdump

import (
	"bytes"
	"compress/bzip2"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// inflater decompresses block payloads into a buffer it reuses (grown up
// to maxBlockBytes as blocks need), so a result is valid until the next
// call. Each goroutine has its own.
type inflater struct {
	buf  []byte
	zstd *zstd.Decoder
}

func (z *inflater) close() {
	if z.zstd != nil {
		z.zstd.Close()
		z.zstd = nil
	}
}

// inflate returns the decompressed payload of a block.
func (z *inflater) inflate(c Compression, in []byte) ([]byte, error) {
	switch c {
	case Uncompressed:
		return in, nil
	case LZO:
		out, err := lzoDecompress(in, z.buf[:0], maxBlockBytes)
		if out != nil {
			z.buf = out[:0]
		}
		return out, err
	case LZ4:
		// A raw LZ4 block does not say how large it decompresses: start
		// at four times the input and double while too small.
		n := min(max(4*len(in), 64<<10), maxBlockBytes)
		for {
			if cap(z.buf) < n {
				z.buf = make([]byte, n)
			}
			got, err := lz4.UncompressBlock(in, z.buf[:n])
			if err == nil {
				return z.buf[:got], nil
			}
			if n == maxBlockBytes {
				return nil, fmt.Errorf("lz4: %w", err)
			}
			n = min(2*n, maxBlockBytes)
		}
	case BZ2:
		w := bytes.NewBuffer(z.buf[:0])
		n, err := w.ReadFrom(io.LimitReader(bzip2.NewReader(bytes.NewReader(in)), maxBlockBytes+1))
		z.buf = w.Bytes()[:0]
		if err != nil {
			return nil, fmt.Errorf("bzip2: %w", err)
		}
		if n > maxBlockBytes {
			return nil, fmt.Errorf("bzip2: block larger than %d bytes", maxBlockBytes)
		}
		return w.Bytes(), nil
	case ZSTD:
		if z.zstd == nil {
			d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderMaxMemory(maxBlockBytes), zstd.WithDecoderMaxWindow(maxBlockBytes))
			if err != nil {
				return nil, fmt.Errorf("zstd: %w", err)
			}
			z.zstd = d
		}
		out, err := z.zstd.DecodeAll(in, z.buf[:0])
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		z.buf = out[:0]
		if len(out) > maxBlockBytes {
			return nil, fmt.Errorf("zstd: block larger than %d bytes", maxBlockBytes)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: compression %d", ErrUnsupported, uint8(c))
}
