// SPDX-License-Identifier: Apache-2.0

package filter

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// maxDepth bounds nesting (parentheses and "not"), so that a hostile filter
// cannot exhaust the stack.
const maxDepth = 256

// maxList bounds the elements of an "in [ ... ]" list.
const maxList = 1 << 20

type parser struct {
	resolve Resolver
	hosts   map[string][]netip.Addr
	src     string
	toks    []token
	i       int
	depth   int
	// swaps are the words that name a direction, with their opposite:
	// Filter.Reverse rewrites them.
	swaps []swap
}

// swap replaces the word at pos, n bytes long, by text.
type swap struct {
	pos, n int
	text   string
}

// swapWord records that t names a direction whose opposite is text.
func (p *parser) swapWord(t token, text string) {
	p.swaps = append(p.swaps, swap{t.pos, len(t.text), text})
}

func newParser(src string) (*parser, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	return &parser{src: src, toks: toks}, nil
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) peekN(n int) token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) errAt(t token, format string, args ...any) error {
	return NewSyntaxError(p.src, t.pos, t.text, fmt.Sprintf(format, args...))
}

// isWord reports whether t is the keyword w (case insensitive).
func isWord(t token, w string) bool { return t.kind == tWord && strings.EqualFold(t.text, w) }

func (p *parser) parseExpr() (node, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		t := p.peek()
		return nil, p.errAt(t, "filter nested deeper than %d", maxDepth)
	}
	l, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if t.kind != tOr && !isWord(t, "or") {
			return l, nil
		}
		p.next()
		r, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		l = orNode{l, r}
	}
}

func (p *parser) parseAnd() (node, error) {
	l, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if t.kind != tAnd && !isWord(t, "and") {
			return l, nil
		}
		p.next()
		r, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		l = andNode{l, r}
	}
}

func (p *parser) parseUnary() (node, error) {
	t := p.peek()
	switch {
	case t.kind == tNot || isWord(t, "not"):
		p.next()
		p.depth++
		defer func() { p.depth-- }()
		if p.depth > maxDepth {
			return nil, p.errAt(t, "filter nested deeper than %d", maxDepth)
		}
		x, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		return notNode{x}, nil
	case t.kind == tLParen:
		p.next()
		x, err := p.parseExpr()
		if err != nil {
			return nil, err
		}
		if c := p.peek(); c.kind != tRParen {
			return nil, p.errAt(c, "unexpected %s: want )", c)
		}
		p.next()
		return x, nil
	case t.kind == tWord:
		return p.parsePrimitive()
	case t.kind == tEOF:
		return nil, p.errAt(t, "unexpected end of filter: want a filter primitive")
	}
	return nil, p.errAt(t, "unexpected %s: want a filter primitive", t)
}

// dir is an address, port, tos or vlan direction qualifier.
type dir uint8

const (
	dirEither dir = iota // no qualifier or "src or dst"
	dirSrc
	dirDst
	dirBoth // "src and dst"
)

// parseDir reads src, dst, "src or dst", "src and dst" (or nothing).
func (p *parser) parseDir() dir {
	t := p.peek()
	var d dir
	switch {
	case isWord(t, "src"):
		d = dirSrc
		p.swapWord(t, "dst")
	case isWord(t, "dst"):
		d = dirDst
		p.swapWord(t, "src")
	default:
		return dirEither
	}
	p.next()
	// "src or dst" / "src and dst": a qualifier when the word after the
	// connective is the other side.
	c, o := p.peek(), p.peekN(1)
	other := "dst"
	if d == dirDst {
		other = "src"
	}
	if isWord(o, other) {
		switch {
		case c.kind == tOr || isWord(c, "or"):
			p.next()
			p.next()
			p.swapWord(o, t.lower())
			return dirEither
		case c.kind == tAnd || isWord(c, "and"):
			p.next()
			p.next()
			p.swapWord(o, t.lower())
			return dirBoth
		}
	}
	return d
}

