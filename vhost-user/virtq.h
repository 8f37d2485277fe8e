/* virtq.h: a vhost-user backend's view of guest memory and split virtqueues.
 *
 * Guest memory arrives as SET_MEM_TABLE regions (fd + offset). Every guest
 * address the backend dereferences goes through vq_mem_gpa()/vq_mem_uva(),
 * which return a host pointer only when the whole [addr, addr+len) lies inside
 * one mapped region. The chain walker turns a descriptor chain into host
 * segments and refuses loops, chains longer than the queue, buffers outside
 * memory, nested indirect tables and writable-before-readable ordering.
 */
#ifndef VHOST_USER_VIRTQ_H
#define VHOST_USER_VIRTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/virtio_ring.h>

#include "vhost_user.h"

struct vq_mem_region {
    uint64_t gpa;
    uint64_t size;
    uint64_t uva;          /* the frontend's address, for ring addresses */
    uint8_t *host;         /* our mapping of gpa */
    void *map_base;        /* what to munmap (NULL when not mapped by us) */
    size_t map_len;
};

struct vq_mem {
    unsigned nregions;
    struct vq_mem_region r[VHOST_USER_MAX_REGIONS];
};

/* Checks a table without mapping anything: 1..8 regions, non-zero sizes,
 * 4 KiB aligned addresses/sizes/offsets, no wrap-around, no two regions
 * overlapping in guest-physical or in frontend-virtual space. 0 or -EINVAL. */
int vq_mem_check(const struct vhost_user_memory *tbl);

/* Validates and maps every region from fds[i] (MAP_SHARED). The fds stay
 * owned by the caller. On failure nothing stays mapped. 0 or -errno. */
int vq_mem_map(struct vq_mem *mem, const struct vhost_user_memory *tbl, const int *fds);
void vq_mem_unmap(struct vq_mem *mem);

/* Host pointer for [addr, addr+len) if it lies wholly in one region, else NULL. */
void *vq_mem_gpa(const struct vq_mem *mem, uint64_t gpa, uint64_t len);
void *vq_mem_uva(const struct vq_mem *mem, uint64_t uva, uint64_t len);

#define VIRTQ_MAX_SIZE 32768

struct virtq {
    uint16_t num;
    bool event_idx;          /* VIRTIO_RING_F_EVENT_IDX negotiated */
    bool indirect;           /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
    struct vring_desc *desc;
    struct vring_avail *avail;
    struct vring_used *used;
    const struct vq_mem *mem;
    uint16_t last_avail;     /* next avail entry to consume */
    uint16_t used_idx;       /* next used entry to fill (published by virtq_publish) */
    uint16_t signalled_used; /* used_idx at the last notification decision */
    bool signalled_valid;
};

/* Translates the rings (frontend virtual addresses) with their full sizes.
 * num must be a power of two <= VIRTQ_MAX_SIZE. 0 or -EINVAL. */
int virtq_setup(struct virtq *q, const struct vq_mem *mem, uint16_t num,
                uint64_t desc_uva, uint64_t avail_uva, uint64_t used_uva);

/* Next available head: 1 and *head set, 0 when the ring is empty, -EIO when
 * the driver's avail->idx is more than num ahead or the head is out of range. */
int virtq_pop(struct virtq *q, uint16_t *head);

/* Available entries not consumed yet (0 if the ring index is insane). */
uint16_t virtq_pending(const struct virtq *q);

struct virtq_seg {
    void *addr;
    uint32_t len;
};

struct virtq_chain {
    uint16_t head;
    unsigned nout, nin;         /* device-readable segments first, then writable */
    unsigned nsegs;
    uint64_t out_len, in_len;   /* bytes */
    struct virtq_seg *segs;     /* caller's array of max_segs */
    unsigned max_segs;
};

/* Walks the chain at head into c->segs. Errors (all -EIO except -E2BIG for
 * more segments than c->max_segs): head/next out of range, more descriptors
 * than the queue (loop), a buffer outside guest memory, readable after
 * writable, INDIRECT without the feature or with NEXT, an indirect table of
 * bad size or outside memory, an indirect descriptor inside an indirect table. */
int virtq_walk(const struct virtq *q, uint16_t head, struct virtq_chain *c);

/* Adds a used element (not visible to the driver until virtq_publish). */
void virtq_push(struct virtq *q, uint16_t head, uint32_t len);
/* Makes pushed elements visible: store-release of used->idx. */
void virtq_publish(struct virtq *q);
/* After virtq_publish: whether the driver wants an interrupt now
 * (EVENT_IDX used_event, else VRING_AVAIL_F_NO_INTERRUPT). */
bool virtq_should_notify(struct virtq *q);

/* Ask for (enable) or suppress kicks: VRING_USED_F_NO_NOTIFY or avail_event.
 * After enabling, the caller must re-check virtq_pending() before sleeping. */
void virtq_set_notification(struct virtq *q, bool enable);

#endif
