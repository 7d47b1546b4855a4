/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet parsers shared by the TC and XDP programs. A cursor walks the
 * packet; every parse_* helper checks its bounds against the cursor's end
 * before it reads, and advances the cursor past what it consumed.
 */
#ifndef KFLOW_PARSE_H
#define KFLOW_PARSE_H

#include <linux/types.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "kflow_abi.h"

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

#define META_VLAN_PRESENT 0x10000
#define IP_MF_FLAG 0x2000
#define IP_OFFSET_MASK 0x1FFF

/* IPv6 extension headers walked before the transport header. */
#define IPV6_MAX_EXT_HEADERS 6
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_AUTH 51
#define NEXTHDR_DEST 60

struct cursor {
	void *pos;
	void *end;
};

enum parse_result {
	PARSE_OK = 0,
	PARSE_NON_IP,	 /* a frame that is not IPv4 or IPv6 */
	PARSE_TRUNCATED, /* a header runs past the end of the data */
	PARSE_MALFORMED, /* a header with impossible values */
};

/* What the parser learns about one packet. */
struct packet_info {
	struct flow_key key;
	__u32 l3_offset; /* from the start of the frame */
	__u32 ip_len;	 /* IP total length from the header, 0 if unknown */
	__u32 hdr_len;	 /* IP + extension + transport header lengths */
	__u32 tcp_flags;
	__u8 tos;
	__u8 ttl;
	__u8 has_l4; /* the transport header was read */
	__u8 pad;
};

/* vlan_hdr as carried after the Ethernet addresses. */
struct vlan_tag {
	__be16 tci;
	__be16 proto;
};

static __always_inline void *cursor_take(struct cursor *c, __u32 len)
{
	void *p = c->pos;

	if (p + len > c->end)
		return NULL;
	c->pos = p + len;
	return p;
}

/*
 * parse_eth reads the Ethernet header and up to two VLAN tags (802.1Q and
 * 802.1ad). A tag the driver already stripped into packet metadata is passed
 * in as meta_vlan (META_VLAN_PRESENT | vid, 0 when none) and counts as the
 * outer tag.
 */
static __always_inline int parse_eth(struct cursor *c, struct packet_info *pi,
				     __u32 meta_vlan, __be16 *proto)
{
	struct ethhdr *eth = cursor_take(c, sizeof(*eth));
	__u32 tags = 0;

	if (!eth)
		return PARSE_TRUNCATED;
	*proto = eth->h_proto;
	if (meta_vlan & META_VLAN_PRESENT) {
		pi->key.vlan_id = meta_vlan & 0x0fff;
		tags = 1;
	}
#pragma unroll
	for (int i = 0; i < 2; i++) {
		struct vlan_tag *tag;

		if (*proto != bpf_htons(ETH_P_8021Q) &&
		    *proto != bpf_htons(ETH_P_8021AD))
			break;
		tag = cursor_take(c, sizeof(*tag));
		if (!tag)
			return PARSE_TRUNCATED;
		if (tags == 0)
			pi->key.vlan_id = bpf_ntohs(tag->tci) & 0x0fff;
		else if (tags == 1)
			pi->key.inner_vlan_id = bpf_ntohs(tag->tci) & 0x0fff;
		tags++;
		*proto = tag->proto;
	}
	return PARSE_OK;
}

/* parse_l4 reads the transport header fields the flow key needs. */
static __always_inline int parse_l4(struct cursor *c, struct packet_info *pi)
{
	__u8 *l4;

	switch (pi->key.protocol) {
	case IPPROTO_TCP:
		/* Ports (4), seq (4), ack (4), data offset + NS, flags. */
		l4 = cursor_take(c, 20);
		if (!l4)
			return PARSE_TRUNCATED;
		if ((l4[12] >> 4) < 5)
			return PARSE_MALFORMED;
		pi->tcp_flags = ((__u32)(l4[12] & 0x01) << 8) | l4[13];
		/* SYN (0x02) without ACK (0x10): a connection's first packet.
		 */
		if ((l4[13] & 0x12) == 0x02)
			pi->tcp_flags |= TCP_SYN_NO_ACK;
		pi->hdr_len += (l4[12] >> 4) * 4;
		break;
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
		l4 = cursor_take(c, 8);
		if (!l4)
			return PARSE_TRUNCATED;
		pi->hdr_len += 8;
		break;
	case IPPROTO_SCTP:
		/* Common header: ports, verification tag, checksum. */
		l4 = cursor_take(c, 12);
		if (!l4)
			return PARSE_TRUNCATED;
		pi->hdr_len += 12;
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		l4 = cursor_take(c, 4);
		if (!l4)
			return PARSE_TRUNCATED;
		pi->key.icmp_type = l4[0];
		pi->key.icmp_code = l4[1];
		pi->hdr_len += 8;
		pi->has_l4 = 1;
		return PARSE_OK;
	default:
		return PARSE_OK;
	}
	pi->key.src_port = ((__u16)l4[0] << 8) | l4[1];
	pi->key.dst_port = ((__u16)l4[2] << 8) | l4[3];
	pi->has_l4 = 1;
	return PARSE_OK;
}

