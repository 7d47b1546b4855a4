// SPDX-License-Identifier: Apache-2.0

package server

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kflow-dev/kflow/exporter/ipfix"
	"github.com/kflow-dev/kflow/exporter/netflow9"
	"github.com/kflow-dev/kflow/exporter/wire"
)

// SeqState is one UDP exporter's sequence state (per version and
// observation domain) as of the records a flush made durable: what the
// server keeps in Config.StateFile, so that a restarted server knows what
// came next and counts what its exporters sent meanwhile (or what was
// received but not yet flushed when it was killed) as RestartLost.
type SeqState struct {
	Exporter   netip.AddrPort `json:"exporter"`
	Version    uint16         `json:"version"`
	Domain     uint32         `json:"domain"`
	Next       uint32         `json:"next"`
	Alt        uint32         `json:"alt"`
	AllRecords bool           `json:"all_records,omitempty"`
	// Saved is when the state was last live; states no exporter took
	// back are carried for restoreFor, then forgotten.
	Saved time.Time `json:"saved"`
}

// restoreFor is how long a state no exporter took back is kept: an
// exporter that still runs sends within seconds (templates, refreshes).
const restoreFor = 10 * time.Minute

// SavedSession is a UDP exporter's templates (and what its options
// records taught), kept so that a restarted server decodes its next data
// at once rather than holding it until the templates come again.
type SavedSession struct {
	Exporter netip.AddrPort `json:"exporter"`
	Version  uint16         `json:"version"`
	wire.Snapshot
	Saved time.Time `json:"saved"`
}

type stateFile struct {
	Version   int            `json:"version"`
	Sequences []SeqState     `json:"sequences"`
	Sessions  []SavedSession `json:"sessions,omitempty"`
}

const stateVersion = 1

type restoreKey struct {
	addr    netip.AddrPort
	version uint16
	domain  uint32
}

// restored holds the states a previous run left, until each exporter's
// first message takes its own.
type restored struct {
	mu       sync.Mutex
	m        map[restoreKey]SeqState
	sessions map[restoreKey]SavedSession // domain 0
}

