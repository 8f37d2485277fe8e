/* test_vublk_short.c: the vhost-user-blk backend resubmits the rest of a
 * short read and retries -EAGAIN instead of failing or half-completing the
 * request. The "image" is a non-blocking pipe: a read returns what the pipe
 * holds (short), and when it is empty either -EAGAIN (kernels that honour
 * O_NONBLOCK in io_uring) or a wait for data; a regular file almost never
 * does either. The backend's queue code is compiled in (it is not in libvmm). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "vhost_user.h"
#include "virtq.h"
#include "../../vhost-user/blk/request.c"
#include "../../vhost-user/blk/config.c"
#include "../../vhost-user/blk/queue.c"

#define QN        16
#define G_GPA     0x100000ull
#define G_UVA     0x7f0000000000ull
#define G_SIZE    0x100000ull
#define DESC_OFF  0x0
#define AVAIL_OFF 0x1000
#define USED_OFF  0x2000
#define HDR_OFF   0x30000
#define DATA_OFF  0x40000

/* ---------------- blk_req_advance ---------------- */

static void test_advance(void **state)
{
    (void)state;
    uint8_t buf[4096];
    struct iovec iov[3] = { { buf, 512 }, { buf + 512, 1024 }, { buf + 1536, 2048 } };
    struct blk_req r = { .iov = iov, .niov = 3, .data_len = 3584 };

    assert_false(blk_req_advance(&r, 0));
    assert_true(blk_req_advance(&r, 700));           /* all of the first, 188 of the second */
    assert_int_equal(r.done, 700);
    assert_int_equal(r.niov, 2);
    assert_ptr_equal(r.iov, &iov[1]);
    assert_ptr_equal(r.iov[0].iov_base, buf + 700);
    assert_int_equal(r.iov[0].iov_len, 836);
    assert_true(blk_req_advance(&r, 836));           /* exactly the rest of the second */
    assert_int_equal(r.niov, 1);
    assert_ptr_equal(r.iov[0].iov_base, buf + 1536);
    assert_int_equal(r.iov[0].iov_len, 2048);
    assert_false(blk_req_advance(&r, 2048));         /* that would be the whole rest: not short */
    assert_false(blk_req_advance(&r, 5000));
    assert_int_equal(r.done, 1536);
}

/* ---------------- a queue reading from a pipe ---------------- */

struct rig {
    int memfd;
    uint8_t *host;
    struct blk_dev dev;
    struct blk_queue *q;
    int pipe_w;
    uint16_t posted;
};

static void rig_start(struct rig *t)
{
    t->memfd = memfd_create("guest", MFD_CLOEXEC);
    assert_true(t->memfd >= 0);
    assert_int_equal(ftruncate(t->memfd, G_SIZE), 0);
    struct vhost_user_memory tbl = { .nregions = 1 };
    tbl.regions[0] = (struct vhost_user_mem_region){ .guest_phys_addr = G_GPA, .memory_size = G_SIZE,
                                                     .userspace_addr = G_UVA };
    memset(&t->dev, 0, sizeof(t->dev));
    t->dev.sock = t->dev.inflight_fd = -1;
    assert_int_equal(vq_mem_map(&t->dev.mem, &tbl, &t->memfd), 0);
    t->host = vq_mem_gpa(&t->dev.mem, G_GPA, G_SIZE);
    assert_non_null(t->host);

    int p[2];
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    t->dev.fd = p[0];
    t->pipe_w = p[1];
    t->dev.opts = (struct blk_opts){ .queues = 1, .queue_size = QN, .poll_us = 1000, .readonly = true };
    t->dev.capacity = 1 << 20;
    t->dev.blk_size = 512;
    t->dev.features = blk_device_features(&t->dev);
    t->posted = 0;

    t->q = blk_queue_new(&t->dev, 0);
    assert_non_null(t->q);
    t->q->num = QN;
    t->q->desc_uva = G_UVA + DESC_OFF;
    t->q->avail_uva = G_UVA + AVAIL_OFF;
    t->q->used_uva = G_UVA + USED_OFF;
    t->q->addr_set = t->q->enabled = true;
    t->q->kick_fd = eventfd(0, EFD_NONBLOCK);
    t->q->call_fd = eventfd(0, EFD_NONBLOCK);
    assert_int_equal(blk_queue_maybe_start(t->q), 0);
}

