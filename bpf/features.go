// SPDX-License-Identifier: Apache-2.0

package bpf

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Feature names, as ProbeFeatures reports them (stable: scripts read them).
const (
	FeatureBPFSyscall  = "bpf_syscall"
	FeatureKernelBTF   = "kernel_btf"
	FeatureSchedCLS    = "prog_sched_cls"
	FeatureTCX         = "tcx"
	FeatureLegacyTC    = "tc_clsact"
	FeatureXDP         = "prog_xdp"
	FeatureXDPVLANMeta = "kfunc_xdp_rx_vlan_tag"
	FeatureRingBuffer  = "map_ringbuf"
	FeatureMapInMap    = "map_array_of_maps"
	FeaturePerCPUHash  = "map_percpu_hash"
	FeatureBatchOps    = "map_batch_ops"
	FeatureJiffies64   = "helper_jiffies64"
	FeatureKtimeBootNs = "helper_ktime_get_boot_ns"
	FeatureAtomics     = "atomics"
	FeatureCgroups     = "helper_skb_cgroup_id"
	FeatureBPFFS       = "bpffs"
	FeatureCapBPF      = "cap_bpf"
	FeatureCapNetAdmin = "cap_net_admin"
	FeatureCapPerfmon  = "cap_perfmon"
	FeatureCapSysAdmin = "cap_sys_admin"
	kernelBTFPath      = "/sys/kernel/btf/vmlinux"
	capNetAdmin        = 12
	capSysAdmin        = 21
	capPerfmon         = 38
	capBPF             = 39
)