static __always_inline int parse_ipv4(struct cursor *c, struct packet_info *pi)
{
	struct iphdr *ip = c->pos;
	__u32 ihl;
	__u16 frag;

	if ((void *)(ip + 1) > c->end)
		return PARSE_TRUNCATED;
	if (ip->version != 4 || ip->ihl < 5)
		return PARSE_MALFORMED;
	ihl = ip->ihl * 4;
	if (!cursor_take(c, ihl))
		return PARSE_TRUNCATED;

	pi->key.ip_version = 4;
	pi->key.protocol = ip->protocol;
	/* IPv4-mapped IPv6: ::ffff:a.b.c.d */
	pi->key.src_addr[10] = 0xff;
	pi->key.src_addr[11] = 0xff;
	pi->key.dst_addr[10] = 0xff;
	pi->key.dst_addr[11] = 0xff;
	__builtin_memcpy(&pi->key.src_addr[12], &ip->saddr, 4);
	__builtin_memcpy(&pi->key.dst_addr[12], &ip->daddr, 4);
	/* Zero is legal for a BIG TCP GSO packet: the frame length is used. */
	pi->ip_len = bpf_ntohs(ip->tot_len);
	if (pi->ip_len && pi->ip_len < ihl)
		return PARSE_MALFORMED;
	pi->hdr_len = ihl;
	pi->tos = ip->tos;
	pi->ttl = ip->ttl;

	frag = bpf_ntohs(ip->frag_off);
	if (frag & IP_OFFSET_MASK)
		return PARSE_OK; /* non-first fragment: no transport header */
	return parse_l4(c, pi);
}

static __always_inline int parse_ipv6(struct cursor *c, struct packet_info *pi)
{
	struct ipv6hdr *ip6 = cursor_take(c, sizeof(struct ipv6hdr));
	__u8 next;

	if (!ip6)
		return PARSE_TRUNCATED;
	if (ip6->version != 6)
		return PARSE_MALFORMED;

	pi->key.ip_version = 6;
	__builtin_memcpy(pi->key.src_addr, &ip6->saddr, 16);
	__builtin_memcpy(pi->key.dst_addr, &ip6->daddr, 16);
	/* A zero payload length is a jumbogram (or BIG TCP): use the frame. */
	pi->ip_len = bpf_ntohs(ip6->payload_len);
	if (pi->ip_len)
		pi->ip_len += sizeof(struct ipv6hdr);
	pi->hdr_len = sizeof(struct ipv6hdr);
	pi->tos = (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4);
	pi->ttl = ip6->hop_limit;
	next = ip6->nexthdr;

#pragma unroll
	for (int i = 0; i < IPV6_MAX_EXT_HEADERS; i++) {
		__u8 *ext;
		__u32 len;

		switch (next) {
		case NEXTHDR_HOP:
		case NEXTHDR_ROUTING:
		case NEXTHDR_DEST:
			ext = cursor_take(c, 8);
			if (!ext)
				return PARSE_TRUNCATED;
			len = ((__u32)ext[1] + 1) * 8;
			if (!cursor_take(c, len - 8))
				return PARSE_TRUNCATED;
			break;
		case NEXTHDR_AUTH:
			ext = cursor_take(c, 8);
			if (!ext)
				return PARSE_TRUNCATED;
			len = ((__u32)ext[1] + 2) * 4;
			if (len < 8)
				return PARSE_MALFORMED;
			if (!cursor_take(c, len - 8))
				return PARSE_TRUNCATED;
			break;
		case NEXTHDR_FRAGMENT:
			ext = cursor_take(c, 8);
			if (!ext)
				return PARSE_TRUNCATED;
			pi->key.protocol = ext[0];
			pi->hdr_len += 8;
			/* Fragment offset is the top 13 bits of bytes 2-3. */
			if ((((__u16)ext[2] << 8) | ext[3]) & 0xfff8)
				return PARSE_OK; /* non-first fragment */
			next = ext[0];
			continue;
		default:
			pi->key.protocol = next;
			return parse_l4(c, pi);
		}
		pi->hdr_len += len;
		next = ext[0];
	}
	/*
	 * The walk bound is reached. The transport header may still follow
	 * the last extension header walked; if another extension header
	 * follows instead (more than we walk), the flow is keyed by that
	 * header's type, without ports.
	 */
	pi->key.protocol = next;
	switch (next) {
	case NEXTHDR_HOP:
	case NEXTHDR_ROUTING:
	case NEXTHDR_FRAGMENT:
	case NEXTHDR_AUTH:
	case NEXTHDR_DEST:
		return PARSE_OK;
	}
	return parse_l4(c, pi);
}

/* parse_packet parses one frame starting at its Ethernet header. */
static __always_inline int parse_packet(struct cursor *c,
					struct packet_info *pi, __u32 meta_vlan)
{
	void *start = c->pos;
	__be16 proto;
	int ret;

	ret = parse_eth(c, pi, meta_vlan, &proto);
	if (ret != PARSE_OK)
		return ret;
	pi->l3_offset = c->pos - start;
	if (proto == bpf_htons(ETH_P_IP))
		return parse_ipv4(c, pi);
	if (proto == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(c, pi);
	return PARSE_NON_IP;
}

#endif /* KFLOW_PARSE_H */
