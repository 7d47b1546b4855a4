// SPDX-License-Identifier: Apache-2.0

package server

import (
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/collector/query"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// RecordSink is where decoded records go: the flow files in the collector
// (FileSink, a flowfile.Rotator), a fake in tests. It must be safe for
// concurrent use: the decode workers append while the server's flush
// ticker flushes.
type RecordSink interface {
	// Append stores one record; the sink copies what it keeps.
	Append(r *flow.Record) error
	// SequenceFailures records n sequence number discontinuities of an
	// exporter's observation domain.
	SequenceFailures(exporter netip.Addr, domain uint32, n uint64)
	// Flush makes what was appended durable enough to survive a crash of
	// the process (and rotates files whose slot ended).
	Flush() error
}

// batchSink is a RecordSink that also stores many records at once, as
// the Rotator does (one lock and one clock reading per message).
type batchSink interface {
	// AppendAll stores recs, calling fail for each record Append would
	// have refused, and returns how many it stored.
	AppendAll(recs []flow.Record, fail func(i int, err error)) int
}

// FileStats are what a FileSink wrote.
type FileStats struct {
	Files        uint64    // files finished
	Bytes        uint64    // size of the files finished
	Records      uint64    // flows in the files finished
	LostRecords  uint64    // records no file could take
	FileErrors   uint64    // files finished with an error
	Expired      uint64    // files removed by retention
	ExpiredBytes uint64    // their size
	LastRotation time.Time // when the last file was finished
	// RotationLag is how long after its slot ended the last file was
	// finished: the background close, fsync and rename, plus the wait for
	// the next record or flush tick.
	RotationLag time.Duration
	Recovered   int // .current files a previous run left, finished at start
}

// FileEvent reports a finished file and what retention removed after it.
type FileEvent struct {
	flowfile.ClosedFile
	Size      int64
	Expired   []flowfile.ExpiredFile
	ExpireErr error
}

// FileSinkOptions configure a FileSink.
type FileSinkOptions struct {
	Rotator flowfile.RotatorOptions
	// MaxAge and MaxBytes are the retention limits, checked after each
	// rotation (0: no limit).
	MaxAge   time.Duration
	MaxBytes int64
	// OnFile, if set, is called from a background goroutine for every
	// finished file (the caller logs it).
	OnFile func(FileEvent)
}

// FileSink stores records in rotated flow files and applies retention at
// each rotation.
type FileSink struct {
	*flowfile.Rotator
	opts     FileSinkOptions
	mu       sync.Mutex
	stats    FileStats
	expireMu sync.Mutex
}

// NewFileSink opens the rotator (finishing files a crashed run left).
func NewFileSink(opts FileSinkOptions) (*FileSink, error) {
	s := &FileSink{opts: opts}
	ro := opts.Rotator
	ro.OnClose = s.closed
	if ro.Writer.Aux == nil {
		ro.Writer.Aux = query.NewRollupBuilders
	}
	r, err := flowfile.NewRotator(ro)
	if err != nil {
		return nil, fmt.Errorf("file sink: %w", err)
	}
	s.Rotator = r
	s.stats.Recovered = len(r.Recovered())
	return s, nil
}

func (s *FileSink) closed(cf flowfile.ClosedFile) {
	ev := FileEvent{ClosedFile: cf}
	if st, err := os.Stat(cf.Path); err == nil {
		ev.Size = st.Size()
	}
	now := time.Now()
	if s.opts.MaxAge > 0 || s.opts.MaxBytes > 0 {
		s.expireMu.Lock()
		ev.Expired, ev.ExpireErr = flowfile.Expire(s.opts.Rotator.Dir, flowfile.ExpireOptions{
			MaxAge: s.opts.MaxAge, MaxBytes: s.opts.MaxBytes,
			Prefix: s.opts.Rotator.Prefix, Location: s.opts.Rotator.Location, Now: s.opts.Rotator.Now,
		})
		s.expireMu.Unlock()
	}
	s.mu.Lock()
	st := &s.stats
	st.Files++
	st.Bytes += uint64(ev.Size)
	st.Records += cf.Summary.Total.Flows
	st.LostRecords += uint64(len(cf.Lost))
	if cf.Err != nil {
		st.FileErrors++
	}
	st.Expired += uint64(len(ev.Expired))
	for _, e := range ev.Expired {
		st.ExpiredBytes += uint64(e.Size)
	}
	st.LastRotation = now
	interval := s.opts.Rotator.Interval
	if interval == 0 {
		interval = flowfile.DefaultInterval
	}
	if end := cf.Slot.Add(interval); now.After(end) {
		st.RotationLag = now.Sub(end)
	} else {
		st.RotationLag = 0 // closed early: shutdown
	}
	s.mu.Unlock()
	if s.opts.OnFile != nil {
		s.opts.OnFile(ev)
	}
}

// Stats returns a snapshot of what the sink wrote.
func (s *FileSink) Stats() FileStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}