static void rig_stop(struct rig *t)
{
    blk_queue_free(t->q);
    close(t->dev.fd);
    if (t->pipe_w >= 0)
        close(t->pipe_w);
    vq_mem_unmap(&t->dev.mem);
    close(t->memfd);
}

/* A read of len bytes at sector into DATA_OFF: header, data, status descriptors. */
static void post_read(struct rig *t, uint64_t sector, uint32_t len)
{
    struct vring_desc *d = (struct vring_desc *)(t->host + DESC_OFF);
    struct vring_avail *a = (struct vring_avail *)(t->host + AVAIL_OFF);
    struct virtio_blk_outhdr h = { .type = VIRTIO_BLK_T_IN, .sector = sector };
    memcpy(t->host + HDR_OFF, &h, sizeof(h));
    t->host[HDR_OFF + 0x80] = 0xee;
    memset(t->host + DATA_OFF, 0, len);
    d[0] = (struct vring_desc){ G_GPA + HDR_OFF, sizeof(h), VRING_DESC_F_NEXT, 1 };
    /* the data in two descriptors, so the rest after a short read starts mid-iovec */
    d[1] = (struct vring_desc){ G_GPA + DATA_OFF, 1536, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2 };
    d[2] = (struct vring_desc){ G_GPA + DATA_OFF + 1536, len - 1536, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 3 };
    d[3] = (struct vring_desc){ G_GPA + HDR_OFF + 0x80, 1, VRING_DESC_F_WRITE, 0 };
    a->ring[t->posted % QN] = 0;
    t->posted++;
    __atomic_store_n(&a->idx, t->posted, __ATOMIC_RELEASE);
    uint64_t one = 1;
    assert_int_equal(write(t->q->kick_fd, &one, 8), 8);
}

static uint16_t used_idx(struct rig *t)
{
    return __atomic_load_n(&((struct vring_used *)(t->host + USED_OFF))->idx, __ATOMIC_ACQUIRE);
}

static void wait_used(struct rig *t, uint16_t want)
{
    for (int i = 0; i < 500 && used_idx(t) != want; i++)
        usleep(2000);
    assert_int_equal(used_idx(t), want);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 13 + seed);
}

static void test_short_read_resubmitted(void **state)
{
    (void)state;
    struct rig t;
    rig_start(&t);
    uint8_t want[4096];
    fill(want, sizeof(want), 5);

    /* 1000 bytes now: a short read, then -EAGAIN on the empty pipe */
    assert_int_equal(write(t.pipe_w, want, 1000), 1000);
    post_read(&t, 8, 4096);
    usleep(50000);
    /* neither failed nor completed early with a partial buffer */
    assert_int_equal(used_idx(&t), 0);
    assert_int_equal(t.host[HDR_OFF + 0x80], 0xee);

    /* the rest in two pieces: another short read, then the end */
    assert_int_equal(write(t.pipe_w, want + 1000, 2000), 2000);
    usleep(20000);
    assert_int_equal(used_idx(&t), 0);
    assert_int_equal(write(t.pipe_w, want + 3000, 1096), 1096);
    wait_used(&t, 1);
    assert_int_equal(t.host[HDR_OFF + 0x80], VIRTIO_BLK_S_OK);
    assert_memory_equal(t.host + DATA_OFF, want, sizeof(want));
    struct vring_used *u = (struct vring_used *)(t.host + USED_OFF);
    assert_int_equal(u->ring[0].len, 4097);

    /* the end of the "file" after a partial transfer: IOERR, not a hang */
    assert_int_equal(write(t.pipe_w, want, 512), 512);
    close(t.pipe_w);
    t.pipe_w = -1;
    post_read(&t, 0, 4096);
    wait_used(&t, 2);
    assert_int_equal(t.host[HDR_OFF + 0x80], VIRTIO_BLK_S_IOERR);

    blk_queue_stop(t.q);
    assert_int_equal(t.q->base, 2);
    rig_stop(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_advance),
        cmocka_unit_test(test_short_read_resubmitted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
