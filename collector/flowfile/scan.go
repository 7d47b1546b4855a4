// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// Scan: a block-at-a-time reader for queries. It walks the section headers
// first; when they are all intact it decompresses and decodes the blocks on
// several goroutines with the Reader's block decoder, and hands the blocks
// to the caller in file order. A file whose section headers are
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
	// AddrIndexes makes ScanFilesBlocks hand over each record's source
	// and destination address as an index into the block's address
	// dictionary too (Block), for counting by address without hashing
	// addresses.
	AddrIndexes bool
	// Columns makes ScanFilesBlocks hand over the fields as columns
	// (Block's column slices) instead of records, for counting and
	// filtering without building records. Only the fields of
	// ColumnFields can be asked for then. Blocks of damaged files, read
	// record by record, still come as records.
	Columns bool
	// Keep, if set, is called by Scan with each record it reads, on the
	// decoding workers (several at once), and Scan hands over only the
	// records it keeps, in file order; ScanResult.Records still counts
	// every record read. A selective filter applied here keeps the
	// records it drops out of the pieces the workers hand over.
	// ScanEach and ScanFilesBlocks, whose callbacks run on the workers
	// already, ignore it.
	Keep func(*flow.Record) bool
	// KeepFields, if set, are the fields Keep reads. The workers then
	// decode those of each chunk of a block first and the others only
	// for a chunk where Keep keeps a record: a selective filter's
	// listing skips most of the decoding. Keep must read no other field.
	KeepFields Fields
}

// ColumnFields are the fields a scan with ScanOptions.Columns decodes
// into columns.
const ColumnFields = FieldProto | FieldSrc | FieldDst | FieldSrcPort | FieldDstPort | FieldICMP |
	FieldPackets | FieldOctets | FieldTimes

// Bits of Block.Times.
const (
	TimeStart = 1 << iota // the record has a start time (Block.Start)
	TimeEnd               // the record has an end time (Block.End)
)

// Block is a piece of a decoded block as ScanFilesBlocks hands it over:
// some of its records, and with ScanOptions.AddrIndexes the block's
// address dictionary and each record's source and destination index into
// it (for the fields decoded). The slices are only valid during the call.
type Block struct {
	Records []flow.Record
	// Dict is the same number for the pieces of one block, and differs
	// from every other block's of the scan: a consumer can keep what it
	// found for the dictionary's entries while it stays the same.
	Dict uint64
	// Addrs is the address dictionary: Addrs[0] is no address. Nil when
	// the indexes are not known (AddrIndexes unset, or a damaged file
	// read record by record): then SrcAddr and DstAddr are nil too.
	Addrs []netip.Addr
	// SrcAddr and DstAddr index Addrs by record, when the scan decoded
	// Src and Dst.
	SrcAddr, DstAddr []uint32

	// With ScanOptions.Columns, Records is nil and the piece's fields
	// come as columns, one value per record, for the fields decoded
	// (nil for the others); SrcAddr and DstAddr index Addrs as above.
	Len              int
	Proto            []uint8
	SrcPort, DstPort []uint16 // 0 for records without ports
	ICMP             []uint16 // ICMP type<<8 | code, 0 for none
	Packets, Octets  []uint64
	// Start and End are the times in Unix nanoseconds (time.Time's
	// UnixNano), where Times says the record has them.
	Start, End []int64
	Times      []uint8
}

