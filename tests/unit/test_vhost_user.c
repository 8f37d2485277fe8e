/* test_vhost_user.c: vhost-user framing and validation, guest memory
 * regions, the descriptor chain walker, and one virtio-blk backend queue
 * end to end against a temp file (the backend's request/queue code is
 * compiled in here: it is not part of libvmm). */
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
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "vhost_user.h"
#include "virtq.h"
#include "../../vhost-user/blk/request.c"
#include "../../vhost-user/blk/config.c"
#include "../../vhost-user/blk/queue.c"

/* ---------------- framing ---------------- */

static void make_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static bool fd_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static void test_framing_with_fds(void **state)
{
    (void)state;
    int sv[2], fds[VHOST_USER_MAX_FDS];
    size_t nfds;
    make_pair(sv);
    struct vhost_user_msg m = { .hdr = { .request = VHOST_USER_SET_MEM_TABLE } }, r;
    m.payload.memory.nregions = 2;
    for (int i = 0; i < 2; i++)
        m.payload.memory.regions[i] = (struct vhost_user_mem_region){
            .guest_phys_addr = 0x100000u * (i + 1), .memory_size = 0x100000, .userspace_addr = 0x7f0000000000u + 0x100000u * i,
        };
    m.hdr.size = 8 + 2 * sizeof(struct vhost_user_mem_region);
    int efd[2] = { eventfd(0, 0), eventfd(0, 0) };
    assert_int_equal(vhost_user_send(sv[0], &m, efd, 2), 0);
    assert_int_equal(vhost_user_recv(sv[1], &r, fds, &nfds), 0);
    assert_int_equal(nfds, 2);
    assert_true(fd_open(fds[0]) && fd_open(fds[1]));
    assert_int_equal(r.hdr.request, VHOST_USER_SET_MEM_TABLE);
    assert_memory_equal(&r.payload.memory, &m.payload.memory, m.hdr.size);
    assert_string_equal(vhost_user_msg_name(r.hdr.request), "SET_MEM_TABLE");
    assert_string_equal(vhost_user_msg_name(999), "UNKNOWN");

    /* a reply: GET_FEATURES answered with a u64 */
    vhost_user_make_reply(&m, VHOST_USER_GET_FEATURES, 8);
    m.payload.u64 = 0x1234;
    assert_int_equal(vhost_user_send(sv[0], &m, NULL, 0), 0);
    int fds2[VHOST_USER_MAX_FDS];
    assert_int_equal(vhost_user_recv(sv[1], &r, fds2, &nfds), 0);
    assert_int_equal(nfds, 0);
    assert_int_equal(r.payload.u64, 0x1234);
    vhost_user_close_fds(fds, 2);
    close(efd[0]);
    close(efd[1]);
    close(sv[0]);
    close(sv[1]);
}

/* Sends raw bytes (header + payload as given) with optional fds, receives, and returns the error. */
static int recv_raw(const void *buf, size_t len, int nfds_send, bool shut)
{
    int sv[2], fds[VHOST_USER_MAX_FDS], sent[VHOST_USER_MAX_FDS];
    size_t nfds = 99;
    make_pair(sv);
    union {
        char b[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
        struct cmsghdr a;
    } ctrl;
    struct iovec iov = { (void *)buf, len };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    for (int i = 0; i < nfds_send; i++)
        sent[i] = eventfd(0, 0);
    if (nfds_send) {
        mh.msg_control = ctrl.b;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds_send);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds_send);
        memcpy(CMSG_DATA(c), sent, sizeof(int) * nfds_send);
    }
    assert_int_equal(sendmsg(sv[0], &mh, 0), (ssize_t)len);
    for (int i = 0; i < nfds_send; i++)
        close(sent[i]);
    if (shut)
        shutdown(sv[0], SHUT_WR);
    struct vhost_user_msg m;
    int ret = vhost_user_recv(sv[1], &m, fds, &nfds);
    if (ret) {
        /* a refused message leaves no fd behind */
        assert_int_equal(nfds, 0);
        for (int i = 0; i < VHOST_USER_MAX_FDS; i++)
            assert_int_equal(fds[i], -1);
    } else {
        vhost_user_close_fds(fds, nfds);
    }
    close(sv[0]);
    close(sv[1]);
    return ret;
}

