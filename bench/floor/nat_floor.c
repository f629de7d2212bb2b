/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * nat_floor: the yardstick of the speed benchmarks, not a product.
 *
 * The least a NAT forwarder must do per packet on the benchmark's devices, written plainly in
 * C against the system DPDK with the same EAL arguments as rvsd and testpmd: receive a burst
 * on port 0, hash every packet's flow and prefetch its bucket (one pass), then per packet
 * find or insert the flow in a flat table of 64-byte buckets holding keys and values,
 * rewrite destination address and port with RFC 1624 checksum updates, set the real
 * server's MAC, count per real server, and send the burst on port 1. No state machine, no
 * timers, no ARP, no validation beyond "IPv4/TCP to the VIP": whatever rvsd costs above this
 * is rvsd's own overhead.
 *
 * Usage: nat_floor EAL-ARGS -- [--vip A.B.C.D:PORT] [--rport PORT] [--reals N]
 *                              [--buckets POWER-OF-TWO] [--mbufs N]
 * Real server i is 192.168.10.(11+i) with MAC 02:00:00:00:0a:(11+i), port 1's MAC is
 * 02:00:00:00:01:01 (bench/src/lab.rs). Prints "nat_floor forwarding" once the forwarding
 * lcore runs, and on SIGINT/SIGTERM "nat_floor rx-packets: N tx-packets: M".
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_byteorder.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_hash_crc.h>
#include <rte_ip.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_tcp.h>

#define BURST 32
#define SLOTS 4 /* entries per 64-byte bucket */
#define MAX_REALS 64
#define RING_SIZE 1024

struct entry_value {
	rte_be32_t rip;
	rte_be16_t rport;
	uint8_t real;
	uint8_t used;
};

/* One cache line: four keys (client address and port), then their four values. */
struct bucket {
	uint64_t key[SLOTS];
	struct entry_value value[SLOTS];
} __rte_cache_aligned;

struct real_counters {
	uint64_t packets;
	uint64_t bytes;
} __rte_cache_aligned;

static volatile bool quit;
static uint64_t rx_total, tx_total;

static rte_be32_t vip;
static rte_be16_t vport;
static rte_be16_t rport;
static unsigned reals = 4;
static uint32_t bucket_mask;
static struct bucket *table;
static struct real_counters counters[MAX_REALS];
static struct rte_ether_addr real_mac[MAX_REALS];
static struct rte_ether_addr port1_mac = {{0x02, 0, 0, 0, 0x01, 0x01}};
static unsigned next_real;

