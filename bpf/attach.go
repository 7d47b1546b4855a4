// SPDX-License-Identifier: Apache-2.0

package bpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/kflow-dev/kflow/exporter/flow"
)

// Hook names where the datapath attaches.
type Hook string

const (
	HookAuto Hook = ""    // TCX when the kernel has it, else legacy TC
	HookTCX  Hook = "tcx" // TCX links, at the head, returning "next"
	HookTC   Hook = "tc"  // legacy clsact qdisc with direct-action filters
	HookXDP  Hook = "xdp" // XDP for ingress (native, else generic); TC hook for egress
)

// ParseHook parses a hook name as given on the command line.
func ParseHook(s string) (Hook, error) {
	switch Hook(s) {
	case HookAuto, "auto":
		return HookAuto, nil
	case HookTCX, HookTC, HookXDP:
		return Hook(s), nil
	}
	return "", fmt.Errorf("hook %q: %w: want tcx, tc, xdp or auto", s, ErrInvalidConfig)
}

// tcFilterPriority is the legacy TC filter preference kflow uses; a low
// number runs early, and kflow's filters always let the packet continue.
const (
	tcFilterPriority = 1
	tcFilterHandle   = 0xf10
	tcFilterName     = "kflow"
)

// Attachment is one program attached to one interface in one direction.
type Attachment struct {
	Ifindex   int
	Ifname    string
	Hook      Hook // the hook in use, never HookAuto
	Direction flow.Direction
	// XDPGeneric is true when XDP fell back to generic (skb) mode.
	XDPGeneric bool
	// Adopted is true when an attachment a previous daemon pinned was
	// taken over (its program replaced in place, without a gap).
	Adopted bool

	link    link.Link          // TCX and XDP
	filter  *netlink.BpfFilter // legacy TC
	netns   *netns.NsHandle    // legacy TC: the namespace of the filter
	pinPath string
}

func (a *Attachment) String() string {
	mode := ""
	if a.XDPGeneric {
		mode = " (generic)"
	}
	return fmt.Sprintf("%s %s %s%s", a.Ifname, a.Hook, a.Direction, mode)
}

// Attachments returns the attachments made by this datapath.
func (d *Datapath) Attachments() []*Attachment { return d.links }

// Attach attaches the datapath to the named interface of the calling
// thread's network namespace: ingress and egress with TCX or TC, or XDP
// for ingress and the best TC hook for egress. Pinned attachments left by
// a previous daemon are adopted.
func (d *Datapath) Attach(ifname string, hook Hook) ([]*Attachment, error) {
	iface, err := netlink.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("attach to %s: %w: %w", ifname, ErrUnknownInterface, err)
	}
	ifindex := iface.Attrs().Index
	tcHook := hook
	if hook == HookAuto || hook == HookXDP {
		tcHook = HookTC
		if HaveTCX() {
			tcHook = HookTCX
		}
	}

	var made []*Attachment
	fail := func(err error) ([]*Attachment, error) {
		for _, a := range made {
			_ = a.detach()
		}
		return nil, err
	}
	for _, dir := range []flow.Direction{flow.Ingress, flow.Egress} {
		a := &Attachment{Ifindex: ifindex, Ifname: ifname, Hook: tcHook, Direction: dir}
		if dir == flow.Ingress && hook == HookXDP {
			a.Hook = HookXDP
		}
		if d.cfg.PinDir != "" {
			a.pinPath = filepath.Join(d.cfg.PinDir, "links", fmt.Sprintf("%s_%s_%s", ifname, a.Hook, dir))
		}
		var err error
		switch a.Hook {
		case HookTCX:
			err = d.attachTCX(a)
		case HookTC:
			err = d.attachTC(iface, a)
		case HookXDP:
			err = d.attachXDP(a)
		}
		if err != nil {
			return fail(fmt.Errorf("attach %s %s on %s: %w", a.Hook, dir, ifname, err))
		}
		made = append(made, a)
	}
	d.links = append(d.links, made...)
	return made, nil
}

func (d *Datapath) program(a *Attachment) *ebpf.Program {
	switch {
	case a.Hook == HookXDP:
		return d.objs.KflowXdp
	case a.Hook == HookTCX && a.Direction == flow.Ingress:
		return d.objs.KflowTcxIngress
	case a.Hook == HookTCX:
		return d.objs.KflowTcxEgress
	case a.Direction == flow.Ingress:
		return d.objs.KflowTcIngress
	}
	return d.objs.KflowTcEgress
}

// adoptLink takes over a pinned link by replacing its program in place.
func (d *Datapath) adoptLink(a *Attachment) (bool, error) {
	if a.pinPath == "" || !pinExists(a.pinPath) {
		return false, nil
	}
	l, err := link.LoadPinnedLink(a.pinPath, nil)
	if err != nil {
		return false, fmt.Errorf("load pinned link %s: %w", a.pinPath, err)
	}
	if err := l.Update(d.program(a)); err != nil {
		l.Close()
		return false, fmt.Errorf("replace program of pinned link %s: %w", a.pinPath, err)
	}
	a.link, a.Adopted = l, true
	return true, nil
}

func (d *Datapath) pinLink(a *Attachment) error {
	if a.pinPath == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(a.pinPath), 0o700); err != nil {
		return fmt.Errorf("create link pin directory: %w", err)
	}
	if err := a.link.Pin(a.pinPath); err != nil {
		return fmt.Errorf("pin link: %w", err)
	}
	return nil
}

