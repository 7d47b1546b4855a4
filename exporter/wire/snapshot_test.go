// SPDX-License-Identifier: Apache-2.0

package wire

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestSnapshotRestore: a store restored from its snapshot (through JSON)
// holds the same templates and domain state; a damaged snapshot is
// refused template by template.
func TestSnapshotRestore(t *testing.T) {
	s := NewTemplates(Limits{})
	fields := []Field{{ID: 8, Length: 4}, {ID: 12, Length: 4}, {ID: 2, Length: 8}, {ID: 100, Length: VarLen, Enterprise: 29305}}
	if err := s.Put(0, 256, 0, fields); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(7, 300, 1, fields[:2]); err != nil {
		t.Fatal(err)
	}
	st := s.domain(7, true)
	st.sysInitMs, st.sampling = 1234567, 10
	b, err := json.Marshal(s.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	var sn Snapshot
	if err := json.Unmarshal(b, &sn); err != nil {
		t.Fatal(err)
	}
	r := NewTemplates(Limits{})
	if err := r.Restore(sn); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Snapshot(), s.Snapshot()) {
		t.Fatalf("restored %+v, want %+v", r.Snapshot(), s.Snapshot())
	}
	if got := r.Get(0, 256); got == nil || got.MinLen != s.Get(0, 256).MinLen {
		t.Fatalf("template 256 restored as %+v", got)
	}
	if r.SysInit(7) != 1234567 || r.Sampling(7) != 10 {
		t.Fatalf("domain 7: sys init %d sampling %d", r.SysInit(7), r.Sampling(7))
	}
	bad := Snapshot{Templates: []SavedTemplate{{ID: 256, Fields: []Field{{ID: 8, Length: 0}}}, {ID: 257, Scope: 3, Fields: fields[:1]}, {ID: 258, Fields: fields}}}
	r = NewTemplates(Limits{})
	if err := r.Restore(bad); err == nil || r.Len() != 1 {
		t.Fatalf("damaged snapshot: err %v, %d templates kept, want an error and the one good template", err, r.Len())
	}
}
