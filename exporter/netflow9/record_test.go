// SPDX-License-Identifier: Apache-2.0

package netflow9

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

// putFields is the reference encoding of a data record: wire.PutField for
// each field of the template.
func putFields(b []byte, fields []wire.Field, r *flow.Record, initMs int64) {
	off := 0
	for _, f := range fields {
		wire.PutField(b[off:off+int(f.Length)], f.ID, r, initMs)
		off += int(f.Length)
	}
}

// TestFlowRecordMatchesPutField checks the hand-laid flow records against
// the generic field encoding, so that putFlow4 and putFlow6 cannot drift
// from flowFields.
func TestFlowRecordMatchesPutField(t *testing.T) {
	for _, ipv6 := range []bool{false, true} {
		tp := wire.NewExportTemplate(TemplateIPv4, 0, flowFields(ipv6, false))
		put, n := putFlow4, flow4Len
		if ipv6 {
			put, n = putFlow6, flow6Len
		}
		if tp.Size != n {
			t.Fatalf("ipv6 %v: template records are %d octets, putFlow writes %d", ipv6, tp.Size, n)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		initMs := t0.Add(-time.Hour).UnixMilli()
		recs := []flow.Record{recordV4(), recordV6(), {}}
		for range 20000 {
			recs = append(recs, wiretest.RandomRecord(rng))
		}
		for i := range recs {
			r := &recs[i]
			want := make([]byte, n)
			putFields(want, tp.Fields, r, initMs)
			got := bytes.Repeat([]byte{0xee}, n) // every octet must be written
			put(got, r, initMs)
			if !bytes.Equal(got, want) {
				t.Fatalf("ipv6 %v: record %+v\n got %x\nwant %x", ipv6, *r, got, want)
			}
		}
	}
}
