/* virtq.c: guest memory regions and split virtqueue access for a backend.
 * The driver (guest) writes the avail ring and descriptors at any time and
 * may be hostile, so every index read from shared memory is bounded before
 * use and every address is translated with its length. */
#include "virtq.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define VQ_PAGE 4096u

static bool add_overflows(uint64_t a, uint64_t b)
{
    return a + b < a;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

int vq_mem_check(const struct vhost_user_memory *tbl)
{
    if (tbl->nregions == 0 || tbl->nregions > VHOST_USER_MAX_REGIONS)
        return -EINVAL;
    for (unsigned i = 0; i < tbl->nregions; i++) {
        const struct vhost_user_mem_region *r = &tbl->regions[i];
        if (r->memory_size == 0 ||
            (r->guest_phys_addr | r->memory_size | r->userspace_addr | r->mmap_offset) % VQ_PAGE)
            return -EINVAL;
        if (add_overflows(r->guest_phys_addr, r->memory_size) ||
            add_overflows(r->userspace_addr, r->memory_size) ||
            add_overflows(r->mmap_offset, r->memory_size) ||
            r->mmap_offset + r->memory_size > (uint64_t)SIZE_MAX)
            return -EINVAL;
        for (unsigned j = 0; j < i; j++) {
            const struct vhost_user_mem_region *o = &tbl->regions[j];
            if (ranges_overlap(r->guest_phys_addr, r->memory_size, o->guest_phys_addr, o->memory_size) ||
                ranges_overlap(r->userspace_addr, r->memory_size, o->userspace_addr, o->memory_size))
                return -EINVAL;
        }
    }
    return 0;
}

void vq_mem_unmap(struct vq_mem *mem)
{
    for (unsigned i = 0; i < mem->nregions; i++)
        if (mem->r[i].map_base)
            munmap(mem->r[i].map_base, mem->r[i].map_len);
    memset(mem, 0, sizeof(*mem));
}

int vq_mem_map(struct vq_mem *mem, const struct vhost_user_memory *tbl, const int *fds)
{
    int ret = vq_mem_check(tbl);
    memset(mem, 0, sizeof(*mem));
    if (ret)
        return ret;
    for (unsigned i = 0; i < tbl->nregions; i++) {
        const struct vhost_user_mem_region *r = &tbl->regions[i];
        /* Map from offset 0 of the fd: the offset is page aligned for 4 KiB
         * pages, but not necessarily for a hugetlbfs fd's page size. */
        size_t len = r->mmap_offset + r->memory_size;
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fds[i], 0);
        if (p == MAP_FAILED) {
            ret = -errno;
            vq_mem_unmap(mem);
            return ret;
        }
        mem->r[i] = (struct vq_mem_region){
            .gpa = r->guest_phys_addr, .size = r->memory_size, .uva = r->userspace_addr,
            .host = (uint8_t *)p + r->mmap_offset, .map_base = p, .map_len = len,
        };
        mem->nregions = i + 1;
    }
    return 0;
}

static void *translate(const struct vq_mem *mem, uint64_t addr, uint64_t len, bool by_uva)
{
    for (unsigned i = 0; i < mem->nregions; i++) {
        const struct vq_mem_region *r = &mem->r[i];
        uint64_t base = by_uva ? r->uva : r->gpa;
        if (addr < base)
            continue;
        uint64_t off = addr - base;
        if (off >= r->size || len > r->size - off)
            continue;
        return r->host + off;
    }
    return NULL;
}

void *vq_mem_gpa(const struct vq_mem *mem, uint64_t gpa, uint64_t len)
{
    return translate(mem, gpa, len, false);
}

void *vq_mem_uva(const struct vq_mem *mem, uint64_t uva, uint64_t len)
{
    return translate(mem, uva, len, true);
}

int virtq_setup(struct virtq *q, const struct vq_mem *mem, uint16_t num,
                uint64_t desc_uva, uint64_t avail_uva, uint64_t used_uva)
{
    if (num == 0 || (num & (num - 1)) || num > VIRTQ_MAX_SIZE)
        return -EINVAL;
    /* ring sizes per virtio 1.2 2.7: the trailing u16 is used_event / avail_event */
    size_t desc_sz = (size_t)num * sizeof(struct vring_desc);
    size_t avail_sz = sizeof(struct vring_avail) + (size_t)num * 2 + 2;
    size_t used_sz = sizeof(struct vring_used) + (size_t)num * sizeof(struct vring_used_elem) + 2;
    void *d = vq_mem_uva(mem, desc_uva, desc_sz);
    void *a = vq_mem_uva(mem, avail_uva, avail_sz);
    void *u = vq_mem_uva(mem, used_uva, used_sz);
    if (!d || !a || !u || desc_uva % 16 || avail_uva % 2 || used_uva % 4)
        return -EINVAL;
    q->num = num;
    q->desc = d;
    q->avail = a;
    q->used = u;
    q->mem = mem;
    q->signalled_valid = false;
    return 0;
}

static uint16_t avail_idx(const struct virtq *q)
{
    return __atomic_load_n(&q->avail->idx, __ATOMIC_ACQUIRE);
}

uint16_t virtq_pending(const struct virtq *q)
{
    uint16_t n = (uint16_t)(avail_idx(q) - q->last_avail);
    return n > q->num ? 0 : n;
}

