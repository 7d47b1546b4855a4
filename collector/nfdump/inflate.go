// SPDX-License-Identifier: Apache-2.0

package nfdump

import (
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// inflater decompresses block payloads. Each goroutine has its own; the
// output buffer is reused, so a result is valid until the next call.
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

func (z *inflater) out() []byte {
	if z.buf == nil {
		z.buf = make([]byte, maxBlockBytes)
	}
	return z.buf[:maxBlockBytes]
}

// inflate returns the decompressed payload of a block.
func (z *inflater) inflate(c Compression, in []byte) ([]byte, error) {
	switch c {
	case Uncompressed:
		return in, nil
	case LZO:
		return lzoDecompress(in, z.out()[:0])
	case LZ4:
		n, err := lz4.UncompressBlock(in, z.out())
		if err != nil {
			return nil, fmt.Errorf("lz4: %w", err)
		}
		return z.buf[:n], nil
	case BZ2:
		buf := z.out()
		r := bzip2.NewReader(bytes.NewReader(in))
		n, err := io.ReadFull(r, buf)
		if err == nil {
			var one [1]byte
			if _, err = r.Read(one[:]); err == nil {
				return nil, fmt.Errorf("bzip2: block larger than %d bytes", maxBlockBytes)
			}
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return buf[:n], nil
		}
		return nil, fmt.Errorf("bzip2: %w", err)
	case ZSTD:
		if z.zstd == nil {
			d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderMaxMemory(maxBlockBytes), zstd.WithDecoderMaxWindow(maxBlockBytes))
			if err != nil {
				return nil, fmt.Errorf("zstd: %w", err)
			}
			z.zstd = d
		}
		out, err := z.zstd.DecodeAll(in, z.out()[:0])
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		if len(out) > maxBlockBytes {
			return nil, fmt.Errorf("zstd: block larger than %d bytes", maxBlockBytes)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: compression %d", ErrUnsupported, uint8(c))
}