static void on_signal(int sig)
{
	(void)sig;
	quit = true;
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for a 32-bit field. */
static inline uint16_t csum_replace4(uint16_t check, uint32_t from, uint32_t to)
{
	uint32_t sum = (uint16_t)~check;
	sum += (uint16_t)~(from >> 16) + (uint16_t)~(from & 0xffff);
	sum += (to >> 16) + (to & 0xffff);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static inline uint16_t csum_replace2(uint16_t check, uint16_t from, uint16_t to)
{
	uint32_t sum = (uint16_t)~check;
	sum += (uint16_t)~from + to;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

struct parsed {
	struct rte_ipv4_hdr *ip;
	struct rte_tcp_hdr *tcp;
	uint64_t key;
	struct bucket *bucket;
};

/* Finds the flow's entry in its bucket, or takes a free slot for it (round robin over the
 * real servers); NULL when the bucket is full. */
static inline struct entry_value *lookup_or_insert(struct bucket *b, uint64_t key)
{
	for (unsigned s = 0; s < SLOTS; s++)
		if (b->value[s].used && b->key[s] == key)
			return &b->value[s];
	for (unsigned s = 0; s < SLOTS; s++) {
		if (!b->value[s].used) {
			unsigned r = next_real;
			next_real = next_real + 1 == reals ? 0 : next_real + 1;
			b->key[s] = key;
			b->value[s].rip = rte_cpu_to_be_32(RTE_IPV4(192, 168, 10, 11 + r));
			b->value[s].rport = rport;
			b->value[s].real = (uint8_t)r;
			b->value[s].used = 1;
			return &b->value[s];
		}
	}
	return NULL;
}

static int forward(void *arg)
{
	(void)arg;
	struct rte_mbuf *rx[BURST], *tx[BURST];
	struct parsed p[BURST];

	printf("nat_floor forwarding on lcore %u\n", rte_lcore_id());
	fflush(stdout);
	while (!quit) {
		uint16_t n = rte_eth_rx_burst(0, 0, rx, BURST);
		if (n == 0)
			continue;
		rx_total += n;
		/* Pass 1: parse, hash, prefetch the bucket. */
		for (uint16_t i = 0; i < n; i++) {
			struct rte_ether_hdr *eth = rte_pktmbuf_mtod(rx[i], struct rte_ether_hdr *);
			struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
			p[i].ip = NULL;
			if (eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
			    ip->version_ihl != 0x45 || ip->next_proto_id != IPPROTO_TCP)
				continue;
			struct rte_tcp_hdr *tcp = (struct rte_tcp_hdr *)(ip + 1);
			if (ip->dst_addr != vip || tcp->dst_port != vport)
				continue;
			uint64_t key = ((uint64_t)ip->src_addr << 16) | tcp->src_port;
			p[i].ip = ip;
			p[i].tcp = tcp;
			p[i].key = key;
			p[i].bucket = &table[rte_hash_crc_8byte(key, 0) & bucket_mask];
			rte_prefetch0(p[i].bucket);
		}
		/* Pass 2: look up, rewrite, count. */
		uint16_t out = 0;
		for (uint16_t i = 0; i < n; i++) {
			struct rte_mbuf *m = rx[i];
			if (p[i].ip == NULL) {
				rte_pktmbuf_free(m);
				continue;
			}
			struct entry_value *v = lookup_or_insert(p[i].bucket, p[i].key);
			if (v == NULL) {
				rte_pktmbuf_free(m);
				continue;
			}
			struct rte_ipv4_hdr *ip = p[i].ip;
			struct rte_tcp_hdr *tcp = p[i].tcp;
			uint32_t old_ip = rte_be_to_cpu_32(ip->dst_addr);
			uint32_t new_ip = rte_be_to_cpu_32(v->rip);
			ip->dst_addr = v->rip;
			ip->hdr_checksum = rte_cpu_to_be_16(
				csum_replace4(rte_be_to_cpu_16(ip->hdr_checksum), old_ip, new_ip));
			uint16_t check = csum_replace4(rte_be_to_cpu_16(tcp->cksum), old_ip, new_ip);
			check = csum_replace2(check, rte_be_to_cpu_16(tcp->dst_port),
					      rte_be_to_cpu_16(v->rport));
			tcp->cksum = rte_cpu_to_be_16(check);
			tcp->dst_port = v->rport;
			struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
			eth->dst_addr = real_mac[v->real];
			eth->src_addr = port1_mac;
			counters[v->real].packets++;
			counters[v->real].bytes += rte_pktmbuf_pkt_len(m);
			tx[out++] = m;
		}
		uint16_t sent = rte_eth_tx_burst(1, 0, tx, out);
		tx_total += sent;
		for (uint16_t i = sent; i < out; i++)
			rte_pktmbuf_free(tx[i]);
	}
	return 0;
}

static int port_init(uint16_t port, struct rte_mempool *pool)
{
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	if (rte_eth_dev_configure(port, 1, 1, &conf) != 0 ||
	    rte_eth_rx_queue_setup(port, 0, RING_SIZE, rte_eth_dev_socket_id(port), NULL, pool) != 0 ||
	    rte_eth_tx_queue_setup(port, 0, RING_SIZE, rte_eth_dev_socket_id(port), NULL) != 0 ||
	    rte_eth_dev_start(port) != 0)
		return -1;
	return 0;
}

static int parse_args(int argc, char **argv, unsigned *buckets, unsigned *mbufs)
{
	unsigned a, b, c, d, port;
	vip = rte_cpu_to_be_32(RTE_IPV4(10, 0, 0, 100));
	vport = rte_cpu_to_be_16(80);
	rport = rte_cpu_to_be_16(8080);
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v == NULL)
			return -1;
		if (strcmp(argv[i], "--vip") == 0) {
			if (sscanf(v, "%u.%u.%u.%u:%u", &a, &b, &c, &d, &port) != 5 || a > 255 ||
			    b > 255 || c > 255 || d > 255 || port > 65535)
				return -1;
			vip = rte_cpu_to_be_32(RTE_IPV4(a, b, c, d));
			vport = rte_cpu_to_be_16((uint16_t)port);
		} else if (strcmp(argv[i], "--rport") == 0) {
			rport = rte_cpu_to_be_16((uint16_t)strtoul(v, NULL, 10));
		} else if (strcmp(argv[i], "--reals") == 0) {
			reals = (unsigned)strtoul(v, NULL, 10);
			if (reals == 0 || reals > MAX_REALS)
				return -1;
		} else if (strcmp(argv[i], "--buckets") == 0) {
			*buckets = (unsigned)strtoul(v, NULL, 10);
			if (*buckets == 0 || (*buckets & (*buckets - 1)) != 0)
				return -1;
		} else if (strcmp(argv[i], "--mbufs") == 0) {
			*mbufs = (unsigned)strtoul(v, NULL, 10);
			if (*mbufs < 1024)
				return -1;
		} else {
			return -1;
		}
		i++;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int eal = rte_eal_init(argc, argv);
	if (eal < 0) {
		fprintf(stderr, "nat_floor: EAL: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	unsigned buckets = 1u << 18;
	unsigned mbufs = 32767;
	if (parse_args(argc - eal, argv + eal, &buckets, &mbufs) != 0) {
		fprintf(stderr, "usage: nat_floor EAL-ARGS -- [--vip A.B.C.D:PORT] [--rport PORT] "
				"[--reals N] [--buckets POWER-OF-TWO] [--mbufs N]\n");
		return 2;
	}
	if (rte_eth_dev_count_avail() < 2) {
		fprintf(stderr, "nat_floor: needs two ports (rx on 0, tx on 1)\n");
		return 1;
	}
	for (unsigned r = 0; r < reals; r++)
		real_mac[r] = (struct rte_ether_addr){{0x02, 0, 0, 0, 0x0a, (uint8_t)(11 + r)}};
	bucket_mask = buckets - 1;
	table = rte_zmalloc("nat_floor_table", sizeof(struct bucket) * buckets, RTE_CACHE_LINE_SIZE);
	struct rte_mempool *pool = rte_pktmbuf_pool_create("nat_floor_pool", mbufs, 256, 0,
							    RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
	if (table == NULL || pool == NULL) {
		fprintf(stderr, "nat_floor: out of memory\n");
		return 1;
	}
	if (port_init(0, pool) != 0 || port_init(1, pool) != 0) {
		fprintf(stderr, "nat_floor: port set-up failed\n");
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	unsigned worker = rte_get_next_lcore(-1, 1, 0);
	if (worker >= RTE_MAX_LCORE) {
		fprintf(stderr, "nat_floor: needs a second lcore (-l 0-1)\n");
		return 1;
	}
	rte_eal_remote_launch(forward, NULL, worker);
	rte_eal_mp_wait_lcore();
	uint64_t counted = 0;
	for (unsigned r = 0; r < reals; r++)
		counted += counters[r].packets;
	printf("nat_floor rx-packets: %" PRIu64 " tx-packets: %" PRIu64 " counted: %" PRIu64 "\n",
	       rx_total, tx_total, counted);
	rte_eth_dev_stop(0);
	rte_eth_dev_stop(1);
	rte_eal_cleanup();
	return 0;
}
