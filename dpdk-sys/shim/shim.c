#include "shim.h"

uint16_t shim_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{ return rte_eth_rx_burst(port, queue, pkts, n); }
uint16_t shim_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{ return rte_eth_tx_burst(port, queue, pkts, n); }

struct rte_mbuf *shim_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }
int shim_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int n)
{ return rte_pktmbuf_alloc_bulk(mp, mbufs, n); }
void shim_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }
char *shim_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_prepend(m, len); }
char *shim_pktmbuf_append(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_append(m, len); }
char *shim_pktmbuf_adj(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_adj(m, len); }
int shim_pktmbuf_trim(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_trim(m, len); }
int shim_pktmbuf_linearize(struct rte_mbuf *m) { return rte_pktmbuf_linearize(m); }
uint16_t shim_pktmbuf_headroom(const struct rte_mbuf *m) { return rte_pktmbuf_headroom(m); }
uint16_t shim_pktmbuf_tailroom(const struct rte_mbuf *m) { return rte_pktmbuf_tailroom(m); }
uint16_t shim_mbuf_refcnt_read(const struct rte_mbuf *m) { return rte_mbuf_refcnt_read(m); }
uint16_t shim_mbuf_refcnt_update(struct rte_mbuf *m, int16_t value)
{ return rte_mbuf_refcnt_update(m, value); }

unsigned int shim_ring_sp_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned int n)
{ return rte_ring_sp_enqueue_burst(r, objs, n, NULL); }
unsigned int shim_ring_sc_dequeue_burst(struct rte_ring *r, void **objs, unsigned int n)
{ return rte_ring_sc_dequeue_burst(r, objs, n, NULL); }
unsigned int shim_ring_count(const struct rte_ring *r) { return rte_ring_count(r); }

unsigned int shim_lcore_id(void) { return rte_lcore_id(); }
unsigned int shim_socket_id(void) { return rte_socket_id(); }
int shim_errno(void) { return rte_errno; }
uint64_t shim_rdtsc(void) { return rte_rdtsc(); }
void shim_pause(void) { rte_pause(); }
const char *shim_version(void) { return rte_version(); }