func (p *parser) parsePrimitive() (node, error) {
	start := p.peek()
	d := p.parseDir()
	t := p.next()
	kw := t.lower()
	if t.kind != tWord {
		return nil, p.errAt(t, "unexpected %s after %s: want ip, net, port, tos, vlan, as or mask", t, start)
	}
	qualified := d != dirEither || isWord(start, "src") || isWord(start, "dst")
	switch kw {
	case "ip", "host":
		return p.parseIP(d)
	case "net":
		return p.parseNet(d)
	case "port":
		return p.parsePort(d)
	case "tos":
		return p.parseNumField(d, 255, FieldTOS, FieldTOS, flowfile.FieldTOS, func(r *flow.Record) uint64 { return uint64(r.TOS) }, func(r *flow.Record) uint64 { return uint64(r.TOS) })
	case "vlan":
		return p.parseNumField(d, 4095, FieldVLAN, FieldVLAN, flowfile.FieldVLAN, func(r *flow.Record) uint64 { return uint64(r.VLAN) }, func(r *flow.Record) uint64 { return uint64(r.VLAN) })
	case "as":
		if isWord(p.peek(), "in") {
			return p.parseNumList(d, math.MaxUint32, FieldSrcAS, FieldDstAS, flowfile.FieldAS, func(r *flow.Record) uint64 { return uint64(r.SrcAS) }, func(r *flow.Record) uint64 { return uint64(r.DstAS) })
		}
		return p.parseNumField(d, math.MaxUint32, FieldSrcAS, FieldDstAS, flowfile.FieldAS, func(r *flow.Record) uint64 { return uint64(r.SrcAS) }, func(r *flow.Record) uint64 { return uint64(r.DstAS) })
	case "mask":
		return p.parseNumField(d, 128, FieldSrcMask, FieldDstMask, flowfile.FieldMask, func(r *flow.Record) uint64 { return uint64(r.SrcMask) }, func(r *flow.Record) uint64 { return uint64(r.DstMask) })
	}
	if what, ok := notStored[kw]; ok && qualified {
		return nil, p.errAt(t, "%s: %s not stored by kflow, so no record could match", t, what)
	}
	if qualified {
		return nil, p.errAt(t, "unexpected %s after %s: want ip, host, net, port, tos, vlan, as or mask", t, start.text)
	}
	switch kw {
	case "any":
		return anyNode{}, nil
	case "ipv4", "inet":
		return always(Family{V6: false}, flowfile.FieldSrc, func(r *flow.Record) bool { return r.Src.Is4() }), nil
	case "ipv6", "inet6":
		return always(Family{V6: true}, flowfile.FieldSrc, func(r *flow.Record) bool { return r.Src.Is6() }), nil
	case "proto":
		return p.parseProto()
	case "flags":
		return p.parseFlags()
	case "if":
		return p.parseIf(t, "")
	case "in", "out":
		n := p.peek()
		switch {
		case isWord(n, "if"):
			p.swapWord(t, map[string]string{"in": "out", "out": "in"}[kw])
			p.next()
			return p.parseIf(n, kw)
		case isWord(n, "packets") || isWord(n, "bytes"):
			if kw == "out" {
				return nil, p.errAt(n, "out %s needs bidirectional records, which flow files do not hold", n.text)
			}
			p.next()
			return p.parseCounter(n.lower())
		}
		return nil, p.errAt(n, "unexpected %s after %s: want if, packets or bytes", n, kw)
	case "packets", "bytes", "flows", "duration", "pps", "bps", "bpp":
		return p.parseCounter(kw)
	case "icmp-type", "icmp-code":
		return p.parseICMP(kw)
	case "exporter":
		return p.parseAddrField(FieldExporter, flowfile.FieldExporter, func(r *flow.Record) netip.Addr { return r.Exporter })
	case "router", "next":
		if n := p.peek(); !isWord(n, "ip") {
			return nil, p.errAt(n, "unexpected %s after %s: want ip", n, kw)
		}
		p.next()
		if kw == "router" {
			return p.parseAddrField(FieldExporter, flowfile.FieldExporter, func(r *flow.Record) netip.Addr { return r.Exporter })
		}
		return p.parseAddrField(FieldNextHop, flowfile.FieldNextHop, func(r *flow.Record) netip.Addr { return r.NextHop })
	case "flowdir":
		return p.parseFlowDir()
	case "ident":
		return p.parseIdent()
	case "unit", "container", "pod", "cgroup":
		return p.parseCgroup(kw)
	case "engine-type":
		return p.parseNumField(dirEither, 255, FieldEngineType, FieldEngineType, flowfile.FieldExporter, engineType, engineType)
	case "engine-id":
		return p.parseNumField(dirEither, 255, FieldEngineID, FieldEngineID, flowfile.FieldExporter, engineID, engineID)
	case "observation":
		for _, w := range []string{"domain", "id"} {
			if n := p.next(); !isWord(n, w) {
				return nil, p.errAt(n, "unexpected %s after observation: want observation domain id N", n)
			}
		}
		dom := func(r *flow.Record) uint64 { return uint64(r.ObservationDomain) }
		return p.parseNumField(dirEither, math.MaxUint32, FieldDomain, FieldDomain, flowfile.FieldExporter, dom, dom)
	}
	if what, ok := notStored[kw]; ok {
		return nil, p.errAt(t, "%s: %s not stored by kflow, so no record could match", t, what)
	}
	return nil, p.errAt(t, "unknown filter primitive %s", t)
}

