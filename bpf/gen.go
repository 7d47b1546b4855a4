// SPDX-License-Identifier: Apache-2.0

package bpf

// Debian keeps <asm/...> in the host's multiarch directory, which clang
// does not search for the bpf target: name amd64's and arm64's (only the
// host's exists; their headers give the same object, little endian on
// both).
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -target bpfel -type flow_key -type flow_key4 -type flow_cache_entry -type flow_cache_entry6 -type flow_value -type flow_event -type datapath_stats -type clock_sample -type filter_key -type filter_counts kflow kflow.c -- -O2 -g -Wall -Werror -mcpu=v3 -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu
