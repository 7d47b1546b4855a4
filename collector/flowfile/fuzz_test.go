// SPDX-License-Identifier: Apache-2.0

package flowfile

import (
	"bytes"
	"testing"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// FuzzReader reads arbitrary bytes as a flow file: it must never panic or
// allocate without bound, whatever the input.
func FuzzReader(f *testing.F) {
	for i, n := range []int{0, 1, 5, 40} {
		recs := newSynth(uint64(i)).Records(n)
		if n > 0 {
			recs[0] = fullRecord(i%2 == 0)
		}
		b := writeBytes(f, recs, WriterOptions{BlockRecords: 16})
		f.Add(b)
		f.Add(b[:len(b)*2/3])
		c := bytes.Clone(b)
		c[len(c)/2] ^= 1
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, skip := range []bool{false, true} {
			r, err := NewReader(bytes.NewReader(b), int64(len(b)), ReaderOptions{SkipCorrupt: skip})
			if err != nil {
				return
			}
			r.Summary()
			for range 1000 {
				for r.Next() {
					_ = r.Record().IPVersion()
				}
				if r.Err() == nil {
					break
				}
			}
			_ = r.End().String()
			r.Close()
		}
	})
}

// FuzzDecodeBlock decodes arbitrary block payloads: a hostile file can carry
// valid checksums, so the block decoder must hold on its own. What decodes
// must encode back to the same records, decode the same into a reused
// buffer (as a Reader does), and decode the same when only some fields are
// asked for (as a query does), which must fail exactly when all fail.
func FuzzDecodeBlock(f *testing.F) {
	enc := newBlockEncoder()
	for i, n := range []int{1, 3, 20} {
		recs := newSynth(uint64(i)).Records(n)
		recs[0] = fullRecord(i%2 == 1)
		f.Add(bytes.Clone(enc.encode(recs)), n, uint32(FieldSrc|FieldTimes))
		recs[n-1].CgroupID, recs[n-1].Cgroup = 7, "/system.slice/nginx.service" // the cgroup column
		f.Add(bytes.Clone(enc.encode(recs)), n, uint32(FieldCgroup))
	}
	var d blockDecoder
	f.Fuzz(func(t *testing.T, b []byte, count int, need uint32) {
		if count <= 0 || count > len(b) || count > MaxBlockRecords {
			return
		}
		samePartial(t, &d, b, count, Fields(need)&AllFields)
		recs, err := d.decode(b, count, nil, AllFields)
		if err != nil {
			return
		}
		dirty := make([]flow.Record, count)
		for i := range dirty {
			dirty[i] = fullRecord(i%2 == 0)
			dirty[i].CgroupID, dirty[i].Cgroup = 9, "/dirty"
		}
		reused, err := d.decode(b, count, dirty[:0], AllFields)
		if err != nil {
			t.Fatalf("decode into a reused buffer: %v", err)
		}
		checkRecords(t, reused, recs)
		again, err := d.decode(newBlockEncoder().encode(recs), count, nil, AllFields)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		checkRecords(t, again, recs)
	})
}