// fields returns the fields to decode.
func (o ScanOptions) fields() Fields {
	if o.Fields == 0 {
		return AllFields
	}
	return o.Fields & AllFields
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

// Scan reads the flow file at path and calls fn with the records of the
// readable blocks, in file order, a piece of a block at a time (at most
// 2,048 records; whole blocks for a damaged file read record by record),
// on the calling goroutine. The slice is only valid during the call. If fn returns ErrStopScan the scan ends and
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
		return scanWithReader(r, opts.fields(), opts.Keep, fn)
	}
	res := ScanResult{Blocks: len(secs), End: end, Summary: r.summary}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	err = scanParallel(r.ra, secs, min(workers, max(1, len(secs))), opts.fields(), opts.Keep, opts.KeepFields, func(o scanOut) error {
		if o.corrupt {
			res.Corrupt++
			return nil
		}
		res.Records += uint64(o.read)
		if len(o.recs) == 0 {
			return nil
		}
		return fn(o.recs)
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
			if _, _, _, ok := r.readSummaryAt(pos); ok {
				return secs, EndClean, true, nil
			}
			return secs, EndTruncated, true, nil
		}
		next := pos + sectionHeaderLen + int64(s.length)
		if next > r.size {
			return secs, EndTruncated, true, nil
		}
		if s.magic == auxMagic {
			pos = next
			continue
		}
		secs = append(secs, scanSection{off: pos + sectionHeaderLen, length: s.length, raw: s.rawLength, count: s.count, c: s.payloadCRC})
		pos = next
	}
}

