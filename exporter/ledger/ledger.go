// SPDX-License-Identifier: Apache-2.0

// Package ledger keeps, in a small pinned BPF map beside the datapath's
// pins, the exporter's running totals of packets and octets drained from
// the kernel and handed to each collector, so that an exporter adopting
// the pins of one that ended without its final export (SIGKILL, crash)
// learns what its predecessor drained but never sent: the flow cache's
// unexported deltas and the records still queued for a collector. The
// datapath's programs never touch this map; only user space reads and
// writes it.
//
// What a kill can lose is bounded by what the cache and the queues hold:
// at most the packets counted since each flow's last record (the active
// timeout bounds that age, the cache size the number of flows), plus at
// most the collector queue's batches.
package ledger

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cilium/ebpf"
)

// MapName is the ledger's pin name in the pin directory.
const MapName = "kflow_ledger"

// maxAccounts bounds the map: the drained totals and one entry per
// collector (and the local files).
const maxAccounts = 64

// drainedKey is the entry of the drained totals, startedKey the entry of
// the time the maps were created; accounts use the FNV-1a hash of their
// name.
const (
	drainedKey uint64 = 0
	startedKey uint64 = 1<<64 - 1
)

// value is one entry: for the drained entry, the totals drained since the
// maps were created; for an account, the totals handed to it (sent, or
// counted lost on the way) and, in Lost*, what predecessors drained but
// never handed to it.
type value struct {
	Packets, Octets         uint64
	LostPackets, LostOctets uint64
}

// Counts are packets and octets.
type Counts struct {
	Packets, Octets uint64
}

// Ledger is an open pinned ledger.
type Ledger struct {
	m        *ebpf.Map
	mu       sync.Mutex // guards drained
	drained  value
	accounts []*Account
	started  time.Time
}

// Account is one collector's entry. Handed may be called from several
// goroutines.
type Account struct {
	Name string
	l    *Ledger
	key  uint64
	mu   sync.Mutex
	v    value
	// found is what predecessors drained but never handed to this
	// account, found by Open: 0 unless the previous exporter died.
	found Counts
}

func key(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	k := h.Sum64()
	if k == drainedKey || k == startedKey {
		k = 1
	}
	return k
}

// Open opens the ledger pinned in dir, or creates and pins it. adopt says
// whether the datapath's maps were adopted from a previous exporter: only
// then does an existing ledger describe them (otherwise it is replaced).
// Each named account gets an entry; for an account the ledger already
// had, what the predecessor drained but did not hand to it is moved to
// its lost totals (see Found and Lost). Entries of accounts no longer
// named are dropped.
func Open(dir string, adopt bool, names []string) (*Ledger, error) {
	if len(names)+1 > maxAccounts {
		return nil, fmt.Errorf("ledger: %d collectors exceed %d", len(names), maxAccounts-1)
	}
	path := filepath.Join(dir, MapName)
	if !adopt {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("ledger: remove stale %s: %w", path, err)
		}
	}
	spec := &ebpf.MapSpec{Name: MapName, Type: ebpf.Hash, KeySize: 8, ValueSize: 32, MaxEntries: maxAccounts,
		Pinning: ebpf.PinByName}
	m, err := ebpf.NewMapWithOptions(spec, ebpf.MapOptions{PinPath: dir})
	if err != nil {
		return nil, fmt.Errorf("ledger: open %s: %w", path, err)
	}
	l := &Ledger{m: m}
	if err := l.load(names); err != nil {
		m.Close()
		return nil, err
	}
	return l, nil
}

func (l *Ledger) load(names []string) error {
	old := map[uint64]value{}
	var k uint64
	var v value
	it := l.m.Iterate()
	for it.Next(&k, &v) {
		old[k] = v
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("ledger: read: %w", err)
	}
	l.drained = old[drainedKey]
	if err := l.m.Put(drainedKey, l.drained); err != nil {
		return fmt.Errorf("ledger: write: %w", err)
	}
	// When the maps were created: their counters (the ignored ones, the
	// drained totals) count from then, across the exporters that adopt
	// them. A ledger of a version that did not keep it starts now.
	if v, ok := old[startedKey]; ok && v.Packets != 0 {
		l.started = time.Unix(0, int64(v.Packets))
	} else {
		l.started = time.Now()
		if err := l.m.Put(startedKey, value{Packets: uint64(l.started.UnixNano())}); err != nil {
			return fmt.Errorf("ledger: write: %w", err)
		}
	}
	keep := map[uint64]bool{drainedKey: true, startedKey: true}
	for _, name := range names {
		a := &Account{Name: name, l: l, key: key(name)}
		if ov, ok := old[a.key]; ok {
			a.v = ov
			// What the predecessor drained and never handed to this
			// account is lost to it.
			if l.drained.Packets >= ov.Packets && l.drained.Octets >= ov.Octets {
				a.found = Counts{l.drained.Packets - ov.Packets, l.drained.Octets - ov.Octets}
			}
			a.v.LostPackets += a.found.Packets
			a.v.LostOctets += a.found.Octets
		}
		// A new account starts even with the drained totals: it was
		// handed nothing because it did not exist.
		a.v.Packets, a.v.Octets = l.drained.Packets, l.drained.Octets
		if err := l.m.Put(a.key, a.v); err != nil {
			return fmt.Errorf("ledger: write %s: %w", name, err)
		}
		keep[a.key] = true
		l.accounts = append(l.accounts, a)
	}
	for k := range old {
		if !keep[k] {
			_ = l.m.Delete(k)
		}
	}
	return nil
}

// Started returns when the maps the ledger describes were created (when
// an exporter first opened it): the counters of the datapath count from
// then, whichever exporter reads them now.
func (l *Ledger) Started() time.Time { return l.started }

// Accounts returns the accounts, in the order Open was given their names.
func (l *Ledger) Accounts() []*Account { return l.accounts }

// Drained adds c to the drained totals and writes them.
func (l *Ledger) Drained(c Counts) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.drained.Packets += c.Packets
	l.drained.Octets += c.Octets
	if err := l.m.Put(drainedKey, l.drained); err != nil {
		return fmt.Errorf("ledger: write drained totals: %w", err)
	}
	return nil
}

// DrainedTotal returns the drained totals since the maps were created.
func (l *Ledger) DrainedTotal() Counts {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Counts{l.drained.Packets, l.drained.Octets}
}

// Handed adds c to what the account was handed (sent, or counted lost on
// the way) and writes it.
func (a *Account) Handed(c Counts) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.v.Packets += c.Packets
	a.v.Octets += c.Octets
	if err := a.l.m.Put(a.key, a.v); err != nil {
		return fmt.Errorf("ledger: write %s: %w", a.Name, err)
	}
	return nil
}

// HandedTotal returns what the account was handed since the maps were
// created, counting what predecessors lost as handed.
func (a *Account) HandedTotal() Counts {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Counts{a.v.Packets, a.v.Octets}
}

// Found is what the previous exporter drained but never handed to this
// account, as Open found it.
func (a *Account) Found() Counts { return a.found }

// Lost is what every predecessor since the maps were created drained but
// never handed to this account.
func (a *Account) Lost() Counts {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Counts{a.v.LostPackets, a.v.LostOctets}
}

// Close closes the map; it stays pinned.
func (l *Ledger) Close() error { return l.m.Close() }

// Unpin removes the ledger's pin (the datapath's maps are going away).
func (l *Ledger) Unpin() error {
	if err := l.m.Unpin(); err != nil {
		return fmt.Errorf("ledger: unpin: %w", err)
	}
	return nil
}
