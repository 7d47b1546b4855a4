// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// RotatorOptions configure a Rotator.
type RotatorOptions struct {
	// Dir is the base directory (nfcapd's -l).
	Dir string
	// Prefix of file names (default DefaultPrefix).
	Prefix string
	// Interval is the rotation interval, whole seconds (default
	// DefaultInterval).
	Interval time.Duration
	// Layout is the subdirectory hierarchy of finished files (nfcapd -S).
	Layout Layout
	// PerExporter puts each exporter's files in Dir/<exporter address>
	// ("local" for records without an exporter), like nfcapd's -n sources.
	PerExporter bool
	// Location for file names and layouts (default time.Local, as nfcapd
	// uses local time).
	Location *time.Location
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Writer options for each file; Created is set per file.
	Writer WriterOptions
	// OnClose, if set, is called from a background goroutine for each
	// finished file. Without it, failures are returned by Close.
	OnClose func(ClosedFile)
	// MaxAge and MaxBytes are retention limits (Expire) applied to Dir
	// after each finished file, like nfcapd -e with nfexpire's limits;
	// 0: no limit.
	MaxAge   time.Duration
	MaxBytes int64
	// Expiring, if set, is told of each file retention is about to
	// remove (ExpireOptions.Removing).
	Expiring func(ExpiredFile)
}

// ClosedFile reports a file the Rotator finished.
type ClosedFile struct {
	Path     string     // final path (the .current path if the rename failed)
	Slot     time.Time  // slot start
	Exporter netip.Addr // the exporter, with PerExporter
	Summary  Summary    // what the file holds
	// Requeued counts records that could not be written to this file and
	// were appended to the current one instead.
	Requeued int
	// Lost holds records that could be written neither to this file nor to
	// the current one. The caller must count them as dropped.
	Lost []flow.Record
	Err  error
	// Expired are the files retention removed after this one was
	// finished (with MaxAge or MaxBytes), ExpireErr what it could not.
	Expired   []ExpiredFile
	ExpireErr error
}

// RecoveredFile reports a .current file found at start and finished.
type RecoveredFile struct {
	Current string // the .current path found
	Path    string // where it is now
	Result  RecoverResult
	Err     error
}

// Rotator writes records to files rotated at wall-clock slot boundaries.
// It is safe for concurrent use.
//
// Rotation never stalls the caller on the old file: when a record or a
// Flush arrives in a new slot, the Rotator swaps in a new writer (creating a
// file and writing its ~30 byte header) and hands the old writer to a
// goroutine that writes its last block, summary and footer, fsyncs, renames
// it into the layout and fsyncs the directory. Records the old file could
// not take are appended to the new one (ClosedFile.Requeued).
//
// The collector calls Flush at least every second; Flush also rotates when
// the slot has ended, so files rotate on time without traffic. Slots are
// taken from the arrival clock, as nfcapd does.
type Rotator struct {
	opts      RotatorOptions
	mu        sync.Mutex
	slot      time.Time
	slotEnd   time.Time
	files     map[string]*slotFile
	wg        sync.WaitGroup
	errs      []error
	closed    bool
	recovered []RecoveredFile
	expireMu  sync.Mutex // one retention pass at a time
	zstd      *zstdShare // the writers' encoder
}

type slotFile struct {
	w        *Writer
	current  string
	dir      string
	slot     time.Time
	exporter netip.Addr
	used     bool
}

