/* blk.h: the vhost-user-blk backend process: one device (an image file),
 * one frontend connection at a time, one polling thread per started queue. */
#ifndef VHOST_USER_BLK_H
#define VHOST_USER_BLK_H

#include <linux/virtio_blk.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vhost_user.h"
#include "virtq.h"

#define BLK_MAX_QUEUES   16
#define BLK_SEG_MAX      126         /* data segments per request (+ header and status) */
#define BLK_SIZE_MAX     (1u << 20)  /* bytes per segment */
#define BLK_SECTOR       512u
#define BLK_SERIAL       "iovmm-vublk"

struct blk_opts {
    const char *socket;
    const char *file;
    const char *serial;         /* GET_ID: up to VIRTIO_BLK_ID_BYTES printable characters */
    bool readonly;
    bool direct;
    unsigned queues;
    unsigned queue_size;
    unsigned poll_us;
    unsigned coalesce_us;       /* interrupt coalescing: longest hold of finished requests */
    unsigned publish_delay_us;  /* test knob (vhost-restart.sh): widens the in-flight window */
};

struct blk_queue;

struct blk_dev {
    struct blk_opts opts;
    int fd;                     /* the image */
    uint64_t capacity;          /* sectors */
    uint32_t blk_size;
    uint8_t wce;                /* 1: writeback (flush needed), 0: writes are FUA (RWF_DSYNC) */

    /* vhost-user state of the current connection */
    int sock;
    uint64_t features;          /* negotiated */
    uint64_t protocol_features;
    bool owner;
    struct vq_mem mem;
    int inflight_fd;            /* memfd, -1 without INFLIGHT_SHMFD */
    void *inflight;
    size_t inflight_size;
    uint16_t inflight_nqueues, inflight_qsize;
    struct blk_queue *q[BLK_MAX_QUEUES];
};

/* Per-queue state, written by the control thread only while the queue's
 * thread is not running (it is stopped around every change). */
struct blk_queue {
    struct blk_dev *dev;
    unsigned index;
    uint16_t num;
    uint64_t desc_uva, avail_uva, used_uva;
    bool addr_set;
    bool enabled;
    int kick_fd, call_fd;       /* -1 when not given */
    uint16_t base;              /* last_avail to start from (SET_VRING_BASE) */
    struct virtq vq;
    struct vhost_user_inflight_queue *inflight; /* NULL without inflight tracking */
    uint64_t inflight_counter;

    pthread_t thread;
    bool running;
    volatile bool stop;
    int wake_fd;                /* eventfd: tells the thread to look at `stop` */
};

/* Bytes per queue in the inflight region: header + one entry per descriptor, 64-byte aligned. */
static inline size_t blk_inflight_queue_bytes(uint16_t qsize)
{
    size_t n = sizeof(struct vhost_user_inflight_queue) + (size_t)qsize * sizeof(struct vhost_user_inflight_desc);
    return (n + 63) & ~(size_t)63;
}

/* queue.c */
struct blk_queue *blk_queue_new(struct blk_dev *dev, unsigned index);
void blk_queue_free(struct blk_queue *q);
/* Starts the thread if the queue has everything (addresses, size, kick, enabled). */
int blk_queue_maybe_start(struct blk_queue *q);
/* Stops the thread and waits for its in-flight I/O; leaves vq.last_avail valid. */
void blk_queue_stop(struct blk_queue *q);

/* request.c: one virtio-blk request, parsed and prepared for io_uring */
struct blk_req {
    uint16_t head;
    uint32_t type;
    uint64_t sector;
    uint8_t *status;            /* the status byte in guest memory */
    uint32_t in_len;            /* bytes the device writes (used.len) */
    unsigned niov;
    struct iovec *iov;          /* data segments */
    uint64_t data_len;
    uint64_t done;              /* bytes transferred so far (short transfers resubmit the rest) */
    uint64_t range_sector;      /* DISCARD / WRITE_ZEROES */
    uint64_t range_len;         /* bytes */
    uint32_t range_flags;
};

/* Parses a walked chain. Returns VIRTIO_BLK_S_OK when the request is to be
 * submitted, or the status to complete it with at once (IOERR/UNSUPP); GET_ID
 * is answered here. status/in_len are set whenever a status byte exists;
 * status NULL means the chain had no room for one (complete with len 0). */
#define BLK_REQ_DONE 0x100 /* returned by blk_req_parse: answered already (GET_ID), complete with OK */
int blk_req_parse(const struct blk_dev *dev, const struct virtq_chain *c, struct blk_req *r,
                  unsigned max_iov);

/* After a short read/write of n bytes (0 < n < what is left): drops the
 * transferred bytes from the front of r->iov (moving r->iov and shrinking the
 * first element) and adds them to r->done, so the rest can be submitted at
 * sector * 512 + done. false if n is not less than what was left. */
bool blk_req_advance(struct blk_req *r, uint64_t n);

/* config.c */
void blk_config_fill(const struct blk_dev *dev, struct virtio_blk_config *cfg);
uint64_t blk_device_features(const struct blk_dev *dev);

/* device.c: the vhost-user message handlers; returns -ECONNRESET etc. when the connection is done */
int blk_dev_serve_one(struct blk_dev *dev);
void blk_dev_disconnect(struct blk_dev *dev);

#endif
