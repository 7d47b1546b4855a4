// SPDX-License-Identifier: Apache-2.0

package netflow9

import (
	"flag"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/flow"
	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// t0 is the fixed export time of the tests.
var t0 = wiretest.T0

var (
	recordV4 = wiretest.RecordV4
	recordV6 = wiretest.RecordV6
	numbered = wiretest.Numbered
)

// carried returns what a v9 round trip keeps of r: v9 templates carry
// neither InnerVLAN, nor the NS flag, nor EndReason.
func carried(r flow.Record, domain uint32) flow.Record {
	r.TCPFlags &= 0xff
	r.EndReason = flow.EndUnknown
	r.ObservationDomain = domain
	return r
}

func newEncoder(t testing.TB, cfg Config, clk *wiretest.Clock) *Encoder {
	t.Helper()
	cfg.Clock = clk.Now
	if cfg.SystemInit.IsZero() {
		cfg.SystemInit = t0.Add(-time.Hour)
	}
	e, err := NewEncoder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// session adapts a Session to wiretest.Session.
type session struct {
	*Session
	m Message
}

func newSession(l wire.Limits) *session                  { return &session{Session: NewSession(l)} }
func (s *session) Decode(b []byte) (*wire.Data, error)   { return &s.m.Data, s.Session.Decode(&s.m, b) }
func (s *session) DecodeHeld(held wire.MissingSet) error { return s.Session.DecodeHeld(&s.m, held) }
func (s *session) Header() Header                        { return s.m.Header }
