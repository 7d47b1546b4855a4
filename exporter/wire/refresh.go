// SPDX-License-Identifier: Apache-2.0

package wire

import "time"

// DefaultTemplateRefresh is the default template refresh interval over UDP,
// the templateRefreshTimeout of RFC 6728 (600 s).
const DefaultTemplateRefresh = 600 * time.Second

// DefaultTemplateRefreshMessages is the default number of messages after
// which templates are sent again over UDP.
const DefaultTemplateRefreshMessages = 1000

// Refresh decides when an encoder sends its templates and options data.
// Over UDP templates go out with the first message, then again when
// Interval has passed or Messages messages were sent since (either check
// is off when its value is negative). Over a stream (TCP) templates go out
// once per connection (after Force) and options data every Interval.
type Refresh struct {
	Interval time.Duration
	Messages int
	Stream   bool

	force       bool
	lastTpl     time.Time
	lastOpts    time.Time
	sinceTpl    int
	initialized bool
}

// Force makes the next message carry templates and options data.
func (r *Refresh) Force() { r.force = true }

// Due reports whether the message being started now must carry templates
// and whether it must carry options data.
func (r *Refresh) Due(now time.Time) (templates, options bool) {
	if r.force || !r.initialized {
		return true, true
	}
	timeUp := func(last time.Time) bool { return r.Interval >= 0 && now.Sub(last) >= r.Interval }
	if r.Stream {
		return false, timeUp(r.lastOpts)
	}
	if timeUp(r.lastTpl) || (r.Messages >= 0 && r.sinceTpl >= r.Messages) {
		return true, true
	}
	return false, false
}

// Sent records that a message was sent at now, carrying templates and/or
// options data as reported by Due.
func (r *Refresh) Sent(now time.Time, templates, options bool) {
	if templates {
		r.lastTpl, r.sinceTpl, r.force, r.initialized = now, 0, false, true
	}
	if options {
		r.lastOpts = now
	}
	r.sinceTpl++
}
