// SPDX-License-Identifier: Apache-2.0

package wire

import (
	"encoding/binary"
	"maps"
	"slices"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// PutAppID writes kflow's applicationId of a cgroup id into the AppIDLen
// octets of b: engine AppEngineUserDefined and the id, or zeros for none.
func PutAppID(b []byte, id uint64) {
	if id == 0 {
		clear(b[:AppIDLen])
		return
	}
	b[0] = AppEngineUserDefined
	binary.BigEndian.PutUint64(b[1:AppIDLen], id)
}

// MaxAnnouncedCgroups bounds the cgroups an encoder announces again on
// refresh: past it, its table starts afresh.
const MaxAnnouncedCgroups = 4096

// CgroupTable is what an encoder announces of its records' cgroups in
// options records: each cgroup in the message that carries its first
// record, alone, and every cgroup with each refresh. The zero value is
// ready.
type CgroupTable struct {
	paths map[uint64]string
	// fresh, when not nil, are the only cgroups the next options data
	// announce: the message was started for them, not for a refresh.
	fresh []uint64
}

// Learn adds the records' cgroups and reports whether one was new (or its
// path changed): then the encoder forces its templates and options data,
// which announce the new ones.
func (t *CgroupTable) Learn(recs []flow.Record) bool {
	learned := false
	for i := range recs {
		r := &recs[i]
		if r.CgroupID == 0 {
			continue
		}
		if p, ok := t.paths[r.CgroupID]; ok && p == r.Cgroup {
			continue
		}
		if t.paths == nil || len(t.paths) >= MaxAnnouncedCgroups {
			t.paths = make(map[uint64]string)
		}
		t.paths[r.CgroupID] = r.Cgroup
		if !learned {
			t.fresh = t.fresh[:0]
		}
		t.fresh = append(t.fresh, r.CgroupID)
		learned = true
	}
	return learned
}

// Sent ends the batch Learn saw: later options data announce everything.
func (t *CgroupTable) Sent() { t.fresh = nil }

// Each calls fn with the cgroups the options data being written
// announce, by id.
func (t *CgroupTable) Each(fn func(id uint64, path string)) {
	ids := t.fresh
	if ids == nil {
		ids = slices.Sorted(maps.Keys(t.paths))
	}
	for _, id := range ids {
		if p, ok := t.paths[id]; ok { // not forgotten when the table started afresh
			fn(id, p)
		}
	}
}