struct raw {
    struct vhost_user_hdr h;
    uint8_t p[512];
} __attribute__((packed));

static int recv_msg(uint32_t req, uint32_t flags, uint32_t size, const void *payload, size_t plen, int nfds)
{
    struct raw r = { .h = { req, flags, size } };
    if (plen)
        memcpy(r.p, payload, plen);
    return recv_raw(&r, sizeof(r.h) + plen, nfds, true);
}

static void test_hostile_messages(void **state)
{
    (void)state;
    uint64_t u = 1;
    uint8_t zero[300] = { 0 };
    struct raw r = { .h = { VHOST_USER_GET_FEATURES, 1, 0 } };

    assert_int_equal(recv_raw(&r, 6, 0, true), -ECONNRESET);                    /* short header */
    assert_int_equal(recv_msg(VHOST_USER_SET_FEATURES, 1, 8, &u, 8, 0), 0);      /* the good one */
    assert_int_equal(recv_msg(VHOST_USER_SET_FEATURES, 1, 4, &u, 4, 0), -EMSGSIZE);
    assert_int_equal(recv_msg(VHOST_USER_SET_FEATURES, 1, 8, &u, 8, 1), -E2BIG); /* fd not allowed */
    assert_int_equal(recv_msg(VHOST_USER_SET_VRING_KICK, 1, 8, &u, 8, 2), -E2BIG);
    assert_int_equal(recv_msg(VHOST_USER_SET_VRING_KICK, 1, 8, &u, 8, 1), 0);
    assert_int_equal(recv_msg(999, 1, 0, NULL, 0, 0), -EOPNOTSUPP);
    assert_int_equal(recv_msg(0, 1, 0, NULL, 0, 0), -EOPNOTSUPP);
    assert_int_equal(recv_msg(VHOST_USER_GET_FEATURES, 2, 0, NULL, 0, 0), -EPROTO); /* version */
    assert_int_equal(recv_msg(VHOST_USER_GET_FEATURES, 0x101, 0, NULL, 0, 0), -EPROTO);
    assert_int_equal(recv_msg(VHOST_USER_GET_FEATURES, 1, 100000, NULL, 0, 0), -EMSGSIZE);
    assert_int_equal(recv_msg(VHOST_USER_GET_FEATURES, 1, 8, &u, 8, 0), -EMSGSIZE);
    /* payload announced but never sent */
    assert_int_equal(recv_msg(VHOST_USER_SET_FEATURES, 1, 8, NULL, 0, 0), -ECONNRESET);

    /* memory tables: region count vs size vs fds */
    uint32_t mem[2 + 8 * 8] = { 0 };
    mem[0] = 9;
    assert_int_equal(recv_msg(VHOST_USER_SET_MEM_TABLE, 1, 8 + 9 * 32, mem, 0, 0), -EMSGSIZE);
    mem[0] = 2;
    assert_int_equal(recv_msg(VHOST_USER_SET_MEM_TABLE, 1, 8 + 2 * 32, mem, 8 + 2 * 32, 1), -E2BIG);
    assert_int_equal(recv_msg(VHOST_USER_SET_MEM_TABLE, 1, 8 + 1 * 32, mem, 8 + 1 * 32, 1), -EMSGSIZE);
    assert_int_equal(recv_msg(VHOST_USER_SET_MEM_TABLE, 1, 8 + 2 * 32, mem, 8 + 2 * 32, 2), 0);
    assert_int_equal(recv_msg(VHOST_USER_SET_MEM_TABLE, 1, 4, mem, 4, 0), -EMSGSIZE);

    /* config: size field vs message size */
    uint32_t *cfg = (uint32_t *)zero;
    cfg[1] = 60;
    assert_int_equal(recv_msg(VHOST_USER_GET_CONFIG, 1, 12 + 60, zero, 12 + 60, 0), 0);
    assert_int_equal(recv_msg(VHOST_USER_GET_CONFIG, 1, 12 + 59, zero, 12 + 59, 0), -EMSGSIZE);
    cfg[1] = 257;
    assert_int_equal(recv_msg(VHOST_USER_GET_CONFIG, 1, 12 + 257, zero, 12 + 257, 0), -EMSGSIZE);
    /* a REPLY_ACK to a message without a reply of its own is a u64 */
    assert_int_equal(recv_msg(VHOST_USER_SET_MEM_TABLE, 1 | VHOST_USER_REPLY, 8, &u, 8, 0), 0);
    assert_int_equal(recv_msg(VHOST_USER_GET_INFLIGHT_FD, 1 | VHOST_USER_REPLY, 24, zero, 24, 1), 0);
    assert_int_equal(recv_msg(VHOST_USER_GET_INFLIGHT_FD, 1 | VHOST_USER_REPLY, 24, zero, 24, 2), -E2BIG);
}