// NewRotator creates Dir if needed, finishes any .current files a previous
// run left in it (see Recovered), and opens the first file.
func NewRotator(opts RotatorOptions) (*Rotator, error) {
	if opts.Dir == "" {
		return nil, errors.New("rotator: no directory")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Interval < time.Second || opts.Interval%time.Second != 0 {
		return nil, fmt.Errorf("rotator: interval %v is not a whole number of seconds", opts.Interval)
	}
	if opts.Layout < 0 || opts.Layout >= numLayouts {
		return nil, fmt.Errorf("rotator: unknown layout %d", int(opts.Layout))
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("rotator: %w", err)
	}
	enc, err := newZstdEncoder(opts.Writer.Level)
	if err != nil {
		return nil, fmt.Errorf("rotator: %w", err)
	}
	r := &Rotator{opts: opts, files: make(map[string]*slotFile), zstd: &zstdShare{enc: enc}}
	dirs := []string{opts.Dir}
	if opts.PerExporter {
		ents, err := os.ReadDir(opts.Dir)
		if err != nil {
			return nil, fmt.Errorf("rotator: %w", err)
		}
		for _, e := range ents {
			if _, err := netip.ParseAddr(e.Name()); e.IsDir() && (err == nil || e.Name() == "local") {
				dirs = append(dirs, filepath.Join(opts.Dir, e.Name()))
			}
		}
	}
	for _, d := range dirs {
		rec, err := RecoverDir(d, opts.Prefix, opts.Interval, opts.Layout, opts.Location, opts.Writer.Aux)
		r.recovered = append(r.recovered, rec...)
		if err != nil {
			return nil, fmt.Errorf("rotator: %w", err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.setSlot(opts.Now())
	if !opts.PerExporter {
		if _, err := r.open(""); err != nil {
			return nil, fmt.Errorf("rotator: %w", err)
		}
	}
	return r, nil
}

// Recovered lists the .current files NewRotator found and finished.
func (r *Rotator) Recovered() []RecoveredFile { return r.recovered }

func (r *Rotator) setSlot(now time.Time) {
	r.slot = SlotStart(now.In(r.opts.Location), r.opts.Interval)
	r.slotEnd = r.slot.Add(r.opts.Interval)
}

func (r *Rotator) key(rec *flow.Record) (string, netip.Addr) {
	if !r.opts.PerExporter {
		return "", netip.Addr{}
	}
	if !rec.Exporter.IsValid() {
		return "local", netip.Addr{}
	}
	return rec.Exporter.String(), rec.Exporter
}

// open creates the current file for key in the current slot.
func (r *Rotator) open(key string) (*slotFile, error) { return r.openWith(key, nil) }

// openWith opens the file of key, with the block buffers of the file
// it follows when reuse is not nil.
func (r *Rotator) openWith(key string, reuse *blockState) (*slotFile, error) {
	dir := filepath.Join(r.opts.Dir, key)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open slot file: %w", err)
	}
	name := CurrentName(r.opts.Prefix, r.slot, r.opts.Interval)
	wo := r.opts.Writer
	wo.Created = r.opts.Now()
	wo.share, wo.reuse = r.zstd, reuse
	for n := 0; n < 1000; n++ {
		p := filepath.Join(dir, withSeq(name, n))
		w, err := Create(p, wo)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sf := &slotFile{w: w, current: p, dir: dir, slot: r.slot}
		if key != "" && key != "local" {
			sf.exporter, _ = netip.ParseAddr(key)
		}
		r.files[key] = sf
		return sf, nil
	}
	return nil, fmt.Errorf("open slot file %s: too many files for one slot", name)
}

// rotate retires the files of the previous slot when now is past it.
func (r *Rotator) rotate(now time.Time) {
	if now.Before(r.slotEnd) {
		return
	}
	old := r.files
	r.files = make(map[string]*slotFile)
	r.setSlot(now)
	for key, sf := range old {
		// The file's last block is written here, as a Flush would, so
		// that the next file takes over its block buffers instead of
		// growing its own while the last file closes: two files' buffers
		// at every rotation were 6 MiB of peak RSS. A failure is left to
		// the close, which retries and reports it.
		var reuse *blockState
		if sf.w.Flush() == nil {
			reuse = sf.w.detach()
		}
		r.retire(key, sf)
		if sf.used || !r.opts.PerExporter {
			// Errors surface at the next Append for this key.
			_, _ = r.openWith(key, reuse)
		}
	}
}

// retire finishes sf in the background.
func (r *Rotator) retire(key string, sf *slotFile) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.report(r.finish(key, sf, true))
	}()
}

func (r *Rotator) report(cf ClosedFile) {
	if r.opts.MaxAge > 0 || r.opts.MaxBytes > 0 {
		r.expireMu.Lock()
		cf.Expired, cf.ExpireErr = Expire(r.opts.Dir, ExpireOptions{
			MaxAge: r.opts.MaxAge, MaxBytes: r.opts.MaxBytes,
			Prefix: r.opts.Prefix, Location: r.opts.Location, Now: r.opts.Now,
			Removing: r.opts.Expiring,
		})
		r.expireMu.Unlock()
	}
	if r.opts.OnClose != nil {
		r.opts.OnClose(cf)
		return
	}
	if cf.Err != nil || len(cf.Lost) > 0 {
		r.mu.Lock()
		r.errs = append(r.errs, fmt.Errorf("%s: %d records lost: %w", cf.Path, len(cf.Lost), cf.Err))
		r.mu.Unlock()
	}
	if cf.ExpireErr != nil {
		r.mu.Lock()
		r.errs = append(r.errs, cf.ExpireErr)
		r.mu.Unlock()
	}
}

// finish closes sf's writer, renames the file into the layout, and (with
// requeue) appends what the file could not take to the current file.
func (r *Rotator) finish(key string, sf *slotFile, requeue bool) ClosedFile {
	cf := ClosedFile{Path: sf.current, Slot: sf.slot, Exporter: sf.exporter}
	var errs []error
	if err := sf.w.Close(); err != nil {
		errs = append(errs, err)
	}
	cf.Summary = sf.w.Summary()
	if p, err := finalize(sf.current, sf.dir, r.opts.Prefix, sf.slot, r.opts.Interval, r.opts.Layout); err != nil {
		errs = append(errs, err)
	} else {
		cf.Path = p
	}
	if un := sf.w.Unwritten(); len(un) > 0 {
		if requeue {
			r.mu.Lock()
			for i := range un {
				if err := r.appendLocked(key, &un[i]); err != nil {
					cf.Lost = append(cf.Lost, un[i])
				} else {
					cf.Requeued++
				}
			}
			r.mu.Unlock()
		} else {
			cf.Lost = un
		}
	}
	cf.Err = errors.Join(errs...)
	return cf
}

// finalize renames a finished current file to its place in the layout,
// never overwriting an existing file, and fsyncs the directories.
func finalize(current, dir, prefix string, slot time.Time, interval time.Duration, layout Layout) (string, error) {
	sub := filepath.Join(dir, layout.Dir(slot))
	if err := os.MkdirAll(sub, 0o755); err != nil {
		return "", fmt.Errorf("finalize %s: %w", current, err)
	}
	name := FileName(prefix, slot, interval)
	for n := 0; ; n++ {
		p := filepath.Join(sub, withSeq(name, n))
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			if err := os.Rename(current, p); err != nil {
				return "", fmt.Errorf("finalize %s: %w", current, err)
			}
			if err := syncDir(sub); err != nil {
				return p, fmt.Errorf("finalize %s: %w", p, err)
			}
			if sub != dir {
				if err := syncDir(dir); err != nil {
					return p, fmt.Errorf("finalize %s: %w", p, err)
				}
			}
			return p, nil
		} else if err != nil {
			return "", fmt.Errorf("finalize %s: %w", current, err)
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Append writes rec to the file of the current slot (and exporter). Errors
// follow Writer.Append: an error wrapping ErrRejected means the record was
// not stored.
func (r *Rotator) Append(rec *flow.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("append: %w: %w", ErrRejected, ErrClosed)
	}
	r.rotate(r.opts.Now())
	key, _ := r.key(rec)
	return r.appendLocked(key, rec)
}

// AppendAll appends recs as Append appends each, under one lock and one
// clock reading (the collector stores a decoded message's records at
// once). It calls fail, if not nil, for each record not stored (Append's
// error wraps ErrRejected), and returns the number of records stored. A
// failed block write (a full disk) leaves the record held and retried, as
// with Append: it is stored, and the failure shows in the next Flush.
func (r *Rotator) AppendAll(recs []flow.Record, fail func(i int, err error)) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		for i := range recs {
			if fail != nil {
				fail(i, fmt.Errorf("append: %w: %w", ErrRejected, ErrClosed))
			}
		}
		return 0
	}
	r.rotate(r.opts.Now())
	ok := 0
	var (
		lastExp netip.Addr
		lastKey string
		haveKey bool
		sf      *slotFile // lastKey's file, once known
	)
	for i := range recs {
		rec := &recs[i]
		if !haveKey || rec.Exporter != lastExp {
			lastKey, _ = r.key(rec)
			lastExp, haveKey, sf = rec.Exporter, true, nil
		}
		var err error
		if sf, err = r.appendTo(lastKey, sf, rec); errors.Is(err, ErrRejected) {
			if fail != nil {
				fail(i, err)
			}
			continue
		}
		ok++
	}
	return ok
}