func engineType(r *flow.Record) uint64 { return uint64(r.ObservationDomain>>8) & 0xff }
func engineID(r *flow.Record) uint64   { return uint64(r.ObservationDomain) & 0xff }

// notStored are nfdump's primitives of fields kflow's records do not
// hold, with what they test.
var notStored = map[string]string{
	"bgpnext": "the BGP next hop is", "mac": "MAC addresses are", "mpls": "MPLS labels are",
	"nat": "NAT (NSEL/NEL) events are", "nsel": "NSEL events are", "nel": "NEL events are", "asa": "ASA events are",
	"xip": "NSEL translated addresses are", "xnet": "NSEL translated addresses are", "xport": "NSEL translated ports are",
	"nip": "NAT addresses are", "nport": "NAT ports are", "vrf": "VRF ids are", "vrfid": "VRF ids are",
	"ingress": "ASA ingress ACLs are", "egress": "ASA egress ACLs are", "event": "NSEL events are",
	"latency": "latencies are", "client": "latencies are", "server": "latencies are", "app": "latencies are",
	"geo": "geo locations are", "sampler": "sampler ids are", "fwdstat": "forwarding status is",
	"dir": "the egress direction flag (use flowdir) is", "payload": "payloads are", "ja3": "TLS fingerprints are",
	"pblock": "port blocks are", "tun": "tunnel addresses are", "pf": "pf fields are",
}

// Directions: combine the source and destination tests.
func byDir(d dir, src, dst Pred) Pred {
	switch d {
	case dirSrc:
		return src
	case dirDst:
		return dst
	case dirBoth:
		return func(r *flow.Record) bool { return src(r) && dst(r) }
	}
	return func(r *flow.Record) bool { return src(r) || dst(r) }
}

// parseAddr parses an address token (IPv4 or IPv6; a 4-in-6 address is
// taken as IPv4).
func (p *parser) parseAddr() (netip.Addr, error) {
	t := p.next()
	if t.kind != tWord {
		return netip.Addr{}, p.errAt(t, "unexpected %s: want an IP address", t)
	}
	a, err := netip.ParseAddr(t.text)
	if err != nil {
		return netip.Addr{}, p.errAt(t, "%s is not an IP address", t)
	}
	return a.Unmap(), nil
}

func (p *parser) parseIP(d dir) (node, error) {
	if isWord(p.peek(), "in") {
		p.next()
		return p.parseAddrList(d)
	}
	addrs, err := p.parseHost()
	if err != nil {
		return nil, err
	}
	if len(addrs) == 1 {
		a := addrs[0]
		e := byDirExpr(d, addrIn(FieldSrc, addrs, nil), addrIn(FieldDst, addrs, nil))
		return always(e, dirFields(d, flowfile.FieldSrc, flowfile.FieldDst), byDir(d,
			func(r *flow.Record) bool { return r.Src == a },
			func(r *flow.Record) bool { return r.Dst == a })), nil
	}
	e := byDirExpr(d, addrIn(FieldSrc, addrs, nil), addrIn(FieldDst, addrs, nil))
	return always(e, dirFields(d, flowfile.FieldSrc, flowfile.FieldDst), byDir(d,
		func(r *flow.Record) bool { return slices.Contains(addrs, r.Src) },
		func(r *flow.Record) bool { return slices.Contains(addrs, r.Dst) })), nil
}

