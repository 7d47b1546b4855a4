// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// Scan: a block-at-a-time reader for queries. It walks the section headers
// first; when they are all intact it decompresses and decodes the blocks on
// several goroutines with a decoder whose varint reads inline, and hands
// the blocks to the caller in file order. A file whose section headers are
// damaged (it needs resynchronisation) is read through a Reader instead.
// Either way the records and the corrupt-block accounting are exactly a
// Reader's with SkipCorrupt.

// ErrStopScan, returned by a Scan callback, ends the scan without error.
var ErrStopScan = errors.New("stop scan")

// ScanOptions configure Scan.
type ScanOptions struct {
	// Workers is the number of decoding goroutines (default GOMAXPROCS).
	Workers int
	// Fields are the record fields to decode (0: all); the others are
	// zero. Fewer fields decode faster. The records handed to the
	// callback must not be modified then: their buffers are reused.
	Fields Fields
}

// ScanResult says what Scan read.
type ScanResult struct {
	Blocks  int // whole blocks, readable or corrupt
	Corrupt int // skipped
	Records uint64
	End     EndKind
	// Summary is the file's stored summary, when it was closed cleanly.
	Summary *Summary
}

type scanSection struct {
	off                   int64 // payload offset
	length, raw, count, c uint32
}

// Scan reads the flow file at path and calls fn with the records of each
// readable block, in file order, on the calling goroutine. The slice is
// only valid during the call. If fn returns ErrStopScan the scan ends and
// Scan returns nil; another error ends it and is returned.
func Scan(path string, opts ScanOptions, fn func(recs []flow.Record) error) (ScanResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return ScanResult{}, fmt.Errorf("scan flow file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ScanResult{}, fmt.Errorf("scan flow file: %w", err)
	}
	r, err := NewReader(f, st.Size(), ReaderOptions{SkipCorrupt: true})
	if err != nil {
		return ScanResult{}, fmt.Errorf("scan flow file %s: %w", path, err)
	}
	defer r.Close()
	secs, end, ok, err := r.sections()
	if err != nil {
		return ScanResult{}, fmt.Errorf("scan %s: %w", path, err)
	}
	if !ok {
		return scanWithReader(r, opts.Fields, fn)
	}
	res := ScanResult{Blocks: len(secs), End: end, Summary: r.summary}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	err = scanParallel(r.ra, secs, min(workers, max(1, len(secs))), opts.Fields, func(recs []flow.Record, corrupt bool) error {
		if corrupt {
			res.Corrupt++
			return nil
		}
		res.Records += uint64(len(recs))
		return fn(recs)
	})
	if errors.Is(err, ErrStopScan) {
		err = nil
	}
	if err != nil {
		return res, fmt.Errorf("scan %s: %w", path, err)
	}
	return res, nil
}

// sections walks the section headers from the first block. ok is false
// when a header is damaged.
func (r *Reader) sections() (secs []scanSection, end EndKind, ok bool, err error) {
	pos := r.pos
	var h [sectionHeaderLen]byte
	for {
		if r.size-pos < sectionHeaderLen {
			return secs, EndTruncated, true, nil
		}
		if err := r.readAt(h[:], pos); err != nil {
			return nil, 0, false, fmt.Errorf("read block header at offset %d: %w", pos, err)
		}
		s, valid := parseSectionHeader(h[:])
		if !valid || s.sane() != "" {
			return nil, 0, false, nil
		}
		if s.magic == summaryMagic {
			if _, _, ok := r.readSummaryAt(pos); ok {
				return secs, EndClean, true, nil
			}
			return secs, EndTruncated, true, nil
		}
		next := pos + sectionHeaderLen + int64(s.length)
		if next > r.size {
			return secs, EndTruncated, true, nil
		}
		secs = append(secs, scanSection{off: pos + sectionHeaderLen, length: s.length, raw: s.rawLength, count: s.count, c: s.payloadCRC})
		pos = next
	}
}

