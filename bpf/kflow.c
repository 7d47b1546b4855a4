//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * kflow's datapath: per-flow packet and octet counters kept in the kernel.
 * The entry points are thin: they parse the frame with the shared parsers,
 * then account it with one update routine, and let the packet continue.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/errno.h>
#include <bpf/bpf_helpers.h>

#include "kflow_abi.h"
#include "kflow_maps.h"
#include "kflow_parse.h"
#include "kflow_filter.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* TCX_NEXT lets the next program run; older uapi headers lack the name. */
#define KFLOW_TCX_NEXT (-1)
/* Bytes made linear before parsing when the headers are not. */
#define PULL_LEN 256

static __always_inline struct datapath_stats *get_stats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&stats, &zero);
}

/* count_unkeyed accounts a frame that has no flow key. */
static __always_inline void count_unkeyed(int ret, __u64 frame_len)
{
	struct datapath_stats *st = get_stats();

	if (!st)
		return;
	if (ret == PARSE_NON_IP) {
		st->non_ip_packets++;
		st->non_ip_octets += frame_len;
	} else {
		st->unparsed_packets++;
		st->unparsed_octets += frame_len;
	}
}

/*
 * local_cgroup returns the cgroup v2 id of the local socket that sent an
 * egress packet (the skb's socket; for the SYN-ACK of a request socket,
 * its listener), or 0: for forwarded packets, time-wait sockets, ingress
 * packets (the socket that will receive them is not known yet at TC;
 * user space gives an ingress flow the cgroup of its egress direction),
 * and XDP (skb NULL).
 */
static __always_inline __u64 local_cgroup(struct __sk_buff *skb,
					  struct packet_info *pi)
{
	if (!cfg_cgroups || !skb || pi->key.direction != FLOW_DIR_EGRESS)
		return 0;
	return bpf_skb_cgroup_id(skb);
}

/* fallback sends a packet's update to user space through the ring buffer. */
static __always_inline void fallback(struct __sk_buff *skb,
				     struct packet_info *pi, __u32 packets,
				     __u64 octets, __u64 now)
{
	struct datapath_stats *st = get_stats();
	struct flow_event *ev;

	ev = bpf_ringbuf_reserve(&flow_events, sizeof(*ev), 0);
	if (!ev) {
		if (st) {
			st->ignored_packets += packets;
			st->ignored_octets += octets;
		}
		return;
	}
	__builtin_memcpy(&ev->key, &pi->key, sizeof(ev->key));
	ev->packets = packets;
	ev->ts = now;
	ev->octets = octets;
	ev->tcp_flags = pi->tcp_flags;
	ev->tos = pi->tos;
	ev->ttl = pi->ttl;
	__builtin_memset(ev->pad, 0, sizeof(ev->pad));
	ev->cgroup_id = local_cgroup(skb, pi);
	bpf_ringbuf_submit(ev, 0);
	if (st) {
		st->fallback_packets += packets;
		st->fallback_octets += octets;
	}
}

static __always_inline void update_value(struct flow_value *v,
					 struct packet_info *pi, __u32 packets,
					 __u64 octets, __u64 now)
{
	if (cfg_shared_values) {
		__sync_fetch_and_add(&v->packets, packets);
		__sync_fetch_and_add(&v->octets, octets);
		if (pi->tcp_flags & ~v->tcp_flags)
			__sync_fetch_and_or(&v->tcp_flags, pi->tcp_flags);
	} else {
		/*
		 * A per-CPU value another CPU created starts zeroed on this
		 * CPU: its first packet here sets the per-CPU first seen.
		 */
		if (v->packets == 0) {
			v->first_seen = now;
			v->tos = pi->tos;
			v->min_ttl = pi->ttl;
			v->max_ttl = pi->ttl;
		}
		v->packets += packets;
		v->octets += octets;
		v->tcp_flags |= pi->tcp_flags;
	}
	v->last_seen = now;
	if (pi->ttl < v->min_ttl)
		v->min_ttl = pi->ttl;
	if (pi->ttl > v->max_ttl)
		v->max_ttl = pi->ttl;
}

