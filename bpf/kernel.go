// SPDX-License-Identifier: Apache-2.0

package bpf

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"
)

// MinKernel is the oldest Linux the datapath loads on. The atomic OR that
// merges TCP flags into shared flow values (BPF_ATOMIC with BPF_OR, from
// clang's -mcpu=v3) sets the floor; docs/kernels.md lists every feature
// with the version that brought it. kflow decides by probing features,
// never by reading the version: this is what the probes mean in practice.
const MinKernel = "5.12"

// featureSince is the first upstream Linux version with each feature.
var featureSince = map[string]string{
	FeatureBPFSyscall:  "3.18",
	FeatureKernelBTF:   "5.4",
	FeatureSchedCLS:    "4.1",
	FeatureTCX:         "6.6",
	FeatureLegacyTC:    "4.5",
	FeatureXDP:         "4.12", // generic XDP; bpf_link for XDP: 5.9
	FeatureRingBuffer:  "5.8",
	FeatureMapInMap:    "4.12",
	FeaturePerCPUHash:  "4.6",
	FeatureBatchOps:    "5.6",
	FeatureJiffies64:   "5.5",
	FeatureKtimeBootNs: "5.8",
	FeatureAtomics:     "5.12",
	FeatureCgroups:     "4.18",
	FeatureBPFFS:       "4.4",
	FeatureCapBPF:      "5.8",
	FeatureCapPerfmon:  "5.8",
}

// FeatureSince returns the first Linux version that has the named
// feature (one of the Feature* names), or "" when it is not a kernel
// version matter.
func FeatureSince(name string) string { return featureSince[name] }

// kernelRequirements are the features Load cannot do without, probed in
// the order a user would have to upgrade past them.
var kernelRequirements = []struct {
	name, what string
	probe      func() error
}{
	{FeatureSchedCLS, "BPF programs of type sched_cls", func() error { return features.HaveProgramType(ebpf.SchedCLS) }},
	{FeatureMapInMap, "array-of-maps (the flow map slot)", func() error { return features.HaveMapType(ebpf.ArrayOfMaps) }},
	{FeatureJiffies64, "the bpf_jiffies64 helper (tick timestamps)", func() error {
		return features.HaveProgramHelper(ebpf.SchedCLS, asm.FnJiffies64)
	}},
	{FeatureRingBuffer, "BPF ring buffers (the map-full path)", func() error { return features.HaveMapType(ebpf.RingBuf) }},
	{FeatureKtimeBootNs, "the bpf_ktime_get_boot_ns helper (clock mapping)", func() error {
		return features.HaveProgramHelper(ebpf.SchedCLS, asm.FnKtimeGetBootNs)
	}},
	{FeatureAtomics, "BPF atomic or (shared flow values)", probeAtomics},
}

var kernelCheck = sync.OnceValue(checkKernel)

// checkKernel names the first required feature the kernel lacks, with the
// version that brought it and kflow's minimum, so that on an old kernel
// the user reads what to upgrade rather than a verifier log. A probe that
// cannot tell (no privileges) is left for Load to report.
func checkKernel() error {
	for _, r := range kernelRequirements {
		if err := r.probe(); errors.Is(err, ebpf.ErrNotSupported) {
			return &briefError{
				msg: fmt.Sprintf("load datapath: %v: %s (Linux %s); kflow needs Linux %s or later",
					ErrMissingFeature, r.what, featureSince[r.name], MinKernel),
				errs: []error{ErrMissingFeature, err},
			}
		}
	}
	return nil
}

// removeMemlock lifts RLIMIT_MEMLOCK, which kernels before 5.11 charge
// BPF maps and programs to (later ones charge the memory cgroup and ignore
// the limit). Without CAP_SYS_RESOURCE the limit stays as it was. kflow
// does this itself rather than through cilium/ebpf's rlimit package,
// whose init creates a BPF map in every kflow command, the file commands
// included (about 1 ms of each start).
func removeMemlock() {
	_ = unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY})
}