// scanWithReader is Scan through a Reader (for damaged files).
func scanWithReader(r *Reader, need Fields, fn func([]flow.Record) error) (ScanResult, error) {
	var res ScanResult
	buf := make([]flow.Record, 0, DefaultBlockRecords)
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		res.Records += uint64(len(buf))
		err := fn(buf)
		buf = buf[:0]
		return err
	}
	for r.Next() {
		if need == 0 || need.Has(AllFields) {
			buf = append(buf, *r.Record())
		} else {
			buf = append(buf, need.Keep(*r.Record()))
		}
		if len(buf) == cap(buf) {
			if err := flush(); err != nil {
				if errors.Is(err, ErrStopScan) {
					return res, nil
				}
				return res, err
			}
		}
	}
	if err := flush(); err != nil && !errors.Is(err, ErrStopScan) {
		return res, err
	}
	res.Blocks, res.Corrupt, res.End, res.Summary = r.end.Blocks, r.end.Corrupt, r.end.Kind, r.summary
	return res, r.Err()
}

type scanOut struct {
	recs    []flow.Record
	corrupt bool
	err     error
}

type scanJob struct {
	sec scanSection
	out chan scanOut
}

// scanParallel decodes secs on workers goroutines and calls deliver in
// order.
func scanParallel(ra io.ReaderAt, secs []scanSection, workers int, need Fields, deliver func([]flow.Record, bool) error) error {
	jobs := make(chan scanJob, workers)
	order := make(chan chan scanOut, 2*workers)
	free := make(chan []flow.Record, 2*workers+2)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := scanWorker{ra: ra, need: need}
			defer w.close()
			for j := range jobs {
				var dst []flow.Record
				select {
				case dst = <-free:
				default:
				}
				j.out <- w.decode(j.sec, dst)
			}
		}()
	}
	go func() {
		defer close(order)
		defer close(jobs)
		for _, s := range secs {
			out := make(chan scanOut, 1)
			select {
			case order <- out:
			case <-done:
				return
			}
			select {
			case jobs <- scanJob{s, out}:
			case <-done:
				return
			}
		}
	}()
	var err error
	for out := range order {
		o := <-out
		switch {
		case err != nil:
		case o.err != nil:
			err = o.err
		default:
			err = deliver(o.recs, o.corrupt)
		}
		select {
		case free <- o.recs[:0]:
		default:
		}
		if err != nil {
			break
		}
	}
	close(done)
	// Let the feeder finish; workers never block on their buffered out
	// channels.
	for range order {
	}
	wg.Wait()
	return err
}

type scanWorker struct {
	ra      io.ReaderAt
	need    Fields // 0: all
	dec     *zstd.Decoder
	bd      blockDecoder
	payload []byte
	raw     []byte
}

func (w *scanWorker) close() {
	if w.dec != nil {
		w.dec.Close()
	}
}

func (w *scanWorker) decode(s scanSection, dst []flow.Record) scanOut {
	if cap(w.payload) < int(s.length) {
		w.payload = make([]byte, s.length)
	}
	p := w.payload[:s.length]
	if n, err := w.ra.ReadAt(p, s.off); n != len(p) {
		if err == nil || errors.Is(err, io.EOF) {
			err = ErrTruncated
		}
		return scanOut{recs: dst, err: fmt.Errorf("read block at offset %d: %w", s.off-sectionHeaderLen, err)}
	}
	if crc(p) != s.c {
		return scanOut{recs: dst, corrupt: true}
	}
	if w.dec == nil {
		dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(MaxBlockBytes), zstd.WithDecoderMaxWindow(MaxBlockBytes))
		if err != nil {
			return scanOut{recs: dst, err: fmt.Errorf("zstd decoder: %w", err)}
		}
		w.dec = dec
	}
	raw, err := w.dec.DecodeAll(p, w.raw[:0])
	if err != nil || len(raw) != int(s.raw) {
		return scanOut{recs: dst, corrupt: true}
	}
	w.raw = raw
	var recs []flow.Record
	if w.need == 0 || w.need.Has(AllFields) {
		recs, err = decodeBlockFast(raw, int(s.count), dst)
	} else {
		recs, err = w.bd.decode(raw, int(s.count), dst, w.need)
	}
	if err != nil {
		return scanOut{recs: recs, corrupt: true}
	}
	return scanOut{recs: recs}
}

