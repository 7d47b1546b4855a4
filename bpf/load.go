// SPDX-License-Identifier: Apache-2.0

package bpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
)

// Defaults for Config.
const (
	DefaultMapEntries      = 65536
	DefaultCacheEntries    = 1024
	DefaultRingBufferBytes = 1 << 20
	DefaultPinDir          = "/sys/fs/bpf/kflow"
)

// Config sets the datapath's load-time options.
type Config struct {
	// MapEntries is the capacity of each flow map: the two IPv4 maps and
	// the two IPv6 maps (the active one of each and its spare).
	MapEntries uint32
	// CacheEntries is the number of slots of each per-CPU flow cache, the
	// IPv4 one and the IPv6 one (0: DefaultCacheEntries), a power of two.
	// NoCache turns the caches off: every packet is then counted in its
	// flow map (the cache maps are still created, and drained, so that
	// pins stay compatible).
	CacheEntries uint32
	NoCache      bool
	// RingBufferBytes is the size of the map-full fallback ring buffer,
	// a power of two multiple of the page size.
	RingBufferBytes uint32
	// Sampling counts one packet in Sampling (0 or 1: every packet).
	Sampling uint32
	// SamplingCount keeps every Sampling-th packet of each CPU
	// (systematic count-based sampling) instead of each packet with
	// probability 1/Sampling (random, the default).
	SamplingCount bool
	// PerCPUValues keeps one value per CPU and flow, summed at drain
	// time, instead of one shared value per flow updated with atomic adds.
	// Both are exact; shared values drain faster and their memory does
	// not grow with the number of CPUs.
	PerCPUValues bool
	// PreciseTime timestamps packets with a nanosecond clock instead of
	// the kernel tick (jiffies, 1 to 10 ms), at a cost per packet.
	PreciseTime bool
	// PinDir, when set, is a bpffs directory where the maps (and links)
	// are pinned; maps already pinned there are adopted.
	PinDir string
	// MarkSynNoAck keeps flow.TCPSynNoAck in the drained records' TCP
	// flags (for the biflow cache); otherwise it is cleared.
	MarkSynNoAck bool
	// Filter is a capture filter in tcpdump's syntax (see bpf/pcapfilter):
	// IP packets it rejects are counted per interface in the filtered
	// map instead of in flows. Empty: every packet is counted.
	Filter string
	// Cgroups attributes each egress flow of a local socket to the
	// socket's cgroup (flow.Record.CgroupID): read once per flow entry
	// (or kernel flow cache slot a flow takes) and drain, not per packet.
	// Ingress flows get theirs in the exporter's flow cache, from their
	// egress direction. Load turns it off, and says why in
	// Datapath.CgroupsUnavailable, on a kernel without the helpers.
	Cgroups bool
}

func (c *Config) withDefaults() Config {
	out := *c
	if out.MapEntries == 0 {
		out.MapEntries = DefaultMapEntries
	}
	if out.RingBufferBytes == 0 {
		out.RingBufferBytes = DefaultRingBufferBytes
	}
	if out.Sampling == 0 {
		out.Sampling = 1
	}
	if out.CacheEntries == 0 {
		out.CacheEntries = DefaultCacheEntries
	}
	return out
}

// Datapath is a loaded set of kflow programs and maps.
type Datapath struct {
	cfg   Config
	objs  kflowObjects
	ring  *ringbuf.Reader
	links []*Attachment

	// The two flow maps of IPv6 flows (and of IPv4 flows an earlier
	// datapath counted there); active is the one installed in flow_slot.
	active, spare *ebpf.Map
	// The two IPv4 flow maps; active4 is the one installed in flow4_slot.
	active4, spare4 *ebpf.Map
	// The two per-CPU IPv4 flow caches; cache is the one in cache4_slot.
	cache, cacheSpare *ebpf.Map
	// The two per-CPU IPv6 flow caches; cache6 is the one in cache6_slot.
	cache6, cache6Spare *ebpf.Map
	// Whether the maps were adopted from a previous daemon's pins.
	adopted bool

	drain      drainState
	nsPerJiffy int64
	// cgroupsErr says why Config.Cgroups was turned off.
	cgroupsErr error
}

// pinnedMaps are the maps that survive a daemon restart when pinning.
var pinnedMaps = []string{
	kflowMapFlowsA, kflowMapFlowsB, kflowMapFlowSlot,
	kflowMapFlows4A, kflowMapFlows4B, kflowMapFlow4Slot,
	kflowMapCache4A, kflowMapCache4B, kflowMapCache4Slot,
	kflowMapCache6A, kflowMapCache6B, kflowMapCache6Slot,
	kflowMapFlowEvents, kflowMapStats, kflowMapDrainedStats, kflowMapFiltered,
}