// takeSession returns the saved templates of an exporter's version.
func (r *restored) takeSession(addr netip.AddrPort, version uint16) (SavedSession, bool) {
	if r == nil {
		return SavedSession{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	k := restoreKey{addr: addr, version: version}
	s, ok := r.sessions[k]
	delete(r.sessions, k)
	return s, ok
}

// restSessions returns the saved sessions no exporter took yet.
func (r *restored) restSessions(dst []SavedSession, now time.Time) []SavedSession {
	if r == nil {
		return dst
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, s := range r.sessions {
		if now.Sub(s.Saved) > restoreFor {
			delete(r.sessions, k)
			continue
		}
		dst = append(dst, s)
	}
	return dst
}

func (r *restored) take(addr netip.AddrPort, version uint16, domain uint32) (SeqState, bool) {
	if r == nil {
		return SeqState{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	k := restoreKey{addr, version, domain}
	s, ok := r.m[k]
	delete(r.m, k)
	return s, ok
}

// rest returns the states no exporter took yet (they are kept for one
// that comes back later).
func (r *restored) rest(dst []SeqState, now time.Time) []SeqState {
	if r == nil {
		return dst
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, s := range r.m {
		if now.Sub(s.Saved) > restoreFor {
			delete(r.m, k)
			continue
		}
		dst = append(dst, s)
	}
	return dst
}

// readState reads a state file; a missing one is no state.
func readState(path string) (*restored, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &restored{m: map[restoreKey]SeqState{}, sessions: map[restoreKey]SavedSession{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("collector state %s: %w", path, err)
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != stateVersion {
		if err == nil {
			err = fmt.Errorf("version %d, want %d", f.Version, stateVersion)
		}
		return nil, fmt.Errorf("collector state %s: %w (remove the file to start without it: sequence gaps across the restart then go uncounted)", path, err)
	}
	r := &restored{m: make(map[restoreKey]SeqState, len(f.Sequences)), sessions: make(map[restoreKey]SavedSession, len(f.Sessions))}
	for _, s := range f.Sequences {
		r.m[restoreKey{s.Exporter, s.Version, s.Domain}] = s
	}
	for _, s := range f.Sessions {
		r.sessions[restoreKey{addr: s.Exporter, version: s.Version}] = s
	}
	return r, nil
}

// writeState replaces the state file whole (a temporary file renamed).
func writeState(path string, seqs []SeqState, sessions []SavedSession) error {
	b, err := json.Marshal(stateFile{Version: stateVersion, Sequences: seqs, Sessions: sessions})
	if err != nil {
		return fmt.Errorf("collector state: %w", err)
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("collector state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("collector state: %w", err)
	}
	return nil
}

// sequences appends the sequence states of the handler's UDP exporters.
// The caller holds h.mu.
func (h *Handler) sequences(dst []SeqState, now time.Time) []SeqState {
	for src, e := range h.exporters {
		if src.Conn != 0 {
			continue // a TCP connection's numbers end with it
		}
		for k, st := range e.seq {
			if !st.synced {
				continue
			}
			dst = append(dst, SeqState{Exporter: src.Addr, Version: k.version, Domain: k.domain,
				Next: st.next, Alt: st.alt, AllRecords: st.allRecords, Saved: now})
		}
	}
	return dst
}

// sessions appends the templates of the handler's UDP exporters. The
// caller holds h.mu.
func (h *Handler) sessions(dst []SavedSession, now time.Time) []SavedSession {
	for src, e := range h.exporters {
		if src.Conn != 0 {
			continue
		}
		if e.v9 != nil && e.v9.Templates().Len() > 0 {
			dst = append(dst, SavedSession{Exporter: src.Addr, Version: netflow9.Version, Snapshot: e.v9.Templates().Snapshot(), Saved: now})
		}
		if e.v10 != nil && e.v10.Templates().Len() > 0 {
			dst = append(dst, SavedSession{Exporter: src.Addr, Version: ipfix.Version, Snapshot: e.v10.Templates().Snapshot(), Saved: now})
		}
	}
	return dst
}

// peek returns a saved sequence state without taking it.
func (r *restored) peek(addr netip.AddrPort, version uint16, domain uint32) (SeqState, bool) {
	if r == nil {
		return SeqState{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.m[restoreKey{addr, version, domain}]
	return s, ok
}

// checkSaved drops the saved templates of an exporter whose first message
// shows it restarted meanwhile (its sequence numbers went back): it may
// have other templates now, and its data waits for them as usual.
func (h *Handler) checkSaved(e *exporter, version uint16, b []byte) {
	e.savedTemplates = false
	var seq, domain uint32
	switch {
	case version == ipfix.Version && len(b) >= ipfix.HeaderLen:
		seq, domain = binary.BigEndian.Uint32(b[8:12]), binary.BigEndian.Uint32(b[12:16])
	case version == netflow9.Version && len(b) >= netflow9.HeaderLen:
		seq, domain = binary.BigEndian.Uint32(b[12:16]), binary.BigEndian.Uint32(b[16:20])
	default:
		return
	}
	if rs, ok := h.restored.peek(e.src.Addr, version, domain); !ok || int32(seq-rs.Alt) < 0 {
		if version == ipfix.Version {
			e.v10 = nil
		} else {
			e.v9 = nil
		}
	}
}

// restoreSessions gives a new UDP exporter the templates a previous run
// saved for it.
func (h *Handler) restoreSessions(e *exporter) {
	if s, ok := h.restored.takeSession(e.src.Addr, netflow9.Version); ok {
		e.v9, e.savedTemplates = netflow9.NewSession(h.cfg.Limits), true
		if err := e.v9.Templates().Restore(s.Snapshot); err != nil {
			e.stats.LastError = fmt.Sprintf("saved templates: %v", err)
		}
	}
	if s, ok := h.restored.takeSession(e.src.Addr, ipfix.Version); ok {
		e.v10, e.savedTemplates = ipfix.NewSession(h.cfg.Limits), true
		if err := e.v10.Templates().Restore(s.Snapshot); err != nil {
			e.stats.LastError = fmt.Sprintf("saved templates: %v", err)
		}
	}
}
