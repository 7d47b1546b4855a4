// SPDX-License-Identifier: Apache-2.0

package query

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/collector/filter"
	"github.com/kflow-dev/kflow/tools/synthflow"
)

// TestCgroupQueries: records with cgroups in flow files (one file cut
// short by a crash); "unit NAME" selects exactly the records of that
// unit, and -s unit, container, pod and cgroup count each value's
// records exactly, the records without one under "". A series by each of
// them has the same lines, its buckets summing to the statistic's
// counts, and each named line's filter selects exactly its records.
func TestCgroupQueries(t *testing.T) {
	dir := t.TempDir()
	id := strings.Repeat("ab", 32)
	const uid = "1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5"
	paths := []string{"", "/system.slice/nginx.service", "/system.slice/sshd.service",
		"/kubepods/burstable/pod" + uid + "/" + id, "/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope"}
	m := synthflow.NewMix(synthflow.Options{Seed: 9, Exporter: netip.MustParseAddr("198.18.255.1")})
	type want struct{ flows, bytes uint64 }
	byPath := map[string]want{}
	for i := 0; i < 2; i++ {
		recs := m.Records(1500)
		for k := range recs {
			p := paths[(k*7+i)%len(paths)]
			recs[k].Cgroup = p
			if p != "" {
				recs[k].CgroupID = uint64(1000 + (k*7+i)%len(paths))
			}
			w := byPath[p]
			w.flows++
			w.bytes += recs[k].Octets
			byPath[p] = w
		}
		if i == 1 {
			writeCrashed(t, filepath.Join(dir, "kflow.current.202503140935"), recs)
		} else {
			writeFile(t, filepath.Join(dir, "kflow.202503140925"), recs)
		}
	}
	b := &FileBackend{Paths: []string{dir}}

	res := query(t, b, &Request{Filter: filter.MustParse("unit nginx")})
	if w := byPath[paths[1]]; res.Total.Flows != w.flows || res.Total.Bytes != w.bytes {
		t.Errorf("unit nginx: %d flows %d bytes, want %+v", res.Total.Flows, res.Total.Bytes, w)
	}

	wantStat := map[Element]map[string]want{ElemUnit: {}, ElemContainer: {}, ElemPod: {}, ElemCgroup: {}}
	add := func(e Element, v string, w want) {
		x := wantStat[e][v]
		x.flows += w.flows
		x.bytes += w.bytes
		wantStat[e][v] = x
	}
	for p, w := range byPath {
		add(ElemCgroup, p, w)
		unit, ctr, pod := "", "", ""
		switch p {
		case paths[1]:
			unit = "nginx.service"
		case paths[2]:
			unit = "sshd.service"
		case paths[3]:
			ctr, pod = id, uid
		case paths[4]:
			unit = "user@1000.service"
		}
		add(ElemUnit, unit, w)
		add(ElemContainer, ctr, w)
		add(ElemPod, pod, w)
	}
	req := &Request{}
	for e := range wantStat {
		req.Stats = append(req.Stats, StatSpec{Element: e, Orders: []Order{ByBytes}})
	}
	res = query(t, b, req)
	for _, st := range res.Stats {
		got := map[string]want{}
		for _, en := range st.Entries {
			got[en.Value.Str] = want{en.Counter.Flows, en.Counter.Bytes}
		}
		if fmt.Sprint(got) != fmt.Sprint(wantStat[st.Element]) {
			t.Errorf("-s %s/bytes:\ngot  %v\nwant %v", st.Element.Name(), got, wantStat[st.Element])
		}
		if st.Element == ElemUnit && st.Element.Format(Value{}) != "-" {
			t.Error("no unit is not printed as -")
		}
	}

	day := synthflow.DefaultStart.Truncate(24 * time.Hour)
	w := Window{From: day, To: day.Add(24 * time.Hour)}
	for e, ws := range wantStat {
		d, err := ParseDim(e.Name())
		if err != nil || d.Element != e {
			t.Fatalf("ParseDim(%s) = %v, %v", e.Name(), d, err)
		}
		res := query(t, b, &Request{Window: w, Series: &SeriesSpec{Dims: []Dim{d}, Top: 20}})
		s := res.Series
		if res.Total.Flows != 3000 || sumOf(s.Total.Flows) != 3000 {
			t.Errorf("series by %s: %d flows in the window, %d in the lines; want 3000", e.Name(), res.Total.Flows, sumOf(s.Total.Flows))
		}
		got := map[string]want{}
		for _, l := range s.Lines {
			if l.Other {
				t.Errorf("series by %s: an Other line with %d of %d values", e.Name(), s.Distinct, len(ws))
				continue
			}
			got[l.Key[0].Str] = want{sumOf(l.Flows), sumOf(l.Bytes)}
			f, ok := s.LineFilter(&l)
			if ok != (l.Key[0].Str != "" && e != ElemCgroup) {
				t.Errorf("series by %s: line %q: filter %q, %v", e.Name(), s.LineName(&l), f, ok)
			}
			if !ok {
				continue
			}
			sel := query(t, b, &Request{Window: w, Filter: filter.MustParse(f), Summary: true})
			if sel.Total.Flows != sumOf(l.Flows) || sel.Total.Bytes != sumOf(l.Bytes) {
				t.Errorf("series by %s: filter %q selects %d flows %d bytes, the line has %d %d",
					e.Name(), f, sel.Total.Flows, sel.Total.Bytes, sumOf(l.Flows), sumOf(l.Bytes))
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(ws) {
			t.Errorf("series by %s:\ngot  %v\nwant %v", e.Name(), got, ws)
		}
	}
}