// parseHost parses an address, or a host name resolved once, here, by
// the system's resolver (every address it has, as nfdump does).
func (p *parser) parseHost() ([]netip.Addr, error) {
	t := p.peek()
	if t.kind != tWord || !isHostName(t.text) {
		a, err := p.parseAddr()
		return []netip.Addr{a}, err
	}
	p.next()
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	if p.resolve == nil {
		return nil, p.errAt(t, "%s is not an IP address (host names are not resolved here)", t)
	}
	addrs, err := p.resolve(ctx, t.text)
	if err == nil && len(addrs) == 0 {
		err = fmt.Errorf("no address")
	}
	if err != nil {
		return nil, p.errAt(t, "%s is not an IP address, and resolving it as a host name failed: %v", t, err)
	}
	for i := range addrs {
		addrs[i] = addrs[i].Unmap()
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	addrs = slices.Compact(addrs)
	if p.hosts == nil {
		p.hosts = map[string][]netip.Addr{}
	}
	p.hosts[t.text] = addrs
	return addrs, nil
}

// resolveTimeout bounds the lookup of a host name in a filter.
const resolveTimeout = 10 * time.Second

// isHostName reports whether s is a host name (letters, digits, '-' and
// dots, with a letter somewhere), not an address.
func isHostName(s string) bool {
	letter := false
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			letter = true
		case c >= '0' && c <= '9' || c == '-' || c == '.':
		default:
			return false
		}
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return false
	}
	return letter && s[0] != '-' && s[0] != '.'
}

func (p *parser) parseAddrField(f Field, fl flowfile.Fields, get func(*flow.Record) netip.Addr) (node, error) {
	a, err := p.parseAddr()
	if err != nil {
		return nil, err
	}
	return always(addrIn(f, []netip.Addr{a}, nil), fl, func(r *flow.Record) bool { return get(r) == a }), nil
}

// parsePrefix parses CIDR, an incomplete IPv4 network (198.19/16) or an
// address followed by a dotted netmask.
func (p *parser) parsePrefix() (netip.Prefix, error) {
	t := p.next()
	if t.kind != tWord {
		return netip.Prefix{}, p.errAt(t, "unexpected %s: want a network (198.18.0.0/15, fd00::/8)", t)
	}
	addr, bitsText, hasBits := strings.Cut(t.text, "/")
	if !hasBits {
		a, err := netip.ParseAddr(addr)
		if err != nil || !a.Unmap().Is4() {
			return netip.Prefix{}, p.errAt(t, "%s is not a network: want ADDR/BITS or A.B.C.D MASK", t)
		}
		m := p.next()
		mask, err := netip.ParseAddr(m.text)
		ones, ok := maskBits(mask)
		if m.kind != tWord || err != nil || !ok {
			return netip.Prefix{}, p.errAt(m, "%s is not a netmask (255.255.0.0)", m)
		}
		return netip.PrefixFrom(a.Unmap(), ones).Masked(), nil
	}
	if !strings.Contains(addr, ":") {
		// nfdump accepts 198.19/16: missing octets are zero.
		if n := strings.Count(addr, "."); n < 3 && addr != "" {
			addr += strings.Repeat(".0", 3-n)
		}
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Prefix{}, p.errAt(t, "%s is not a network: bad address", t)
	}
	n, err := strconv.Atoi(bitsText)
	if a.Is4In6() && err == nil && n >= 96 {
		a, n = a.Unmap(), n-96
	}
	if err != nil || n < 0 || n > a.BitLen() {
		return netip.Prefix{}, p.errAt(t, "%s is not a network: prefix length must be 0..%d", t, a.BitLen())
	}
	return netip.PrefixFrom(a, n).Masked(), nil
}

func maskBits(m netip.Addr) (int, bool) {
	if !m.Is4() {
		return 0, false
	}
	b := m.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	ones := bits.LeadingZeros32(^v)
	return ones, v<<ones == 0
}

func (p *parser) parseNet(d dir) (node, error) {
	pf, err := p.parsePrefix()
	if err != nil {
		return nil, err
	}
	e := byDirExpr(d, addrIn(FieldSrc, nil, []netip.Prefix{pf}), addrIn(FieldDst, nil, []netip.Prefix{pf}))
	return always(e, dirFields(d, flowfile.FieldSrc, flowfile.FieldDst), byDir(d,
		func(r *flow.Record) bool { return pf.Contains(r.Src) },
		func(r *flow.Record) bool { return pf.Contains(r.Dst) })), nil
}

