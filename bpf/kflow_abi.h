/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The kernel/user ABI of kflow's datapath: every struct the eBPF programs
 * share with Go is declared here once; bpf2go generates the Go types from
 * the object's BTF (-type), and a Go test pins their sizes.
 */
#ifndef KFLOW_ABI_H
#define KFLOW_ABI_H

#include <linux/types.h>

enum flow_direction {
	FLOW_DIR_INGRESS = 0,
	FLOW_DIR_EGRESS = 1,
};

/*
 * A flow's identity. IPv4 addresses are stored IPv4-mapped (::ffff:a.b.c.d).
 * ICMP and ICMPv6 keep type and code in their own fields and zero ports.
 * Non-first IP fragments carry no transport header: they are keyed with
 * zero ports (and zero ICMP type/code), so they form their own flow next to
 * the flow of their first fragment.
 */
struct flow_key {
	__u8 src_addr[16];
	__u8 dst_addr[16];
	__u32 ifindex;
	__u16 vlan_id;	     /* outer 802.1Q/802.1ad tag, 0 when untagged */
	__u16 inner_vlan_id; /* inner (customer) tag of a double-tagged frame */
	__u16 src_port;	     /* host byte order */
	__u16 dst_port;
	__u8 direction;	 /* enum flow_direction */
	__u8 ip_version; /* 4 or 6 */
	__u8 protocol;
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 pad[3];
};

/*
 * The key of an IPv4 flow in the IPv4 flow maps: the fields of flow_key
 * with 4-byte addresses (network byte order) and no version byte. Half the
 * size of flow_key: a lookup hashes and compares 24 bytes instead of 52.
 */
struct flow_key4 {
	__u8 src_addr[4];
	__u8 dst_addr[4];
	__u32 ifindex;
	__u16 vlan_id;
	__u16 inner_vlan_id;
	__u16 src_port; /* host byte order */
	__u16 dst_port;
	__u8 direction; /* enum flow_direction */
	__u8 protocol;
	__u8 icmp_type;
	__u8 icmp_code;
};

/*
 * Not a TCP header bit: set in a flow's tcp_flags when one of its packets
 * was a SYN without ACK (the flow opened a connection). User space uses it
 * to tell a biflow's initiator and never exports it.
 */
#define TCP_SYN_NO_ACK 0x200

/*
 * Counters of one flow since the last drain. Timestamps are in the
 * datapath clock: jiffies (bpf_jiffies64, the default: free to read, one
 * kernel tick of resolution) or, with cfg_precise_time, CLOCK_BOOTTIME
 * nanoseconds (bpf_ktime_get_boot_ns). Octets are L3 octets: the IP total
 * length of every packet (for a GSO packet, of every segment).
 */
struct flow_value {
	__u64 packets;
	__u64 octets;
	__u64 first_seen;
	__u64 last_seen;
	__u32 tcp_flags; /* OR of the flags byte plus NS as bit 8, and
			  * TCP_SYN_NO_ACK */
	__u8 tos;	 /* DSCP/ECN byte of the flow's first packet */
	__u8 min_ttl;
	__u8 max_ttl;
	__u8 pad;
	/*
	 * With cfg_cgroups: the cgroup v2 id of the local socket that sent an
	 * egress flow, read when the entry is created; 0 for ingress and
	 * forwarded traffic. In per-CPU values only the creating CPU's value
	 * carries it.
	 */
	__u64 cgroup_id;
};

/*
 * An entry of the per-CPU IPv4 flow cache: a flow's counters on one CPU
 * since they were last handed to the IPv4 flow map (or drained). Free when
 * value.packets is 0.
 */
struct flow_cache_entry {
	struct flow_key4 key;
	struct flow_value value;
};

/* An entry of the per-CPU IPv6 flow cache: as flow_cache_entry. */
struct flow_cache_entry6 {
	struct flow_key key;
	__u32 pad;
	struct flow_value value;
};

/*
 * One packet's flow update, sent through the ring buffer when the flow map
 * cannot take a new entry. User space folds these into its flow cache.
 */
