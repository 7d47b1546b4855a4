// SPDX-License-Identifier: Apache-2.0

package wire

import (
	"fmt"
	"slices"
)

// Template is a (possibly options) template as a decoder keeps it.
type Template struct {
	ID         uint16
	ScopeCount int // number of leading scope fields; > 0 for options templates
	Fields     []Field
	// MinLen is the smallest record the template allows: fixed lengths plus
	// one length octet per variable-length field. Always at least 1.
	MinLen int

	plan     *plan // compiled fixed layout of flow records, or nil
	compiled bool  // plan is set (possibly to nil)
}

// decodePlan returns t's compiled plan, compiling it on first use.
func (t *Template) decodePlan() *plan {
	if !t.compiled {
		t.plan, t.compiled = compile(t), true
	}
	return t.plan
}

// IsOptions reports whether t is an options template.
func (t *Template) IsOptions() bool { return t.ScopeCount > 0 }

// Limits bound what one decoding session keeps, so that hostile input
// cannot make it allocate without bound.
type Limits struct {
	MaxTemplates int // templates per session (all domains); default 1024
	MaxFields    int // fields per template; default 256
	MaxDomains   int // domains whose options state is remembered; default 256
}

// Default limits.
const (
	DefaultMaxTemplates = 1024
	DefaultMaxFields    = 256
	DefaultMaxDomains   = 256
)

func (l Limits) withDefaults() Limits {
	if l.MaxTemplates <= 0 {
		l.MaxTemplates = DefaultMaxTemplates
	}
	if l.MaxFields <= 0 {
		l.MaxFields = DefaultMaxFields
	}
	if l.MaxDomains <= 0 {
		l.MaxDomains = DefaultMaxDomains
	}
	return l
}

// domainState is what options records teach about a domain and what later
// data records need: the system init time for sysUpTime-relative timestamps
// and the sampling interval.
type domainState struct {
	sysInitMs int64 // unix ms; 0 unknown
	sampling  uint32
	// samplers are the rates of the samplers (IE 48) or selectors (IE
	// 302) the domain announced, by id, at most maxSamplers.
	samplers map[uint64]uint32
	// estInitMs is the estimated system init time (unix ms, modulo 2^32
	// ms) for IPFIX exporters that send sysUpTime-relative timestamps
	// without ever sending systemInitTimeMilliseconds; valid when
	// estKnown. See estimateInit.
	estInitMs int64
	estKnown  bool
	// apps maps the cgroup ids of kflow's applicationId to their paths
	// (options records of scope applicationId), at most maxApps.
	apps map[uint64]string
}

// maxApps bounds the cgroup paths a domain's state keeps; past it the
// map starts afresh (the exporter announces them again on refresh).
const maxApps = 65536

// Templates is the bounded template store of one decoding session. Keys are
// (domain, template id), so a session may safely see several domains. The
// zero value is not usable; use NewTemplates.
type Templates struct {
	lim     Limits
	m       map[uint64]*Template
	domains map[uint32]*domainState
	pending []pendingTime  // scratch of DecodeSet: records whose times wait for an estimate
	rev     reverseScratch // scratch of a biflow record's reverse elements
	// The last domain state found: every data record looks its domain up,
	// and states are never removed, so the pointer stays valid.
	lastDomain uint32
	lastState  *domainState
}

// NewTemplates returns an empty store with the given limits (zero fields
// take the defaults).
func NewTemplates(l Limits) *Templates {
	return &Templates{
		lim:     l.withDefaults(),
		m:       make(map[uint64]*Template),
		domains: make(map[uint32]*domainState),
	}
}

// Limits returns the effective limits.
func (s *Templates) Limits() Limits { return s.lim }

func key(domain uint32, id uint16) uint64 { return uint64(domain)<<16 | uint64(id) }

// Len returns the number of templates held.
func (s *Templates) Len() int { return len(s.m) }

// Get returns the template or nil.
func (s *Templates) Get(domain uint32, id uint16) *Template { return s.m[key(domain, id)] }

