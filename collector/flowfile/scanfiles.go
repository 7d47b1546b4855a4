// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// ScanFilesEach is ScanEach over several files: one set of workers decodes
// the blocks of all of them, so that a directory of small files (a
// collector writes one every five minutes) keeps every worker busy, and a
// worker's decompressor and buffers serve every file. fn is called as in
// ScanEach, with the records of a block in pieces of a few hundred (see
// ScanFilesBlocks); done is called once per file, from any goroutine but never two
// at a time, with the file's index in paths and what was read (err set
// when the file could not be opened or read). The first error of fn or of
// a file ends the scan and is returned (ErrStopScan ends it without
// error).
func ScanFilesEach(ctx context.Context, paths []string, opts ScanOptions, fn func(worker int, recs []flow.Record) error,
	done func(i int, res ScanResult, err error)) error {
	opts.AddrIndexes = false
	return ScanFilesBlocks(ctx, paths, opts, func(worker int, b *Block) error { return fn(worker, b.Records) }, done)
}

// ScanFilesBlocks is ScanFilesEach handing over blocks in pieces of a few
// hundred records (Block), each decoded just before fn gets it, so that
// it is still in the CPU's cache; with opts.AddrIndexes the address
// dictionary and indexes come along. A corrupt block is found before any
// of its pieces is handed over.
func ScanFilesBlocks(ctx context.Context, paths []string, opts ScanOptions, fn func(worker int, b *Block) error,
	done func(i int, res ScanResult, err error)) error {
	workers := ScanWorkers(opts)
	need := opts.fields()
	if need&^ColumnFields != 0 {
		opts.Columns = false // records, which every consumer takes
	}
	type file struct {
		i       int
		r       *Reader
		res     ScanResult
		whole   bool // read through the Reader (damaged section headers)
		pending atomic.Int64
		corrupt atomic.Int64
		records atomic.Uint64
	}
	type job struct {
		f   *file
		sec scanSection
	}
	var (
		dicts   atomic.Uint64 // Block.Dict
		stop    atomic.Bool
		mu      sync.Mutex
		first   error
		doneMu  sync.Mutex
		jobs    = make(chan job, 4*workers)
		slots   = make(chan struct{}, 2*workers+2) // files open at once
		stopped = make(chan struct{})
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
			close(stopped)
		}
		mu.Unlock()
		stop.Store(true)
	}
	finish := func(f *file, err error) {
		if f.r != nil {
			f.r.Close()
		}
		if !f.whole {
			f.res.Corrupt, f.res.Records = int(f.corrupt.Load()), f.records.Load()
		}
		doneMu.Lock()
		done(f.i, f.res, err)
		doneMu.Unlock()
		<-slots
		if err != nil {
			fail(err)
		}
	}
	var wg sync.WaitGroup
	for id := range workers {
		wg.Go(func() {
			w := scanWorker{need: need}
			w.bd.indexes = opts.AddrIndexes
			w.bd.columns = opts.Columns
			defer w.close()
			var blk Block
			var dict uint64
			var buf []flow.Record
			for j := range jobs {
				f := j.f
				if err := ctx.Err(); err != nil {
					fail(err)
				}
				switch {
				case stop.Load():
					// Drain: the file is finished when its last job is.
				case f.whole:
					var ferr error
					res, err := scanWithReader(f.r, need, nil, func(recs []flow.Record) error {
						blk = Block{Records: recs}
						if ferr = fn(id, &blk); ferr != nil {
							return ferr
						}
						return nil
					})
					res.Summary = f.r.summary
					f.res = res
					switch {
					case ferr != nil:
						fail(ferr)
					case err != nil:
						fail(fmt.Errorf("scan %s: %w", paths[f.i], err))
					}
				default:
					w.ra = f.r.ra
					raw, corrupt, err := w.inflate(j.sec)
					if err == nil && !corrupt {
						dict = dicts.Add(1)
						var bad, ferr error
						buf, bad, ferr = w.bd.decodeEach(raw, int(j.sec.count), buf, need, func(recs []flow.Record, lo int) error {
							blk = w.piece(recs, lo, dict)
							return fn(id, &blk)
						})
						corrupt = bad != nil
						if !corrupt {
							f.records.Add(uint64(j.sec.count))
						}
						if ferr != nil {
							fail(ferr)
						}
					}
					switch {
					case err != nil:
						fail(fmt.Errorf("scan %s: %w", paths[f.i], err))
					case corrupt:
						f.corrupt.Add(1)
					}
				}
				if f.whole || f.pending.Add(-1) == 0 {
					finish(f, nil)
				}
			}
		})
	}
	// The producer opens the files in order, a bounded number at once, and
	// queues their blocks.
	for i, p := range paths {
		if stop.Load() {
			break
		}
		if err := ctx.Err(); err != nil {
			fail(err)
			break
		}
		select {
		case slots <- struct{}{}:
		case <-stopped:
		}
		if stop.Load() {
			break
		}
		f := &file{i: i}
		r, err := Open(p, ReaderOptions{SkipCorrupt: true})
		if err != nil {
			finish(f, fmt.Errorf("scan flow file: %w", err))
			break
		}
		f.r = r
		secs, end, ok, err := r.sections()
		if err != nil {
			finish(f, fmt.Errorf("scan %s: %w", p, err))
			break
		}
		if !ok {
			f.whole = true
			jobs <- job{f: f}
			continue
		}
		f.res = ScanResult{Blocks: len(secs), End: end, Summary: r.summary}
		if len(secs) == 0 {
			finish(f, nil)
			continue
		}
		f.pending.Store(int64(len(secs)))
		for _, s := range secs {
			jobs <- job{f: f, sec: s}
		}
	}
	close(jobs)
	wg.Wait()
	if first != nil && !errors.Is(first, ErrStopScan) {
		return first
	}
	return nil
}