/* ---------------- memory tables ---------------- */

static struct vhost_user_memory table1(uint64_t gpa, uint64_t size, uint64_t uva, uint64_t off)
{
    struct vhost_user_memory t = { .nregions = 1 };
    t.regions[0] = (struct vhost_user_mem_region){ gpa, size, uva, off };
    return t;
}

static void test_mem_table_checks(void **state)
{
    (void)state;
    struct vhost_user_memory t = table1(0, 0x100000, 0x7f0000000000, 0);
    assert_int_equal(vq_mem_check(&t), 0);
    t.regions[0].memory_size = 0;
    assert_int_equal(vq_mem_check(&t), -EINVAL);                       /* zero-sized */
    t = table1(0x800, 0x100000, 0x7f0000000000, 0);
    assert_int_equal(vq_mem_check(&t), -EINVAL);                       /* unaligned gpa */
    t = table1(0, 0x100000, 0x7f0000000000, 0x10);
    assert_int_equal(vq_mem_check(&t), -EINVAL);                       /* unaligned offset */
    t = table1(UINT64_MAX - 0xfff, 0x2000, 0x7f0000000000, 0);
    assert_int_equal(vq_mem_check(&t), -EINVAL);                       /* wraps */
    t = table1(0, 0x100000, 0x7f0000000000, 0);
    t.nregions = 2;
    t.regions[1] = (struct vhost_user_mem_region){ 0x80000, 0x100000, 0x7f0000200000, 0 };
    assert_int_equal(vq_mem_check(&t), -EINVAL);                       /* gpa overlap */
    t.regions[1] = (struct vhost_user_mem_region){ 0x200000, 0x100000, 0x7f0000080000, 0 };
    assert_int_equal(vq_mem_check(&t), -EINVAL);                       /* uva overlap */
    t.regions[1] = (struct vhost_user_mem_region){ 0x100000, 0x100000, 0x7f0000100000, 0 };
    assert_int_equal(vq_mem_check(&t), 0);                             /* adjacent is fine */
    t.nregions = 0;
    assert_int_equal(vq_mem_check(&t), -EINVAL);
}

/* ---------------- fake guest: one 1 MiB region at gpa 1 MiB ---------------- */

#define G_GPA  0x100000u
#define G_SIZE 0x100000u
#define G_UVA  0x7f0000000000u
#define QN     16
#define DESC_OFF  0x0000u
#define AVAIL_OFF 0x1000u
#define USED_OFF  0x2000u

struct guest {
    int memfd;
    struct vq_mem mem;
    uint8_t *host;
    struct virtq q;
};

