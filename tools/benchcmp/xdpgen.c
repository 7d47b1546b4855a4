//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The benchmark's fast load generator and its receive-side helper.
 *
 * xdpgen_tx runs under BPF_PROG_RUN in live-frames mode
 * (BPF_F_TEST_XDP_LIVE_FRAMES): every run rewrites the UDP source port of
 * the one template frame to cycle through cfg_flows flows, counts the run,
 * and returns XDP_TX, which transmits the frame out of the interface the
 * run's ingress_ifindex names. The run count is the ground truth: flow i
 * (port cfg_base_port + i) carried every run whose number is i modulo
 * cfg_flows.
 *
 * xdpgen_pass only lets frames through. A veth drops the XDP frames sent
 * to it unless its peer runs an XDP program, so the receiving end carries
 * this one in the rows where no exporter attaches XDP itself.
 *
 * The floor rows measure what any flow meter at these hooks pays before
 * it counts anything: xdpgen_headers reads the Ethernet, IPv4 and UDP
 * headers of every frame (the first touch of the packet's data) and lets
 * it through; xdpgen_tcx_next is an empty TCX ingress program (the TCX
 * hook's own cost, with xdpgen_pass on XDP as in the baseline).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

volatile const __u32 cfg_flows = 1;
volatile const __u16 cfg_base_port = 10000;

/* Runs so far. BPF_PROG_RUN runs the program on the calling CPU only, and
 * one generator runs at a time, so a plain increment is exact. */
__u64 runs = 0;

SEC("xdp")
int xdpgen_tx(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	__u32 flow;

	if ((void *)(udp + 1) > end)
		return XDP_ABORTED;
	flow = runs % cfg_flows;
	runs++;
	udp->source = bpf_htons(cfg_base_port + flow);
	return XDP_TX;
}

SEC("xdp")
int xdpgen_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/* Frames xdpgen_headers found not to be the load's. */
__u64 odd_frames = 0;

SEC("xdp")
int xdpgen_headers(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(udp + 1) > end)
		return XDP_PASS;
	/* Counts what a flow key reads and the load never sends, so that
	 * every load is made (and no store, as the load's frames are all
	 * IPv4 UDP with a non-zero mix). */
	if (eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_UDP ||
	    (ip->saddr ^ ip->daddr ^ udp->source ^ udp->dest) == 0)
		odd_frames++;
	return XDP_PASS;
}

/* TCX_NEXT: older uapi headers lack the name. */
#define XDPGEN_TCX_NEXT (-1)

SEC("tcx/ingress")
int xdpgen_tcx_next(struct __sk_buff *skb)
{
	return XDPGEN_TCX_NEXT;
}
