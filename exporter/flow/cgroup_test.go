// SPDX-License-Identifier: Apache-2.0

package flow

import "testing"

func TestParseCgroup(t *testing.T) {
	const id = "3f9a1c2b4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8"
	const uid = "1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5"
	const uidU = "1d2e3f40_5a6b_4c7d_8e9f_a0b1c2d3e4f5"
	for _, c := range []struct {
		path string
		want CgroupNames
		app  string
	}{
		{"", CgroupNames{}, ""},
		{"/", CgroupNames{}, "/"}, // the root cgroup
		{"/system.slice/nginx.service", CgroupNames{Unit: "nginx.service"}, "nginx.service"},
		{"/user.slice/user-1000.slice/user@1000.service/app.slice/app-foo.scope", CgroupNames{Unit: "user@1000.service"}, "user@1000.service"},
		{"/user.slice/user-1000.slice/session-3.scope", CgroupNames{Unit: "session-3.scope"}, "session-3.scope"},
		{"/system.slice/docker-" + id + ".scope", CgroupNames{Unit: "docker-" + id + ".scope", Container: id}, id[:12]},
		{"/docker/" + id, CgroupNames{Container: id}, id[:12]},
		{"/machine.slice/libpod-" + id + ".scope", CgroupNames{Unit: "libpod-" + id + ".scope", Container: id}, id[:12]},
		{"/machine.slice/libpod-conmon-" + id + ".scope", CgroupNames{Unit: "libpod-conmon-" + id + ".scope"}, "libpod-conmon-" + id + ".scope"},
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/cri-containerd-" + id + ".scope",
			CgroupNames{Unit: "cri-containerd-" + id + ".scope", Container: id, Pod: uid}, id[:12]},
		{"/kubepods/burstable/pod" + uid + "/" + id, CgroupNames{Container: id, Pod: uid}, id[:12]},
		{"/kubepods.slice/kubepods-pod" + uidU + ".slice/crio-" + id + ".scope", CgroupNames{Unit: "crio-" + id + ".scope", Container: id, Pod: uid}, id[:12]},
		{"/kflow-test/a", CgroupNames{}, "a"},
		{"/system.slice/" + id[:63] + ".scope", CgroupNames{Unit: id[:63] + ".scope"}, id[:63] + ".scope"},
		{"/apod" + uid, CgroupNames{}, "apod" + uid},
	} {
		got := ParseCgroup(c.path)
		if got != c.want {
			t.Errorf("ParseCgroup(%q) = %+v, want %+v", c.path, got, c.want)
		}
		if a := got.AppName(c.path); a != c.app {
			t.Errorf("AppName(%q) = %q, want %q", c.path, a, c.app)
		}
	}
}