int virtq_pop(struct virtq *q, uint16_t *head)
{
    uint16_t n = (uint16_t)(avail_idx(q) - q->last_avail);
    if (n == 0)
        return 0;
    if (n > q->num)
        return -EIO;
    uint16_t h = __atomic_load_n(&q->avail->ring[q->last_avail & (q->num - 1)], __ATOMIC_RELAXED);
    if (h >= q->num)
        return -EIO;
    q->last_avail++;
    *head = h;
    return 1;
}

/* Adds [gpa, gpa+len) as one or more segments: a buffer may span regions
 * that are adjacent in guest-physical space. */
static int add_buffer(const struct virtq *q, struct virtq_chain *c, uint64_t gpa, uint32_t len,
                      bool writable)
{
    if (!writable && c->nin)
        return -EIO;  /* readable after writable */
    uint64_t left = len;
    do {
        if (c->nsegs == c->max_segs)
            return -E2BIG;
        uint64_t take = left;
        void *p = NULL;
        /* find the region holding gpa and take what fits in it */
        for (unsigned i = 0; i < q->mem->nregions; i++) {
            const struct vq_mem_region *r = &q->mem->r[i];
            if (gpa >= r->gpa && gpa - r->gpa < r->size) {
                uint64_t room = r->size - (gpa - r->gpa);
                if (take > room)
                    take = room;
                p = r->host + (gpa - r->gpa);
                break;
            }
        }
        if (!p)
            return -EIO;
        c->segs[c->nsegs++] = (struct virtq_seg){ .addr = p, .len = (uint32_t)take };
        if (writable) {
            c->nin++;
            c->in_len += take;
        } else {
            c->nout++;
            c->out_len += take;
        }
        gpa += take;
        left -= take;
    } while (left);
    return 0;
}

int virtq_walk(const struct virtq *q, uint16_t head, struct virtq_chain *c)
{
    c->head = head;
    c->nout = c->nin = c->nsegs = 0;
    c->out_len = c->in_len = 0;
    if (head >= q->num)
        return -EIO;

    const struct vring_desc *table = q->desc;
    uint32_t table_len = q->num;
    uint32_t budget = q->num;      /* descriptors we may still visit: bounds loops */
    bool in_indirect = false;
    uint32_t i = head;

    for (;;) {
        if (i >= table_len || budget-- == 0)
            return -EIO;
        struct vring_desc d;
        memcpy(&d, &table[i], sizeof(d));  /* one snapshot: the driver may rewrite it */
        __atomic_signal_fence(__ATOMIC_ACQUIRE);

        if (d.flags & VRING_DESC_F_INDIRECT) {
            if (!q->indirect || in_indirect || (d.flags & VRING_DESC_F_NEXT) ||
                d.len == 0 || d.len % sizeof(struct vring_desc) ||
                d.len / sizeof(struct vring_desc) > VIRTQ_MAX_SIZE)
                return -EIO;
            const struct vring_desc *t = vq_mem_gpa(q->mem, d.addr, d.len);
            if (!t || (uintptr_t)t % _Alignof(struct vring_desc))
                return -EIO;
            table = t;
            table_len = d.len / sizeof(struct vring_desc);
            budget = table_len;
            in_indirect = true;
            i = 0;
            continue;
        }
        int ret = add_buffer(q, c, d.addr, d.len, d.flags & VRING_DESC_F_WRITE);
        if (ret)
            return ret;
        if (!(d.flags & VRING_DESC_F_NEXT))
            return 0;
        i = d.next;
    }
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
    struct vring_used_elem *e = &q->used->ring[q->used_idx & (q->num - 1)];
    e->id = head;
    e->len = len;
    q->used_idx++;
}

void virtq_publish(struct virtq *q)
{
    __atomic_store_n(&q->used->idx, q->used_idx, __ATOMIC_RELEASE);
}

bool virtq_should_notify(struct virtq *q)
{
    /* the used->idx store must be visible before we read the driver's wish */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!q->event_idx)
        return !(__atomic_load_n(&q->avail->flags, __ATOMIC_RELAXED) & VRING_AVAIL_F_NO_INTERRUPT);

    uint16_t old = q->signalled_used, now = q->used_idx;
    bool valid = q->signalled_valid;
    q->signalled_used = now;
    q->signalled_valid = true;
    if (!valid)
        return true;
    uint16_t event = __atomic_load_n(&q->avail->ring[q->num], __ATOMIC_RELAXED); /* used_event */
    return vring_need_event(event, now, old);
}

void virtq_set_notification(struct virtq *q, bool enable)
{
    if (q->event_idx) {
        if (enable) /* avail_event: kick us when the driver passes last_avail */
            __atomic_store_n((uint16_t *)&q->used->ring[q->num], q->last_avail, __ATOMIC_RELAXED);
    } else {
        uint16_t f = q->used->flags;
        f = enable ? (uint16_t)(f & ~VRING_USED_F_NO_NOTIFY) : (uint16_t)(f | VRING_USED_F_NO_NOTIFY);
        __atomic_store_n(&q->used->flags, f, __ATOMIC_RELAXED);
    }
    /* the store must be visible before the caller re-reads avail->idx */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}