/*
 * count_in adds one packet (or the segments of a GSO packet) to its flow in
 * the active map of slot (flow_slot or flow4_slot), whose key is key.
 */
static __always_inline void count_in(void *slot, void *key,
				     struct __sk_buff *skb,
				     struct packet_info *pi, __u32 packets,
				     __u64 octets, __u64 now)
{
	struct flow_value *v, nv;
	__u32 zero = 0;
	void *flows;
	long err;

	flows = bpf_map_lookup_elem(slot, &zero);
	if (!flows) {
		/* No active map installed: count through user space. */
		fallback(skb, pi, packets, octets, now);
		return;
	}
	v = bpf_map_lookup_elem(flows, key);
	if (v) {
		update_value(v, pi, packets, octets, now);
		return;
	}

	__builtin_memset(&nv, 0, sizeof(nv));
	nv.packets = packets;
	nv.octets = octets;
	nv.first_seen = now;
	nv.last_seen = now;
	nv.tcp_flags = pi->tcp_flags;
	nv.tos = pi->tos;
	nv.min_ttl = pi->ttl;
	nv.max_ttl = pi->ttl;
	nv.cgroup_id = local_cgroup(skb, pi);
	err = bpf_map_update_elem(flows, key, &nv, BPF_NOEXIST);
	if (err == 0)
		return;
	if (err == -EEXIST) {
		/* Another CPU created the flow meanwhile. */
		v = bpf_map_lookup_elem(flows, key);
		if (v) {
			update_value(v, pi, packets, octets, now);
			return;
		}
	}
	/* The map is full (-E2BIG) or out of memory. */
	fallback(skb, pi, packets, octets, now);
}

/* The short key's three 8-byte words, to hash and compare it. */
union key4_words {
	struct flow_key4 key;
	__u64 w[3];
};

/*
 * merge_value adds the counters of a cache slot (cv) to its flow's entry in
 * the IPv4 flow map (v).
 */
static __always_inline void merge_value(struct flow_value *v,
					const struct flow_value *cv)
{
	if (cfg_shared_values) {
		__sync_fetch_and_add(&v->packets, cv->packets);
		__sync_fetch_and_add(&v->octets, cv->octets);
		if (cv->tcp_flags & ~v->tcp_flags)
			__sync_fetch_and_or(&v->tcp_flags, cv->tcp_flags);
	} else {
		/* This CPU's value of an entry another CPU created. */
		if (v->packets == 0) {
			__builtin_memcpy(v, cv, sizeof(*v));
			return;
		}
		v->packets += cv->packets;
		v->octets += cv->octets;
		v->tcp_flags |= cv->tcp_flags;
	}
	if (cv->first_seen < v->first_seen) {
		v->first_seen = cv->first_seen;
		v->tos = cv->tos;
	}
	if (cv->last_seen > v->last_seen)
		v->last_seen = cv->last_seen;
	if (cv->min_ttl < v->min_ttl)
		v->min_ttl = cv->min_ttl;
	if (cv->max_ttl > v->max_ttl)
		v->max_ttl = cv->max_ttl;
	if (!v->cgroup_id)
		v->cgroup_id = cv->cgroup_id;
}

/*
 * flush moves a cache slot's counters (cv, of the flow key) into the
 * active flow map of slot: 0, or -1 when the map cannot take them (full,
 * or no map installed).
 */
static __always_inline int flush(void *slot, void *key, struct flow_value *cv)
{
	struct flow_value *v;
	__u32 zero = 0;
	void *flows;
	long err;

	flows = bpf_map_lookup_elem(slot, &zero);
	if (!flows)
		return -1;
	v = bpf_map_lookup_elem(flows, key);
	if (v) {
		merge_value(v, cv);
		return 0;
	}
	err = bpf_map_update_elem(flows, key, cv, BPF_NOEXIST);
	if (err == 0)
		return 0;
	if (err == -EEXIST) {
		v = bpf_map_lookup_elem(flows, key);
		if (v) {
			merge_value(v, cv);
			return 0;
		}
	}
	return -1;
}

