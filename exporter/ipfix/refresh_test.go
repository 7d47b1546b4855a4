// SPDX-License-Identifier: Apache-2.0

package ipfix

import (
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/wire"
	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

// step encodes one record and returns the one message it makes.
var step = wiretest.Step

func statsIn(t *testing.T, p Packet) int {
	t.Helper()
	var m Message
	s := NewSession(wire.Limits{})
	if err := s.Decode(&m, p.Bytes); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ms := range m.Missing { // a fresh session lacks the templates
		if ms.TemplateID == TemplateStats {
			n++
		}
	}
	return n + len(m.Stats)
}

func TestRefreshByTime(t *testing.T) {
	clk := &wiretest.Clock{T: t0}
	e := newEncoder(t, Config{TemplateRefresh: 600 * time.Second, TemplateRefreshMessages: -1}, clk)
	want := []struct {
		advance time.Duration
		tpl     bool
	}{
		{0, true}, {time.Second, false}, {598 * time.Second, false},
		{time.Second, true}, // 600 s after the first
		{599 * time.Second, false}, {time.Second, true},
	}
	for i, w := range want {
		clk.Advance(w.advance)
		p := step(t, e)
		if p.Templates != w.tpl {
			t.Errorf("step %d (+%v): templates %v, want %v", i, w.advance, p.Templates, w.tpl)
		}
		if got := statsIn(t, p); (got == 1) != w.tpl {
			t.Errorf("step %d: %d statistics records", i, got)
		}
	}
}

func TestRefreshByMessages(t *testing.T) {
	clk := &wiretest.Clock{T: t0}
	e := newEncoder(t, Config{TemplateRefreshMessages: 3}, clk)
	for i := range 10 {
		if p := step(t, e); p.Templates != (i%3 == 0) {
			t.Errorf("message %d: templates %v", i, p.Templates)
		}
	}
}

func TestForceTemplatesAndEmptyEncode(t *testing.T) {
	clk := &wiretest.Clock{T: t0}
	e := newEncoder(t, Config{}, clk)
	var s wiretest.Sink
	if _, err := e.Encode(nil, s.Emit); err != nil || len(s.Pkts) != 1 || !s.Pkts[0].Templates {
		t.Fatalf("first empty Encode: %v, %+v", err, s.Pkts)
	}
	if _, err := e.Encode(nil, s.Emit); err != nil || len(s.Pkts) != 1 {
		t.Fatalf("nothing due: %v, %d messages", err, len(s.Pkts))
	}
	e.ForceTemplates()
	if p := step(t, e); !p.Templates {
		t.Error("no templates after ForceTemplates")
	}
	if p := step(t, e); p.Templates {
		t.Error("templates again without reason")
	}
}

func TestStreamTemplatesOncePerConnection(t *testing.T) {
	clk := &wiretest.Clock{T: t0}
	e := newEncoder(t, Config{Stream: true, TemplateRefresh: time.Minute, TemplateRefreshMessages: 2}, clk)
	p := step(t, e)
	if !p.Templates || p.Sequence != 0 {
		t.Fatalf("first message: %+v", p)
	}
	for i := range 5 {
		if p := step(t, e); p.Templates || statsIn(t, p) != 0 {
			t.Errorf("message %d: templates or options without reason", i+1)
		}
	}
	clk.Advance(time.Minute)
	p = step(t, e)
	if p.Templates {
		t.Error("templates refreshed on a stream")
	}
	if statsIn(t, p) != 1 {
		t.Error("statistics not refreshed after the interval")
	}
	e.Reset()
	p = step(t, e)
	if !p.Templates || p.Sequence != 0 {
		t.Errorf("after Reset: templates %v, sequence %d; want true, 0", p.Templates, p.Sequence)
	}
}
