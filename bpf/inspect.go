// SPDX-License-Identifier: Apache-2.0

package bpf

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// Read-only inspection of what kflow has in the kernel: its programs,
// maps and links, found by name (kflow_*) and through the pin directory.
// Nothing here changes state: maps are opened read-only and only looked
// up or iterated, never cleared, so an exporter's exact drain is intact.

// ProgramPrefix starts the name of every kflow program.
const ProgramPrefix = "kflow_"

// PinnedMapNames are the maps a datapath pins by name under its pin
// directory.
func PinnedMapNames() []string { return slices.Clone(pinnedMaps) }

// Flow map names (pinned under the pin directory): flows4_a and flows4_b
// (in flow4_slot) hold IPv4 flows, flows_a and flows_b (in flow_slot) IPv6
// flows; cache4_a and cache4_b (in cache4_slot) are the per-CPU IPv4 flow
// caches in front of the IPv4 maps, cache6_a and cache6_b (in cache6_slot)
// the IPv6 ones.
const (
	MapFlowsA       = kflowMapFlowsA
	MapFlowsB       = kflowMapFlowsB
	MapFlowSlot     = kflowMapFlowSlot
	MapFlows4A      = kflowMapFlows4A
	MapFlows4B      = kflowMapFlows4B
	MapFlow4Slot    = kflowMapFlow4Slot
	MapCache4A      = kflowMapCache4A
	MapCache4B      = kflowMapCache4B
	MapCache4Slot   = kflowMapCache4Slot
	MapCache6A      = kflowMapCache6A
	MapCache6B      = kflowMapCache6B
	MapCache6Slot   = kflowMapCache6Slot
	MapFlowEvents   = kflowMapFlowEvents
	MapStats        = kflowMapStats
	MapDrainedStats = kflowMapDrainedStats
	MapFiltered     = kflowMapFiltered
)

// LoadedProgram is a kflow program loaded in the kernel.
type LoadedProgram struct {
	ID       ebpf.ProgramID
	Name     string
	Type     ebpf.ProgramType
	Tag      string
	LoadedAt time.Time // zero when the kernel does not say
	UID      uint32
	MapIDs   []ebpf.MapID
	// RunCount and RunTime are the kernel's run statistics: its runs and
	// the time they took, counted only while statistics are enabled
	// (EnableRunStats, or sysctl kernel.bpf_stats_enabled=1) and kept
	// when they are not.
	RunCount uint64
	RunTime  time.Duration
}

// EnableRunStats turns on the kernel's run statistics of every BPF
// program (LoadedProgram.RunCount and RunTime) until the returned closer
// is closed. While on, each run of any program reads the clock twice.
func EnableRunStats() (io.Closer, error) {
	c, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return nil, fmt.Errorf("enable bpf run statistics (Linux 5.8 or later and CAP_SYS_ADMIN needed): %w", err)
	}
	return c, nil
}

// LoadedPrograms lists the kernel's kflow programs (name kflow_*), by
// name, then id.
func LoadedPrograms() ([]LoadedProgram, error) {
	var out []LoadedProgram
	bootOffset := wallMinusBoot()
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list programs: %w", err)
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if errors.Is(err, os.ErrNotExist) {
			continue // unloaded meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("open program %d: %w", id, err)
		}
		info, err := p.Info()
		var stats *ebpf.ProgramStats
		if err == nil && strings.HasPrefix(info.Name, ProgramPrefix) {
			stats, err = p.Stats()
		}
		p.Close()
		if err != nil {
			return nil, fmt.Errorf("program %d info: %w", id, err)
		}
		if !strings.HasPrefix(info.Name, ProgramPrefix) {
			continue
		}
		lp := LoadedProgram{ID: id, Name: info.Name, Type: info.Type, Tag: info.Tag,
			RunCount: stats.RunCount, RunTime: stats.Runtime}
		if d, ok := info.LoadTime(); ok && bootOffset != 0 {
			lp.LoadedAt = time.Unix(0, int64(d)+bootOffset)
		}
		lp.UID, _ = info.CreatedByUID()
		lp.MapIDs, _ = info.MapIDs()
		out = append(out, lp)
	}
	slices.SortFunc(out, func(a, b LoadedProgram) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
	return out, nil
}

// wallMinusBoot is the wall clock minus CLOCK_BOOTTIME, in ns.
func wallMinusBoot() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Now().UnixNano() - ts.Nano()
}

