// SPDX-License-Identifier: Apache-2.0

package bpf

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kflow-dev/kflow/tools/testenv"
)

// TestPinsRootOnly: the pin directory and every pin in it are readable
// by their owner (root) only.
func TestPinsRootOnly(t *testing.T) {
	testenv.RequirePrivileged(t)
	pin := filepath.Join(mountBPFFS(t), "kflow")
	d, err := Load(Config{PinDir: pin, MapEntries: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		d.Close()
		d.Unpin()
	}()
	st, err := os.Stat(pin)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		t.Errorf("pin directory %s has mode %v, want no access for group and others", pin, st.Mode().Perm())
	}
	entries, err := os.ReadDir(pin)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < len(pinnedMaps) {
		t.Fatalf("%d pins in %s, want at least %d", len(entries), pin, len(pinnedMaps))
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm()&0o077 != 0 {
			t.Errorf("pin %s has mode %v, want owner only", e.Name(), info.Mode().Perm())
		}
	}
}
