// SPDX-License-Identifier: Apache-2.0

package pcapfilter

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/kflow-dev/kflow/collector/filter"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// A filter is parsed into a tree of tests joined by and, or and not;
// Compile turns the tree into a Program.
type nodeKind uint8

const (
	nLeaf nodeKind = iota
	nAnd
	nOr
	nNot
)

type node struct {
	kind nodeKind
	a, b *node
	leaf Insn // nLeaf: the test (jumps unset)
}

func leaf(in Insn) *node   { return &node{kind: nLeaf, leaf: in} }
func and(a, b *node) *node { return &node{kind: nAnd, a: a, b: b} }
func or(a, b *node) *node  { return &node{kind: nOr, a: a, b: b} }
func not(a *node) *node    { return &node{kind: nNot, a: a} }
func (n *node) eval(p *Packet) bool {
	switch n.kind {
	case nAnd:
		return n.a.eval(p) && n.b.eval(p)
	case nOr:
		return n.a.eval(p) || n.b.eval(p)
	case nNot:
		return !n.a.eval(p)
	}
	return n.leaf.test(p)
}

// token is a token of the shared filter lexer (collector/filter).
type token struct{ filter.Token }

// lex splits src into tokens with the shared lexer and refuses what the
// capture filter language does not have: pcap's packet data accessors
// (tcp[13]) and comparisons.
func lex(src string) ([]token, error) {
	if i := strings.IndexByte(src, '['); i >= 0 {
		return nil, filter.NewSyntaxError(src, i, "[", "unsupported primitive: packet data accessors (proto[offset]) are not supported")
	}
	toks, err := filter.Lex(src)
	if err != nil {
		return nil, err
	}
	out := make([]token, len(toks))
	for i, t := range toks {
		switch t.Kind {
		case filter.TokLBrack, filter.TokRBrack, filter.TokComma, filter.TokCompare:
			return nil, filter.NewSyntaxError(src, t.Pos, t.Text, fmt.Sprintf("unexpected %q", t.Text))
		}
		out[i] = token{t}
	}
	return out, nil
}

// qual is a primitive's qualifiers, kept for the values that follow an
// and/or without any ("port 80 or 443").
type qual struct {
	proto string // "", ip, ip6, tcp, udp, sctp
	dir   string // "", src, dst, "src or dst", "src and dst"
	typ   string // host, net, port, portrange, proto
}

type parser struct {
	src  string
	toks []token
	i    int
	last *qual // the previous primitive's qualifiers
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) peekAt(k int) token {
	if p.i+k < len(p.toks) {
		return p.toks[p.i+k]
	}
	return p.toks[len(p.toks)-1]
}
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.Kind != filter.TokEOF {
		p.i++
	}
	return t
}

func (p *parser) errAt(t token, format string, args ...any) error {
	return filter.NewSyntaxError(p.src, t.Pos, t.Text, fmt.Sprintf(format, args...))
}

func (t token) is(words ...string) bool {
	if t.Kind != filter.TokWord {
		return false
	}
	for _, w := range words {
		if strings.EqualFold(t.Text, w) {
			return true
		}
	}
	return false
}

func (t token) isAnd() bool { return t.Kind == filter.TokAnd || t.is("and") }
func (t token) isOr() bool  { return t.Kind == filter.TokOr || t.is("or") }
func (t token) isNot() bool { return t.Kind == filter.TokNot || t.is("not") }

// parse parses a whole filter. An empty (or blank) filter is nil.
func parse(src string) (*node, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{src: src, toks: toks}
	if p.peek().Kind == filter.TokEOF {
		return nil, nil
	}
	n, err := p.expr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.Kind != filter.TokEOF {
		return nil, p.errAt(t, "expected and, or or the end of the filter")
	}
	return n, nil
}

// expr: unary { (and|or) unary }, left to right with equal precedence,
// as pcap-filter(7) defines.
func (p *parser) expr() (*node, error) {
	n, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		var join func(a, b *node) *node
		switch {
		case t.isAnd():
			join = and
		case t.isOr():
			join = or
		default:
			return n, nil
		}
		p.next()
		m, err := p.unary()
		if err != nil {
			return nil, err
		}
		n = join(n, m)
	}
}

func (p *parser) unary() (*node, error) {
	t := p.peek()
	switch {
	case t.isNot():
		p.next()
		n, err := p.unary()
		if err != nil {
			return nil, err
		}
		return not(n), nil
	case t.Kind == filter.TokLParen:
		p.next()
		n, err := p.expr()
		if err != nil {
			return nil, err
		}
		if c := p.peek(); c.Kind != filter.TokRParen {
			return nil, p.errAt(c, "expected )")
		}
		p.next()
		return n, nil
	case t.Kind == filter.TokWord:
		return p.primitive()
	case t.Kind == filter.TokEOF:
		return nil, p.errAt(t, "expected a primitive at the end of the filter")
	}
	return nil, p.errAt(t, "expected a primitive, not %s", t.Text)
}