// LoadedMap is a map of kflow's in the kernel.
type LoadedMap struct {
	ID                             ebpf.MapID
	Name                           string
	Type                           ebpf.MapType
	KeySize, ValueSize, MaxEntries uint32
	Flags                          uint32
	Frozen                         bool
	// Pinned is the map's pin path under the pin directory, if any.
	Pinned string
	// Entries counts the entries of a hash map (-1 for other types).
	Entries int
	// Active is true for the flow map installed in a flow_slot.
	Active bool
	// Inner is the id of the map a map-in-map slot holds.
	Inner ebpf.MapID
	// Counters are the summed counters of a stats map.
	Counters *Stats
	// Filtered are the counts of the capture filter's map (non-zero
	// entries).
	Filtered []FilteredCount
}

// LoadedMaps lists kflow's maps: those pinned under pinDir (if not empty)
// and those the given programs use, by name, then id.
func LoadedMaps(pinDir string, progs []LoadedProgram) ([]LoadedMap, error) {
	byID := map[ebpf.MapID]*LoadedMap{}
	var order []ebpf.MapID
	addMap := func(m *ebpf.Map, pinned string) error {
		info, err := m.Info()
		if err != nil {
			return fmt.Errorf("map info: %w", err)
		}
		id, _ := info.ID()
		if lm, ok := byID[id]; ok {
			if pinned != "" {
				lm.Pinned = pinned
			}
			return nil
		}
		lm := &LoadedMap{ID: id, Name: info.Name, Type: info.Type, KeySize: info.KeySize, ValueSize: info.ValueSize,
			MaxEntries: info.MaxEntries, Flags: info.Flags, Frozen: info.Frozen(), Pinned: pinned, Entries: -1}
		if err := describeMap(m, lm); err != nil {
			return err
		}
		byID[id] = lm
		order = append(order, id)
		return nil
	}
	if pinDir != "" {
		for _, name := range pinnedMaps {
			path := filepath.Join(pinDir, name)
			m, err := OpenPinnedMap(path)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			err = addMap(m, path)
			m.Close()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
		}
	}
	for _, p := range progs {
		for _, id := range p.MapIDs {
			if _, ok := byID[id]; ok {
				continue
			}
			m, err := ebpf.NewMapFromID(id)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("open map %d: %w", id, err)
			}
			err = addMap(m, "")
			m.Close()
			if err != nil {
				return nil, fmt.Errorf("map %d: %w", id, err)
			}
		}
	}
	// Flow maps a slot holds are used by no program directly.
	for _, id := range slices.Clone(order) {
		lm := byID[id]
		if lm.Inner == 0 {
			continue
		}
		if in, ok := byID[lm.Inner]; ok {
			in.Active = true
			continue
		}
		m, err := ebpf.NewMapFromID(lm.Inner)
		if err != nil {
			continue
		}
		err = addMap(m, "")
		m.Close()
		if err != nil {
			return nil, fmt.Errorf("map %d: %w", lm.Inner, err)
		}
		byID[lm.Inner].Active = true
	}
	out := make([]LoadedMap, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	slices.SortFunc(out, func(a, b LoadedMap) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
	return out, nil
}

// describeMap fills the entry count, slot content and counters of m.
func describeMap(m *ebpf.Map, lm *LoadedMap) error {
	switch lm.Type {
	case ebpf.Hash, ebpf.PerCPUHash, ebpf.LRUHash, ebpf.LRUCPUHash:
		n, err := countMapEntries(m, lm.KeySize)
		if err != nil {
			return err
		}
		lm.Entries = n
	case ebpf.ArrayOfMaps:
		var id ebpf.MapID
		if err := m.Lookup(uint32(0), &id); err == nil {
			lm.Inner = id
		}
	}
	if lm.Name == MapFiltered && IsFilteredMap(m) {
		fs, err := ReadFiltered(m)
		if err != nil {
			return err
		}
		lm.Filtered = fs
	}
	if isStatsMap(lm.Name, lm.Type, lm.ValueSize) {
		st, err := ReadStats(m)
		if err != nil {
			return err
		}
		lm.Counters = &st
	}
	return nil
}

func isStatsMap(name string, t ebpf.MapType, valueSize uint32) bool {
	return (name == MapStats && t == ebpf.PerCPUArray || name == MapDrainedStats && t == ebpf.Array) &&
		valueSize == uint32(sizeofStats)
}

// The sizes of the generated ABI types (TestABISizes pins them to C's).
const (
	sizeofStats     = unsafe.Sizeof(kflowDatapathStats{})
	sizeofFlowKey   = unsafe.Sizeof(kflowFlowKey{})
	sizeofFlowKey4  = unsafe.Sizeof(kflowFlowKey4{})
	sizeofCacheEnt  = unsafe.Sizeof(kflowFlowCacheEntry{})
	sizeofCacheEnt6 = unsafe.Sizeof(kflowFlowCacheEntry6{})
	sizeofFlowValue = unsafe.Sizeof(kflowFlowValue{})
)

// countMapEntries walks the keys of a hash map without reading values.
func countMapEntries(m *ebpf.Map, keySize uint32) (int, error) {
	key := make([]byte, keySize)
	next := make([]byte, keySize)
	var prev any // nil: the first key
	n := 0
	for {
		err := m.NextKey(prev, &next)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("walk map keys: %w", err)
		}
		n++
		copy(key, next)
		prev = key
	}
}