/* cache_hit adds a packet to the counters of its flow's cache slot. */
static __always_inline void cache_hit(struct flow_value *v,
				      struct packet_info *pi, __u32 packets,
				      __u64 octets, __u64 now)
{
	/* The CPU's own slot: plain adds. */
	v->packets += packets;
	v->octets += octets;
	v->tcp_flags |= pi->tcp_flags;
	v->last_seen = now;
	if (pi->ttl < v->min_ttl)
		v->min_ttl = pi->ttl;
	if (pi->ttl > v->max_ttl)
		v->max_ttl = pi->ttl;
}

/* cache_fill starts the counters of a slot the packet's flow takes. */
static __always_inline void cache_fill(struct flow_value *v,
				       struct __sk_buff *skb,
				       struct packet_info *pi, __u32 packets,
				       __u64 octets, __u64 now)
{
	v->packets = packets;
	v->octets = octets;
	v->first_seen = now;
	v->last_seen = now;
	v->tcp_flags = pi->tcp_flags;
	v->tos = pi->tos;
	v->min_ttl = pi->ttl;
	v->max_ttl = pi->ttl;
	v->pad = 0;
	v->cgroup_id = local_cgroup(skb, pi);
}

static __always_inline int same_key4(const struct flow_key4 *a,
				     const union key4_words *b)
{
	__u64 w0, w1, w2;

	__builtin_memcpy(&w0, a, 8);
	__builtin_memcpy(&w1, (const __u8 *)a + 8, 8);
	__builtin_memcpy(&w2, (const __u8 *)a + 16, 8);
	return w0 == b->w[0] && w1 == b->w[1] && w2 == b->w[2];
}

/*
 * cache_account4 counts an IPv4 packet in its slot of the per-CPU flow
 * cache: 1, or 0 when the packet is to be counted in the flow map (no
 * cache installed, or the slot's flow could not be moved out).
 */
static __always_inline int cache_account4(struct __sk_buff *skb,
					  struct packet_info *pi,
					  const union key4_words *k,
					  __u32 packets, __u64 octets,
					  __u64 now)
{
	struct flow_cache_entry *e;
	struct flow_value *v;
	__u32 zero = 0, slot;
	void *cache;
	__u64 h;

	h = k->w[0] * 0x9E3779B97F4A7C15ULL ^ k->w[1] * 0xC2B2AE3D27D4EB4FULL ^
	    k->w[2] * 0x165667B19E3779F9ULL;
	slot = (__u32)(h >> 32) & cfg_cache_mask;
	cache = bpf_map_lookup_elem(&cache4_slot, &zero);
	if (!cache)
		return 0;
	e = bpf_map_lookup_elem(cache, &slot);
	if (!e)
		return 0;
	v = &e->value;
	if (v->packets && same_key4(&e->key, k)) {
		cache_hit(v, pi, packets, octets, now);
		return 1;
	}
	if (v->packets && flush(&flow4_slot, &e->key, v) != 0)
		return 0;
	__builtin_memcpy(&e->key, &k->key, sizeof(e->key));
	cache_fill(v, skb, pi, packets, octets, now);
	return 1;
}

/*
 * cache_account6 is cache_account4 for an IPv6 packet (its flow key as
 * parsed, 52 bytes: six 8-byte words and the last 4 bytes) and the IPv6
 * cache, in front of the general flow maps.
 */