// unsupported are pcap-filter keywords kflow's capture filters do not
// take.
var unsupported = map[string]bool{
	"ether": true, "fddi": true, "tr": true, "wlan": true, "ppp": true, "slip": true, "link": true,
	"arp": true, "rarp": true, "atalk": true, "aarp": true, "decnet": true, "iso": true, "stp": true,
	"ipx": true, "netbeui": true, "lat": true, "moprc": true, "mopdl": true, "clnp": true, "esis": true,
	"isis": true, "l1": true, "l2": true, "iih": true, "lsp": true, "snp": true, "csnp": true, "psnp": true,
	"less": true, "greater": true, "len": true, "broadcast": true, "multicast": true, "gateway": true,
	"mpls": true, "pppoed": true, "pppoes": true, "geneve": true, "vxlan": true, "inbound": true,
	"outbound": true, "ifname": true, "on": true, "rnr": true, "rulenum": true, "reason": true, "rset": true,
	"ruleset": true, "srnr": true, "subrulenum": true, "action": true, "type": true, "subtype": true,
	"dir": true, "protochain": true, "llc": true, "radio": true, "vpi": true, "vci": true, "lane": true,
	"oam": true, "oamf4": true, "oamf4s": true, "oamf4e": true, "metac": true, "bcc": true, "sc": true,
	"ilmic": true, "connectmsg": true, "metaconnect": true, "addr1": true, "addr2": true, "addr3": true,
	"addr4": true, "ra": true, "ta": true, "hdlc": true, "carp": true,
}

// protoWords are the protocol names that are primitives on their own
// (pcap's abbreviations of ip proto and ip6 proto) and their IP version
// (0: both).
var protoWords = map[string]struct {
	proto, version uint8
}{
	"tcp": {6, 0}, "udp": {17, 0}, "sctp": {132, 0}, "icmp": {1, 4}, "icmp6": {58, 6},
	"igmp": {2, 4}, "igrp": {9, 4}, "pim": {103, 0}, "ah": {51, 0}, "esp": {50, 0}, "vrrp": {112, 4},
}

var typeWords = map[string]bool{"host": true, "net": true, "port": true, "portrange": true}

// keyword reports whether w starts a primitive (a value alone does not).
func keyword(w string) bool {
	return typeWords[w] || protoWords[w].proto != 0 || unsupported[w] ||
		w == "ip" || w == "ip6" || w == "src" || w == "dst" || w == "proto" || w == "vlan"
}

func (p *parser) primitive() (*node, error) {
	t := p.peek()
	w := strings.ToLower(t.Text)
	switch {
	case unsupported[w]:
		return nil, p.errAt(t, "unsupported primitive %q: kflow's capture filters take host, net, port, portrange, proto, tcp, udp, sctp, icmp, icmp6, ip, ip6 and vlan", t.Text)
	case w == "vlan":
		return p.vlan()
	case w == "proto":
		p.next()
		q := qual{typ: "proto"}
		p.last = &q
		return p.protoID(0)
	}
	if p.last != nil && !keyword(w) {
		// A value alone takes the previous primitive's qualifiers.
		return p.value(*p.last)
	}
	var q qual
	start := t
	if w == "ip" || w == "ip6" || protoWords[w].proto != 0 {
		p.next()
		nt := p.peek()
		switch {
		case (w == "ip" || w == "ip6") && nt.is("proto"):
			p.next()
			p.last = &qual{proto: w, typ: "proto"}
			return p.protoID(versionOf(w))
		case nt.is("src", "dst") || nt.Kind == filter.TokWord && typeWords[strings.ToLower(nt.Text)]:
			q.proto = w
		default:
			// A protocol or IP version on its own.
			if w == "ip" || w == "ip6" {
				return leaf(Insn{Op: OpVersion, Version: versionOf(w)}), nil
			}
			pw := protoWords[w]
			return leaf(Insn{Op: OpProto, Version: pw.version, Proto: pw.proto}), nil
		}
		t = p.peek()
	}
	if t.is("src", "dst") {
		p.next()
		q.dir = strings.ToLower(t.Text)
		if j, d := p.peek(), p.peekAt(1); (j.isOr() || j.isAnd()) && d.is("src", "dst") && !d.is(q.dir) && j.Kind == filter.TokWord {
			// "src or dst", "src and dst"
			p.next()
			p.next()
			q.dir = "src " + strings.ToLower(j.Text) + " dst"
		}
		t = p.peek()
	}
	if t.Kind == filter.TokWord && typeWords[strings.ToLower(t.Text)] {
		q.typ = strings.ToLower(t.Text)
		p.next()
	}
	if q.typ == "" {
		q.typ = "host"
	}
	switch q.proto {
	case "tcp", "udp", "sctp":
		if q.typ != "port" && q.typ != "portrange" {
			return nil, p.errAt(start, "%s applies to port and portrange, not %s", q.proto, q.typ)
		}
	case "icmp", "icmp6", "igmp", "igrp", "pim", "ah", "esp", "vrrp":
		return nil, p.errAt(start, "%s takes no host, net or port", q.proto)
	}
	p.last = &q
	return p.value(q)
}

