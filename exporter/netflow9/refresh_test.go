// SPDX-License-Identifier: Apache-2.0

package netflow9

import (
	"testing"
	"time"

	"github.com/kflow-dev/kflow/exporter/wire/wiretest"
)

// step encodes one record and returns the one message it makes.
var step = wiretest.Step

func TestRefreshByTime(t *testing.T) {
	clk := &wiretest.Clock{T: t0}
	e := newEncoder(t, Config{TemplateRefresh: 600 * time.Second, TemplateRefreshMessages: -1}, clk)
	want := []struct {
		advance time.Duration
		tpl     bool
	}{
		{0, true}, {time.Second, false}, {598 * time.Second, false},
		{time.Second, true}, {599 * time.Second, false}, {time.Second, true},
	}
	for i, w := range want {
		clk.Advance(w.advance)
		if p := step(t, e); p.Templates != w.tpl {
			t.Errorf("step %d (+%v): templates %v, want %v", i, w.advance, p.Templates, w.tpl)
		}
	}
}

func TestRefreshByMessages(t *testing.T) {
	clk := &wiretest.Clock{T: t0}
	e := newEncoder(t, Config{TemplateRefreshMessages: 4}, clk)
	for i := range 10 {
		if p := step(t, e); p.Templates != (i%4 == 0) {
			t.Errorf("packet %d: templates %v", i, p.Templates)
		}
	}
	e.ForceTemplates()
	if p := step(t, e); !p.Templates {
		t.Error("no templates after ForceTemplates")
	}
}
