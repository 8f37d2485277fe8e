/* fuzz_virtq_walk: the split-ring chain walker (vhost-user/virtq.c) on an
 * arbitrary ring, the way a hostile guest could lay it out.
 *
 * Guest memory is two heap buffers posing as two regions adjacent in
 * guest-physical space (so buffers that span regions are exercised), filled
 * with the fuzzer's bytes. The avail ring sits at the start of region 0 and
 * the descriptor table right after it, so short inputs already fill both; the
 * used ring (device-written) sits past them. A few leading bytes choose the queue size, the
 * negotiated features and the number of segments the caller has room for.
 * Every head virtq_pop() returns is walked; every segment the walker accepts
 * must lie wholly inside one region (ASan would catch a stray access too),
 * and the counts it reports must add up. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtq.h"

#define REGION_SIZE (32u * 1024)
#define UVA_BASE    0x7f0000000000ull   /* the frontend's addresses of the regions */
#define AVAIL_GPA   0u                  /* up to 4 + 128 * 2 + 2 bytes */
#define USED_GPA    8192u
#define MAX_SEGS    64u

static uint8_t *region[2];

static int inside_one_region(const struct virtq_seg *s)
{
    for (int i = 0; i < 2; i++) {
        const uint8_t *p = s->addr;
        if (p >= region[i] && p <= region[i] + REGION_SIZE && s->len <= (size_t)(region[i] + REGION_SIZE - p))
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    uint8_t shift = data[0] % 8;          /* queue size 1..128 */
    uint8_t features = data[1];
    unsigned max_segs = 1 + data[2] % MAX_SEGS;
    uint8_t pops = data[3];
    data += 4;
    size -= 4;

    /* Fresh buffers of exactly REGION_SIZE, so ASan sees any overrun. */
    for (int i = 0; i < 2; i++) {
        region[i] = calloc(1, REGION_SIZE);
        size_t n = size > REGION_SIZE ? REGION_SIZE : size;
        memcpy(region[i], data, n);
        data += n;
        size -= n;
    }

    struct vq_mem mem = { .nregions = 2 };
    for (unsigned i = 0; i < 2; i++)
        mem.r[i] = (struct vq_mem_region){
            .gpa = (uint64_t)i * REGION_SIZE, .size = REGION_SIZE,
            .uva = UVA_BASE + (uint64_t)i * REGION_SIZE, .host = region[i],
        };

    struct virtq q = { 0 };
    uint16_t num = (uint16_t)(1u << shift);
    uint64_t desc_gpa = (AVAIL_GPA + 4 + 2u * num + 2 + 15) & ~15ull;
    if (virtq_setup(&q, &mem, num, UVA_BASE + desc_gpa, UVA_BASE + AVAIL_GPA, UVA_BASE + USED_GPA))
        abort(); /* the fixed layout always fits */
    q.indirect = features & 1;
    q.event_idx = features & 2;
    q.last_avail = (uint16_t)(features >> 2);

    struct virtq_seg segs[MAX_SEGS];
    struct virtq_chain c = { .segs = segs, .max_segs = max_segs };
    for (unsigned n = 0; n <= pops % 8; n++) {
        uint16_t head;
        if (virtq_pop(&q, &head) != 1)
            break;
        if (head >= num)
            abort();
        int ret = virtq_walk(&q, head, &c);
        if (ret == 0) {
            uint64_t out = 0, in = 0;
            if (c.nsegs != c.nout + c.nin || c.nsegs > max_segs)
                abort();
            for (unsigned s = 0; s < c.nsegs; s++) {
                if (!inside_one_region(&segs[s]))
                    abort();
                /* readable segments come first */
                if (s < c.nout)
                    out += segs[s].len;
                else
                    in += segs[s].len;
            }
            if (out != c.out_len || in != c.in_len)
                abort();
        }
        virtq_push(&q, head, (uint32_t)c.in_len);
    }
    virtq_publish(&q);
    (void)virtq_should_notify(&q);
    virtq_set_notification(&q, features & 0x80);
    (void)virtq_pending(&q);

    free(region[0]);
    free(region[1]);
    return 0;
}