// addrSet holds exact addresses and networks of an "in [ ... ]" list.
type addrSet struct {
	exact map[netip.Addr]struct{}
	nets  []netip.Prefix
}

func (s *addrSet) has(a netip.Addr) bool {
	if _, ok := s.exact[a]; ok {
		return true
	}
	for _, n := range s.nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// listItems reads "[ item item, item ]" and calls item for each word.
func (p *parser) listItems(what string, item func(t token) error) error {
	if t := p.next(); t.kind != tLBrack {
		return p.errAt(t, "unexpected %s: want [ followed by a list of %s", t, what)
	}
	n := 0
	for {
		t := p.next()
		switch t.kind {
		case tRBrack:
			if n == 0 {
				return p.errAt(t, "empty list: want at least one %s", what)
			}
			return nil
		case tComma:
			continue
		case tWord:
			n++
			if n > maxList {
				return p.errAt(t, "list longer than %d elements", maxList)
			}
			if err := item(t); err != nil {
				return err
			}
		default:
			return p.errAt(t, "unexpected %s in a list of %s: want ]", t, what)
		}
	}
}

func (p *parser) parseAddrList(d dir) (node, error) {
	set := &addrSet{exact: map[netip.Addr]struct{}{}}
	err := p.listItems("addresses", func(t token) error {
		if strings.Contains(t.text, "/") {
			p.i-- // reparse the word as a network
			pf, err := p.parsePrefix()
			if err != nil {
				return err
			}
			set.nets = append(set.nets, pf)
			return nil
		}
		a, err := netip.ParseAddr(t.text)
		if err != nil {
			return p.errAt(t, "%s is not an IP address or network", t)
		}
		set.exact[a.Unmap()] = struct{}{}
		return nil
	})
	if err != nil {
		return nil, err
	}
	addrs := make([]netip.Addr, 0, len(set.exact))
	for a := range set.exact {
		addrs = append(addrs, a)
	}
	e := byDirExpr(d, addrIn(FieldSrc, addrs, set.nets), addrIn(FieldDst, addrs, set.nets))
	return always(e, dirFields(d, flowfile.FieldSrc, flowfile.FieldDst), byDir(d,
		func(r *flow.Record) bool { return set.has(r.Src) },
		func(r *flow.Record) bool { return set.has(r.Dst) })), nil
}

// op is a comparison operator.
type op uint8

const (
	opEQ op = iota
	opNE
	opLT
	opGT
	opLE
	opGE
)

// parseOp reads an optional comparison operator (default equality).
func (p *parser) parseOp() op {
	t := p.peek()
	var o op
	switch {
	case t.kind == tOp:
		switch t.text {
		case "=", "==":
			o = opEQ
		case "!=":
			o = opNE
		case "<":
			o = opLT
		case ">":
			o = opGT
		case "<=":
			o = opLE
		case ">=":
			o = opGE
		}
	case t.kind == tWord:
		switch t.lower() {
		case "eq":
			o = opEQ
		case "ne":
			o = opNE
		case "lt":
			o = opLT
		case "gt":
			o = opGT
		case "le":
			o = opLE
		case "ge":
			o = opGE
		default:
			return opEQ
		}
	default:
		return opEQ
	}
	p.next()
	return o
}

// parseNumber parses N, 0xN or N with a k, m or g suffix (×1000ⁿ), at most
// max.
func (p *parser) parseNumber(what string, max uint64) (uint64, error) {
	t := p.next()
	if t.kind != tWord {
		return 0, p.errAt(t, "unexpected %s: want %s", t, what)
	}
	s := strings.ToLower(t.text)
	mult := uint64(1)
	if n := len(s); n > 1 {
		switch s[n-1] {
		case 'k':
			mult, s = 1000, s[:n-1]
		case 'm':
			mult, s = 1000_000, s[:n-1]
		case 'g':
			mult, s = 1000_000_000, s[:n-1]
		}
	}
	base := 10
	if rest, ok := strings.CutPrefix(s, "0x"); ok && mult == 1 {
		s, base = rest, 16
	}
	v, err := strconv.ParseUint(s, base, 64)
	if err != nil {
		return 0, p.errAt(t, "%s is not a number: want %s", t, what)
	}
	if v > math.MaxUint64/mult || v*mult > max {
		return 0, p.errAt(t, "%s out of range: at most %d", t, max)
	}
	return v * mult, nil
}

// cmp compiles "get(r) OP v".
func cmp(o op, v uint64, get func(*flow.Record) uint64) Pred {
	switch o {
	case opNE:
		return func(r *flow.Record) bool { return get(r) != v }
	case opLT:
		return func(r *flow.Record) bool { return get(r) < v }
	case opGT:
		return func(r *flow.Record) bool { return get(r) > v }
	case opLE:
		return func(r *flow.Record) bool { return get(r) <= v }
	case opGE:
		return func(r *flow.Record) bool { return get(r) >= v }
	}
	return func(r *flow.Record) bool { return get(r) == v }
}

func (p *parser) parseNumField(d dir, max uint64, srcF, dstF Field, fl flowfile.Fields, src, dst func(*flow.Record) uint64) (node, error) {
	o := p.parseOp()
	v, err := p.parseNumber("a number", max)
	if err != nil {
		return nil, err
	}
	e := byDirExpr(d, Compare{srcF, Op(o), v}, Compare{dstF, Op(o), v})
	return always(e, fl, byDir(d, cmp(o, v, src), cmp(o, v, dst))), nil
}

func (p *parser) parseNumList(d dir, max uint64, srcF, dstF Field, fl flowfile.Fields, src, dst func(*flow.Record) uint64) (node, error) {
	p.next() // in
	set := map[uint64]struct{}{}
	err := p.listItems("numbers", func(t token) error {
		p.i--
		v, err := p.parseNumber("a number", max)
		set[v] = struct{}{}
		return err
	})
	if err != nil {
		return nil, err
	}
	in := func(get func(*flow.Record) uint64) Pred {
		return func(r *flow.Record) bool { _, ok := set[get(r)]; return ok }
	}
	e := byDirExpr(d, numbersIn(srcF, set), numbersIn(dstF, set))
	return always(e, fl, byDir(d, in(src), in(dst))), nil
}

func portFields(d dir) flowfile.Fields {
	return dirFields(d, flowfile.FieldSrcPort, dstPortFields)
}

func (p *parser) parsePort(d dir) (node, error) {
	if isWord(p.peek(), "in") {
		p.next()
		var set [1024]uint64 // a bit per port
		list := map[uint64]struct{}{}
		err := p.listItems("ports", func(t token) error {
			p.i--
			v, err := p.parseNumber("a port (0..65535)", 65535)
			set[v>>6] |= 1 << (v & 63)
			list[v] = struct{}{}
			return err
		})
		if err != nil {
			return nil, err
		}
		e := byDirExpr(d, numbersIn(FieldSrcPort, list), numbersIn(FieldDstPort, list))
		return always(e, portFields(d), byDir(d,
			func(r *flow.Record) bool { v := r.SrcPort; return set[v>>6]&(1<<(v&63)) != 0 },
			func(r *flow.Record) bool { v := r.NfDstPort(); return set[v>>6]&(1<<(v&63)) != 0 })), nil
	}
	o := p.parseOp()
	v, err := p.parseNumber("a port (0..65535)", 65535)
	if err != nil {
		return nil, err
	}
	e := byDirExpr(d, Compare{FieldSrcPort, Op(o), v}, Compare{FieldDstPort, Op(o), v})
	if o == opEQ {
		pv := uint16(v)
		return always(e, portFields(d), byDir(d,
			func(r *flow.Record) bool { return r.SrcPort == pv },
			func(r *flow.Record) bool { return r.NfDstPort() == pv })), nil
	}
	return always(e, portFields(d), byDir(d,
		cmp(o, v, func(r *flow.Record) uint64 { return uint64(r.SrcPort) }),
		cmp(o, v, func(r *flow.Record) uint64 { return uint64(r.NfDstPort()) }))), nil
}

func (p *parser) parseProto() (node, error) {
	t := p.peek()
	if t.kind != tWord {
		p.next()
		return nil, p.errAt(t, "unexpected %s: want a protocol (tcp, udp, icmp, icmp6 or a number)", t)
	}
	var v uint8
	if n, ok := flow.ProtoNumber(t.text); ok {
		p.next()
		v = n
	} else {
		n, err := p.parseNumber("a protocol (tcp, udp, icmp, icmp6 or a number 0..255)", 255)
		if err != nil {
			return nil, err
		}
		v = uint8(n)
	}
	return always(Compare{FieldProto, EQ, uint64(v)}, flowfile.FieldProto, func(r *flow.Record) bool { return r.Proto == v }), nil
}

// parseFlags reads a TCP flags word. As in nfdump, "flags SA" matches
// records with both SYN and ACK set; under an odd number of "not"s the test
// is "any of them set", so "not flags SA" matches records with neither.
func (p *parser) parseFlags() (node, error) {
	t := p.next()
	if t.kind != tWord {
		return nil, p.errAt(t, "unexpected %s: want TCP flags (a combination of A S F R P U E C, or X for all)", t)
	}
	var mask uint16
	for i := 0; i < len(t.text); i++ {
		switch t.text[i] | 0x20 {
		case 'f':
			mask |= flow.TCPFin
		case 's':
			mask |= flow.TCPSyn
		case 'r':
			mask |= flow.TCPRst
		case 'p':
			mask |= flow.TCPPsh
		case 'a':
			mask |= flow.TCPAck
		case 'u':
			mask |= flow.TCPUrg
		case 'e':
			mask |= flow.TCPEce
		case 'c':
			mask |= flow.TCPCwr
		case 'x':
			mask |= flow.TCPFin | flow.TCPSyn | flow.TCPRst | flow.TCPPsh | flow.TCPAck | flow.TCPUrg
		default:
			return nil, NewSyntaxError(p.src, t.pos+i, t.text[i:i+1], fmt.Sprintf("unknown TCP flag %q: want A S F R P U E C or X", t.text[i]))
		}
	}
	return leaf{func(negated bool) Pred {
		if negated {
			return func(r *flow.Record) bool { return r.TCPFlags&mask != 0 }
		}
		return func(r *flow.Record) bool { return r.TCPFlags&mask == mask }
	}, flowfile.FieldTCPFlags, Flags{mask}}, nil
}

func (p *parser) parseIf(t token, which string) (node, error) {
	o := p.parseOp()
	v, err := p.parseNumber("an interface index", math.MaxUint32)
	if err != nil {
		return nil, err
	}
	in := cmp(o, v, func(r *flow.Record) uint64 { return uint64(r.InIf) })
	out := cmp(o, v, func(r *flow.Record) uint64 { return uint64(r.OutIf) })
	inE, outE := Compare{FieldInIf, Op(o), v}, Compare{FieldOutIf, Op(o), v}
	switch which {
	case "in":
		return always(inE, flowfile.FieldInIf, in), nil
	case "out":
		return always(outE, flowfile.FieldOutIf, out), nil
	}
	return always(Or{inE, outE}, flowfile.FieldInIf|flowfile.FieldOutIf, func(r *flow.Record) bool { return in(r) || out(r) }), nil
}

func (p *parser) parseCounter(kw string) (node, error) {
	o := p.parseOp()
	what := map[string]string{"duration": "a duration in milliseconds"}[kw]
	if what == "" {
		what = "a number (k, m, g suffixes allowed)"
	}
	v, err := p.parseNumber(what, math.MaxUint64)
	if err != nil {
		return nil, err
	}
	var get func(*flow.Record) uint64
	fl := map[string]flowfile.Fields{
		"packets":  flowfile.FieldPackets,
		"bytes":    flowfile.FieldOctets,
		"duration": flowfile.FieldTimes,
		"pps":      flowfile.FieldPackets | flowfile.FieldTimes,
		"bps":      flowfile.FieldOctets | flowfile.FieldTimes,
		"bpp":      flowfile.FieldPackets | flowfile.FieldOctets,
	}[kw]
	e := Compare{map[string]Field{"packets": FieldPackets, "bytes": FieldBytes, "flows": FieldFlows,
		"duration": FieldDuration, "pps": FieldPPS, "bps": FieldBPS, "bpp": FieldBPP}[kw], Op(o), v}
	switch kw {
	case "packets":
		if o == opGT {
			return always(e, flowfile.FieldPackets, func(r *flow.Record) bool { return r.Packets > v }), nil
		}
		get = func(r *flow.Record) uint64 { return r.Packets }
	case "bytes":
		if o == opGT {
			return always(e, flowfile.FieldOctets, func(r *flow.Record) bool { return r.Octets > v }), nil
		}
		get = func(r *flow.Record) uint64 { return r.Octets }
	case "flows":
		get = func(*flow.Record) uint64 { return 1 }
	case "duration":
		get = (*flow.Record).DurationMs
	case "pps":
		get = (*flow.Record).PPS
	case "bps":
		get = (*flow.Record).BPS
	case "bpp":
		get = (*flow.Record).BPP
	}
	return always(e, fl, cmp(o, v, get)), nil
}

func (p *parser) parseICMP(kw string) (node, error) {
	v, err := p.parseNumber("an ICMP "+strings.TrimPrefix(kw, "icmp-")+" (0..255)", 255)
	if err != nil {
		return nil, err
	}
	b := uint8(v)
	if kw == "icmp-type" {
		return always(Compare{FieldICMPType, EQ, v}, dstPortFields, func(r *flow.Record) bool { return r.IsICMP() && uint8(r.NfDstPort()>>8) == b }), nil
	}
	return always(Compare{FieldICMPCode, EQ, v}, dstPortFields, func(r *flow.Record) bool { return r.IsICMP() && uint8(r.NfDstPort()) == b }), nil
}

func (p *parser) parseFlowDir() (node, error) {
	t := p.next()
	var d flow.Direction
	switch t.lower() {
	case "ingress", "in", "0":
		d = flow.Ingress
		p.swapWord(t, "egress")
	case "egress", "out", "1":
		d = flow.Egress
		p.swapWord(t, "ingress")
	default:
		return nil, p.errAt(t, "unexpected %s: want ingress, egress, 0 or 1", t)
	}
	return always(Compare{FieldDirection, EQ, uint64(d)}, flowfile.FieldDirection, func(r *flow.Record) bool { return r.Direction == d }), nil
}

// parseIdent parses "ident NAME": the records of files written under that
// ident. nfdump compares the whole ident, case sensitively.
func (p *parser) parseIdent() (node, error) {
	t := p.next()
	if t.kind != tWord {
		return nil, p.errAt(t, "unexpected %s after ident: want the ident of a collector or source", t)
	}
	name := t.text
	return always(Ident{Name: name}, 0, func(r *flow.Record) bool { return r.Ident == name }), nil
}

// parseCgroup parses "unit NAME", "container ID", "pod UID" and "cgroup
// PATH": the records of a local socket's cgroup (see Cgroup).
func (p *parser) parseCgroup(kind string) (node, error) {
	t := p.next()
	if t.kind != tWord {
		return nil, p.errAt(t, "unexpected %s after %s: want %s", t, kind, map[string]string{
			"unit": "a systemd unit (nginx.service)", "container": "a container id (or its first digits)",
			"pod": "a Kubernetes pod UID", "cgroup": "a cgroup path (/system.slice/nginx.service)"}[kind])
	}
	v := t.text
	var match func(r *flow.Record) bool
	switch kind {
	case "unit":
		if !strings.Contains(v, ".") {
			v += ".service"
		}
		match = func(r *flow.Record) bool { return r.Cgroup != "" && flow.ParseCgroup(r.Cgroup).Unit == v }
	case "container":
		v = strings.ToLower(v)
		if len(v) > 64 || strings.Trim(v, "0123456789abcdef") != "" {
			return nil, p.errAt(t, "container %s: want a container id (up to 64 hexadecimal digits)", t.text)
		}
		match = func(r *flow.Record) bool {
			if r.Cgroup == "" {
				return false
			}
			id := flow.ParseCgroup(r.Cgroup).Container
			return id != "" && strings.HasPrefix(id, v)
		}
	case "pod":
		v = strings.ToLower(v)
		match = func(r *flow.Record) bool { return r.Cgroup != "" && flow.ParseCgroup(r.Cgroup).Pod == v }
	case "cgroup":
		if !strings.HasPrefix(v, "/") {
			return nil, p.errAt(t, "cgroup %s: want a path from the cgroup v2 root, starting with /", t.text)
		}
		v = strings.TrimSuffix(v, "/")
		match = func(r *flow.Record) bool {
			return r.Cgroup != "" && (r.Cgroup == v || strings.HasPrefix(r.Cgroup, v+"/"))
		}
	}
	return always(Cgroup{Kind: kind, Value: v}, flowfile.FieldCgroup, match), nil
}
