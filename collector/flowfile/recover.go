// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"errors"
	"fmt"
	"os"

	"github.com/klauspost/compress/zstd"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// RecoverResult describes what Recover did.
type RecoverResult struct {
	// End is how the file had ended before Recover.
	End End
	// AlreadyClean is true when the file was closed cleanly and Recover
	// left it untouched.
	AlreadyClean bool
	// Cut is the number of bytes removed from the end: a partial block, or
	// corrupt blocks after the last readable one.
	Cut int64
	// Summary is the summary now in the file.
	Summary Summary
}

// Recover finishes a flow file left unfinished by a crash (a ".current"
// file): it cuts everything after the last readable block, then writes the
// summary computed from the readable blocks and the footer, and fsyncs.
// Corrupt blocks before the last readable one stay in place (readers report
// and skip them) and do not count in the summary. Sequence failures counted
// by the crashed writer are lost: they lived only in its memory. A file that
// ends inside its header is rewritten as an empty flow file. A file that is
// already clean is left untouched.
func Recover(path string) (RecoverResult, error) { return RecoverWith(path, nil) }

// RecoverWith is Recover that also rebuilds the auxiliary sections aux
// builds (WriterOptions.Aux) from the readable blocks. Sections a writer
// stored with SetAux are lost with the crash, like sequence failures.
func RecoverWith(path string, aux func() []AuxBuilder) (RecoverResult, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return RecoverResult{}, fmt.Errorf("recover: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return RecoverResult{}, fmt.Errorf("recover %s: %w", path, err)
	}
	r, err := NewReader(f, st.Size(), ReaderOptions{SkipCorrupt: true})
	if errors.Is(err, ErrTruncated) {
		return recoverHeader(f, path, st)
	}
	if err != nil {
		return RecoverResult{}, fmt.Errorf("recover %s: %w", path, err)
	}
	defer r.Close()
	z := NewSummarizer()
	var builders []AuxBuilder
	if aux != nil && r.header.Version >= 2 {
		builders = aux()
	}
	batch := make([]flow.Record, 0, 1024)
	feed := func() {
		for _, a := range builders {
			a.Add(batch)
		}
		batch = batch[:0]
	}
	for r.Next() {
		z.Add(r.Record())
		if builders != nil {
			batch = append(batch, *r.Record())
			if len(batch) == cap(batch) {
				feed()
			}
		}
	}
	feed()
	if err := r.Err(); err != nil {
		return RecoverResult{}, fmt.Errorf("recover %s: %w", path, err)
	}
	end := r.End()
	res := RecoverResult{End: end}
	if end.Kind == EndClean {
		res.AlreadyClean = true
		res.Summary, _ = r.Summary()
		return res, nil
	}
	z.s.Blocks = uint64(r.good)
	res.Summary = z.Summary()
	cut := r.lastGoodEnd
	res.Cut = st.Size() - cut
	if err := finishAt(f, cut, res.Summary, r.header.Version, builders); err != nil {
		return res, fmt.Errorf("recover %s: %w", path, err)
	}
	return res, nil
}

// finishAt truncates f at off and writes the auxiliary sections of aux,
// the summary and the footer there.
func finishAt(f *os.File, off int64, s Summary, version uint16, aux []AuxBuilder) error {
	if err := f.Truncate(off); err != nil {
		return err
	}
	var b []byte
	var refs []auxRef
	if len(aux) > 0 {
		w := &Writer{aux: aux}
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
		if err != nil {
			return fmt.Errorf("zstd encoder: %w", err)
		}
		w.enc = enc
		b, refs, err = w.closingAux(off)
		enc.Close()
		if err != nil {
			return err
		}
	}
	b = appendClosing(b, off+int64(len(b)), s, version, refs)
	if _, err := f.WriteAt(b, off); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	return nil
}

// recoverHeader rewrites a file that ends inside its header as an empty
// flow file, when what is there is a prefix of a header.
func recoverHeader(f *os.File, path string, st os.FileInfo) (RecoverResult, error) {
	b := make([]byte, min(st.Size(), int64(len(fileMagic))))
	if _, err := f.ReadAt(b, 0); err != nil {
		return RecoverResult{}, fmt.Errorf("recover %s: %w", path, err)
	}
	if string(b) != fileMagic[:len(b)] {
		return RecoverResult{}, fmt.Errorf("recover %s: %w", path, ErrNotFlowFile)
	}
	hdr := appendHeader(nil, Header{Version: Version, Created: st.ModTime()})
	if err := f.Truncate(0); err != nil {
		return RecoverResult{}, fmt.Errorf("recover %s: %w", path, err)
	}
	if _, err := f.WriteAt(hdr, 0); err != nil {
		return RecoverResult{}, fmt.Errorf("recover %s: write header: %w", path, err)
	}
	res := RecoverResult{End: End{Kind: EndTruncated, Trailing: st.Size()}, Cut: st.Size()}
	if err := finishAt(f, int64(len(hdr)), Summary{}, Version, nil); err != nil {
		return res, fmt.Errorf("recover %s: %w", path, err)
	}
	return res, nil
}