// fcur is a cursor whose one-byte varint reads inline; the first failure
// sticks, as with cursor.
type fcur struct {
	b   []byte
	i   int
	bad bool
}

func (c *fcur) fail() { c.bad, c.i = true, len(c.b) }

func (c *fcur) uv() uint64 {
	if i := c.i; i < len(c.b) {
		if v := c.b[i]; v < 0x80 {
			c.i = i + 1
			return uint64(v)
		}
	}
	return c.uvSlow()
}

// uvAtSlow reads the uvarint at b[i:] (callers test for one byte
// themselves): v and the next index, or a negative index when b holds
// none.
func uvAtSlow(b []byte, i int) (uint64, int) {
	if i+2 < len(b) {
		if b[i+1] < 0x80 {
			return uint64(b[i]&0x7f) | uint64(b[i+1])<<7, i + 2
		}
		if b[i+2] < 0x80 {
			return uint64(b[i]&0x7f) | uint64(b[i+1]&0x7f)<<7 | uint64(b[i+2])<<14, i + 3
		}
	}
	if i > len(b) {
		return 0, -1
	}
	v, n := binary.Uvarint(b[i:])
	if n <= 0 {
		return 0, -1
	}
	return v, i + n
}

func (c *fcur) uvSlow() uint64 {
	b := c.b[c.i:]
	if len(b) >= 3 {
		if b[1] < 0x80 {
			c.i += 2
			return uint64(b[0]&0x7f) | uint64(b[1])<<7
		}
		if b[2] < 0x80 {
			c.i += 3
			return uint64(b[0]&0x7f) | uint64(b[1]&0x7f)<<7 | uint64(b[2])<<14
		}
	}
	v, n := binary.Uvarint(b)
	if n <= 0 {
		c.fail()
		return 0
	}
	c.i += n
	return v
}

func (c *fcur) u32() uint32 {
	v := c.uv()
	if v > 1<<32-1 {
		c.fail()
		return 0
	}
	return uint32(v)
}

func (c *fcur) u16() uint16 {
	v := c.uv()
	if v > 1<<16-1 {
		c.fail()
		return 0
	}
	return uint16(v)
}

func (c *fcur) byte() byte {
	if c.i >= len(c.b) {
		c.bad = true
		return 0
	}
	c.i++
	return c.b[c.i-1]
}

func (c *fcur) be16() uint16 {
	if c.i+2 > len(c.b) {
		c.fail()
		return 0
	}
	c.i += 2
	return uint16(c.b[c.i-2])<<8 | uint16(c.b[c.i-1])
}

func (c *fcur) addr(addrs []netip.Addr) netip.Addr {
	i := c.uv()
	if i < uint64(len(addrs)) {
		return addrs[i]
	}
	c.fail()
	return netip.Addr{}
}

// fastTime is joinTime without the intermediate Add.
func fastTime(ms int64, sub uint64) time.Time {
	return time.Unix(ms/1000, (ms%1000)*1e6+int64(sub)).UTC()
}

