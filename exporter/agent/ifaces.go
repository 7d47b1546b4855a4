// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path"
	"sort"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/exporter/wire"
)

// ifaceEvent is a change to the set of interfaces to observe.
type ifaceEvent struct {
	index int
	name  string
	add   bool // attach; otherwise release
}

// ifaceWatcher follows netlink link updates and reports the interfaces that
// match the configured names or globs as they come and go.
type ifaceWatcher struct {
	patterns []string
	log      *slog.Logger
	events   chan []ifaceEvent
	updates  chan netlink.LinkUpdate
	done     chan struct{}
}

func newIfaceWatcher(patterns []string, log *slog.Logger) (*ifaceWatcher, error) {
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("interface pattern %q: %w", p, err)
		}
	}
	return &ifaceWatcher{patterns: patterns, log: log, events: make(chan []ifaceEvent, 16),
		updates: make(chan netlink.LinkUpdate, 64), done: make(chan struct{})}, nil
}

// matches reports whether the watcher observes an interface.
func (w *ifaceWatcher) matches(name string, flags net.Flags, up bool) bool {
	if len(w.patterns) == 0 {
		return up && flags&net.FlagLoopback == 0
	}
	for _, p := range w.patterns {
		if ok, _ := path.Match(p, name); ok {
			return up
		}
	}
	return false
}

func linkUp(l netlink.Link) bool {
	a := l.Attrs()
	return a.Flags&net.FlagUp != 0
}

// initial lists the matching interfaces that exist now.
func (w *ifaceWatcher) initial() []ifaceEvent {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		w.log.Error("list interfaces", "err", err)
		return nil
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		w.log.Error("list interfaces", "err", err)
		return nil
	}
	var evs []ifaceEvent
	for _, l := range links {
		a := l.Attrs()
		if w.matches(a.Name, a.Flags, linkUp(l)) {
			evs = append(evs, ifaceEvent{index: a.Index, name: a.Name, add: true})
		}
	}
	return evs
}

// start subscribes to link updates; events arrive on w.events.
func (w *ifaceWatcher) start(ctx context.Context) error {
	err := netlink.LinkSubscribeWithOptions(w.updates, w.done, netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) {
			select {
			case <-w.done: // stopping: the socket was closed under the reader
			default:
				w.log.Warn("interface updates", "err", err)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("subscribe to interface updates: %w", err)
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-w.done:
				return
			case u, ok := <-w.updates:
				if !ok {
					return
				}
				a := u.Link.Attrs()
				ev := ifaceEvent{index: a.Index, name: a.Name}
				switch u.Header.Type {
				case unix.RTM_NEWLINK:
					ev.add = w.matches(a.Name, a.Flags, linkUp(u.Link))
				case unix.RTM_DELLINK:
				default:
					continue
				}
				select {
				case w.events <- []ifaceEvent{ev}:
				case <-ctx.Done():
					return
				case <-w.done:
					return
				}
			}
		}
	}()
	return nil
}

func (w *ifaceWatcher) stop() {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
}

// applyIfaceEvents attaches and releases interfaces; it runs on the drain
// loop's goroutine, which owns the datapath.
func (a *Agent) applyIfaceEvents(evs []ifaceEvent) {
	changed := false
	for _, ev := range evs {
		attached := false
		for _, at := range a.dp.Attachments() {
			if at.Ifindex == ev.index {
				attached = true
				break
			}
		}
		switch {
		case ev.add && !attached:
			atts, err := a.dp.Attach(ev.name, a.cfg.Hook)
			if err != nil {
				a.log.Error("attach", "interface", ev.name, "err", err)
				continue
			}
			for _, at := range atts {
				args := []any{"interface", at.Ifname, "hook", at.Hook, "direction", at.Direction.String()}
				if at.Adopted {
					args = append(args, "adopted", true)
				}
				a.log.Info("attached", args...)
				if at.XDPGeneric {
					a.log.Warn("XDP runs in generic mode on this interface: the driver has no native XDP; slower than native", "interface", at.Ifname)
				}
			}
			changed = true
		case !ev.add && attached:
			if err := a.dp.Detach(ev.index); err != nil && !errors.Is(err, unix.ENODEV) {
				a.log.Debug("release interface", "interface", ev.name, "err", err)
			}
			a.log.Info("released", "interface", ev.name)
			changed = true
		}
	}
	if changed {
		names := a.interfaceNames()
		a.mu.Lock()
		a.ifacesNew = names
		a.observed = names
		a.mu.Unlock()
	}
}

// Interfaces lists the interfaces observed now. Safe for concurrent use.
func (a *Agent) Interfaces() []wire.Interface {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]wire.Interface(nil), a.observed...)
}

// interfaceNames lists the observed interfaces for the options records.
func (a *Agent) interfaceNames() []wire.Interface {
	seen := map[int]bool{}
	out := []wire.Interface{}
	for _, at := range a.dp.Attachments() {
		if !seen[at.Ifindex] {
			seen[at.Ifindex] = true
			out = append(out, wire.Interface{Index: uint32(at.Ifindex), Name: at.Ifname})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out
}