static __always_inline int cache_account6(struct __sk_buff *skb,
					  struct packet_info *pi, __u32 packets,
					  __u64 octets, __u64 now)
{
	const __u8 *key = (const __u8 *)&pi->key;
	struct flow_cache_entry6 *e;
	__u64 w[6], ew[6], h;
	__u32 zero = 0, slot, t, et;
	struct flow_value *v;
	void *cache;

	__builtin_memcpy(w, key, sizeof(w));
	__builtin_memcpy(&t, key + sizeof(w), sizeof(t));
	h = w[0] * 0x9E3779B97F4A7C15ULL ^ w[1] * 0xC2B2AE3D27D4EB4FULL ^
	    w[2] * 0x165667B19E3779F9ULL ^ w[3] * 0x85EBCA77C2B2AE63ULL ^
	    w[4] * 0x27D4EB2F165667C5ULL ^ w[5] * 0xFF51AFD7ED558CCDULL ^
	    (__u64)t * 0xC4CEB9FE1A85EC53ULL;
	slot = (__u32)(h >> 32) & cfg_cache_mask;
	cache = bpf_map_lookup_elem(&cache6_slot, &zero);
	if (!cache)
		return 0;
	e = bpf_map_lookup_elem(cache, &slot);
	if (!e)
		return 0;
	v = &e->value;
	if (v->packets) {
		__builtin_memcpy(ew, &e->key, sizeof(ew));
		__builtin_memcpy(&et, (const __u8 *)&e->key + sizeof(ew),
				 sizeof(et));
		if (ew[0] == w[0] && ew[1] == w[1] && ew[2] == w[2] &&
		    ew[3] == w[3] && ew[4] == w[4] && ew[5] == w[5] &&
		    et == t) {
			cache_hit(v, pi, packets, octets, now);
			return 1;
		}
		if (flush(&flow_slot, &e->key, v) != 0)
			return 0;
	}
	__builtin_memcpy(&e->key, &pi->key, sizeof(e->key));
	e->pad = 0;
	cache_fill(v, skb, pi, packets, octets, now);
	return 1;
}

/*
 * account adds one packet (or the segments of a GSO packet) to its flow:
 * an IPv4 flow in the IPv4 flow cache or maps under its short key, an
 * IPv6 flow in the IPv6 flow cache or the general maps; skb is NULL for
 * XDP.
 */
static __always_inline void account(struct __sk_buff *skb,
				    struct packet_info *pi, __u32 packets,
				    __u64 octets)
{
	__u64 now =
		cfg_precise_time ? bpf_ktime_get_boot_ns() : bpf_jiffies64();

	if (pi->key.ip_version == 4) {
		const struct flow_key *k = &pi->key;
		union key4_words k4;

		__builtin_memcpy(k4.key.src_addr, &k->src_addr[12], 4);
		__builtin_memcpy(k4.key.dst_addr, &k->dst_addr[12], 4);
		k4.key.ifindex = k->ifindex;
		k4.key.vlan_id = k->vlan_id;
		k4.key.inner_vlan_id = k->inner_vlan_id;
		k4.key.src_port = k->src_port;
		k4.key.dst_port = k->dst_port;
		k4.key.direction = k->direction;
		k4.key.protocol = k->protocol;
		k4.key.icmp_type = k->icmp_type;
		k4.key.icmp_code = k->icmp_code;
		if (cfg_cache &&
		    cache_account4(skb, pi, &k4, packets, octets, now))
			return;
		count_in(&flow4_slot, &k4.key, skb, pi, packets, octets, now);
		return;
	}
	if (cfg_cache && cache_account6(skb, pi, packets, octets, now))
		return;
	count_in(&flow_slot, &pi->key, skb, pi, packets, octets, now);
}

/*
 * sampled_out reports whether sampling leaves the packet out: randomly,
 * with probability 1 - 1/N, or, counting, all but every Nth packet of
 * the CPU (programs do not migrate while they run: the counter is the
 * CPU's own).
 */
static __always_inline int sampled_out(void)
{
	__u32 zero = 0, *n;

	if (cfg_sampling <= 1)
		return 0;
	if (!cfg_sampling_count)
		return bpf_get_prandom_u32() % cfg_sampling != 0;
	n = bpf_map_lookup_elem(&sample_count, &zero);
	if (!n)
		return 0; /* not reached: an array always has its entry */
	if (++*n < cfg_sampling)
		return 1;
	*n = 0;
	return 0;
}

