// SPDX-License-Identifier: Apache-2.0

package filter

import (
	"strings"
	"testing"

	"github.com/kflow-dev/kflow/collector/flowfile"
)

// TestCgroup: unit, container, pod and cgroup test the local socket's
// cgroup and the names its path shows; records without one match none.
func TestCgroup(t *testing.T) {
	id := strings.Repeat("0123456789abcdef", 4)
	const uid = "1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5"
	nginx, ctr, none := web, web, web
	nginx.Cgroup = "/system.slice/nginx.service"
	ctr.Cgroup = "/kubepods/burstable/pod" + uid + "/" + id
	for _, tc := range []struct {
		src              string
		nginx, ctr, none bool
	}{
		{"unit nginx.service", true, false, false},
		{"unit nginx", true, false, false},
		{"unit Nginx.service", false, false, false},
		{"not unit nginx.service", false, true, true},
		{"container " + id, false, true, false},
		{"container " + id[:12], false, true, false},
		{"container " + strings.ToUpper(id[:12]), false, true, false},
		{"container abcdef", false, false, false},
		{"pod " + uid, false, true, false},
		{"cgroup /system.slice", true, false, false},
		{"cgroup /system.slice/nginx.service", true, false, false},
		{"cgroup /system.slice/ngin", false, false, false},
		{"cgroup /", true, true, false},
		{"unit nginx or pod " + uid, true, true, false},
	} {
		f, err := Parse(tc.src)
		if err != nil {
			t.Fatalf("%q: %v", tc.src, err)
		}
		if f.Match(&nginx) != tc.nginx || f.Match(&ctr) != tc.ctr || f.Match(&none) != tc.none {
			t.Errorf("%q: %v %v %v, want %v %v %v", tc.src, f.Match(&nginx), f.Match(&ctr), f.Match(&none), tc.nginx, tc.ctr, tc.none)
		}
		if !f.Fields().Has(flowfile.FieldCgroup) {
			t.Errorf("%q: fields %#x lack the cgroup", tc.src, f.Fields())
		}
	}
	if e := MustParse("unit nginx").Expr(); e != (Cgroup{Kind: "unit", Value: "nginx.service"}) {
		t.Errorf("Expr: %#v", e)
	}
	for _, bad := range []string{"unit", "container xyz", "container " + id + "0", "cgroup system.slice", "pod"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