struct flow_event {
	struct flow_key key;
	__u32 packets; /* segments of a GSO packet, else 1 */
	__u64 ts;      /* datapath clock, as in flow_value */
	__u32 octets;
	__u32 tcp_flags;
	__u8 tos;
	__u8 ttl;
	__u8 pad[6];
	__u64 cgroup_id; /* as in flow_value */
};

/*
 * Per-CPU datapath counters. They only grow; user space computes deltas.
 * Every packet a program sees ends up in exactly one place: a flow map
 * entry, a ring buffer event (fallback_*), or one of these counters.
 */
struct datapath_stats {
	__u64 non_ip_packets;	/* frames that are not IPv4/IPv6 */
	__u64 non_ip_octets;	/* their frame length */
	__u64 unparsed_packets; /* IP frames too short or malformed to key */
	__u64 unparsed_octets;	/* their frame length */
	__u64 fallback_packets; /* flow map full: sent to the ring buffer */
	__u64 fallback_octets;
	__u64 ignored_packets; /* flow map and ring buffer both full */
	__u64 ignored_octets;
};

/*
 * One reading of both clocks at the same instant, taken by the
 * kflow_clock program so user space can map jiffies to wall-clock time.
 */
struct clock_sample {
	__u64 jiffies;
	__u64 boot_ns;
};

/*
 * The capture filter (--filter) compiled by bpf/pcapfilter: a decision
 * program of at most FILTER_MAX_INSNS tests of the parsed packet. Each
 * test continues at jt when it holds and at jf when not: a later
 * instruction, or FILTER_ACCEPT / FILTER_REJECT. Jumps only go forward.
 */
enum filter_op {
	FILTER_OP_VERSION = 0, /* the IP version test alone */
	FILTER_OP_SRC_NET,     /* (src_addr & mask) == addr */
	FILTER_OP_DST_NET,
	FILTER_OP_SRC_PORT, /* a TCP, UDP or SCTP port in [lo, hi] */
	FILTER_OP_DST_PORT,
	FILTER_OP_PROTO,  /* key protocol == proto */
	FILTER_OP_VLAN,	  /* outer VLAN id == lo */
	FILTER_OP_TAGGED, /* outer VLAN id != 0 */
};

#define FILTER_ACCEPT 254
#define FILTER_REJECT 255
#define FILTER_MAX_INSNS 64 /* a power of two */

struct filter_insn {
	__u64 addr[2]; /* the key's address bytes (IPv4-mapped for IPv4) */
	__u64 mask[2];
	__u16 lo;
	__u16 hi;
	__u8 op;      /* enum filter_op */
	__u8 version; /* 4 or 6: the packet must be of that version; 0 any */
	__u8 jt;
	__u8 jf;
	__u8 proto;
	__u8 pad[7];
};

/* Packets the capture filter left out, per interface and direction. */
struct filter_key {
	__u32 ifindex; /* 0: interfaces past the map's capacity */
	__u8 direction;
	__u8 pad[3];
};

struct filter_counts {
	__u64 packets;
	__u64 octets; /* L3 octets, as flows count them */
};

_Static_assert(sizeof(struct flow_key) == 52, "flow_key size");
_Static_assert(sizeof(struct flow_key4) == 24, "flow_key4 size");
_Static_assert(sizeof(struct flow_value) == 48, "flow_value size");
_Static_assert(sizeof(struct flow_cache_entry) == 72, "flow_cache_entry size");
_Static_assert(sizeof(struct flow_cache_entry6) == 104,
	       "flow_cache_entry6 size");
_Static_assert(sizeof(struct flow_event) == 88, "flow_event size");
_Static_assert(sizeof(struct datapath_stats) == 64, "datapath_stats size");
_Static_assert(sizeof(struct clock_sample) == 16, "clock_sample size");
_Static_assert(sizeof(struct filter_insn) == 48, "filter_insn size");
_Static_assert(sizeof(struct filter_key) == 8, "filter_key size");
_Static_assert(sizeof(struct filter_counts) == 16, "filter_counts size");

#endif /* KFLOW_ABI_H */