static void guest_init(struct guest *g)
{
    g->memfd = memfd_create("guest", MFD_CLOEXEC);
    assert_true(g->memfd >= 0);
    assert_int_equal(ftruncate(g->memfd, G_SIZE), 0);
    struct vhost_user_memory t = table1(G_GPA, G_SIZE, G_UVA, 0);
    assert_int_equal(vq_mem_map(&g->mem, &t, &g->memfd), 0);
    g->host = vq_mem_gpa(&g->mem, G_GPA, G_SIZE);
    assert_non_null(g->host);
    assert_null(vq_mem_gpa(&g->mem, G_GPA, G_SIZE + 1));
    assert_null(vq_mem_gpa(&g->mem, G_GPA - 1, 1));
    memset(&g->q, 0, sizeof(g->q));
    assert_int_equal(virtq_setup(&g->q, &g->mem, QN, G_UVA + DESC_OFF, G_UVA + AVAIL_OFF, G_UVA + USED_OFF), 0);
    g->q.indirect = true;
}

static void guest_fini(struct guest *g)
{
    vq_mem_unmap(&g->mem);
    close(g->memfd);
}

static struct vring_desc *gdesc(struct guest *g)
{
    return (struct vring_desc *)(g->host + DESC_OFF);
}

static void set_desc(struct vring_desc *d, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    *d = (struct vring_desc){ .addr = addr, .len = len, .flags = flags, .next = next };
}

static int walk(struct guest *g, uint16_t head, struct virtq_chain *c, struct virtq_seg *segs, unsigned max)
{
    *c = (struct virtq_chain){ .segs = segs, .max_segs = max };
    return virtq_walk(&g->q, head, c);
}

static void test_ring_outside_memory(void **state)
{
    (void)state;
    struct guest g;
    guest_init(&g);
    struct virtq q = { 0 };
    assert_int_equal(virtq_setup(&q, &g.mem, QN, G_UVA + G_SIZE - 8, G_UVA + AVAIL_OFF, G_UVA + USED_OFF), -EINVAL);
    assert_int_equal(virtq_setup(&q, &g.mem, QN, G_UVA, G_UVA + G_SIZE, G_UVA + USED_OFF), -EINVAL);
    assert_int_equal(virtq_setup(&q, &g.mem, QN, G_UVA, G_UVA + AVAIL_OFF, 0x1000), -EINVAL);
    assert_int_equal(virtq_setup(&q, &g.mem, 12, G_UVA, G_UVA + AVAIL_OFF, G_UVA + USED_OFF), -EINVAL);
    guest_fini(&g);
}