// Load loads the datapath into the kernel. It does not attach anything.
func Load(cfg Config) (*Datapath, error) {
	cfg = cfg.withDefaults()
	if cfg.RingBufferBytes&(cfg.RingBufferBytes-1) != 0 || cfg.RingBufferBytes < uint32(os.Getpagesize()) {
		return nil, fmt.Errorf("ring buffer size %d: %w: must be a power of two of at least %d bytes",
			cfg.RingBufferBytes, ErrInvalidConfig, os.Getpagesize())
	}
	if cfg.CacheEntries&(cfg.CacheEntries-1) != 0 {
		return nil, fmt.Errorf("flow cache of %d entries: %w: must be a power of two", cfg.CacheEntries, ErrInvalidConfig)
	}
	if err := checkPrerequisites(cfg.PinDir); err != nil {
		return nil, err
	}
	removeMemlock()
	if err := kernelCheck(); err != nil {
		return nil, err
	}

	spec, err := loadKflow()
	if err != nil {
		return nil, fmt.Errorf("load datapath spec: %w", err)
	}
	flowType := ebpf.Hash
	if cfg.PerCPUValues {
		flowType = ebpf.PerCPUHash
	}
	for _, name := range []string{kflowMapFlowsA, kflowMapFlowsB, kflowMapFlows4A, kflowMapFlows4B} {
		spec.Maps[name].Type = flowType
		spec.Maps[name].MaxEntries = cfg.MapEntries
	}
	for _, name := range []string{kflowMapFlowSlot, kflowMapFlow4Slot} {
		slot := spec.Maps[name]
		slot.InnerMap.Type = flowType
		slot.InnerMap.MaxEntries = cfg.MapEntries
	}
	for _, name := range []string{kflowMapCache4A, kflowMapCache4B, kflowMapCache6A, kflowMapCache6B} {
		spec.Maps[name].MaxEntries = cfg.CacheEntries
	}
	spec.Maps[kflowMapCache4Slot].InnerMap.MaxEntries = cfg.CacheEntries
	spec.Maps[kflowMapCache6Slot].InnerMap.MaxEntries = cfg.CacheEntries
	if !cfg.NoCache {
		if err := spec.Variables[kflowVarCfgCache].Set(uint8(1)); err != nil {
			return nil, fmt.Errorf("set flow cache: %w", err)
		}
		if err := spec.Variables[kflowVarCfgCacheMask].Set(cfg.CacheEntries - 1); err != nil {
			return nil, fmt.Errorf("set flow cache size: %w", err)
		}
	}
	spec.Maps[kflowMapFlowEvents].MaxEntries = cfg.RingBufferBytes
	// The ring buffer's value type is only there for bpf2go (it names the
	// records' type); the kernel takes a ring buffer without one.
	spec.Maps[kflowMapFlowEvents].Value = nil
	if err := spec.Variables["cfg_sampling"].Set(cfg.Sampling); err != nil {
		return nil, fmt.Errorf("set sampling: %w", err)
	}
	if cfg.SamplingCount {
		if err := spec.Variables[kflowVarCfgSamplingCount].Set(uint8(1)); err != nil {
			return nil, fmt.Errorf("set sampling method: %w", err)
		}
	}
	shared := uint8(1)
	if cfg.PerCPUValues {
		shared = 0
	}
	if err := spec.Variables["cfg_shared_values"].Set(shared); err != nil {
		return nil, fmt.Errorf("set value mode: %w", err)
	}

	precise := uint8(0)
	if cfg.PreciseTime {
		precise = 1
	}
	if err := spec.Variables["cfg_precise_time"].Set(precise); err != nil {
		return nil, fmt.Errorf("set time mode: %w", err)
	}
	if err := setFilter(spec, cfg.Filter); err != nil {
		return nil, err
	}
	var cgroupsErr error
	if cfg.Cgroups {
		if cgroupsErr = probeCgroups(); cgroupsErr != nil {
			cfg.Cgroups = false
			cgroupsErr = fmt.Errorf("%w: cgroup attribution needs the TC helper bpf_skb_cgroup_id (Linux %s, CONFIG_SOCK_CGROUP_DATA): %w",
				ErrMissingFeature, featureSince[FeatureCgroups], cgroupsErr)
		} else if err := spec.Variables[kflowVarCfgCgroups].Set(uint8(1)); err != nil {
			return nil, fmt.Errorf("set cgroup attribution: %w", err)
		}
	}

	opts := &ebpf.CollectionOptions{}
	if cfg.PinDir != "" {
		if err := os.MkdirAll(cfg.PinDir, 0o700); err != nil {
			return nil, fmt.Errorf("create pin directory: %w", err)
		}
		opts.Maps.PinPath = cfg.PinDir
		for _, name := range pinnedMaps {
			spec.Maps[name].Pinning = ebpf.PinByName
		}
	}

	d := &Datapath{cfg: cfg, cgroupsErr: cgroupsErr}
	d.adopted = cfg.PinDir != "" && pinExists(filepath.Join(cfg.PinDir, kflowMapFlowSlot))
	if err := spec.LoadAndAssign(&d.objs, opts); err != nil {
		return nil, explainLoadError(err, cfg.PinDir)
	}
	if err := d.installActive(); err != nil {
		d.objs.Close()
		return nil, err
	}
	if err := createFilteredOverflow(d.objs.Filtered); err != nil {
		d.objs.Close()
		return nil, err
	}
	if d.nsPerJiffy, err = kernelTick(d.objs.KflowClock, d.objs.Clock); err != nil {
		d.objs.Close()
		return nil, err
	}
	if err := d.drain.init(d); err != nil {
		d.objs.Close()
		return nil, err
	}
	d.ring, err = ringbuf.NewReader(d.objs.FlowEvents)
	if err != nil {
		d.objs.Close()
		return nil, fmt.Errorf("open flow event ring buffer: %w", err)
	}
	return d, nil
}

