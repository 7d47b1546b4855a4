// SPDX-License-Identifier: Apache-2.0

package netflow5

import (
	"fmt"

	"github.com/kflow-dev/kflow/exporter/wire"
)

// Message is a decoded NetFlow v5 packet. Sampling holds one entry when
// the header announces sampling.
type Message struct {
	Header Header
	wire.Data
}

// Decoder decodes NetFlow v5 packets. v5 has no templates, so one Decoder
// serves any number of exporters; it is not safe for concurrent use.
type Decoder struct {
	tpls *wire.Templates
	t    wire.Template
}

// NewDecoder returns a decoder.
func NewDecoder() *Decoder {
	f := recordFields()
	return &Decoder{
		tpls: wire.NewTemplates(wire.Limits{}),
		t:    wire.Template{ID: Version, Fields: f, MinLen: wire.MinRecordLen(f)},
	}
}

// Decode decodes one packet into dst, which it resets first. Octets after
// the Count records are ignored. ICMP type and code are taken from the
// destination port. Records get the header's sampling interval and the
// engine type and id as observation domain.
func (d *Decoder) Decode(dst *Message, b []byte) error {
	dst.Data.Reset()
	h, err := ParseHeader(b)
	dst.Header = h
	if err != nil {
		return err
	}
	exportNs := h.ExportTime.UnixNano()
	ctx := wire.Context{Domain: h.Domain(), ExportMs: exportNs / 1e6, UptimeMs: int64(h.SysUptime)}
	body := b[HeaderLen : HeaderLen+RecordLen*int(h.Count)]
	n := len(dst.Records)
	if err := d.tpls.DecodeSet(&dst.Data, &ctx, &d.t, body, HeaderLen); err != nil {
		// Cannot happen: the length is checked and the layout is fixed.
		return &wire.DecodeError{Format: "netflow5", Version: h.Version, Domain: h.Domain(), Offset: HeaderLen, Err: fmt.Errorf("records: %w", err)}
	}
	if h.SamplingMode != SamplingNone || h.SamplingInterval != 0 {
		dst.Sampling = append(dst.Sampling, wire.Sampling{Domain: h.Domain(), Interval: uint32(h.SamplingInterval), Algorithm: h.SamplingMode})
		for i := n; i < len(dst.Records); i++ {
			dst.Records[i].SamplingInterval = uint32(h.SamplingInterval)
		}
	}
	return nil
}
