/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The capture filter interpreter: runs the decision program user space
 * compiled from a tcpdump expression (bpf/pcapfilter) on a parsed packet.
 */
#ifndef KFLOW_FILTER_H
#define KFLOW_FILTER_H

#include <linux/in.h>

#include "kflow_abi.h"
#include "kflow_maps.h"
#include "kflow_parse.h"

/* addr_in_net tests (addr & mask) == net on 16-byte addresses. */
static __always_inline int addr_in_net(const __u8 *addr,
				       const struct filter_insn *in)
{
	__u64 a0, a1;

	__builtin_memcpy(&a0, addr, 8);
	__builtin_memcpy(&a1, addr + 8, 8);
	return (a0 & in->mask[0]) == in->addr[0] &&
	       (a1 & in->mask[1]) == in->addr[1];
}

/* filter_test runs one instruction's test on the parsed packet. */
static __always_inline int filter_test(const struct filter_insn *in,
				       const struct packet_info *pi)
{
	const struct flow_key *k = &pi->key;
	__u16 port;

	if (in->version && in->version != k->ip_version)
		return 0;
	switch (in->op) {
	case FILTER_OP_VERSION:
		return 1;
	case FILTER_OP_SRC_NET:
		return addr_in_net(k->src_addr, in);
	case FILTER_OP_DST_NET:
		return addr_in_net(k->dst_addr, in);
	case FILTER_OP_SRC_PORT:
	case FILTER_OP_DST_PORT:
		/* pcap's port primitives: TCP, UDP and SCTP only. */
		if (!pi->has_l4 ||
		    (k->protocol != IPPROTO_TCP && k->protocol != IPPROTO_UDP &&
		     k->protocol != IPPROTO_SCTP))
			return 0;
		port = in->op == FILTER_OP_SRC_PORT ? k->src_port : k->dst_port;
		return port >= in->lo && port <= in->hi;
	case FILTER_OP_PROTO:
		return k->protocol == in->proto;
	case FILTER_OP_VLAN:
		return k->vlan_id == in->lo;
	case FILTER_OP_TAGGED:
		return k->vlan_id != 0;
	}
	return 0;
}

/*
 * filter_match runs the program on the packet: 1 when it accepts, 0 when
 * it rejects. Jumps only go forward, so the loop ends within the program.
 */
static __noinline int filter_match(const struct packet_info *pi)
{
	__u32 pc = 0;

	/*
	 * The bound is the program's length, a load-time constant: the
	 * verifier walks as many iterations as the program has tests, not
	 * FILTER_MAX_INSNS (each costs it the paths of filter_test).
	 */
#pragma nounroll
	for (__u32 i = 0; i < cfg_filter_len; i++) {
		const struct filter_insn *in;
		__u8 next;

		in = &filter_insns[pc];
		next = filter_test(in, pi) ? in->jt : in->jf;
		if (next >= FILTER_ACCEPT)
			return next == FILTER_ACCEPT;
		/*
		 * User space checks that jumps stay in the program; the mask
		 * (FILTER_MAX_INSNS is a power of two) is the verifier's proof.
		 */
		pc = next & (FILTER_MAX_INSNS - 1);
	}
	return 1;
}

/*
 * count_filtered adds a packet the filter left out to its interface's
 * counters, or to the {0, 0} entry when the map has no room left.
 */
static __always_inline void count_filtered(__u32 ifindex, __u8 dir,
					   __u32 packets, __u64 octets)
{
	struct filter_key k = {.ifindex = ifindex, .direction = dir};
	struct filter_counts *c, zero = {};

	c = bpf_map_lookup_elem(&filtered, &k);
	if (!c) {
		bpf_map_update_elem(&filtered, &k, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&filtered, &k);
	}
	if (!c) {
		k.ifindex = 0;
		k.direction = 0;
		c = bpf_map_lookup_elem(&filtered, &k);
		if (!c)
			return; /* not reached: Load creates the entry */
	}
	c->packets += packets;
	c->octets += octets;
}

#endif /* KFLOW_FILTER_H */