// MinRecordLen returns the minimum record length of fields, counting one
// octet for each variable-length field.
func MinRecordLen(fields []Field) int {
	n := 0
	for _, f := range fields {
		if f.Length == VarLen {
			n++
		} else {
			n += int(f.Length)
		}
	}
	return n
}

// Put adds or replaces a template. fields is copied. It fails with
// ErrTemplateLimit when the store is full or the template too large, and
// with ErrTemplate when it has no fields or a field has length 0 (callers
// treat zero-field template records as withdrawals before calling Put).
func (s *Templates) Put(domain uint32, id uint16, scope int, fields []Field) error {
	if len(fields) == 0 {
		return fmt.Errorf("template without fields: %w", ErrTemplate)
	}
	if len(fields) > s.lim.MaxFields {
		return fmt.Errorf("%d fields, limit %d: %w", len(fields), s.lim.MaxFields, ErrTemplateLimit)
	}
	for i, f := range fields {
		if f.Length == 0 {
			return fmt.Errorf("field %d (ie %d) has length 0: %w", i, f.ID, ErrTemplate)
		}
	}
	k := key(domain, id)
	old := s.m[k]
	if old != nil && old.ScopeCount == scope && slices.Equal(old.Fields, fields) {
		return nil // refresh of a known template: nothing to do
	}
	if old == nil && len(s.m) >= s.lim.MaxTemplates {
		return fmt.Errorf("%d templates held: %w", len(s.m), ErrTemplateLimit)
	}
	s.m[k] = &Template{
		ID:         id,
		ScopeCount: scope,
		Fields:     slices.Clone(fields),
		MinLen:     MinRecordLen(fields),
	}
	return nil
}

// Withdraw removes one template; it reports whether it existed.
func (s *Templates) Withdraw(domain uint32, id uint16) bool {
	k := key(domain, id)
	_, ok := s.m[k]
	delete(s.m, k)
	return ok
}

// WithdrawAll removes all templates of a domain: the data templates when
// options is false, the options templates when it is true (RFC 7011 section
// 8.1, "All Data Templates Withdrawal" and "All Options Templates
// Withdrawal").
func (s *Templates) WithdrawAll(domain uint32, options bool) int {
	n := 0
	for k, t := range s.m {
		if uint32(k>>16) == domain && t.IsOptions() == options {
			delete(s.m, k)
			n++
		}
	}
	return n
}

// domain returns the state of a domain, creating it within the limit; nil
// when the limit is reached.
func (s *Templates) domain(d uint32, create bool) *domainState {
	if s.lastState != nil && s.lastDomain == d {
		return s.lastState
	}
	if st := s.domains[d]; st != nil || !create {
		if st != nil {
			s.lastDomain, s.lastState = d, st
		}
		return st
	}
	if len(s.domains) >= s.lim.MaxDomains {
		return nil
	}
	st := &domainState{}
	s.domains[d] = st
	return st
}

// SysInit returns the system init time (unix ms) learned for a domain from
// IE 160 in an options record, or 0.
func (s *Templates) SysInit(domain uint32) int64 {
	if st := s.domain(domain, false); st != nil {
		return st.sysInitMs
	}
	return 0
}

// maxSamplers bounds the samplers kept per domain.
const maxSamplers = 256

func (st *domainState) setSampler(id uint64, rate uint32) {
	if st.samplers == nil {
		st.samplers = make(map[uint64]uint32)
	}
	if _, ok := st.samplers[id]; ok || len(st.samplers) < maxSamplers {
		st.samplers[id] = rate
	}
}

func (s *Templates) samplerKnown(domain uint32, id uint64) bool {
	st := s.domain(domain, false)
	if st == nil {
		return false
	}
	_, ok := st.samplers[id]
	return ok
}

// SamplerSampling returns the sampling interval a domain announced for
// sampler (or selector) id, or 0.
func (s *Templates) SamplerSampling(domain uint32, id uint64) uint32 {
	if st := s.domain(domain, false); st != nil {
		return st.samplers[id]
	}
	return 0
}

// Sampling returns the sampling interval learned for a domain, or 0.
func (s *Templates) Sampling(domain uint32) uint32 {
	if st := s.domain(domain, false); st != nil {
		return st.sampling
	}
	return 0
}