// scanWithReader is Scan through a Reader (for damaged files).
func scanWithReader(r *Reader, need Fields, keep func(*flow.Record) bool, fn func([]flow.Record) error) (ScanResult, error) {
	var res ScanResult
	buf := make([]flow.Record, 0, DefaultBlockRecords)
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		err := fn(buf)
		buf = buf[:0]
		return err
	}
	for r.Next() {
		res.Records++
		rec := r.Record()
		if keep != nil && !keep(rec) {
			continue
		}
		if need == AllFields {
			buf = append(buf, *rec)
		} else {
			buf = append(buf, need.Keep(*rec))
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
	read    int // records decoded, kept or not
	corrupt bool
	err     error
}

// piece returns the records recs a worker decoded, the block's from
// position lo on, as a Block (with the dictionary indexes when the worker
// keeps them).
func (w *scanWorker) piece(recs []flow.Record, lo int, dict uint64) Block {
	b := Block{Records: recs, Dict: dict}
	if w.bd.columns {
		b = w.bd.colOut.block
		b.Dict, b.Addrs = dict, w.bd.addrs
	} else if w.bd.indexes {
		hi := lo + len(recs)
		b.Addrs = w.bd.addrs
		if w.need&FieldSrc != 0 {
			b.SrcAddr = w.bd.srcIdx[lo:hi]
		}
		if w.need&FieldDst != 0 {
			b.DstAddr = w.bd.dstIdx[lo:hi]
		}
	}
	return b
}

type scanJob struct {
	sec scanSection
	out chan scanOut
}

// scanPiece is the most records scanParallel hands over at a time: a
// block is handed over in pieces, so that what is decoded ahead of the
// callback stays a few pieces (0.5 MiB each) rather than several whole
// blocks (8 MiB each at 32,768 records, every page of it fresh memory).
const scanPiece = 2048

// scanParallel decodes secs on workers goroutines (keeping the records
// keep keeps, if set) and calls deliver with their records in order, a
// piece at a time: the first piece of a block carries the number of
// records the block holds (read), a corrupt block one piece saying so.
func scanParallel(ra io.ReaderAt, secs []scanSection, workers int, need Fields, keep func(*flow.Record) bool, keepFields Fields, deliver func(scanOut) error) error {
	jobs := make(chan scanJob, workers)
	order := make(chan chan scanOut, 2*workers)
	free := make(chan []flow.Record, 4*workers+2)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := scanWorker{ra: ra, need: need, keep: keep}
			if keep != nil && keepFields != 0 {
				w.bd.keep, w.bd.keepFields = keep, keepFields
			}
			defer w.close()
			for j := range jobs {
				w.decodePieces(j, free, done)
			}
		}()
	}
	go func() {
		defer close(order)
		defer close(jobs)
		for _, s := range secs {
			out := make(chan scanOut, 2)
			select {
			case order <- out:
			case <-done:
				return
			}
			select {
			case jobs <- scanJob{s, out}:
			case <-done:
				close(out) // no worker will
				return
			}
		}
	}()
	var err error
	for out := range order {
		for o := range out {
			if err = o.err; err == nil {
				err = deliver(o)
			}
			if cap(o.recs) == scanPiece {
				select {
				case free <- o.recs[:0]:
				default:
				}
			}
			if err != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	close(done)
	// Let the feeder and the workers finish: once done is closed they
	// send nothing more and close every block's channel.
	for out := range order {
		for range out {
		}
	}
	wg.Wait()
	return err
}

type scanWorker struct {
	ra      io.ReaderAt
	need    Fields
	keep    func(*flow.Record) bool // Scan's ScanOptions.Keep
	chunk   []flow.Record           // decodeEach's buffer (Scan)
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

// inflate reads and decompresses the block s: its payload, or corrupt
// when its checksum or compressed data are wrong.
func (w *scanWorker) inflate(s scanSection) (raw []byte, corrupt bool, err error) {
	if cap(w.payload) < int(s.length) {
		// With room for the next blocks, which differ by a little.
		w.payload = make([]byte, s.length, s.length+s.length/8)
	}
	p := w.payload[:s.length]
	if n, err := w.ra.ReadAt(p, s.off); n != len(p) {
		if err == nil || errors.Is(err, io.EOF) {
			err = ErrTruncated
		}
		return nil, false, fmt.Errorf("read block at offset %d: %w", s.off-sectionHeaderLen, err)
	}
	if crc(p) != s.c {
		return nil, true, nil
	}
	if w.dec == nil {
		dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(MaxBlockBytes), zstd.WithDecoderMaxWindow(MaxBlockBytes))
		if err != nil {
			return nil, false, fmt.Errorf("zstd decoder: %w", err)
		}
		w.dec = dec
	}
	if cap(w.raw) < int(s.raw) {
		// At the size the header gives and room for the next blocks:
		// growing by appends leaves garbage behind, and fresh memory
		// costs page faults.
		w.raw = make([]byte, 0, s.raw+s.raw/8)
	}
	raw, err = w.dec.DecodeAll(p, w.raw[:0])
	if err != nil || len(raw) != int(s.raw) {
		return nil, true, nil
	}
	w.raw = raw
	return raw, false, nil
}

func (w *scanWorker) decode(s scanSection, dst []flow.Record) scanOut {
	raw, corrupt, err := w.inflate(s)
	if err != nil || corrupt {
		return scanOut{recs: dst, corrupt: corrupt, err: err}
	}
	recs, err := w.bd.decode(raw, int(s.count), dst, w.need)
	if err != nil {
		return scanOut{recs: recs, corrupt: true}
	}
	return scanOut{recs: recs, read: len(recs)}
}

// decodePieces decodes the block of j and sends its records (those keep
// keeps, if set) on j.out in pieces of at most scanPiece records, then
// closes j.out. Once done is closed it sends nothing more. decodeEach
// checks the whole block before it hands over any record: a malformed
// block sends one corrupt piece and no record.
func (w *scanWorker) decodePieces(j scanJob, free chan []flow.Record, done chan struct{}) {
	defer close(j.out)
	send := func(o scanOut) bool {
		select {
		case j.out <- o:
			return true
		case <-done:
			return false
		}
	}
	raw, corrupt, err := w.inflate(j.sec)
	if err != nil || corrupt {
		send(scanOut{corrupt: corrupt, err: err})
		return
	}
	get := func() []flow.Record {
		select {
		case b := <-free:
			return b
		default:
			return make([]flow.Record, 0, scanPiece)
		}
	}
	piece, read := get(), int(j.sec.count)
	flush := func() bool {
		ok := send(scanOut{recs: piece, read: read})
		piece, read = get(), 0
		return ok
	}
	var derr, ferr error
	w.chunk, derr, ferr = w.bd.decodeEach(raw, int(j.sec.count), w.chunk, w.need, func(recs []flow.Record, _ int) error {
		for i := range recs {
			if w.keep != nil && !w.keep(&recs[i]) {
				continue
			}
			piece = append(piece, recs[i])
			if len(piece) == scanPiece && !flush() {
				return ErrStopScan
			}
		}
		return nil
	})
	switch {
	case derr != nil:
		send(scanOut{corrupt: true})
	case ferr == nil && (len(piece) > 0 || read > 0):
		send(scanOut{recs: piece, read: read})
	}
}