// value reads the value of a primitive with qualifiers q: after the
// qualifiers, or alone after and/or with the previous ones.
func (p *parser) value(q qual) (*node, error) {
	t := p.peek()
	if t.Kind != filter.TokWord || t.isAnd() || t.isOr() || t.isNot() {
		return nil, p.errAt(t, "expected a value for %s", q.typ)
	}
	p.next()
	switch q.typ {
	case "proto":
		p.i--
		return p.protoID(versionOf(q.proto))
	case "host":
		return p.host(t, q)
	case "net":
		return p.net(t, q)
	}
	return p.port(t, q)
}

func versionOf(w string) uint8 {
	switch w {
	case "ip":
		return 4
	case "ip6":
		return 6
	}
	return 0
}

// byDir applies a source and a destination test as the direction
// qualifier says.
func byDir(dir string, src, dst Insn) *node {
	switch dir {
	case "src":
		return leaf(src)
	case "dst":
		return leaf(dst)
	case "src and dst":
		return and(leaf(src), leaf(dst))
	}
	return or(leaf(src), leaf(dst))
}

// key16 is an address as the datapath keys it (IPv4-mapped for IPv4).
func key16(a netip.Addr) [16]byte { return a.As16() }

// prefixMask is the 16-byte mask of an address prefix of bits bits.
func prefixMask(a netip.Addr, bits int) [16]byte {
	if a.Is4() {
		bits += 96
	}
	var m [16]byte
	for i := range m {
		switch {
		case bits >= 8:
			m[i] = 0xff
			bits -= 8
		case bits > 0:
			m[i] = byte(0xff << (8 - bits))
			bits = 0
		}
	}
	return m
}

func (p *parser) addrTests(t token, q qual, a netip.Addr, mask [16]byte) (*node, error) {
	if v := versionOf(q.proto); v == 4 && !a.Is4() || v == 6 && !a.Is6() {
		return nil, p.errAt(t, "%s with an IPv%d address", q.proto, map[bool]int{true: 4, false: 6}[a.Is4()])
	}
	ver := uint8(6)
	if a.Is4() {
		ver = 4
	}
	addr := key16(a)
	for i := range addr {
		addr[i] &= mask[i]
	}
	src := Insn{Op: OpSrcNet, Version: ver, Addr: addr, Mask: mask}
	dst := src
	dst.Op = OpDstNet
	return byDir(q.dir, src, dst), nil
}

func (p *parser) host(t token, q qual) (*node, error) {
	a, err := netip.ParseAddr(t.Text)
	if err != nil || a.Zone() != "" {
		if strings.Contains(t.Text, "/") {
			return nil, p.errAt(t, "host %s: a host is one address (write net %s)", t.Text, t.Text)
		}
		if !strings.ContainsAny(t.Text, ":") && strings.IndexFunc(t.Text, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }) >= 0 {
			return nil, p.errAt(t, "unsupported: host names are not resolved (write the address of %s)", t.Text)
		}
		return nil, p.errAt(t, "%q is not an IP address", t.Text)
	}
	return p.addrTests(t, q, a, prefixMask(a, a.BitLen()))
}

func (p *parser) net(t token, q qual) (*node, error) {
	var a netip.Addr
	var bits int
	switch {
	case strings.Contains(t.Text, "/"):
		pfx, err := netip.ParsePrefix(t.Text)
		if err != nil {
			return nil, p.errAt(t, "net %s: %v", t.Text, err)
		}
		if pfx.Masked() != pfx {
			return nil, p.errAt(t, "net %s: bits set past the prefix length (%s)", t.Text, pfx.Masked())
		}
		a, bits = pfx.Addr(), pfx.Bits()
	default:
		var err error
		a, bits, err = partialNet(t.Text)
		if err != nil {
			return nil, p.errAt(t, "net %s: %v", t.Text, err)
		}
	}
	mask := prefixMask(a, bits)
	if m := p.peek(); m.is("mask") {
		p.next()
		mt := p.next()
		mk, err := netip.ParseAddr(mt.Text)
		if mt.Kind != filter.TokWord || err != nil || !mk.Is4() || !a.Is4() || strings.Contains(t.Text, "/") {
			return nil, p.errAt(mt, "mask takes a dotted IPv4 mask after an IPv4 net without /length")
		}
		// The IPv4-mapped prefix, then the mask as written: pcap takes
		// masks that are not contiguous, and so does the datapath.
		mask = prefixMask(a, 0)
		m4 := mk.As4()
		copy(mask[12:], m4[:])
		if k := key16(a); k[12]&^m4[0] != 0 || k[13]&^m4[1] != 0 || k[14]&^m4[2] != 0 || k[15]&^m4[3] != 0 {
			return nil, p.errAt(t, "net %s mask %s: bits set outside the mask", t.Text, mt.Text)
		}
	}
	return p.addrTests(t, q, a, mask)
}