// installActive puts a map in each slot (flow_slot, flow4_slot,
// cache4_slot, cache6_slot), or finds which one an adopted slot already holds. Pins of
// an earlier datapath without the IPv4 maps or the cache have no such
// slot: Load created it empty.
func (d *Datapath) installActive() error {
	var err error
	d.active, d.spare, err = installSlot(d.objs.FlowSlot, d.objs.FlowsA, d.objs.FlowsB)
	if err != nil {
		return err
	}
	d.active4, d.spare4, err = installSlot(d.objs.Flow4Slot, d.objs.Flows4A, d.objs.Flows4B)
	if err != nil {
		return err
	}
	d.cache, d.cacheSpare, err = installSlot(d.objs.Cache4Slot, d.objs.Cache4A, d.objs.Cache4B)
	if err != nil {
		return err
	}
	d.cache6, d.cache6Spare, err = installSlot(d.objs.Cache6Slot, d.objs.Cache6A, d.objs.Cache6B)
	return err
}

func installSlot(slot, a, b *ebpf.Map) (active, spare *ebpf.Map, err error) {
	var id ebpf.MapID
	if err := slot.Lookup(uint32(0), &id); err == nil && id != 0 {
		infoB, err := b.Info()
		if err != nil {
			return nil, nil, fmt.Errorf("flow map info: %w", err)
		}
		if idB, _ := infoB.ID(); idB == id {
			a, b = b, a
		}
		return a, b, nil
	}
	if err := slot.Put(uint32(0), a); err != nil {
		return nil, nil, fmt.Errorf("install flow map: %w", err)
	}
	return a, b, nil
}

// CgroupsUnavailable says why Config.Cgroups was turned off (the kernel
// lacks a helper), or nil.
func (d *Datapath) CgroupsUnavailable() error { return d.cgroupsErr }

// Adopted reports whether the maps came from a previous daemon's pins.
func (d *Datapath) Adopted() bool { return d.adopted }

// Config returns the configuration the datapath was loaded with.
func (d *Datapath) Config() Config { return d.cfg }

// Close detaches every attachment and closes the datapath. Pinned maps
// stay pinned unless Unpin is called first or after.
func (d *Datapath) Close() error {
	var errs []error
	for _, a := range d.links {
		errs = append(errs, a.detach())
	}
	d.links = nil
	return errors.Join(append(errs, d.closeObjects())...)
}

// Release closes the datapath but leaves it attached and pinned, for a
// daemon that restarts (an upgrade): the next Load with the same PinDir
// adopts the maps, and Attach adopts the links, so counting never stops.
func (d *Datapath) Release() error {
	if d.cfg.PinDir == "" {
		return fmt.Errorf("keep programs attached: %w: needs a pin directory", ErrInvalidConfig)
	}
	var errs []error
	for _, a := range d.links {
		errs = append(errs, a.release())
	}
	d.links = nil
	return errors.Join(append(errs, d.closeObjects())...)
}

// Unpin removes the datapath's map pins from bpffs (link pins are removed
// when their attachment is detached).
func (d *Datapath) Unpin() error {
	var errs []error
	for _, m := range []*ebpf.Map{d.objs.FlowsA, d.objs.FlowsB, d.objs.FlowSlot,
		d.objs.Flows4A, d.objs.Flows4B, d.objs.Flow4Slot,
		d.objs.Cache4A, d.objs.Cache4B, d.objs.Cache4Slot,
		d.objs.Cache6A, d.objs.Cache6B, d.objs.Cache6Slot, d.objs.FlowEvents, d.objs.Stats, d.objs.DrainedStats, d.objs.Filtered} {
		if m != nil && m.IsPinned() {
			errs = append(errs, m.Unpin())
		}
	}
	if d.cfg.PinDir != "" {
		_ = os.Remove(filepath.Join(d.cfg.PinDir, "links"))
		_ = os.Remove(d.cfg.PinDir)
	}
	return errors.Join(errs...)
}

func (d *Datapath) closeObjects() error {
	var errs []error
	if d.ring != nil {
		errs = append(errs, d.ring.Close())
		d.ring = nil
	}
	errs = append(errs, d.objs.Close())
	return errors.Join(errs...)
}

func pinExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