func (r *Rotator) appendLocked(key string, rec *flow.Record) error {
	_, err := r.appendTo(key, nil, rec)
	return err
}

// appendTo appends rec to the current file of key, sf if not nil (what
// the last call returned for key, under the same lock: AppendAll spares
// a map lookup a record), and returns that file (nil if rec was
// rejected).
func (r *Rotator) appendTo(key string, sf *slotFile, rec *flow.Record) (*slotFile, error) {
	if sf == nil {
		if sf = r.files[key]; sf == nil {
			var err error
			if sf, err = r.open(key); err != nil {
				return nil, fmt.Errorf("append: %w: %w", ErrRejected, err)
			}
		}
		sf.used = true
	}
	err := sf.w.Append(rec)
	if errors.Is(err, ErrBroken) {
		// Replace the broken file; its held records are requeued.
		delete(r.files, key)
		r.retire(key, sf)
		if sf, err = r.open(key); err != nil {
			return nil, fmt.Errorf("append: %w: %w", ErrRejected, err)
		}
		sf.used = true
		err = sf.w.Append(rec)
	}
	return sf, err
}

// SequenceFailures records n sequence failures of an exporter in the
// current file.
func (r *Rotator) SequenceFailures(exporter netip.Addr, domain uint32, n uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	key, _ := r.key(&flow.Record{Exporter: exporter})
	sf := r.files[key]
	if sf == nil {
		var err error
		if sf, err = r.open(key); err != nil {
			return
		}
	}
	sf.w.SequenceFailures(exporter, domain, n)
}

