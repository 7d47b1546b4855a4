// SPDX-License-Identifier: Apache-2.0

package server

import (
	"errors"
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

// reportSink is a RecordSink that keeps what exporters say about
// themselves in options records (FileSink: in the flow files).
type reportSink interface {
	Report(u *flowfile.ExporterReport)
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
	LostPackets  uint64    // the packets those records counted
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

// FileEvent reports a finished file (with what retention removed after
// it, in ClosedFile.Expired).
type FileEvent struct {
	flowfile.ClosedFile
	Size int64
	// Dir and Ident are the top directory and the ident of the files the
	// file belongs to: the sink's, or a Source's.
	Dir   string
	Ident string
}

// NamedSource names an exporter and gives its records their own directory
// and ident, like nfcapd's -n IDENT,IP,DIR.
type NamedSource struct {
	Ident    string
	Exporter netip.Addr
	Dir      string
}

// ErrUnknownExporter: a record from an exporter no Source names, when the
// sink has no directory of its own for the others.
var ErrUnknownExporter = errors.New("exporter not configured as a source")

// FileSinkOptions configure a FileSink.
type FileSinkOptions struct {
	// Rotator configures the files of every exporter no Source names. With
	// Sources, Dir may be empty: those records are then refused
	// (ErrUnknownExporter, counted as store errors).
	Rotator flowfile.RotatorOptions
	// Sources get their own files, rotated like the others (same
	// interval, layout, prefix and retention) in their own directory,
	// with their ident in each file's header.
	Sources []NamedSource
	// MaxAge and MaxBytes are the retention limits, applied to each
	// directory after each rotation (0: no limit).
	MaxAge   time.Duration
	MaxBytes int64
	// OnFile, if set, is called from a background goroutine for every
	// finished file (the caller logs it).
	OnFile func(FileEvent)
	// Expiring, if set, is called with each file retention is about to
	// remove, while it still exists.
	Expiring func(flowfile.ExpiredFile)
}

// FileSink stores records in rotated flow files, one set per source
// directory, and applies retention at each rotation.
type FileSink struct {
	opts      FileSinkOptions
	main      *flowfile.Rotator // nil: only Sources
	sources   map[netip.Addr]*flowfile.Rotator
	all       []*flowfile.Rotator
	recovered []flowfile.RecoveredFile
	mu        sync.Mutex
	stats     FileStats
}

// NewFileSink opens the rotators (finishing files a crashed run left).
func NewFileSink(opts FileSinkOptions) (*FileSink, error) {
	s := &FileSink{opts: opts, sources: map[netip.Addr]*flowfile.Rotator{}}
	open := func(ro flowfile.RotatorOptions, ident string) (*flowfile.Rotator, error) {
		ro.MaxAge, ro.MaxBytes = opts.MaxAge, opts.MaxBytes
		ro.Expiring = opts.Expiring
		ro.Writer.Ident = ident
		dir := ro.Dir
		ro.OnClose = func(cf flowfile.ClosedFile) { s.closed(cf, dir, ident) }
		if ro.Writer.Aux == nil {
			ro.Writer.Aux = query.NewRollupBuilders // what long-range series read
		}
		r, err := flowfile.NewRotator(ro)
		if err != nil {
			s.closeAll()
			return nil, fmt.Errorf("file sink: %w", err)
		}
		s.all = append(s.all, r)
		s.recovered = append(s.recovered, r.Recovered()...)
		return r, nil
	}
	if opts.Rotator.Dir != "" {
		r, err := open(opts.Rotator, opts.Rotator.Writer.Ident)
		if err != nil {
			return nil, err
		}
		s.main = r
	} else if len(opts.Sources) == 0 {
		return nil, errors.New("file sink: no directory")
	}
	for _, src := range opts.Sources {
		a := src.Exporter.Unmap()
		if _, dup := s.sources[a]; dup {
			s.closeAll()
			return nil, fmt.Errorf("file sink: exporter %s named twice", a)
		}
		ro := opts.Rotator
		ro.Dir, ro.PerExporter = src.Dir, false
		r, err := open(ro, src.Ident)
		if err != nil {
			return nil, err
		}
		s.sources[a] = r
	}
	s.stats.Recovered = len(s.recovered)
	return s, nil
}

func (s *FileSink) closeAll() {
	for _, r := range s.all {
		_ = r.Close()
	}
}

// Recovered lists the .current files a previous run left and the sink
// finished at start.
func (s *FileSink) Recovered() []flowfile.RecoveredFile { return s.recovered }

// rotator returns the rotator of an exporter's records, nil if none.
func (s *FileSink) rotator(exporter netip.Addr) *flowfile.Rotator {
	if r, ok := s.sources[exporter.Unmap()]; ok {
		return r
	}
	return s.main
}

func unknownExporter(a netip.Addr) error {
	return fmt.Errorf("append: %w: %w %s", flowfile.ErrRejected, ErrUnknownExporter, a)
}

// Append stores one record in its exporter's files.
func (s *FileSink) Append(r *flow.Record) error {
	rot := s.rotator(r.Exporter)
	if rot == nil {
		return unknownExporter(r.Exporter)
	}
	return rot.Append(r)
}

// AppendAll stores recs, each run of one exporter's records at once.
func (s *FileSink) AppendAll(recs []flow.Record, fail func(i int, err error)) int {
	if len(s.sources) == 0 {
		return s.main.AppendAll(recs, fail)
	}
	n := 0
	for i := 0; i < len(recs); {
		j := i + 1
		for j < len(recs) && recs[j].Exporter == recs[i].Exporter {
			j++
		}
		rot := s.rotator(recs[i].Exporter)
		if rot == nil {
			for k := i; k < j; k++ {
				if fail != nil {
					fail(k, unknownExporter(recs[i].Exporter))
				}
			}
		} else {
			base := i
			n += rot.AppendAll(recs[i:j], func(k int, err error) {
				if fail != nil {
					fail(base+k, err)
				}
			})
		}
		i = j
	}
	return n
}

// SequenceFailures records sequence failures in the exporter's file.
func (s *FileSink) SequenceFailures(exporter netip.Addr, domain uint32, n uint64) {
	if rot := s.rotator(exporter); rot != nil {
		rot.SequenceFailures(exporter, domain, n)
	}
}

// Report keeps what an exporter said about itself in the exporter's
// current file.
func (s *FileSink) Report(u *flowfile.ExporterReport) {
	if rot := s.rotator(u.Addr); rot != nil {
		rot.Report(u)
	}
}

// Flush rotates and flushes every directory's current files.
func (s *FileSink) Flush() error {
	var errs []error
	for _, r := range s.all {
		errs = append(errs, r.Flush())
	}
	return errors.Join(errs...)
}

// Close finishes every current file.
func (s *FileSink) Close() error {
	var errs []error
	for _, r := range s.all {
		errs = append(errs, r.Close())
	}
	return errors.Join(errs...)
}

func (s *FileSink) closed(cf flowfile.ClosedFile, dir, ident string) {
	ev := FileEvent{ClosedFile: cf, Dir: dir, Ident: ident}
	if st, err := os.Stat(cf.Path); err == nil {
		ev.Size = st.Size()
	}
	now := time.Now()
	s.mu.Lock()
	st := &s.stats
	st.Files++
	st.Bytes += uint64(ev.Size)
	st.Records += cf.Summary.Total.Flows
	st.LostRecords += uint64(len(cf.Lost))
	for i := range cf.Lost {
		st.LostPackets += cf.Lost[i].Packets
	}
	if cf.Err != nil {
		st.FileErrors++
	}
	st.Expired += uint64(len(cf.Expired))
	for _, e := range cf.Expired {
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