// OpenPinnedMap opens a pinned map read-only.
func OpenPinnedMap(path string) (*ebpf.Map, error) {
	m, err := ebpf.LoadPinnedMap(path, &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("open pinned map %s: %w", path, err)
	}
	return m, nil
}

// ReadStats reads a stats or drained_stats map: the counters summed over
// CPUs.
func ReadStats(m *ebpf.Map) (Stats, error) {
	var st Stats
	if m.Type() == ebpf.PerCPUArray {
		var vals []kflowDatapathStats
		if err := m.Lookup(uint32(0), &vals); err != nil {
			return st, fmt.Errorf("read stats: %w", err)
		}
		for i := range vals {
			st.add(&vals[i])
		}
		return st, nil
	}
	var v kflowDatapathStats
	if err := m.Lookup(uint32(0), &v); err != nil {
		return st, fmt.Errorf("read stats: %w", err)
	}
	st.add(&v)
	return st, nil
}

// FlowEntry is one entry of a kernel flow map, values summed over CPUs.
// Timestamps are in the datapath clock (jiffies, or CLOCK_BOOTTIME ns with
// precise timestamps), as the kernel keeps them.
type FlowEntry struct {
	Src, Dst           netip.Addr
	SrcPort, DstPort   uint16
	Proto              uint8
	ICMPType, ICMPCode uint8
	VLAN, InnerVLAN    uint16
	Ifindex            uint32
	Direction          flow.Direction
	Packets, Octets    uint64
	FirstSeen          uint64
	LastSeen           uint64
	TCPFlags           uint16
	TOS                uint8
	MinTTL, MaxTTL     uint8
	CgroupID           uint64 // the sending socket's cgroup (egress, --cgroups)
}

// IsFlowMap reports whether m has the layout of a kflow flow map (IPv4 or
// general keys) or flow cache.
func IsFlowMap(m *ebpf.Map) bool {
	return (m.Type() == ebpf.Hash || m.Type() == ebpf.PerCPUHash) &&
		(m.KeySize() == uint32(sizeofFlowKey) || m.KeySize() == uint32(sizeofFlowKey4)) &&
		m.ValueSize() == uint32(sizeofFlowValue) || isCacheMap(m)
}

func isCacheMap(m *ebpf.Map) bool {
	return m.Type() == ebpf.PerCPUArray && m.KeySize() == 4 &&
		(m.ValueSize() == uint32(sizeofCacheEnt) || m.ValueSize() == uint32(sizeofCacheEnt6))
}

// DumpFlows iterates a flow map (lookups only: the entries stay for the
// exporter's drain) and calls fn for each entry.
func DumpFlows(m *ebpf.Map, fn func(*FlowEntry) error) error {
	if !IsFlowMap(m) {
		return fmt.Errorf("map %s: not a flow map", m.String())
	}
	if isCacheMap(m) {
		if m.ValueSize() == uint32(sizeofCacheEnt6) {
			return dumpCache(m, cache6Record, fn)
		}
		return dumpCache(m, cache4Record, fn)
	}
	ncpu := 1
	if m.Type() == ebpf.PerCPUHash {
		n, err := ebpf.PossibleCPU()
		if err != nil {
			return fmt.Errorf("possible cpus: %w", err)
		}
		ncpu = n
	}
	if m.KeySize() == uint32(sizeofFlowKey4) {
		return dumpFlows(m, ncpu, keyRecord4, fn)
	}
	return dumpFlows(m, ncpu, keyRecord, fn)
}

