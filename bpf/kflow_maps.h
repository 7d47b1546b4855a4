/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maps and load-time knobs of the datapath. User space may change the map
 * sizes and the flow maps' type (per-CPU or shared values) before loading,
 * and sets the knobs through the object's read-only data.
 */
#ifndef KFLOW_MAPS_H
#define KFLOW_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "kflow_abi.h"

/* Sample 1 packet in N (1: every packet). */
volatile const __u32 cfg_sampling = 1;
/*
 * How: 0 keeps each packet with probability 1/N (random, uniform
 * probabilistic); non-zero keeps every Nth packet of each CPU
 * (systematic count-based, per CPU).
 */
volatile const __u8 cfg_sampling_count = 0;
/*
 * Non-zero to timestamp packets with CLOCK_BOOTTIME nanoseconds instead of
 * jiffies. Reading a nanosecond clock costs tens of nanoseconds per packet
 * on virtual machines; jiffies cost nothing and have the resolution of the
 * kernel tick (1 to 10 ms).
 */
volatile const __u8 cfg_precise_time = 0;
/*
 * Non-zero when the flow maps hold one shared value per flow updated with
 * atomic adds (BPF_MAP_TYPE_HASH) instead of one value per CPU
 * (BPF_MAP_TYPE_PERCPU_HASH). Must match the maps' type.
 */
volatile const __u8 cfg_shared_values = 0;

/*
 * Non-zero to attribute each new egress flow entry to the cgroup of the
 * socket that sent it (flow_value.cgroup_id). Costs nothing for packets
 * of existing entries: it is read once per entry (or flow cache slot taken)
 * and drain interval.
 */
volatile const __u8 cfg_cgroups = 0;

/*
 * Non-zero to count IP packets in the per-CPU flow caches first, in slot
 * (key hash & cfg_cache_mask) of the active cache map (cache4_slot for
 * IPv4, cache6_slot for IPv6).
 */
volatile const __u8 cfg_cache = 0;
volatile const __u32 cfg_cache_mask = 0;

/* Non-zero when filter_insns holds a capture filter to run. */
volatile const __u8 cfg_filter = 0;
/* The number of tests in filter_insns (at most FILTER_MAX_INSNS). */
volatile const __u32 cfg_filter_len = 0;

/*
 * The capture filter's program, set by user space before loading. Kept
 * out of .rodata on purpose: the verifier then checks the interpreter
 * once for any program instead of walking every path of this one.
 */
struct filter_insn filter_insns[FILTER_MAX_INSNS];

/*
 * The flow maps are double-buffered: the program finds the active one in
 * slot 0 of flow_slot. User space installs the idle map in the slot, and
 * after the update returns (the kernel waits for running programs when a
 * map-in-map slot changes) it reads and clears the retired map while
 * nothing writes to it.
 *
 * IPv4 flows have maps of their own, keyed by the short flow_key4 (flows4_a
 * and flows4_b in flow4_slot); flows_a and flows_b hold the IPv6 flows.
 * Maps pinned by an earlier datapath, which counted IPv4 flows in flows_a
 * and flows_b too (IPv4-mapped addresses), are adopted as they are: user
 * space reads any IPv4 entry it finds there.
 */
struct flow_map {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct flow_key);
	__type(value, struct flow_value);
	__uint(max_entries, 65536);
} flows_a SEC(".maps"), flows_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct flow_map);
} flow_slot SEC(".maps");

struct flow_map4 {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct flow_key4);
	__type(value, struct flow_value);
	__uint(max_entries, 65536);
} flows4_a SEC(".maps"), flows4_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct flow_map4);
} flow4_slot SEC(".maps");

/*
 * The per-CPU IPv4 flow cache, direct-mapped: a packet of the flow a slot
 * holds is counted there with plain adds, without a hash map lookup. A
 * packet of another flow first moves the slot's counters into the IPv4
 * flow map (merged into the flow's entry there), then takes the slot; when
 * the flow map cannot take them, the slot keeps its flow and the packet
 * is counted on its own (flow map, else ring buffer). Double-buffered
 * like the flow maps (cache4_slot): user space retires the active cache,
 * then the flow maps, and reads and clears the retired cache with them.
 */
struct flow_cache {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct flow_cache_entry);
	__uint(max_entries, 1024);
} cache4_a SEC(".maps"), cache4_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct flow_cache);
} cache4_slot SEC(".maps");

/* The same for IPv6 flows, in front of the general flow maps. */
struct flow_cache6 {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct flow_cache_entry6);
	__uint(max_entries, 1024);
} cache6_a SEC(".maps"), cache6_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct flow_cache6);
} cache6_slot SEC(".maps");

/*
 * Packet updates that did not fit in the flow map. A ring buffer has no
 * value size; the value type only names its records' type in BTF, so
 * bpf2go generates it (the loader creates the map without it).
 */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
	__type(value, struct flow_event);
} flow_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct datapath_stats);
} stats SEC(".maps");

/*
 * Packets the capture filter left out, per interface and direction:
 * totals that only grow. User space creates the {0, 0} entry, which
 * gathers interfaces past the map's capacity.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct filter_key);
	__type(value, struct filter_counts);
} filtered SEC(".maps");

/* Packets each CPU saw since it last kept one (count-based sampling). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} sample_count SEC(".maps");

/* Where kflow_clock leaves its reading. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct clock_sample);
} clock SEC(".maps");

/*
 * Written by user space only: the datapath_stats totals already handed out
 * by a drain, so a daemon that adopts pinned maps continues from them and
 * counts nothing twice or never.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct datapath_stats);
} drained_stats SEC(".maps");

#endif /* KFLOW_MAPS_H */
