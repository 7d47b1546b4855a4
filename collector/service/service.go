// SPDX-License-Identifier: Apache-2.0

// Package service names TCP, UDP and SCTP ports by their IANA service
// names ("https", "domain"), from a table generated into this package by
// tools/gensvc (go generate), never looked up at run time.
package service

//go:generate go run ../../tools/gensvc -in /etc/services -o table.go

import (
	"sort"
	"strconv"

	"github.com/kflow-dev/kflow/exporter/flow"
)

type entry struct {
	proto uint8
	port  uint16
	name  string
}

// Name returns the service name of port for proto (TCP, UDP or SCTP),
// "" when it has none.
func Name(proto uint8, port uint16) string {
	i := sort.Search(len(table), func(i int) bool {
		e := &table[i]
		return e.proto > proto || e.proto == proto && e.port >= port
	})
	if i < len(table) && table[i].proto == proto && table[i].port == port {
		return table[i].name
	}
	return ""
}

// HasPorts reports whether proto's ports name services.
func HasPorts(proto uint8) bool {
	return proto == flow.ProtoTCP || proto == flow.ProtoUDP || proto == flow.ProtoSCTP
}

// Of returns the port that names a record's service: the destination
// port when it has a name or the source port has none, else the source
// port (a reply from a server); 0 for protocols without ports.
func Of(r *flow.Record) uint16 {
	if !HasPorts(r.Proto) {
		return 0
	}
	if Name(r.Proto, r.DstPort) != "" || Name(r.Proto, r.SrcPort) == "" {
		return r.DstPort
	}
	return r.SrcPort
}

// Text prints a protocol's port as a service: "https/tcp", or the number
// when the port has no name ("40000/tcp"); for protocols without ports,
// the protocol's name.
func Text(proto uint8, port uint16) string {
	if !HasPorts(proto) {
		return flow.ProtoName(proto)
	}
	p := map[uint8]string{flow.ProtoTCP: "tcp", flow.ProtoUDP: "udp", flow.ProtoSCTP: "sctp"}[proto]
	if n := Name(proto, port); n != "" {
		return n + "/" + p
	}
	return strconv.Itoa(int(port)) + "/" + p
}