// partialNet reads an IPv4 net written with 1 to 4 dotted numbers
// (10 = 10.0.0.0/8, 10.1 = 10.1.0.0/16), or an IPv6 address (/128).
func partialNet(s string) (netip.Addr, int, error) {
	if strings.Contains(s, ":") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Addr{}, 0, fmt.Errorf("not an IPv6 address")
		}
		return a, a.BitLen(), nil
	}
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, 0, fmt.Errorf("not an IPv4 net")
	}
	var b [4]byte
	for i, x := range parts {
		v, err := strconv.ParseUint(x, 10, 8)
		if err != nil {
			return netip.Addr{}, 0, fmt.Errorf("not an IPv4 net")
		}
		b[i] = byte(v)
	}
	return netip.AddrFrom4(b), 8 * len(parts), nil
}

func (p *parser) port(t token, q qual) (*node, error) {
	var lo, hi uint16
	var err error
	proto := q.proto
	if q.typ == "portrange" {
		a, b, ok := strings.Cut(t.Text, "-")
		if !ok {
			return nil, p.errAt(t, "portrange %s: write FIRST-LAST", t.Text)
		}
		if lo, err = portNumber(a, proto); err == nil {
			hi, err = portNumber(b, proto)
		}
		if lo > hi {
			lo, hi = hi, lo
		}
	} else {
		lo, err = portNumber(t.Text, proto)
		hi = lo
	}
	if err != nil {
		return nil, p.errAt(t, "%s %s: %v", q.typ, t.Text, err)
	}
	ver := versionOf(proto)
	n := byDir(q.dir, Insn{Op: OpSrcPort, Version: ver, Lo: lo, Hi: hi}, Insn{Op: OpDstPort, Version: ver, Lo: lo, Hi: hi})
	if pw := protoWords[proto]; pw.proto != 0 {
		n = and(leaf(Insn{Op: OpProto, Proto: pw.proto}), n)
	}
	return n, nil
}

// portNumber reads a port number or a service name (/etc/services).
func portNumber(s, proto string) (uint16, error) {
	if v, err := strconv.ParseUint(s, 10, 16); err == nil {
		return uint16(v), nil
	}
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return 0, fmt.Errorf("not a port number (0 to 65535)")
	}
	nets := []string{"tcp", "udp"}
	if proto == "udp" || proto == "sctp" {
		nets = []string{proto}
	}
	for _, n := range nets {
		if v, err := net.LookupPort(n, s); err == nil {
			return uint16(v), nil
		}
	}
	return 0, fmt.Errorf("unknown service name")
}

// protoID reads the protocol after proto, ip proto or ip6 proto: a number
// or a name (pcap needs a backslash before names that are keywords:
// \tcp; kflow takes both).
func (p *parser) protoID(version uint8) (*node, error) {
	t := p.next()
	if t.Kind != filter.TokWord {
		return nil, p.errAt(t, "expected a protocol number or name after proto")
	}
	s := strings.TrimPrefix(t.Text, "\\")
	var v uint8
	if n, err := strconv.ParseUint(s, 10, 8); err == nil {
		v = uint8(n)
	} else if n, ok := flow.ProtoNumber(s); ok {
		v = n
	} else {
		return nil, p.errAt(t, "proto %s: not a protocol number (0 to 255) or name", t.Text)
	}
	return leaf(Insn{Op: OpProto, Version: version, Proto: v}), nil
}

func (p *parser) vlan() (*node, error) {
	p.next()
	p.last = nil
	t := p.peek()
	if t.Kind != filter.TokWord || t.isAnd() || t.isOr() || t.isNot() || typeWords[strings.ToLower(t.Text)] {
		return leaf(Insn{Op: OpTagged}), nil
	}
	v, err := strconv.ParseUint(t.Text, 10, 16)
	if err != nil || v > 4095 {
		return nil, p.errAt(t, "vlan %s: not a VLAN id (0 to 4095)", t.Text)
	}
	p.next()
	return leaf(Insn{Op: OpVLAN, Lo: uint16(v)}), nil
}