static void test_walker(void **state)
{
    (void)state;
    struct guest g;
    struct virtq_chain c;
    struct virtq_seg segs[64];
    guest_init(&g);
    struct vring_desc *d = gdesc(&g);

    /* normal: readable, readable, writable */
    set_desc(&d[0], G_GPA + 0x10000, 16, VRING_DESC_F_NEXT, 1);
    set_desc(&d[1], G_GPA + 0x11000, 512, VRING_DESC_F_NEXT, 2);
    set_desc(&d[2], G_GPA + 0x12000, 1, VRING_DESC_F_WRITE, 0);
    assert_int_equal(walk(&g, 0, &c, segs, 64), 0);
    assert_int_equal(c.nout, 2);
    assert_int_equal(c.nin, 1);
    assert_int_equal(c.out_len, 528);
    assert_ptr_equal(segs[2].addr, g.host + 0x12000);

    assert_int_equal(walk(&g, QN, &c, segs, 8), -EIO);          /* head out of range */
    assert_int_equal(walk(&g, 0, &c, segs, 2), -E2BIG);         /* more segments than room */

    set_desc(&d[2], G_GPA + 0x12000, 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 3);
    set_desc(&d[3], G_GPA + 0x13000, 16, 0, 0);
    assert_int_equal(walk(&g, 0, &c, segs, 64), -EIO);           /* readable after writable */

    set_desc(&d[2], G_GPA + 0x12000, 1, VRING_DESC_F_NEXT, 0);
    assert_int_equal(walk(&g, 0, &c, segs, 64), -EIO);           /* loop 0->1->2->0 */

    for (int i = 0; i < QN; i++)                                 /* a chain longer than the queue */
        set_desc(&d[i], G_GPA + 0x10000, 0, VRING_DESC_F_NEXT, (uint16_t)((i + 1) % QN));
    assert_int_equal(walk(&g, 0, &c, segs, 64), -EIO);

    set_desc(&d[0], G_GPA + G_SIZE - 8, 16, 0, 0);               /* straddles the end of memory */
    assert_int_equal(walk(&g, 0, &c, segs, 64), -EIO);
    set_desc(&d[0], 0x1000, 16, 0, 0);                           /* below memory */
    assert_int_equal(walk(&g, 0, &c, segs, 64), -EIO);
    set_desc(&d[0], UINT64_MAX - 4, 16, 0, 0);                   /* wraps */
    assert_int_equal(walk(&g, 0, &c, segs, 64), -EIO);
    set_desc(&d[0], G_GPA, 0, 0, 5);
    set_desc(&d[0], G_GPA, 16, VRING_DESC_F_NEXT, 200);          /* next out of range */
    assert_int_equal(walk(&g, 0, &c, segs, 64), -EIO);

    /* indirect: a table of 3 in guest memory */
    struct vring_desc *t = (struct vring_desc *)(g.host + 0x20000);
    set_desc(&t[0], G_GPA + 0x10000, 16, VRING_DESC_F_NEXT, 1);
    set_desc(&t[1], G_GPA + 0x11000, 4096, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
    set_desc(&t[2], G_GPA + 0x12000, 1, VRING_DESC_F_WRITE, 0);
    set_desc(&d[0], G_GPA + 0x20000, 3 * 16, VRING_DESC_F_INDIRECT, 0);
    assert_int_equal(walk(&g, 0, &c, segs, 64), 0);
    assert_int_equal(c.nout, 1);
    assert_int_equal(c.in_len, 4097);

    g.q.indirect = false;                                         /* not negotiated */
    assert_int_equal(walk(&g, 0, &c, segs, 64), -EIO);
    g.q.indirect = true;
    set_desc(&d[0], G_GPA + 0x20000, 3 * 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
    assert_int_equal(walk(&g, 0, &c, segs, 64), -EIO);             /* INDIRECT with NEXT */
    set_desc(&d[0], G_GPA + 0x20000, 3 * 16 + 1, VRING_DESC_F_INDIRECT, 0);
    assert_int_equal(walk(&g, 0, &c, segs, 64), -EIO);             /* bad table size */
    set_desc(&d[0], G_GPA + G_SIZE - 16, 32, VRING_DESC_F_INDIRECT, 0);
    assert_int_equal(walk(&g, 0, &c, segs, 64), -EIO);             /* table outside memory */
    set_desc(&d[0], G_GPA + 0x20000, 3 * 16, VRING_DESC_F_INDIRECT, 0);
    set_desc(&t[1], G_GPA + 0x20000, 48, VRING_DESC_F_INDIRECT, 0);
    assert_int_equal(walk(&g, 0, &c, segs, 64), -EIO);             /* nested indirect */
    set_desc(&t[0], G_GPA + 0x10000, 16, VRING_DESC_F_NEXT, 1);
    set_desc(&t[1], G_GPA + 0x10000, 16, VRING_DESC_F_NEXT, 0);
    assert_int_equal(walk(&g, 0, &c, segs, 64), -EIO);             /* loop inside the table */

    /* the avail index running away from us */
    g.q.avail->idx = QN + 1;
    uint16_t head;
    assert_int_equal(virtq_pop(&g.q, &head), -EIO);
    g.q.avail->idx = 1;
    g.q.avail->ring[0] = QN;                                       /* head out of range */
    assert_int_equal(virtq_pop(&g.q, &head), -EIO);
    guest_fini(&g);
}

static void test_event_idx(void **state)
{
    (void)state;
    struct guest g;
    guest_init(&g);
    g.q.event_idx = true;
    virtq_push(&g.q, 0, 1);
    virtq_publish(&g.q);
    assert_true(virtq_should_notify(&g.q));       /* first one always */
    g.q.avail->ring[QN] = 5;                       /* used_event: interrupt after entry 5 */
    virtq_push(&g.q, 1, 1);
    virtq_publish(&g.q);
    assert_false(virtq_should_notify(&g.q));
    for (int i = 0; i < 5; i++)
        virtq_push(&g.q, 2, 1);
    virtq_publish(&g.q);
    assert_true(virtq_should_notify(&g.q));
    g.q.last_avail = 7;
    virtq_set_notification(&g.q, true);
    assert_int_equal(*(uint16_t *)&g.q.used->ring[QN], 7); /* avail_event */
    g.q.event_idx = false;
    virtq_set_notification(&g.q, false);
    assert_true(g.q.used->flags & VRING_USED_F_NO_NOTIFY);
    guest_fini(&g);
}

/* ---------------- a backend queue end to end ---------------- */

static void wait_used(struct guest *g, int call_fd, uint16_t want)
{
    for (int i = 0; i < 500 && __atomic_load_n(&g->q.used->idx, __ATOMIC_ACQUIRE) != want; i++) {
        struct pollfd p = { .fd = call_fd, .events = POLLIN };
        poll(&p, 1, 10);
        uint64_t v;
        if (p.revents & POLLIN)
            assert_int_equal(read(call_fd, &v, 8), 8);
    }
    assert_int_equal(g->q.used->idx, want);
}

/* Posts a request: header at 0x30000+slot*0x100, data, status byte. */
static void post(struct guest *g, int kick, uint16_t slot, uint32_t type, uint64_t sector,
                 uint64_t data_gpa, uint32_t data_len, bool data_in)
{
    struct vring_desc *d = gdesc(g);
    uint16_t i = (uint16_t)(slot * 3);
    uint64_t hdr = G_GPA + 0x30000 + slot * 0x100;
    struct virtio_blk_outhdr h = { .type = type, .sector = sector };
    memcpy(g->host + (hdr - G_GPA), &h, sizeof(h));
    g->host[hdr - G_GPA + 0x80] = 0xee;
    set_desc(&d[i], hdr, sizeof(h), VRING_DESC_F_NEXT, (uint16_t)(i + 1));
    if (data_len) {
        set_desc(&d[i + 1], data_gpa, data_len, VRING_DESC_F_NEXT | (data_in ? VRING_DESC_F_WRITE : 0), (uint16_t)(i + 2));
        set_desc(&d[i + 2], hdr + 0x80, 1, VRING_DESC_F_WRITE, 0);
    } else {
        set_desc(&d[i + 1], hdr + 0x80, 1, VRING_DESC_F_WRITE, 0);
    }
    struct vring_avail *a = g->q.avail;
    a->ring[a->idx % QN] = i;
    __atomic_store_n(&a->idx, (uint16_t)(a->idx + 1), __ATOMIC_RELEASE);
    uint64_t one = 1;
    assert_int_equal(write(kick, &one, 8), 8);
}

static uint8_t status_of(struct guest *g, uint16_t slot)
{
    return g->host[0x30000 + slot * 0x100 + 0x80];
}

static void test_blk_end_to_end(void **state)
{
    (void)state;
    struct guest g;
    guest_init(&g);
    char path[] = "/tmp/test_vhost_user.XXXXXX";
    struct blk_dev dev = { .sock = -1, .inflight_fd = -1 };
    dev.opts = (struct blk_opts){ .queues = 1, .queue_size = QN, .poll_us = 10,
                                  .serial = "0123456789abcdefghij" };
    dev.fd = mkstemp(path);
    assert_true(dev.fd >= 0);
    unlink(path);
    assert_int_equal(ftruncate(dev.fd, 1 << 20), 0);
    dev.capacity = (1 << 20) / 512;
    dev.blk_size = 512;
    dev.wce = 1;
    dev.mem = g.mem;
    dev.features = blk_device_features(&dev);

    struct blk_queue *q = blk_queue_new(&dev, 0);
    assert_non_null(q);
    q->num = QN;
    q->desc_uva = G_UVA + DESC_OFF;
    q->avail_uva = G_UVA + AVAIL_OFF;
    q->used_uva = G_UVA + USED_OFF;
    q->addr_set = q->enabled = true;
    q->kick_fd = eventfd(0, EFD_NONBLOCK);
    q->call_fd = eventfd(0, EFD_NONBLOCK);
    int kick = q->kick_fd, call = q->call_fd;
    assert_int_equal(blk_queue_maybe_start(q), 0);
    g.q.avail = q->vq.avail;

    /* write 8 KiB at sector 8, flush, read it back elsewhere in guest memory */
    for (int i = 0; i < 8192; i++)
        g.host[0x40000 + i] = (uint8_t)(i * 7 + 1);
    post(&g, kick, 0, VIRTIO_BLK_T_OUT, 8, G_GPA + 0x40000, 8192, false);
    wait_used(&g, call, 1);
    assert_int_equal(status_of(&g, 0), VIRTIO_BLK_S_OK);
    post(&g, kick, 1, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false);
    wait_used(&g, call, 2);
    assert_int_equal(status_of(&g, 1), VIRTIO_BLK_S_OK);
    post(&g, kick, 2, VIRTIO_BLK_T_IN, 8, G_GPA + 0x50000, 8192, true);
    wait_used(&g, call, 3);
    assert_int_equal(status_of(&g, 2), VIRTIO_BLK_S_OK);
    assert_memory_equal(g.host + 0x40000, g.host + 0x50000, 8192);
    assert_int_equal(q->vq.used->ring[2].len, 8193);
    uint8_t file[8192];
    assert_int_equal(pread(dev.fd, file, sizeof(file), 8 * 512), sizeof(file));
    assert_memory_equal(file, g.host + 0x40000, 8192);

    /* past the end of the disk, an odd length, an unknown type */
    post(&g, kick, 3, VIRTIO_BLK_T_IN, dev.capacity - 1, G_GPA + 0x50000, 1024, true);
    wait_used(&g, call, 4);
    assert_int_equal(status_of(&g, 3), VIRTIO_BLK_S_IOERR);
    post(&g, kick, 4, VIRTIO_BLK_T_OUT, 0, G_GPA + 0x40000, 100, false);
    wait_used(&g, call, 5);
    assert_int_equal(status_of(&g, 4), VIRTIO_BLK_S_IOERR);
    post(&g, kick, 0, 77, 0, 0, 0, false);
    wait_used(&g, call, 6);
    assert_int_equal(status_of(&g, 0), VIRTIO_BLK_S_UNSUPP);

    /* a chain pointing outside memory completes with length 0; the queue goes on */
    set_desc(&gdesc(&g)[15], 0x10, 16, 0, 0);
    g.q.avail->ring[g.q.avail->idx % QN] = 15;
    __atomic_store_n(&g.q.avail->idx, (uint16_t)(g.q.avail->idx + 1), __ATOMIC_RELEASE);
    uint64_t one = 1;
    assert_int_equal(write(kick, &one, 8), 8);
    wait_used(&g, call, 7);
    assert_int_equal(q->vq.used->ring[6].len, 0);

    post(&g, kick, 1, VIRTIO_BLK_T_GET_ID, 0, G_GPA + 0x60000, 20, true);
    wait_used(&g, call, 8);
    assert_int_equal(status_of(&g, 1), VIRTIO_BLK_S_OK);
    /* All 20 bytes used: no NUL, as the spec allows. */
    assert_memory_equal(g.host + 0x60000, "0123456789abcdefghij", 20);

    blk_queue_stop(q);
    assert_int_equal(q->base, 8);
    q->kick_fd = -1;
    close(kick);
    blk_queue_free(q);
    close(dev.fd);
    guest_fini(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_framing_with_fds),
        cmocka_unit_test(test_hostile_messages),
        cmocka_unit_test(test_mem_table_checks),
        cmocka_unit_test(test_ring_outside_memory),
        cmocka_unit_test(test_walker),
        cmocka_unit_test(test_event_idx),
        cmocka_unit_test(test_blk_end_to_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
