// SPDX-License-Identifier: Apache-2.0

package filter

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/kflow-dev/kflow/collector/flowfile"
	"github.com/kflow-dev/kflow/exporter/flow"
)

// Pred is a compiled predicate over a flow record.
type Pred func(r *flow.Record) bool

// Filter is a compiled filter. It is safe for concurrent use.
type Filter struct {
	src    string
	match  Pred
	any    bool
	fields flowfile.Fields
	swaps  []swap                  // the direction words, for Reverse
	tree   node                    // nil for a filter that matches all
	hosts  map[string][]netip.Addr // the host names resolved, for Reverse
}

// Resolver returns the addresses of a host name.
type Resolver func(ctx context.Context, host string) ([]netip.Addr, error)

// SystemResolver resolves with the system's resolver (net.DefaultResolver:
// /etc/hosts, then DNS).
func SystemResolver(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// Parse compiles a filter. An empty filter (or one holding only comments)
// matches every record. Host names ("host gw.example") are resolved once,
// here, by SystemResolver. Errors are *SyntaxError.
func Parse(src string) (*Filter, error) {
	return ParseWith(src, SystemResolver)
}

// ParseWith is Parse with the host names resolved by resolve.
func ParseWith(src string, resolve Resolver) (*Filter, error) {
	p, err := newParser(src)
	if err != nil {
		return nil, err
	}
	p.resolve = resolve
	if p.peek().kind == tEOF {
		return &Filter{src: src, match: matchAll, any: true}, nil
	}
	n, err := p.parseExpr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errAt(t, "unexpected %s: want and, or or the end of the filter", t)
	}
	f := &Filter{src: src, match: compile(n, false), fields: fieldsOf(n), swaps: p.swaps, tree: n, hosts: p.hosts}
	_, f.any = n.(anyNode)
	return f, nil
}

// MustParse is Parse that panics on error, for filters fixed in code.
func MustParse(src string) *Filter {
	f, err := Parse(src)
	if err != nil {
		panic(err)
	}
	return f
}

// Reverse returns the filter of the opposite direction: src and dst
// swapped in every primitive ("src net N" becomes "dst net N", "src
// port 80 and dst port 443" becomes "dst port 80 and src port 443"), "in
// if" and "out if" swapped, and "flowdir ingress" and "egress" swapped.
// A record passes the reverse filter when the same record with its
// source and destination, input and output interface and direction
// swapped passes the filter. The reverse of a filter without direction
// words is itself. Its String is the rewritten text.
func (f *Filter) Reverse() *Filter {
	if len(f.swaps) == 0 {
		return f
	}
	var b strings.Builder
	last := 0
	for _, s := range f.swaps {
		b.WriteString(f.src[last:s.pos])
		b.WriteString(s.text)
		last = s.pos + s.n
	}
	b.WriteString(f.src[last:])
	// Host names keep the addresses they were resolved to.
	r, err := ParseWith(b.String(), func(_ context.Context, host string) ([]netip.Addr, error) {
		if a, ok := f.hosts[host]; ok {
			return a, nil
		}
		return nil, fmt.Errorf("%s was not resolved", host)
	})
	if err != nil {
		// Swapping direction words keeps a filter well formed.
		panic("filter: reverse of " + strconv.Quote(f.src) + " does not parse: " + err.Error())
	}
	return r
}

// Match reports whether r passes the filter.
func (f *Filter) Match(r *flow.Record) bool { return f.match(r) }

// Pred returns the compiled predicate.
func (f *Filter) Pred() Pred { return f.match }

// MatchesAll reports whether the filter is empty or "any": callers may skip
// calling Match.
func (f *Filter) MatchesAll() bool { return f.any }

// Fields returns the record fields the filter reads: a record that agrees
// with another on them matches when the other does.
func (f *Filter) Fields() flowfile.Fields { return f.fields }

// String returns the filter text, trimmed.
func (f *Filter) String() string { return strings.TrimSpace(f.src) }

func matchAll(*flow.Record) bool { return true }

// AST: the parser builds it, compile turns it into closures. Leaves build
// their predicate knowing whether they sit under an odd number of "not"s,
// which nfdump's "flags" needs ("not flags SF": neither S nor F set).

type node interface{}

type andNode struct{ l, r node }
type orNode struct{ l, r node }
type notNode struct{ x node }
type anyNode struct{}
type leaf struct {
	build  func(negated bool) Pred
	fields flowfile.Fields // what the predicate reads
	expr   Expr            // the primitive, for Filter.Expr
}

func compile(n node, neg bool) Pred {
	switch n := n.(type) {
	case andNode:
		a, b := compile(n.l, neg), compile(n.r, neg)
		return func(r *flow.Record) bool { return a(r) && b(r) }
	case orNode:
		a, b := compile(n.l, neg), compile(n.r, neg)
		return func(r *flow.Record) bool { return a(r) || b(r) }
	case notNode:
		x := compile(n.x, !neg)
		return func(r *flow.Record) bool { return !x(r) }
	case anyNode:
		return matchAll
	case leaf:
		return n.build(neg)
	}
	panic("filter: unknown node")
}

func fieldsOf(n node) flowfile.Fields {
	switch n := n.(type) {
	case andNode:
		return fieldsOf(n.l) | fieldsOf(n.r)
	case orNode:
		return fieldsOf(n.l) | fieldsOf(n.r)
	case notNode:
		return fieldsOf(n.x)
	case leaf:
		return n.fields
	}
	return 0
}

// always is the leaf of a primitive whose test does not depend on
// negation.
func always(e Expr, fields flowfile.Fields, p Pred) leaf {
	return leaf{func(bool) Pred { return p }, fields, e}
}

// dirFields is what byDir(d, src, dst) reads.
func dirFields(d dir, src, dst flowfile.Fields) flowfile.Fields {
	switch d {
	case dirSrc:
		return src
	case dirDst:
		return dst
	}
	return src | dst
}

// dstPortFields is what DstPort reads.
const dstPortFields = flowfile.FieldDstPort | flowfile.FieldProto | flowfile.FieldICMP
