// SPDX-License-Identifier: Apache-2.0

package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kflow-dev/kflow/tools/testenv"
)

func TestMountFrom(t *testing.T) {
	hybrid := "tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n"
	if m, err := mountFrom(strings.NewReader(hybrid)); err != nil || m != "/sys/fs/cgroup/unified" {
		t.Errorf("hybrid: %q, %v", m, err)
	}
	if m, err := mountFrom(strings.NewReader("cgroup2 /a\\040b cgroup2 rw 0 0\n")); err != nil || m != "/a b" {
		t.Errorf("escaped: %q, %v", m, err)
	}
	if _, err := mountFrom(strings.NewReader("proc /proc proc rw 0 0\n")); !errors.Is(err, ErrNoCgroup2) {
		t.Errorf("no cgroup2: %v", err)
	}
}

// TestResolver: ids of cgroups the test creates resolve to their paths;
// a new id makes a walk, an id a walk did not find waits
// MinRescan for the next; unknown ids resolve to "".
func TestResolver(t *testing.T) {
	testenv.RequirePrivileged(t)
	mnt, err := Mount()
	testenv.RequireFeature(t, "cgroup v2 mount", err)
	root := filepath.Join(mnt, fmt.Sprintf("kflow-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	a, b := filepath.Join(root, "a.service"), filepath.Join(root, "b")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, d := range []string{a, b, root} {
			if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Error(err)
			}
		}
	})
	if err := os.Mkdir(a, 0o755); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	r, err := New(Config{Now: func() time.Time { return now }, MinRescan: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	idA, err := ID(a)
	if err != nil {
		t.Fatal(err)
	}
	if p := r.Path(idA); p != strings.TrimPrefix(a, mnt) {
		t.Errorf("path of %d: %q, want %q", idA, p, strings.TrimPrefix(a, mnt))
	}
	if err := os.Mkdir(b, 0o755); err != nil {
		t.Fatal(err)
	}
	idB, _ := ID(b)
	if p := r.Path(idB); p != strings.TrimPrefix(b, mnt) { // a new id: walked for
		t.Errorf("path of %d: %q", idB, p)
	}
	walks := r.Stats().Walks
	r.Path(1 << 62)
	r.Path(1 << 62) // a known miss: no walk before MinRescan
	if w := r.Stats().Walks; w != walks+1 {
		t.Errorf("%d walks for two misses of one id, want 1", w-walks)
	}
	now = now.Add(2 * time.Second)
	r.Path(1 << 62)
	if w := r.Stats().Walks; w != walks+2 {
		t.Errorf("no walk after MinRescan")
	}
	if r.Path(0) != "" || r.Path(1<<62) != "" {
		t.Error("unknown ids resolved")
	}
	if s := r.Stats(); s.Walks < 2 || s.Entries == 0 {
		t.Errorf("stats %+v", s)
	}
}
