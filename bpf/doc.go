// SPDX-License-Identifier: Apache-2.0

// Package bpf loads kflow's eBPF datapath, attaches it to interfaces (TCX,
// legacy TC clsact or XDP), pins and adopts its maps and links, and drains
// the per-flow counters the programs keep, exactly.
//
// The C programs live beside this file; `go generate` compiles them with
// bpf2go into the committed kflow_bpfel.go and kflow_bpfel.o.
package bpf