// decodeBlockFast decodes what decodeBlock decodes, with the same checks,
// into the same records; it only reads faster.
func decodeBlockFast(p []byte, count int, dst []flow.Record) ([]flow.Record, error) {
	c := cursor{b: p}
	if n := c.uvarint(); n != uint64(count) {
		return dst[:0], fmt.Errorf("record count %d, header says %d", n, count)
	}
	prev := unzigzag(c.uvarint())
	ndict := c.uvarint()
	if ndict > uint64(len(c.b)) || ndict > 4*uint64(count) {
		return dst[:0], fmt.Errorf("address dictionary of %d entries", ndict)
	}
	addrs := make([]netip.Addr, ndict+1)
	for i := 1; i < len(addrs); i++ {
		addrs[i] = c.addr()
	}
	ncols := c.uvarint()
	if c.bad || ncols < numCols || ncols > 1024 {
		return dst[:0], fmt.Errorf("malformed block preamble")
	}
	var cols [numCols]fcur
	var lens [1024]uint64
	for i := range ncols {
		lens[i] = c.uvarint()
	}
	for i := range ncols {
		b := c.bytes(int(min(lens[i], uint64(len(c.b)+1))))
		if i < numCols {
			cols[i].b = b
		}
	}
	if c.bad {
		return dst[:0], fmt.Errorf("column lengths exceed block")
	}
	dst = dst[:0]
	if cap(dst) < count {
		dst = make([]flow.Record, 0, count)
	}
	dst = dst[:count]
	for k := range dst {
		r := &dst[k]
		*r = flow.Record{}
		f := cols[colFlags].uv()
		if f&^fAll != 0 {
			return dst[:0], fmt.Errorf("unknown presence flags %#x", f)
		}
		r.Proto = cols[colProto].byte()
		r.Src = cols[colSrc].addr(addrs)
		r.Dst = cols[colDst].addr(addrs)
		if f&fPorts != 0 {
			r.SrcPort = cols[colSrcPort].be16()
			r.DstPort = cols[colDstPort].be16()
		}
		if f&fICMP != 0 {
			r.ICMPType = cols[colICMP].byte()
			r.ICMPCode = cols[colICMP].byte()
		}
		if f&fVLAN != 0 {
			r.VLAN = cols[colVLAN].u16()
			r.InnerVLAN = cols[colVLAN].u16()
		}
		if f&fIf != 0 {
			r.InIf = cols[colInIf].u32()
			r.OutIf = cols[colOutIf].u32()
		}
		r.Direction = flow.Direction(cols[colDirection].byte())
		r.Packets = cols[colPackets].uv()
		r.Octets = cols[colOctets].uv()
		if f&(fStart|fEnd) != 0 {
			t := prev + unzigzag(cols[colTime].uv())
			prev = t
			var startMs, endMs int64
			switch f & (fStart | fEnd) {
			case fStart:
				startMs = t
			case fEnd:
				endMs = t
			default:
				endMs = t
				startMs = t - unzigzag(cols[colDuration].uv())
			}
			var startSub, endSub uint64
			if f&fSubMs != 0 {
				if f&fStart != 0 {
					startSub = cols[colSubMs].uv()
				}
				if f&fEnd != 0 {
					endSub = cols[colSubMs].uv()
				}
				if startSub >= 1e6 || endSub >= 1e6 {
					return dst[:0], fmt.Errorf("sub-millisecond value out of range")
				}
			}
			if f&fStart != 0 {
				r.Start = fastTime(startMs, startSub)
			}
			if f&fEnd != 0 {
				r.End = fastTime(endMs, endSub)
			}
		} else if f&fSubMs != 0 {
			return dst[:0], fmt.Errorf("sub-millisecond flag without time")
		}
		if f&fTCPFlags != 0 {
			r.TCPFlags = cols[colTCPFlags].u16()
		}
		if f&fTOS != 0 {
			r.TOS = cols[colTOS].byte()
		}
		if f&fTTL != 0 {
			r.MinTTL = cols[colTTL].byte()
			r.MaxTTL = cols[colTTL].byte()
		}
		r.EndReason = flow.EndReason(cols[colEndReason].byte())
		if f&fNextHop != 0 {
			r.NextHop = cols[colNextHop].addr(addrs)
		}
		if f&fAS != 0 {
			r.SrcAS = cols[colAS].u32()
			r.DstAS = cols[colAS].u32()
		}
		if f&fMask != 0 {
			r.SrcMask = cols[colMask].byte()
			r.DstMask = cols[colMask].byte()
		}
		if f&fSampling != 0 {
			r.SamplingInterval = cols[colSampling].u32()
		}
		if f&fExporter != 0 {
			r.Exporter = cols[colExporter].addr(addrs)
			r.ObservationDomain = cols[colExporter].u32()
		}
	}
	for i := range cols {
		if cols[i].bad {
			return dst[:0], fmt.Errorf("column %d: %w", i, errShort)
		}
		if n := len(cols[i].b) - cols[i].i; n != 0 {
			return dst[:0], fmt.Errorf("column %d: %d trailing bytes", i, n)
		}
	}
	return dst, nil
}