// Report merges what an exporter said about itself (options records)
// into the current file of its records.
func (r *Rotator) Report(u *ExporterReport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	key, _ := r.key(&flow.Record{Exporter: u.Addr})
	sf := r.files[key]
	if sf == nil {
		var err error
		if sf, err = r.open(key); err != nil {
			return
		}
	}
	_ = sf.w.Report(u) // a report that cannot be encoded is left out
}

// Flush rotates if the slot has ended and flushes every current file.
func (r *Rotator) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("flush: %w", ErrClosed)
	}
	r.rotate(r.opts.Now())
	var errs []error
	for key, sf := range r.files {
		err := sf.w.Flush()
		if errors.Is(err, ErrBroken) {
			delete(r.files, key)
			r.retire(key, sf)
			_, _ = r.open(key)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close waits for background rotations, then finishes the current files.
// Records that could not be stored are reported through OnClose (Lost), or
// in Close's error when OnClose is nil.
func (r *Rotator) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return fmt.Errorf("close: %w", ErrClosed)
	}
	r.closed = true
	r.mu.Unlock()
	r.wg.Wait() // background finishes may still requeue into r.files

	r.mu.Lock()
	files := r.files
	r.files = nil
	r.mu.Unlock()
	for key, sf := range files {
		r.report(r.finish(key, sf, false))
	}
	r.zstd.mu.Lock()
	r.zstd.enc.Close()
	r.zstd.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	return errors.Join(r.errs...)
}

// RecoverDir finishes every .current file with the given prefix directly
// in dir (Recover) and renames it into the layout as a rotation would have.
// aux rebuilds the auxiliary sections (WriterOptions.Aux; nil for none).
func RecoverDir(dir, prefix string, interval time.Duration, layout Layout, loc *time.Location, aux func() []AuxBuilder) ([]RecoveredFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("recover dir: %w", err)
	}
	var out []RecoveredFile
	for _, e := range ents {
		n, ok := ParseName(prefix, e.Name(), loc)
		if !ok || !n.Current || !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		rf := RecoveredFile{Current: p, Path: p}
		rf.Result, rf.Err = RecoverWith(p, aux)
		if rf.Err == nil {
			if fp, err := finalize(p, dir, prefix, n.Slot, interval, layout); err != nil {
				rf.Err = err
			} else {
				rf.Path = fp
			}
		}
		out = append(out, rf)
	}
	return out, nil
}