func dumpFlows[K any](m *ebpf.Map, ncpu int, keyRec func(*flow.Record, *K), fn func(*FlowEntry) error) error {
	vals := make([]kflowFlowValue, ncpu)
	var key K
	iter := m.Iterate()
	for iter.Next(&key, perCPUOrOne(vals, ncpu)) {
		var r flow.Record
		keyRec(&r, &key)
		var e FlowEntry
		entry(&e, &r, vals)
		if err := fn(&e); err != nil {
			return err
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("walk flow map: %w", err)
	}
	return nil
}

// dumpCache calls fn for each used slot of a flow cache, each CPU's: a
// flow may come more than once (several CPUs, and its flow map entry).
func dumpCache[E any](m *ebpf.Map, rec func(*flow.Record, *E) *kflowFlowValue, fn func(*FlowEntry) error) error {
	var es []E
	for i := range m.MaxEntries() {
		if err := m.Lookup(i, &es); err != nil {
			return fmt.Errorf("read flow cache slot %d: %w", i, err)
		}
		for j := range es {
			var r flow.Record
			v := rec(&r, &es[j])
			if v == nil {
				continue
			}
			var e FlowEntry
			entry(&e, &r, []kflowFlowValue{*v})
			if err := fn(&e); err != nil {
				return err
			}
		}
	}
	return nil
}

// entry merges the per-CPU values of a key (decoded into r) like record
// does, keeping the kernel's timestamps.
func entry(e *FlowEntry, r *flow.Record, vals []kflowFlowValue) {
	*e = FlowEntry{Src: r.Src, Dst: r.Dst, SrcPort: r.SrcPort, DstPort: r.DstPort, Proto: r.Proto,
		ICMPType: r.ICMPType, ICMPCode: r.ICMPCode, VLAN: r.VLAN, InnerVLAN: r.InnerVLAN,
		Ifindex: r.InIf | r.OutIf, Direction: r.Direction}
	for _, c := range vals {
		if c.Packets == 0 {
			continue
		}
		if e.Packets == 0 || c.FirstSeen < e.FirstSeen {
			e.FirstSeen, e.TOS = c.FirstSeen, c.Tos
		}
		if e.Packets == 0 || c.MinTtl < e.MinTTL {
			e.MinTTL = c.MinTtl
		}
		e.MaxTTL = max(e.MaxTTL, c.MaxTtl)
		e.LastSeen = max(e.LastSeen, c.LastSeen)
		e.Packets += c.Packets
		e.Octets += c.Octets
		e.TCPFlags |= uint16(c.TcpFlags) & tcpFlagsMask
		if c.CgroupId != 0 {
			e.CgroupID = c.CgroupId
		}
	}
}

// ReadSlot returns the id of the flow map a flow_slot map holds.
func ReadSlot(m *ebpf.Map) (ebpf.MapID, error) {
	var id ebpf.MapID
	if err := m.Lookup(uint32(0), &id); err != nil {
		return 0, fmt.Errorf("read flow slot: %w", err)
	}
	return id, nil
}

// OpenActiveFlowMap opens the flow map that the datapath pinned under
// pinDir counts into now, as its slot (MapFlow4Slot for IPv4 flows,
// MapFlowSlot for IPv6 flows, MapCache4Slot and MapCache6Slot for the flow
// caches) says: read-only through its pin (path is the
// pin's path), or by id when it is not pinned there (path is empty). Only
// lookups: a running exporter's drain is not disturbed.
func OpenActiveFlowMap(pinDir, slotName string) (m *ebpf.Map, path string, err error) {
	names := []string{MapFlowsA, MapFlowsB}
	switch slotName {
	case MapFlowSlot:
	case MapFlow4Slot:
		names = []string{MapFlows4A, MapFlows4B}
	case MapCache4Slot:
		names = []string{MapCache4A, MapCache4B}
	case MapCache6Slot:
		names = []string{MapCache6A, MapCache6B}
	default:
		return nil, "", fmt.Errorf("%q is not a flow slot (%s, %s, %s or %s)", slotName, MapFlow4Slot, MapFlowSlot, MapCache4Slot, MapCache6Slot)
	}
	slot, err := OpenPinnedMap(filepath.Join(pinDir, slotName))
	if err != nil {
		return nil, "", fmt.Errorf("no pinned kflow datapath in %s: %w", pinDir, err)
	}
	defer slot.Close()
	id, err := ReadSlot(slot)
	if err != nil {
		return nil, "", err
	}
	for _, n := range names {
		path := filepath.Join(pinDir, n)
		m, err := OpenPinnedMap(path)
		if err != nil {
			continue
		}
		if info, err := m.Info(); err == nil {
			if mid, _ := info.ID(); mid == id {
				return m, path, nil
			}
		}
		m.Close()
	}
	m, err = ebpf.NewMapFromID(id)
	if err != nil {
		return nil, "", fmt.Errorf("open active flow map %d: %w", id, err)
	}
	return m, "", nil
}

// LoadedLink is a BPF link whose program is one of kflow's.
type LoadedLink struct {
	ID          link.ID
	Type        string // tcx, xdp, ...
	ProgramID   ebpf.ProgramID
	ProgramName string
	Ifindex     int
	// Ifname is the interface's name when the link's interface is in the
	// calling thread's network namespace, or as its pin names it.
	Ifname    string
	Hook      Hook
	Direction flow.Direction
	// Pinned is the link's pin path under the pin directory, if any.
	Pinned string
}

// LoadedLinks lists the kernel's links to kflow programs, and the links
// pinned under pinDir (if not empty), by id.
func LoadedLinks(pinDir string) ([]LoadedLink, error) {
	pins := map[link.ID]string{}
	if pinDir != "" {
		entries, err := os.ReadDir(filepath.Join(pinDir, "links"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("read link pins: %w", err)
		}
		for _, e := range entries {
			path := filepath.Join(pinDir, "links", e.Name())
			l, err := link.LoadPinnedLink(path, nil) // links refuse BPF_F_RDONLY; this only reads info
			if err != nil {
				return nil, fmt.Errorf("open pinned link %s: %w", path, err)
			}
			info, err := l.Info()
			l.Close()
			if err != nil {
				return nil, fmt.Errorf("pinned link %s: %w", path, err)
			}
			pins[info.ID] = path
		}
	}
	var out []LoadedLink
	it := new(link.Iterator)
	defer func() { it.Close() }()
	for retries := 0; ; {
		if it.Next() {
			info, err := it.Link.Info()
			if err != nil {
				return nil, fmt.Errorf("link %d info: %w", it.ID, err)
			}
			if ll, ok := loadedLink(info, pins); ok {
				out = append(out, ll)
			}
			continue
		}
		err := it.Err()
		if err == nil {
			return out, nil
		}
		// A link another process is creating has its id before it is
		// settled, and the kernel answers EAGAIN for it meanwhile: read
		// on from the last link read, a moment later.
		if !errors.Is(err, unix.EAGAIN) || retries == linkRetries {
			return nil, fmt.Errorf("list links: %w", err)
		}
		retries++
		last := it.ID
		it.Close()
		it = &link.Iterator{ID: last}
		time.Sleep(time.Millisecond)
	}
}

// linkRetries bounds how often LoadedLinks reads on past a link that is
// not settled yet; attaching settles a link within microseconds.
const linkRetries = 100

// loadedLink describes a link to a kflow program, or one pinned in pins;
// false for the others.
func loadedLink(info *link.Info, pins map[link.ID]string) (LoadedLink, bool) {
	name := progName(info.Program)
	pinned, isPinned := pins[info.ID]
	if !strings.HasPrefix(name, ProgramPrefix) && !isPinned {
		return LoadedLink{}, false
	}
	ll := LoadedLink{ID: info.ID, Type: linkTypeName(info.Type), ProgramID: info.Program, ProgramName: name, Pinned: pinned}
	if x := info.TCX(); x != nil {
		ll.Ifindex, ll.Hook = int(x.Ifindex), HookTCX
		if ebpf.AttachType(x.AttachType) == ebpf.AttachTCXEgress {
			ll.Direction = flow.Egress
		}
	}
	if x := info.XDP(); x != nil {
		ll.Ifindex, ll.Hook = int(x.Ifindex), HookXDP
	}
	ll.Ifname = linkIfname(ll, pinned)
	return ll, true
}

// linkIfname names a link's interface: from this namespace when the
// program is really attached to that ifindex here, else from its pin.
func linkIfname(ll LoadedLink, pinned string) string {
	if ll.Ifindex != 0 {
		if l, err := netlink.LinkByIndex(ll.Ifindex); err == nil {
			if atts, err := Attached(ll.Ifindex); err == nil {
				for _, a := range atts {
					if a.ProgramID == ll.ProgramID && a.Hook == ll.Hook {
						return l.Attrs().Name
					}
				}
			}
		}
	}
	if pinned != "" {
		// IFNAME_HOOK_DIRECTION; interface names may hold underscores.
		base := filepath.Base(pinned)
		suffix := fmt.Sprintf("_%s_%s", ll.Hook, ll.Direction)
		if name, ok := strings.CutSuffix(base, suffix); ok {
			return name
		}
	}
	return ""
}

func linkTypeName(t link.Type) string {
	switch t {
	case link.TCXType:
		return "tcx"
	case link.XDPType:
		return "xdp"
	case link.NetkitType:
		return "netkit"
	}
	return fmt.Sprintf("type_%d", t)
}
