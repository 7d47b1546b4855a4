// SPDX-License-Identifier: Apache-2.0

package wire

import (
	"errors"
	"sort"
)

// SavedTemplate is a template as Snapshot saves it.
type SavedTemplate struct {
	Domain uint32  `json:"domain"`
	ID     uint16  `json:"id"`
	Scope  int     `json:"scope,omitempty"`
	Fields []Field `json:"fields"`
}

// SavedDomain is what options records taught about a domain.
type SavedDomain struct {
	Domain    uint32 `json:"domain"`
	SysInitMs int64  `json:"sys_init_ms,omitempty"`
	Sampling  uint32 `json:"sampling,omitempty"`
	EstInitMs int64  `json:"est_init_ms,omitempty"`
	EstKnown  bool   `json:"est_known,omitempty"`
}

// Snapshot is a store's templates and domain state, for a collector that
// restarts: with them it decodes an exporter's next data at once instead
// of holding it until the templates are sent again.
type Snapshot struct {
	Templates []SavedTemplate `json:"templates,omitempty"`
	Domains   []SavedDomain   `json:"domains,omitempty"`
}

// Snapshot returns the store's templates and domain state (in key order).
func (s *Templates) Snapshot() Snapshot {
	var sn Snapshot
	for k, t := range s.m {
		sn.Templates = append(sn.Templates, SavedTemplate{Domain: uint32(k >> 16), ID: t.ID, Scope: t.ScopeCount,
			Fields: append([]Field(nil), t.Fields...)})
	}
	sort.Slice(sn.Templates, func(i, j int) bool {
		a, b := sn.Templates[i], sn.Templates[j]
		return a.Domain < b.Domain || (a.Domain == b.Domain && a.ID < b.ID)
	})
	for d, st := range s.domains {
		sn.Domains = append(sn.Domains, SavedDomain{Domain: d, SysInitMs: st.sysInitMs, Sampling: st.sampling,
			EstInitMs: st.estInitMs, EstKnown: st.estKnown})
	}
	sort.Slice(sn.Domains, func(i, j int) bool { return sn.Domains[i].Domain < sn.Domains[j].Domain })
	return sn
}

// Restore adds a snapshot's templates and domain state to the store,
// within its limits (Put's checks apply: a hostile or damaged snapshot is
// refused template by template, with the errors joined).
func (s *Templates) Restore(sn Snapshot) error {
	var errs []error
	for _, t := range sn.Templates {
		if t.Scope < 0 || t.Scope > len(t.Fields) {
			errs = append(errs, ErrTemplate)
			continue
		}
		errs = append(errs, s.Put(t.Domain, t.ID, t.Scope, t.Fields))
	}
	for _, d := range sn.Domains {
		if st := s.domain(d.Domain, true); st != nil {
			st.sysInitMs, st.sampling, st.estInitMs, st.estKnown = d.SysInitMs, d.Sampling, d.EstInitMs, d.EstKnown
		}
	}
	return errors.Join(errs...)
}
