/* Headers rvs binds, and exported wrappers for DPDK's static inline hot path.
 * DPDK 22.11 defines rx/tx burst, mbuf alloc/free/prepend/adj/linearize, ring burst and the
 * lcore/errno TLS accessors as static inline functions or macros, which bindgen cannot
 * call; each shim_ function below is a one-line forwarder compiled at -O3. */
#ifndef RVS_DPDK_SHIM_H
#define RVS_DPDK_SHIM_H

#include <stdint.h>
#include <rte_config.h>
#include <rte_version.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_pause.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_ethdev.h>
#include <rte_flow.h>
#include <rte_ether.h>
#include <rte_bus_vdev.h>

uint16_t shim_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t shim_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);

struct rte_mbuf *shim_pktmbuf_alloc(struct rte_mempool *mp);
int shim_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int n);
void shim_pktmbuf_free(struct rte_mbuf *m);
char *shim_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *shim_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *shim_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int shim_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
int shim_pktmbuf_linearize(struct rte_mbuf *m);
uint16_t shim_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t shim_pktmbuf_tailroom(const struct rte_mbuf *m);
uint16_t shim_mbuf_refcnt_read(const struct rte_mbuf *m);
uint16_t shim_mbuf_refcnt_update(struct rte_mbuf *m, int16_t value);

unsigned int shim_ring_sp_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned int n);
unsigned int shim_ring_sc_dequeue_burst(struct rte_ring *r, void **objs, unsigned int n);
unsigned int shim_ring_count(const struct rte_ring *r);

unsigned int shim_lcore_id(void);
unsigned int shim_socket_id(void);
int shim_errno(void);
uint64_t shim_rdtsc(void);
void shim_pause(void);
const char *shim_version(void);

#endif
