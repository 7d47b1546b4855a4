// SPDX-License-Identifier: Apache-2.0

package nfdump

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// ErrStopScan, returned by a Scan callback, ends the scan without error.
// It is flowfile.ErrStopScan, so one callback serves both scanners.
var ErrStopScan = flowfile.ErrStopScan

// ScanOptions configure Scan.
type ScanOptions struct {
	// Workers is the number of goroutines decompressing blocks (default
	// GOMAXPROCS). Records are decoded and handed over in file order on
	// the calling goroutine.
	Workers int
}

// ScanResult says what Scan (or a Reader) read.
type ScanResult struct {
	Header        Header
	Blocks        int    // data blocks read
	SkippedBlocks int    // of them, blocks of a type that holds no flows
	Records       uint64 // flow records delivered
	// Skipped, never fatal: records of a type this reader does not know
	// (or V3 records without a flow element), V3 elements of an unknown
	// type (the record is kept without them), and layout 1 records whose
	// extension map is missing or names an extension this reader does
	// not know (the record is skipped).
	UnknownRecords    uint64
	UnknownElements   uint64
	UnknownExtensions uint64
	// Truncated: a file nfcapd had not closed (nfcapd.current.*, or left by
	// a crash) ends inside a block; what came before was read.
	Truncated bool
	// Exporters are the exporters the file names.
	Exporters []Exporter
}

// Scan reads the nfdump file at path and calls fn with the flows of each
// data block that has any, in file order, on the calling goroutine. The
// slice is only valid during the call. If fn returns ErrStopScan the scan
// ends and Scan returns nil; another error ends it and is returned. A
// damaged file is an *Error after the records before the damage were
// delivered.
func Scan(path string, opts ScanOptions, fn func(recs []flow.Record) error) (ScanResult, error) {
	r, err := Open(path)
	if err != nil {
		return ScanResult{}, err
	}
	defer r.Close()
	return scanReader(r, opts, fn)
}

func scanReader(r *Reader, opts ScanOptions, fn func([]flow.Record) error) (ScanResult, error) {
	var err error
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if r.hdr.Compression == Uncompressed || workers == 1 {
		err = scanSerial(r, fn)
	} else {
		err = scanParallel(r, workers, fn)
	}
	if errors.Is(err, ErrStopScan) {
		err = nil
	}
	return r.Result(), err
}

func scanSerial(r *Reader, fn func([]flow.Record) error) error {
	var recs []flow.Record
	for {
		var err error
		recs, err = r.Next(recs[:0])
		if len(recs) > 0 {
			if ferr := fn(recs); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

type inflateJob struct {
	off     int64
	bh      blockHeader
	payload []byte
	out     chan inflated
}

type inflated struct {
	job  inflateJob
	data []byte
	err  error
}

// scanParallel reads blocks on one goroutine, decompresses them on
// workers, and decodes and delivers them in order on the caller's.
func scanParallel(r *Reader, workers int, fn func([]flow.Record) error) error {
	comp := r.hdr.Compression
	jobs := make(chan inflateJob, workers)
	order := make(chan chan inflated, 2*workers)
	payloads := make(chan []byte, 2*workers+2)
	outs := make(chan []byte, 2*workers+2)
	done := make(chan struct{})
	var readErr error
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var z inflater
			defer z.close()
			for j := range jobs {
				// The output must outlive the next call: each job takes
				// a buffer from the pool the deliverer returns them to.
				select {
				case z.buf = <-outs:
				default:
					z.buf = nil
				}
				data, err := z.inflate(comp, j.payload)
				if err != nil {
					err = fmt.Errorf("%w: %v", ErrCorrupt, err)
				}
				j.out <- inflated{job: j, data: data, err: err}
			}
		}()
	}
	go func() {
		defer close(order)
		defer close(jobs)
		for {
			var buf []byte
			select {
			case buf = <-payloads:
			default:
			}
			off, bh, payload, err := r.nextRaw(buf)
			if err != nil {
				if err != io.EOF {
					readErr = err
				}
				return
			}
			out := make(chan inflated, 1)
			select {
			case order <- out:
			case <-done:
				return
			}
			select {
			case jobs <- inflateJob{off: off, bh: bh, payload: payload, out: out}:
			case <-done:
				return
			}
		}
	}()
	var recs []flow.Record
	var err error
	for out := range order {
		o := <-out
		if err == nil {
			if o.err != nil {
				err = r.fail(o.job.off, o.err)
			} else {
				recs, err = r.decodeBlock(o.job.off, o.job.bh, o.data, recs[:0])
				if len(recs) > 0 {
					if ferr := fn(recs); ferr != nil {
						err = ferr
					}
				}
			}
		}
		select {
		case payloads <- o.job.payload[:0]:
		default:
		}
		select {
		case outs <- o.data[:0]:
		default:
		}
		if err != nil {
			break
		}
	}
	close(done)
	for range order {
	}
	wg.Wait()
	if err != nil {
		return err
	}
	if readErr != nil {
		return readErr
	}
	if err := r.end(); err != io.EOF {
		return err
	}
	return nil
}
