// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kflow-dev/kflow/bpf"
	"github.com/kflow-dev/kflow/tools/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/NAME.golden (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (go test -update rewrites it):\n--- got\n%s--- want\n%s", name, path, got, want)
	}
}

// TestFeatureProbe checks the probe against what the test machine has.
func TestFeatureProbe(t *testing.T) {
	testenv.RequirePrivileged(t)
	code, out, errOut := runCLI(t, "-j", "feature", "probe")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var f bpf.Features
	if err := json.Unmarshal([]byte(out), &f); err != nil {
		t.Fatalf("unmarshal %q: %v", out, err)
	}
	if !f.CanRun || len(f.Missing) != 0 {
		t.Errorf("can_run %v, missing %v", f.CanRun, f.Missing)
	}
	want := map[string]bool{
		bpf.FeatureBPFSyscall: true, bpf.FeatureSchedCLS: true, bpf.FeatureRingBuffer: true,
		bpf.FeatureMapInMap: true, bpf.FeatureAtomics: true, bpf.FeatureJiffies64: true,
		bpf.FeatureKtimeBootNs: true, bpf.FeatureTCX: bpf.HaveTCX(),
	}
	if os.Geteuid() == 0 {
		for _, c := range []string{bpf.FeatureCapBPF, bpf.FeatureCapNetAdmin, bpf.FeatureCapPerfmon, bpf.FeatureCapSysAdmin} {
			want[c] = true
		}
	}
	_, err := os.Stat("/sys/kernel/btf/vmlinux")
	want[bpf.FeatureKernelBTF] = err == nil
	for name, w := range want {
		got, ok := f.Get(name)
		if !ok {
			t.Errorf("feature %s missing from the output", name)
			continue
		}
		if got.Available != w {
			t.Errorf("%s: available %v, want %v (%s)", name, got.Available, w, got.Error)
		}
	}
	wantHook := bpf.HookTC
	if bpf.HaveTCX() {
		wantHook = bpf.HookTCX
	}
	if f.Choices.Hook != wantHook {
		t.Errorf("hook %q, want %q", f.Choices.Hook, wantHook)
	}
	if !strings.Contains(out, `"can_run":true`) || !strings.Contains(out, `"choices":{"hook":`) {
		t.Errorf("JSON field names changed: %s", out)
	}

	// Plain text: the same facts, and exit 0.
	code, out, _ = runCLI(t, "feature")
	if code != exitOK || !strings.Contains(out, "kflow can run here.") {
		t.Errorf("plain: exit %d, output %q", code, out)
	}
}

// fakeFeatures is a kernel without a ring buffer and without TCX.
func fakeFeatures() *bpf.Features {
	f := &bpf.Features{
		Features: []bpf.Feature{
			{Name: bpf.FeatureBPFSyscall, Available: true, Required: true, Detail: "create a BPF map"},
			{Name: bpf.FeatureTCX, Detail: "TCX links (preferred hook)"},
			{Name: bpf.FeatureLegacyTC, Available: true, Detail: "clsact qdisc with a cls_bpf filter (fallback hook)"},
			{Name: bpf.FeatureRingBuffer, Required: true, Detail: "map-full fallback path"},
			{Name: bpf.FeatureBatchOps, Detail: "batch lookup-and-delete drain", Error: "operation not permitted"},
			{Name: bpf.FeatureBPFFS, Available: true, Detail: "bpffs at /sys/fs/bpf (pinning)"},
		},
		Choices: bpf.Choices{Hook: bpf.HookTC, Pinning: "yes", Drain: "iterate", MapValues: []string{"shared"}, Timestamps: []string{"tick"}},
		Missing: []string{bpf.FeatureRingBuffer},
	}
	return f
}

// TestFeatureProbeMissing fakes a kernel that lacks a required feature:
// the report says so and the exit status is 1, plain and JSON.
func TestFeatureProbeMissing(t *testing.T) {
	saved := probeFeatures
	probeFeatures = fakeFeatures
	t.Cleanup(func() { probeFeatures = saved })

	code, out, errOut := runCLI(t, "feature", "probe")
	if code != exitMissingFeature {
		t.Errorf("exit %d, want %d", code, exitMissingFeature)
	}
	if want := "kflow: kflow cannot run here: missing map_ringbuf\n"; errOut != want {
		t.Errorf("stderr %q, want %q", errOut, want)
	}
	golden(t, "feature_probe_missing", out)

	code, out, _ = runCLI(t, "feature", "-p")
	if code != exitMissingFeature {
		t.Errorf("json: exit %d, want %d", code, exitMissingFeature)
	}
	var f bpf.Features
	if err := json.Unmarshal([]byte(out), &f); err != nil {
		t.Fatalf("unmarshal %q: %v", out, err)
	}
	if f.CanRun || len(f.Missing) != 1 || f.Choices.Hook != bpf.HookTC {
		t.Errorf("decoded %+v", f)
	}
	golden(t, "feature_probe_missing_json", out)
}
