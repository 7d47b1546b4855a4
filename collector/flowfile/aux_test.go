// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// countAux is an auxiliary section listing the packets of every record.
type countAux struct{ b []byte }

func (c *countAux) Name() string   { return "test/packets" }
func (c *countAux) Fields() Fields { return FieldPackets }
func (c *countAux) Add(recs []flow.Record) {
	for i := range recs {
		c.b = binary.AppendUvarint(c.b, recs[i].Packets)
	}
}
func (c *countAux) Payload() []byte { return c.b }

func auxRecords(n int) []flow.Record {
	recs := make([]flow.Record, n)
	t0 := time.Date(2025, 3, 14, 9, 25, 0, 0, time.UTC)
	for i := range recs {
		recs[i] = flow.Record{Src: netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), Dst: netip.MustParseAddr("198.19.0.1"),
			Proto: flow.ProtoUDP, SrcPort: uint16(i), DstPort: 53, Packets: uint64(i%7 + 1), Octets: 100, Start: t0, End: t0.Add(time.Second)}
	}
	return recs
}

func packetsPayload(recs []flow.Record) []byte {
	var c countAux
	c.Add(recs)
	return c.b
}

func TestAuxSections(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kflow.202503140925")
	recs := auxRecords(1000)
	w, err := Create(path, WriterOptions{BlockRecords: 64, Aux: func() []AuxBuilder { return []AuxBuilder{&countAux{}} }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if err := w.Append(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	static := bytes.Repeat([]byte("interface names "), 100)
	w.SetAux("test/static", static)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.AuxNames(); !slices.Equal(got, []string{"test/packets", "test/static"}) {
		t.Errorf("aux names %v", got)
	}
	for name, want := range map[string][]byte{"test/packets": packetsPayload(recs), "test/static": static} {
		got, ok, err := r.Aux(name)
		if err != nil || !ok || !bytes.Equal(got, want) {
			t.Errorf("Aux(%s): %d bytes, ok %v, %v", name, len(got), ok, err)
		}
	}
	if _, ok, err := r.Aux("absent"); ok || err != nil {
		t.Errorf("Aux(absent): %v %v", ok, err)
	}
	// Sequential reading and scans skip the sections.
	n := 0
	for r.Next() {
		n++
	}
	if n != len(recs) || r.Err() != nil || r.End().Kind != EndClean || len(r.Corrupt()) != 0 {
		t.Errorf("read %d records, err %v, end %+v, corrupt %v", n, r.Err(), r.End(), r.Corrupt())
	}
	res, err := Scan(path, ScanOptions{}, func([]flow.Record) error { return nil })
	if err != nil || res.Records != uint64(len(recs)) || res.Corrupt != 0 || res.End != EndClean {
		t.Errorf("scan: %+v %v", res, err)
	}
}

// TestAuxRecover: a crashed file gets its sections rebuilt from its
// readable blocks, equal to what closing would have written.
func TestAuxRecover(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kflow.current.202503140925")
	recs := auxRecords(500)
	aux := func() []AuxBuilder { return []AuxBuilder{&countAux{}} }
	w, err := Create(path, WriterOptions{BlockRecords: 50, Aux: aux})
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if err := w.Append(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	w.SetAux("test/static", []byte("lost with the crash"))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	// A torn block at the end.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("KFBK torn"))
	f.Close()
	res, err := RecoverWith(path, aux)
	if err != nil || res.Summary.Total.Flows != uint64(len(recs)) {
		t.Fatalf("recover: %+v %v", res, err)
	}
	r, err := Open(path, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, ok, err := r.Aux("test/packets")
	if !ok || err != nil || !bytes.Equal(got, packetsPayload(recs)) {
		t.Errorf("rebuilt section: %d bytes ok %v %v", len(got), ok, err)
	}
	if names := r.AuxNames(); len(names) != 1 {
		t.Errorf("sections after recovery: %v (SetAux's are lost with the crash)", names)
	}
}

// TestAuxCorrupt: a damaged section is an error of Aux only; the records
// still read.
func TestAuxCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kflow.202503140925")
	recs := auxRecords(100)
	w, err := Create(path, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		w.Append(&recs[i])
	}
	w.SetAux("test/static", bytes.Repeat([]byte{1, 2, 3}, 1000))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	off := bytes.Index(b, []byte(auxMagic))
	b[off+sectionHeaderLen+3] ^= 0xff // the section's payload
	os.WriteFile(path, b, 0o644)
	r, err := Open(path, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, _, err := r.Aux("test/static"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("damaged section: %v", err)
	}
	n := 0
	for r.Next() {
		n++
	}
	if n != len(recs) || r.End().Kind != EndClean {
		t.Errorf("records: %d, end %+v", n, r.End())
	}
}

// TestReadVersion1 reads a file written by the version 1 writer
// (testdata/v1.kflow: ten UDP records in blocks of four, three sequence
// failures).
func TestReadVersion1(t *testing.T) {
	r, err := Open("testdata/v1.kflow", ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Header().Version != 1 || r.Header().Ident != "v1" {
		t.Errorf("header %+v", r.Header())
	}
	s, ok := r.Summary()
	if !ok || s.Total.Flows != 10 || s.Total.Packets != 55 || s.SequenceFailures != 3 || s.Blocks != 3 || len(r.AuxNames()) != 0 {
		t.Errorf("summary %+v ok %v", s, ok)
	}
	i := 0
	for r.Next() {
		rec := r.Record()
		if rec.SrcPort != uint16(1000+i) || rec.Packets != uint64(i+1) || rec.Src != netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}) {
			t.Errorf("record %d: %+v", i, rec)
		}
		i++
	}
	if i != 10 || r.End().Kind != EndClean {
		t.Errorf("%d records, end %+v", i, r.End())
	}
	// Recovering a version 1 file keeps it version 1.
	p := filepath.Join(t.TempDir(), "kflow.current.202503140925")
	b, _ := os.ReadFile("testdata/v1.kflow")
	os.WriteFile(p, b[:bytes.Index(b, []byte(summaryMagic))-5], 0o644)
	res, err := RecoverWith(p, func() []AuxBuilder { return []AuxBuilder{&countAux{}} })
	if err != nil || res.Summary.Total.Flows != 8 {
		t.Fatalf("recover v1: %+v %v", res, err)
	}
	r2, err := Open(p, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if _, ok := r2.Summary(); !ok || r2.Header().Version != 1 || len(r2.AuxNames()) != 0 {
		t.Errorf("recovered v1 file: version %d, aux %v", r2.Header().Version, r2.AuxNames())
	}
}

// TestAuxAfterFailedWrites: the writer feeds its builders records as they
// are appended. After a full disk that frees up, the section counts
// exactly the records stored (held blocks written late included); when
// records are still unwritten at Close, the file has no section rather
// than one counting records it does not hold.
func TestAuxAfterFailedWrites(t *testing.T) {
	for _, freed := range []bool{true, false} {
		recs := auxRecords(1000)
		ff := &failFile{limit: 2000}
		bf := &blockFail{truncFile: truncFile{ff}}
		w, err := NewWriter(bf, WriterOptions{BlockRecords: 64, MaxPending: 256,
			Aux: func() []AuxBuilder { return []AuxBuilder{&countAux{}} }})
		if err != nil {
			t.Fatal(err)
		}
		var stored []flow.Record
		failures := 0
		for i := range recs {
			if freed && i == 700 {
				ff.limit = 1 << 30
			}
			err := w.Append(&recs[i])
			if errors.Is(err, ErrRejected) {
				continue
			}
			if err != nil {
				failures++
			}
			stored = append(stored, recs[i])
		}
		if failures == 0 || len(stored) == len(recs) {
			t.Fatalf("freed %v: %d failures, %d of %d stored: the test did not fill the disk", freed, failures, len(stored), len(recs))
		}
		if !freed {
			// Room for the summary and sections, none for the blocks.
			ff.limit, bf.blocks = 1<<30, true
		}
		err = w.Close()
		if freed != (err == nil) {
			t.Fatalf("freed %v: close: %v", freed, err)
		}
		got, r := readBytes(t, ff.buf, ReaderOptions{})
		un := w.Unwritten()
		checkRecords(t, append(got, un...), stored)
		if freed != (len(un) == 0) {
			t.Fatalf("freed %v: %d records unwritten", freed, len(un))
		}
		if _, ok := r.Summary(); !ok {
			t.Fatalf("freed %v: no summary: %v", freed, r.Err())
		}
		p, ok, err := r.Aux("test/packets")
		switch {
		case err != nil:
			t.Fatalf("freed %v: %v", freed, err)
		case freed && (!ok || !bytes.Equal(p, packetsPayload(stored))):
			t.Errorf("freed %v: section ok %v, %d bytes, want the packets of the %d records stored", freed, ok, len(p), len(stored))
		case !freed && ok:
			t.Errorf("freed %v: a section although %d records were not written", freed, len(un))
		}
	}
}

// blockFail fails every block write once blocks is set.
type blockFail struct {
	truncFile
	blocks bool
}

func (f *blockFail) Write(p []byte) (int, error) {
	if f.blocks && bytes.HasPrefix(p, []byte(blockMagic)) {
		return 0, errDiskFull
	}
	return f.truncFile.Write(p)
}
