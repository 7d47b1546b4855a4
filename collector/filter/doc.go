// SPDX-License-Identifier: Apache-2.0

// Package filter compiles nfdump-style flow filters ("proto tcp and dst
// port 443", "src net 198.18.0.0/15 and bytes > 1M") into predicates over
// flow records.
//
// Parse turns the text into a *Filter whose Match is a tree of closures
// built once: matching a record uses no reflection and allocates nothing.
// Errors are *SyntaxError values that point at the offending token.
// Filter.Expr returns the syntax tree with parsed values (numbers, netip
// addresses and prefixes), for backends that translate a filter, such
// as into a database's WHERE clause; a test proves that evaluating it
// as documented gives Match's answer.
//
// The language follows nfdump(1) for the common primitives:
//
//	any
//	ipv4 | inet | ipv6 | inet6
//	proto tcp|udp|icmp|icmp6|sctp|gre|esp|ah|N
//	[DIR] ip|host ADDR|NAME      [DIR] ip|host in [ ADDR|CIDR ... ]
//	[DIR] net CIDR | A.B.C.D MASK | A.B/16
//	[DIR] port [OP] N            [DIR] port in [ N ... ]
//	[DIR] tos [OP] N             [DIR] vlan [OP] N
//	[DIR] as [OP] N              [DIR] mask N
//	[in|out] if N
//	flags SAFRPUECX              (all listed flags set; under "not": none)
//	packets|bytes|flows|duration|pps|bps|bpp [OP] N[k|m|g]
//	icmp-type N | icmp-code N
//	exporter ADDR | router ip ADDR | next ip ADDR
//	flowdir ingress|egress|0|1
//	engine-type N | engine-id N | observation domain id N
//	EXPR and EXPR | EXPR or EXPR | not EXPR | ( EXPR )   (also && || !)
//
// DIR is src, dst, "src or dst" (the default: either matches) or "src and
// dst" (both must match). OP is one of = == eq > gt < lt >= ge <= le (and
// != ne); without OP, equality. Number suffixes k, m and g multiply by
// 1000, 1000² and 1000³ as nfdump's do. duration is in milliseconds, pps is
// packets per second, bps bits per second, bpp bytes per packet. Keywords
// are case insensitive; '#' starts a comment that runs to the end of the
// line.
//
// As in nfdump, an ICMP record's destination port is its type*256+code.
//
// A host NAME is resolved once, by Parse (the system's resolver, or
// ParseWith's), to every address it has. engine-type and engine-id are
// the second and first byte of the observation domain, where kflow's
// collector keeps NetFlow v5's engine type and id. nfdump's primitives of
// fields kflow does not store (bgpnext, MAC, MPLS, NSEL/NEL, VRF,
// latency, ...) are refused with "not stored by kflow".
package filter
