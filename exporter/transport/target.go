// SPDX-License-Identifier: Apache-2.0

// Package transport parses collector targets and carries encoded export
// messages to them over UDP or TCP, reconnecting TCP with backoff.
package transport

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Format is the wire format a target receives.
type Format string

const (
	IPFIX     Format = "ipfix"
	NetFlowV9 Format = "nfv9"
	NetFlowV5 Format = "nfv5"
)

// Default ports per format (IANA: 4739 for IPFIX, 2055 by custom for NetFlow).
var defaultPorts = map[Format]string{IPFIX: "4739", NetFlowV9: "2055", NetFlowV5: "2055"}

// ErrBadTarget is returned for a collector target that cannot be used.
var ErrBadTarget = errors.New("bad collector target")

// Target is one collector: a format, a transport and an address.
type Target struct {
	Format Format
	TCP    bool   // IPFIX over TCP; otherwise UDP
	Addr   string // host:port
}

func (t Target) String() string {
	s := string(t.Format)
	if t.TCP {
		s += "+tcp"
	}
	return s + "://" + t.Addr
}

// ParseTarget parses a collector target such as ipfix://host:4739,
// ipfix+tcp://[fd00::1]:4739, nfv9://host:2055 or nfv5://host (the port
// defaults to the format's usual one).
func ParseTarget(s string) (Target, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return Target{}, fmt.Errorf("%q: %w: want SCHEME://HOST[:PORT] with scheme ipfix, ipfix+tcp, nfv9 or nfv5", s, ErrBadTarget)
	}
	var t Target
	switch strings.ToLower(scheme) {
	case "ipfix", "ipfix+udp":
		t.Format = IPFIX
	case "ipfix+tcp":
		t.Format, t.TCP = IPFIX, true
	case "nfv9", "netflow9", "nfv9+udp":
		t.Format = NetFlowV9
	case "nfv5", "netflow5", "nfv5+udp":
		t.Format = NetFlowV5
	default:
		return Target{}, fmt.Errorf("%q: %w: unknown scheme %q (want ipfix, ipfix+tcp, nfv9 or nfv5)", s, ErrBadTarget, scheme)
	}
	rest = strings.TrimSuffix(rest, "/")
	if rest == "" {
		return Target{}, fmt.Errorf("%q: %w: no host", s, ErrBadTarget)
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		// No port: host alone, possibly a bracketed IPv6 address.
		host, port = strings.TrimSuffix(strings.TrimPrefix(rest, "["), "]"), defaultPorts[t.Format]
		if strings.ContainsAny(host, "[]") {
			return Target{}, fmt.Errorf("%q: %w: %w", s, ErrBadTarget, err)
		}
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return Target{}, fmt.Errorf("%q: %w: port %q is not a number in 1..65535", s, ErrBadTarget, port)
	}
	if host == "" {
		return Target{}, fmt.Errorf("%q: %w: no host", s, ErrBadTarget)
	}
	t.Addr = net.JoinHostPort(host, port)
	return t, nil
}
