// SPDX-License-Identifier: Apache-2.0

package web

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kflow-dev/kflow/collector/filter"
	"github.com/kflow-dev/kflow/collector/query"
)

// params reads a request's URL parameters into a query.Request; the first
// error is kept and reported once.
type params struct {
	q   url.Values
	s   *Server
	err error
}

func (p *params) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("%w: %s", query.ErrRequest, fmt.Sprintf(format, args...))
	}
}

// ParseDuration parses a Go duration or a number of days ("7d") or weeks
// ("2w").
func ParseDuration(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseFloat(n, 64)
			if err != nil || v < 0 {
				return 0, fmt.Errorf("duration %q: want 90s, 15m, 24h, 7d or 2w", s)
			}
			return time.Duration(v * float64(unit)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("duration %q: want 90s, 15m, 24h, 7d or 2w", s)
	}
	return d, nil
}

// parseTime parses RFC 3339 or Unix seconds.
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if v, err := strconv.ParseFloat(s, 64); err == nil && v >= 0 {
		return time.Unix(0, int64(v*1e9)).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2025-03-14T09:00:00Z) or Unix seconds", s)
}

// window reads from and to, or last (a duration ending now). A window is
// required unless optional; its length is bounded.
func (p *params) window(optional bool) query.Window {
	var w query.Window
	last, from, to := p.q.Get("last"), p.q.Get("from"), p.q.Get("to")
	switch {
	case last != "":
		d, err := ParseDuration(last)
		if err != nil || d <= 0 {
			p.fail("last: %v", cmpErr(err, "want a positive duration"))
			return w
		}
		now := p.s.cfg.Now().UTC().Truncate(time.Second)
		w = query.Window{From: now.Add(-d), To: now}
	case from != "" || to != "":
		var err error
		if w.From, err = parseTime(from); err != nil {
			p.fail("from: %v", err)
			return w
		}
		if w.To, err = parseTime(to); err != nil {
			p.fail("to: %v", err)
			return w
		}
	case optional:
		return w
	default:
		p.fail("give a time window: last=DURATION, or from= and to=")
		return w
	}
	if !w.To.After(w.From) {
		p.fail("the window ends before it starts")
	}
	if max := p.s.cfg.Limits.MaxWindow; w.To.Sub(w.From) > max {
		p.fail("window of %v: at most %v", w.To.Sub(w.From), max)
	}
	return w
}

func cmpErr(err error, msg string) string {
	if err != nil {
		return err.Error()
	}
	return msg
}

// filter parses the filter parameter (nfdump's language).
func (p *params) filter() *filter.Filter {
	f, err := filter.Parse(p.q.Get("filter"))
	if err != nil && p.err == nil {
		p.err = err
	}
	return f
}

// int reads a bounded integer parameter.
func (p *params) int(name string, def, lo, hi int) int {
	s := p.q.Get(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		p.fail("%s %q: want %d..%d", name, s, lo, hi)
		return def
	}
	return v
}

func (p *params) bool(name string) bool {
	switch p.q.Get(name) {
	case "", "0", "false", "no":
		return false
	case "1", "true", "yes":
		return true
	}
	p.fail("%s %q: want 1 or 0", name, p.q.Get(name))
	return false
}

// dims reads a comma separated list of dimensions.
func (p *params) dims(name string) []query.Dim {
	var out []query.Dim
	for _, s := range strings.Split(p.q.Get(name), ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		d, err := query.ParseDim(s)
		if err != nil {
			if p.err == nil {
				p.err = err
			}
			return nil
		}
		out = append(out, d)
	}
	return out
}

// seriesSpec reads the parameters of a series.
func (p *params) seriesSpec(w query.Window) *query.SeriesSpec {
	spec := &query.SeriesSpec{Dims: p.dims("dims"), Top: p.int("top", 10, 1, p.s.cfg.Limits.MaxLines)}
	var err error
	if u := p.q.Get("unit"); u != "" {
		if spec.Unit, err = query.ParseUnit(u); err != nil && p.err == nil {
			p.err = err
		}
	}
	if r := p.q.Get("rank"); r != "" {
		if spec.Rank, err = query.ParseRank(r); err != nil && p.err == nil {
			p.err = err
		}
	}
	if st := p.q.Get("step"); st != "" && st != "auto" {
		d, err := ParseDuration(st)
		if err != nil {
			p.fail("step: %v", err)
		}
		spec.Step = d
	}
	if pv := p.q.Get("previous"); pv != "" {
		d, err := ParseDuration(pv)
		if err != nil {
			p.fail("previous: %v", err)
		}
		spec.Previous = d
	}
	spec.Reverse = p.bool("reverse")
	return spec
}
