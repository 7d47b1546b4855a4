// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// ScanEach is Scan for work that does not depend on the order of the
// records (counting, statistics): each worker decodes a block and calls fn
// with it itself, so fn runs on several goroutines at once, with the index
// of the calling worker (0 ≤ worker < ScanWorkers(opts)). The records and
// the accounting are Scan's; only the order of the calls differs. If fn
// returns ErrStopScan the scan ends and ScanEach returns nil; another error
// ends it and is returned.
func ScanEach(path string, opts ScanOptions, fn func(worker int, recs []flow.Record) error) (ScanResult, error) {
	r, err := Open(path, ReaderOptions{SkipCorrupt: true})
	if err != nil {
		return ScanResult{}, fmt.Errorf("scan flow file: %w", err)
	}
	defer r.Close()
	secs, end, ok, err := r.sections()
	if err != nil {
		return ScanResult{}, fmt.Errorf("scan %s: %w", path, err)
	}
	if !ok {
		return scanWithReader(r, opts.fields(), nil, func(recs []flow.Record) error { return fn(0, recs) })
	}
	res := ScanResult{Blocks: len(secs), End: end, Summary: r.summary}
	workers := min(ScanWorkers(opts), max(1, len(secs)))
	var (
		next, corrupt atomic.Int64
		records       atomic.Uint64
		stop          atomic.Bool
		mu            sync.Mutex
		first         error
	)
	work := func(id int) {
		w := scanWorker{ra: r.ra, need: opts.fields()}
		defer w.close()
		var buf []flow.Record
		for !stop.Load() {
			i := int(next.Add(1) - 1)
			if i >= len(secs) {
				return
			}
			o := w.decode(secs[i], buf)
			buf = o.recs[:0]
			err := o.err
			switch {
			case err != nil:
			case o.corrupt:
				corrupt.Add(1)
				continue
			default:
				records.Add(uint64(len(o.recs)))
				err = fn(id, o.recs)
			}
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
				stop.Store(true)
				return
			}
		}
	}
	if workers == 1 {
		work(0)
	} else {
		var wg sync.WaitGroup
		for id := range workers {
			wg.Go(func() { work(id) })
		}
		wg.Wait()
	}
	res.Corrupt, res.Records = int(corrupt.Load()), records.Load()
	if first != nil && !errors.Is(first, ErrStopScan) {
		return res, fmt.Errorf("scan %s: %w", path, first)
	}
	return res, nil
}

// ScanWorkers is the number of workers a scan with opts uses at most.
func ScanWorkers(opts ScanOptions) int {
	if opts.Workers > 0 {
		return opts.Workers
	}
	return runtime.GOMAXPROCS(0)
}