func (d *Datapath) attachTCX(a *Attachment) error {
	if ok, err := d.adoptLink(a); ok || err != nil {
		return err
	}
	attach := ebpf.AttachTCXIngress
	if a.Direction == flow.Egress {
		attach = ebpf.AttachTCXEgress
	}
	l, err := link.AttachTCX(link.TCXOptions{
		Interface: a.Ifindex,
		Program:   d.program(a),
		Attach:    attach,
		Anchor:    link.Head(),
	})
	if err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) {
			return fmt.Errorf("%w: TCX needs Linux 6.6 or later (use --hook tc): %w", ErrMissingFeature, err)
		}
		return err
	}
	a.link = l
	return d.pinLink(a)
}

func (d *Datapath) attachXDP(a *Attachment) error {
	if ok, err := d.adoptLink(a); ok || err != nil {
		if ok {
			a.XDPGeneric = xdpGeneric(a.Ifindex)
		}
		return err
	}
	l, err := link.AttachXDP(link.XDPOptions{
		Program:   d.program(a),
		Interface: a.Ifindex,
		Flags:     link.XDPDriverMode,
	})
	if err != nil {
		var gerr error
		l, gerr = link.AttachXDP(link.XDPOptions{
			Program:   d.program(a),
			Interface: a.Ifindex,
			Flags:     link.XDPGenericMode,
		})
		if gerr != nil {
			return fmt.Errorf("native: %w; generic: %w", err, gerr)
		}
		a.XDPGeneric = true
	}
	a.link = l
	return d.pinLink(a)
}

func xdpGeneric(ifindex int) bool {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil || l.Attrs().Xdp == nil {
		return false
	}
	return l.Attrs().Xdp.AttachMode == nl.XDP_ATTACHED_SKB
}

// attachTC installs a clsact qdisc (if missing) and a direct-action bpf
// filter, replacing kflow's filter of a previous run in place.
func (d *Datapath) attachTC(iface netlink.Link, a *Attachment) error {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	qdisc := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{
			LinkIndex: a.Ifindex,
			Handle:    netlink.MakeHandle(0xffff, 0),
			Parent:    netlink.HANDLE_CLSACT,
		},
		QdiscType: "clsact",
	}
	if err := h.QdiscAdd(qdisc); err != nil && !errors.Is(err, unix.EEXIST) {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("add clsact qdisc: %w: the clsact qdisc (CONFIG_NET_SCH_INGRESS, module sch_ingress; Linux %s): %w",
				ErrMissingFeature, featureSince[FeatureLegacyTC], err)
		}
		return fmt.Errorf("add clsact qdisc: %w", err)
	}
	parent := uint32(netlink.HANDLE_MIN_INGRESS)
	if a.Direction == flow.Egress {
		parent = netlink.HANDLE_MIN_EGRESS
	}
	prog := d.program(a)
	f := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: a.Ifindex,
			Parent:    parent,
			Handle:    tcFilterHandle,
			Priority:  tcFilterPriority,
			Protocol:  unix.ETH_P_ALL,
		},
		Fd:           prog.FD(),
		Name:         tcFilterName,
		DirectAction: true,
	}
	if existing, _ := h.FilterList(iface, parent); len(existing) > 0 {
		for _, e := range existing {
			if bf, ok := e.(*netlink.BpfFilter); ok && bf.Handle == tcFilterHandle && bf.Priority == tcFilterPriority {
				a.Adopted = true
			}
		}
	}
	if err := h.FilterReplace(f); err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("replace bpf filter: %w: the bpf classifier (CONFIG_NET_CLS_BPF, module cls_bpf): %w",
				ErrMissingFeature, err)
		}
		return fmt.Errorf("replace bpf filter: %w", err)
	}
	// Remember the namespace: detach may run on a thread in another one,
	// where the ifindex names a different interface.
	ns, err := netns.Get()
	if err != nil {
		_ = h.FilterDel(f)
		return fmt.Errorf("open network namespace of %s: %w", a.Ifname, err)
	}
	a.filter, a.netns = f, &ns
	return nil
}

// detach removes the attachment from the kernel and its pin.
func (a *Attachment) detach() error {
	if a.filter != nil {
		h, err := netlink.NewHandleAt(*a.netns, unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("netlink: %w", err)
		}
		defer h.Close()
		if err := h.FilterDel(a.filter); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("detach tc %s on %s: %w", a.Direction, a.Ifname, err)
		}
		a.filter = nil
		a.closeNetns()
		return nil
	}
	if a.link == nil {
		return nil
	}
	if a.pinPath != "" {
		if err := a.link.Unpin(); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("unpin %s: %w", a.pinPath, err)
		}
	}
	err := a.link.Close()
	a.link = nil
	if err != nil {
		return fmt.Errorf("detach %s %s on %s: %w", a.Hook, a.Direction, a.Ifname, err)
	}
	return nil
}

// release closes the attachment's file descriptors and leaves it attached:
// pinned links and legacy TC filters keep counting for the next daemon.
func (a *Attachment) release() error {
	a.closeNetns()
	if a.link == nil {
		return nil
	}
	err := a.link.Close()
	a.link = nil
	return err
}

func (a *Attachment) closeNetns() {
	if a.netns != nil {
		_ = a.netns.Close()
		a.netns = nil
	}
}

// Detach removes one interface's attachments, for an interface that went
// away or stopped matching.
func (d *Datapath) Detach(ifindex int) error {
	var errs []error
	kept := d.links[:0]
	for _, a := range d.links {
		if a.Ifindex != ifindex {
			kept = append(kept, a)
			continue
		}
		errs = append(errs, a.detach())
	}
	d.links = kept
	return errors.Join(errs...)
}