static __always_inline void handle_skb(struct __sk_buff *skb, __u8 dir)
{
	struct packet_info pi __attribute__((aligned(8)));
	struct cursor c;
	__u32 meta_vlan = 0, linear, segs;
	__u64 l3_len, octets;
	int ret;

	if (sampled_out())
		return;

	linear = skb->data_end - skb->data;
	if (linear < PULL_LEN && skb->len > linear)
		bpf_skb_pull_data(skb,
				  skb->len < PULL_LEN ? skb->len : PULL_LEN);

	__builtin_memset(&pi, 0, sizeof(pi));
	c.pos = (void *)(long)skb->data;
	c.end = (void *)(long)skb->data_end;
	if (skb->vlan_present)
		meta_vlan = META_VLAN_PRESENT | (skb->vlan_tci & 0x0fff);
	ret = parse_packet(&c, &pi, meta_vlan);
	if (ret != PARSE_OK) {
		count_unkeyed(ret, skb->len);
		return;
	}
	pi.key.ifindex = skb->ifindex;
	pi.key.direction = dir;

	/*
	 * A GSO packet counts as the segments it stands for, each with its own
	 * copy of the headers: the IP total lengths of the segments add up to
	 * the frame's L3 length plus (segments - 1) header lengths.
	 */
	l3_len = skb->len - pi.l3_offset;
	segs = skb->gso_segs;
	if (segs > 1)
		octets = l3_len + (__u64)(segs - 1) * pi.hdr_len;
	else
		octets = pi.ip_len ? pi.ip_len : l3_len;
	segs = segs > 1 ? segs : 1;
	if (cfg_filter && !filter_match(&pi)) {
		count_filtered(pi.key.ifindex, dir, segs, octets);
		return;
	}
	account(skb, &pi, segs, octets);
}

static __always_inline void handle_xdp(struct xdp_md *ctx)
{
	struct packet_info pi __attribute__((aligned(8)));
	struct cursor c;
	__u64 frame_len, octets;
	int ret;

	if (sampled_out())
		return;

	__builtin_memset(&pi, 0, sizeof(pi));
	c.pos = (void *)(long)ctx->data;
	c.end = (void *)(long)ctx->data_end;
	frame_len = c.end - c.pos;
	ret = parse_packet(&c, &pi, 0);
	if (ret != PARSE_OK) {
		count_unkeyed(ret, frame_len);
		return;
	}
	pi.key.ifindex = ctx->ingress_ifindex;
	pi.key.direction = FLOW_DIR_INGRESS;
	octets = pi.ip_len ? pi.ip_len : frame_len - pi.l3_offset;
	if (cfg_filter && !filter_match(&pi)) {
		count_filtered(pi.key.ifindex, FLOW_DIR_INGRESS, 1, octets);
		return;
	}
	account(NULL, &pi, 1, octets);
}

SEC("tcx/ingress")
int kflow_tcx_ingress(struct __sk_buff *skb)
{
	handle_skb(skb, FLOW_DIR_INGRESS);
	return KFLOW_TCX_NEXT;
}

SEC("tcx/egress")
int kflow_tcx_egress(struct __sk_buff *skb)
{
	handle_skb(skb, FLOW_DIR_EGRESS);
	return KFLOW_TCX_NEXT;
}

/* Legacy clsact, direct action: TC_ACT_UNSPEC runs the next filter. */
SEC("tc")
int kflow_tc_ingress(struct __sk_buff *skb)
{
	handle_skb(skb, FLOW_DIR_INGRESS);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int kflow_tc_egress(struct __sk_buff *skb)
{
	handle_skb(skb, FLOW_DIR_EGRESS);
	return TC_ACT_UNSPEC;
}

SEC("xdp")
int kflow_xdp(struct xdp_md *ctx)
{
	handle_xdp(ctx);
	return XDP_PASS;
}

/*
 * Reads both clocks at once, run by user space with BPF_PROG_TEST_RUN to
 * convert jiffies to wall-clock time.
 */
SEC("tc")
int kflow_clock(struct __sk_buff *skb)
{
	struct clock_sample *s;
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&clock, &zero);
	if (!s)
		return TC_ACT_UNSPEC;
	s->jiffies = bpf_jiffies64();
	s->boot_ns = bpf_ktime_get_boot_ns();
	return TC_ACT_UNSPEC;
}

/* An empty program: the baseline the benchmarks compare against. */
SEC("tc")
int kflow_empty(struct __sk_buff *skb)
{
	return TC_ACT_UNSPEC;
}