// Feature is one thing the kernel (or the process) offers or lacks.
type Feature struct {
	Name string `json:"name"`
	// Available is what the probe found; false also when it could not tell
	// (then Error says why).
	Available bool `json:"available"`
	// Required features must be available for kflow to run at all.
	Required bool   `json:"required"`
	Detail   string `json:"detail,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Choices are the decisions kflow makes from the features.
type Choices struct {
	// Hook is where "--hook auto" attaches: tcx, tc or "" (none works).
	Hook Hook `json:"hook"`
	// XDP reports whether "--hook xdp" is possible.
	XDP bool `json:"xdp"`
	// Pinning says whether maps and links can be pinned (restart without
	// loss): "yes", "mount" (bpffs is not mounted at /sys/fs/bpf yet; the
	// exporter mounts it) or "no".
	Pinning string `json:"pinning"`
	// Drain is how flow maps are read and cleared: "batch" or "iterate".
	Drain string `json:"drain"`
	// MapValues lists the value modes that work: shared, percpu.
	MapValues []string `json:"map_values"`
	// Timestamps lists the clock modes that work: tick, precise.
	Timestamps []string `json:"timestamps"`
	// XDPLimit says what the XDP hook does not see, when XDP is possible.
	XDPLimit string `json:"xdp_limit,omitempty"`
}

// XDPVLANLimit is what kflow's XDP program does not see: reading a tag the
// NIC stripped takes the metadata kfunc bpf_xdp_metadata_rx_vlan_tag
// (Linux 6.8, and drivers that implement it), which only a device-bound
// program (loaded for one interface) may call; kflow loads one XDP
// program for every interface.
const XDPVLANLimit = "VLAN tags the NIC strips into metadata (rx VLAN offload) are not seen by --hook xdp: " +
	"such packets are keyed as untagged; use tcx or tc, or turn the offload off (ethtool -K IFACE rxvlan off)"

// Features is the result of ProbeFeatures.
type Features struct {
	Features []Feature `json:"features"`
	Choices  Choices   `json:"choices"`
	// CanRun is true when every required feature is available.
	CanRun bool `json:"can_run"`
	// Missing names the required features that are not available.
	Missing []string `json:"missing"`
}

// Get returns the named feature.
func (f *Features) Get(name string) (Feature, bool) {
	for _, x := range f.Features {
		if x.Name == name {
			return x, true
		}
	}
	return Feature{}, false
}

// Has reports whether the named feature is available.
func (f *Features) Has(name string) bool {
	x, ok := f.Get(name)
	return ok && x.Available
}

// ProbeFeatures asks the kernel what it offers kflow, by trying each thing
// (creating a map, loading a tiny program, attaching inside a throwaway
// network namespace), never by parsing the kernel version. It changes no
// state that outlives the call: it attaches nothing to the host's
// interfaces and mounts nothing.
func ProbeFeatures() *Features {
	removeMemlock()
	var out Features
	add := func(name string, required bool, err error, detail string) {
		f := Feature{Name: name, Required: required, Available: err == nil, Detail: detail}
		if err != nil && !errors.Is(err, ebpf.ErrNotSupported) && !errors.Is(err, errAbsent) {
			f.Error = err.Error()
		}
		out.Features = append(out.Features, f)
	}

	add(FeatureBPFSyscall, true, probeSyscall(), "create a BPF map")
	_, err := os.Stat(kernelBTFPath)
	if err != nil {
		err = fmt.Errorf("%w: %s", errAbsent, kernelBTFPath)
	}
	add(FeatureKernelBTF, false, err, kernelBTFPath+" (kflow needs no CO-RE)")
	add(FeatureSchedCLS, true, features.HaveProgramType(ebpf.SchedCLS), "program type sched_cls (TC and TCX)")
	tcx := errAbsent
	if HaveTCX() {
		tcx = nil
	}
	add(FeatureTCX, false, tcx, "TCX links (preferred hook)")
	tcErr, xdpErr := probeAttachInNetns()
	add(FeatureLegacyTC, false, tcErr, "clsact qdisc with a cls_bpf filter (fallback hook)")
	if xdpErr == nil {
		xdpErr = features.HaveProgramType(ebpf.XDP)
	}
	add(FeatureXDP, false, xdpErr, "program type xdp (--hook xdp)")
	add(FeatureXDPVLANMeta, false, probeKfunc("bpf_xdp_metadata_rx_vlan_tag"),
		"XDP metadata kfunc for a VLAN tag the NIC stripped (not used by kflow: see the XDP limit below)")
	add(FeatureRingBuffer, true, features.HaveMapType(ebpf.RingBuf), "map-full fallback path")
	add(FeatureMapInMap, true, features.HaveMapType(ebpf.ArrayOfMaps), "flow map slot (race-free drain)")
	add(FeaturePerCPUHash, false, features.HaveMapType(ebpf.PerCPUHash), "--map-values percpu")
	add(FeatureBatchOps, false, probeBatch(), "batch lookup-and-delete drain")
	add(FeatureJiffies64, true, features.HaveProgramHelper(ebpf.SchedCLS, asm.FnJiffies64), "tick timestamps")
	add(FeatureKtimeBootNs, true, features.HaveProgramHelper(ebpf.SchedCLS, asm.FnKtimeGetBootNs), "precise timestamps, clock mapping")
	add(FeatureAtomics, true, probeAtomics(), "atomic add and or (shared map values)")
	add(FeatureCgroups, false, probeCgroups(), "the sending socket's cgroup in TC programs (flows attributed to cgroups)")
	bpffs := checkBPFFS(bpffsRoot)
	if bpffs != nil {
		bpffs = fmt.Errorf("%w: %s", errAbsent, bpffsRoot)
	}
	add(FeatureBPFFS, false, bpffs, "bpffs at "+bpffsRoot+" (pinning)")

	caps, capErr := effectiveCaps()
	for _, c := range []struct {
		name string
		bit  uint
		why  string
	}{
		{FeatureCapBPF, capBPF, "load programs, create maps"},
		{FeatureCapNetAdmin, capNetAdmin, "attach to interfaces"},
		{FeatureCapPerfmon, capPerfmon, "read kernel memory in programs"},
		{FeatureCapSysAdmin, capSysAdmin, "mount bpffs, or in place of CAP_BPF"},
	} {
		err := capErr
		if err == nil && caps&(1<<c.bit) == 0 {
			err = errAbsent
		}
		add(c.name, false, err, c.why)
	}

	ch := &out.Choices
	switch {
	case out.Has(FeatureTCX):
		ch.Hook = HookTCX
	case out.Has(FeatureSchedCLS):
		// The netns probe may not be possible (no CAP_SYS_ADMIN): legacy
		// TC is then the hook to try.
		if f, _ := out.Get(FeatureLegacyTC); f.Available || f.Error != "" {
			ch.Hook = HookTC
		}
	}
	ch.XDP = out.Has(FeatureXDP)
	if ch.XDP {
		ch.XDPLimit = XDPVLANLimit
	}
	switch {
	case out.Has(FeatureBPFFS):
		ch.Pinning = "yes"
	case capErr == nil && caps&(1<<capSysAdmin) != 0:
		ch.Pinning = "mount"
	default:
		ch.Pinning = "no"
	}
	ch.Drain = "iterate"
	if out.Has(FeatureBatchOps) {
		ch.Drain = "batch"
	}
	ch.MapValues = []string{}
	if out.Has(FeatureAtomics) {
		ch.MapValues = append(ch.MapValues, "shared")
	}
	if out.Has(FeaturePerCPUHash) {
		ch.MapValues = append(ch.MapValues, "percpu")
	}
	ch.Timestamps = []string{}
	if out.Has(FeatureJiffies64) {
		ch.Timestamps = append(ch.Timestamps, "tick")
	}
	if out.Has(FeatureKtimeBootNs) {
		ch.Timestamps = append(ch.Timestamps, "precise")
	}

	out.Missing = []string{}
	for _, f := range out.Features {
		if f.Required && !f.Available {
			out.Missing = append(out.Missing, f.Name)
		}
	}
	if ch.Hook == "" {
		out.Missing = append(out.Missing, "hook (tcx or tc_clsact)")
	}
	out.CanRun = len(out.Missing) == 0
	return &out
}

// probeCgroups checks the helper that attributes egress flows to the
// sending socket's cgroup in TC programs: a kernel built without
// CONFIG_SOCK_CGROUP_DATA lacks it whatever its version.
func probeCgroups() error {
	if err := features.HaveProgramHelper(ebpf.SchedCLS, asm.FnSkbCgroupId); err != nil {
		return fmt.Errorf("helper bpf_skb_cgroup_id: %w", err)
	}
	return nil
}

// probeKfunc looks a kernel function up in the kernel's BTF.
func probeKfunc(name string) error {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return fmt.Errorf("%w: kernel BTF: %w", errAbsent, err)
	}
	var fn *btf.Func
	if err := spec.TypeByName(name, &fn); err != nil {
		return fmt.Errorf("%w: %s", errAbsent, name)
	}
	return nil
}

// errAbsent marks a feature that is simply not there (not a probe failure).
var errAbsent = errors.New("absent")

func probeSyscall() error {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return err
	}
	return m.Close()
}

// probeBatch tries the batch operations the drain uses on a small hash map.
func probeBatch() error {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 4})
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Put(uint32(1), uint64(1)); err != nil {
		return err
	}
	keys := make([]uint32, 4)
	vals := make([]uint64, 4)
	var cursor ebpf.MapBatchCursor
	n, err := m.BatchLookup(&cursor, keys, vals, nil)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		err = nil
	}
	if err != nil {
		return err
	}
	if n != 1 || keys[0] != 1 || vals[0] != 1 {
		return fmt.Errorf("batch lookup returned %d entries", n)
	}
	return nil
}

// probeAtomics loads a program doing the atomic operations the datapath
// uses on shared values: a 64-bit add and a 32-bit or into a map value.
func probeAtomics() error {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return err
	}
	defer m.Close()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.SchedCLS,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.StoreImm(asm.RFP, -4, 0, asm.Word),
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "out"),
			asm.Mov.Imm(asm.R1, 1),
			asm.AddAtomic.Mem(asm.R0, asm.R1, asm.DWord, 0),
			asm.OrAtomic.Mem(asm.R0, asm.R1, asm.Word, 0),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
			asm.Return(),
		},
	})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) || errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("%w: %w", ebpf.ErrNotSupported, err)
		}
		return err
	}
	return prog.Close()
}

// probeAttachInNetns attaches a do-nothing program with legacy TC and with
// XDP (generic mode) to the loopback interface of a new, anonymous network
// namespace that disappears with the probing thread: nothing on the host
// changes. It needs CAP_SYS_ADMIN for the namespace.
func probeAttachInNetns() (tcErr, xdpErr error) {
	type result struct{ tc, xdp error }
	done := make(chan result, 1)
	go func() {
		// The thread is never unlocked: the runtime discards it, and the
		// namespace with it, when this goroutine ends.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			err = fmt.Errorf("cannot probe in a private network namespace: %w", err)
			done <- result{err, nil}
			return
		}
		done <- result{probeTC(), probeXDPAttach()}
	}()
	r := <-done
	return r.tc, r.xdp
}

func probeTC() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.SchedCLS, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, -1), asm.Return()},
	})
	if err != nil {
		return err
	}
	defer prog.Close()
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("loopback in probe namespace: %w", err)
	}
	qdisc := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: lo.Attrs().Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	if err := h.QdiscAdd(qdisc); err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("%w: clsact qdisc: %w", errAbsent, err)
		}
		return fmt.Errorf("add clsact qdisc: %w", err)
	}
	f := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: lo.Attrs().Index, Parent: netlink.HANDLE_MIN_INGRESS,
			Handle: tcFilterHandle, Priority: tcFilterPriority, Protocol: unix.ETH_P_ALL},
		Fd: prog.FD(), Name: "kflow_probe", DirectAction: true,
	}
	if err := h.FilterAdd(f); err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("%w: cls_bpf filter: %w", errAbsent, err)
		}
		return fmt.Errorf("add cls_bpf filter: %w", err)
	}
	return nil
}

func probeXDPAttach() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()}, // XDP_PASS
	})
	if err != nil {
		return err
	}
	defer prog.Close()
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("loopback in probe namespace: %w", err)
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: lo.Attrs().Index, Flags: link.XDPGenericMode})
	if err != nil {
		return err
	}
	return l.Close()
}

// effectiveCaps reads the process's effective capability set.
func effectiveCaps() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	if err := s.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no CapEff in /proc/self/status")
}
