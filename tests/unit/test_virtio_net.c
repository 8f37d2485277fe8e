/* test_virtio_net.c: the virtio-net device over vhost-user. The features
 * offered for what a backend offers, the config space, the control queue
 * served in the VMM (commands from a ring in real guest memory, hostile
 * chains and rings), and the frontend's SET_VRING_ENABLE bookkeeping
 * against a scripted backend on a Unix socket (queue pairs counted by
 * GET_QUEUE_NUM, rings started disabled, enables replayed). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "frontend.h"
#include "memory.h"
#include "net_ctrl.h"
#include "net_device.h"
#include "vhost_user.h"
#include "virtio.h"

#define B(n) (1ULL << (n))

/* ---------------- features and config ---------------- */

static void test_offered_features(void **state)
{
    (void)state;
    uint64_t vmm_bits = B(VIRTIO_NET_F_MAC) | B(VIRTIO_NET_F_STATUS) | B(VIRTIO_NET_F_CTRL_VQ);

    /* A backend offering nothing of its own: only what the VMM serves. */
    assert_int_equal(vnet_offered_features(B(VIRTIO_F_VERSION_1), 1, false), vmm_bits);
    assert_int_equal(vnet_offered_features(0, 2, true),
                     vmm_bits | B(VIRTIO_NET_F_MQ) | B(VIRTIO_NET_F_MTU));
    /* Ring bits pass; bits the VMM would have to serve (CTRL_RX 18,
     * GUEST_ANNOUNCE 21, CTRL_MAC_ADDR 23) do not. */
    uint64_t f = vnet_offered_features(B(VIRTIO_F_EVENT_IDX) | B(VIRTIO_NET_F_MRG_RXBUF) |
                                       B(VIRTIO_F_INDIRECT_DESC) | B(18) | B(21) | B(23), 1, false);
    assert_int_equal(f, vmm_bits | B(VIRTIO_F_EVENT_IDX) | B(VIRTIO_NET_F_MRG_RXBUF) |
                            B(VIRTIO_F_INDIRECT_DESC));
    /* Offloads only with their prerequisites (5.1.3.1). */
    f = vnet_offered_features(B(VIRTIO_NET_F_HOST_TSO4) | B(VIRTIO_NET_F_GUEST_TSO6), 1, false);
    assert_int_equal(f, vmm_bits);
    f = vnet_offered_features(B(VIRTIO_NET_F_CSUM) | B(VIRTIO_NET_F_HOST_TSO4) |
                              B(VIRTIO_NET_F_HOST_ECN) | B(VIRTIO_NET_F_GUEST_CSUM) |
                              B(VIRTIO_NET_F_GUEST_ECN), 1, false);
    assert_int_equal(f, vmm_bits | B(VIRTIO_NET_F_CSUM) | B(VIRTIO_NET_F_HOST_TSO4) |
                            B(VIRTIO_NET_F_HOST_ECN) | B(VIRTIO_NET_F_GUEST_CSUM));
}

static void test_backend_features(void **state)
{
    (void)state;
    uint64_t driver = B(VIRTIO_F_VERSION_1) | B(VIRTIO_NET_F_MAC) | B(VIRTIO_NET_F_STATUS) |
                      B(VIRTIO_NET_F_CTRL_VQ) | B(VIRTIO_NET_F_MQ) | B(VIRTIO_NET_F_MTU) |
                      B(VIRTIO_NET_F_MRG_RXBUF) | B(VIRTIO_F_EVENT_IDX);
    /* A DPDK-like backend offering CTRL_VQ, MQ and MTU itself. */
    uint64_t backend = B(VIRTIO_F_VERSION_1) | B(VIRTIO_NET_F_CTRL_VQ) | B(VIRTIO_NET_F_MQ) |
                       B(VIRTIO_NET_F_MTU) | B(VIRTIO_NET_F_MRG_RXBUF);

    assert_int_equal(vnet_backend_features(driver, backend),
                     B(VIRTIO_F_VERSION_1) | B(VIRTIO_NET_F_MQ) | B(VIRTIO_NET_F_MRG_RXBUF));
}

static void test_config_space(void **state)
{
    (void)state;
    const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };
    uint8_t cfg[VNET_CONFIG_SIZE];

    vnet_fill_config(cfg, mac, 3, 9000);
    assert_memory_equal(cfg, mac, 6);
    assert_int_equal(cfg[VNET_CONFIG_STATUS] | cfg[VNET_CONFIG_STATUS + 1] << 8,
                     VIRTIO_NET_S_LINK_UP);
    assert_int_equal(cfg[VNET_CONFIG_MAX_PAIRS] | cfg[VNET_CONFIG_MAX_PAIRS + 1] << 8, 3);
    assert_int_equal(cfg[VNET_CONFIG_MTU] | cfg[VNET_CONFIG_MTU + 1] << 8, 9000);
    assert_int_equal(cfg[16], 0xff);   /* duplex unknown */
}

/* ---------------- the control queue ---------------- */

#define QN        16
#define DESC_GPA  0x10000
#define AVAIL_GPA 0x11000
#define USED_GPA  0x12000
#define BUF_GPA   0x20000     /* command buffers, 0x100 apart */
#define ACK_GPA   0x30000     /* ack bytes, 0x10 apart */

struct ctrl_fixture {
    struct guest_mem mem;
    struct net_ctrl c;
    int kick, call;
    uint16_t avail_idx, next_desc;
    int pairs_calls;
    uint16_t last_pairs;
    int pairs_ret;
};

static int record_pairs(void *opaque, uint16_t pairs)
{
    struct ctrl_fixture *f = opaque;
    f->pairs_calls++;
    f->last_pairs = pairs;
    return f->pairs_ret;
}

static uint8_t *gpa(struct ctrl_fixture *f, uint64_t a)
{
    return guest_mem_ptr(&f->mem, a, 1);
}

static struct vring_desc *descs(struct ctrl_fixture *f)
{
    return (struct vring_desc *)gpa(f, DESC_GPA);
}

static struct vring_avail *avail(struct ctrl_fixture *f)
{
    return (struct vring_avail *)gpa(f, AVAIL_GPA);
}

static struct vring_used *used(struct ctrl_fixture *f)
{
    return (struct vring_used *)gpa(f, USED_GPA);
}

static void ctrl_setup(struct ctrl_fixture *f, uint64_t features, uint16_t max_pairs)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(guest_mem_create(&f->mem, 4 << 20, HUGEPAGES_OFF), 0);
    assert_int_equal(net_ctrl_init(&f->c, "net0", &f->mem, max_pairs, record_pairs, f), 0);
    f->kick = eventfd(0, EFD_NONBLOCK);
    f->call = eventfd(0, EFD_NONBLOCK);
    struct virtio_queue_setup q = { .index = (uint16_t)(2 * max_pairs), .size = QN,
                                    .desc = DESC_GPA, .driver = AVAIL_GPA, .device = USED_GPA,
                                    .kick_fd = f->kick, .call_fd = f->call };
    assert_int_equal(net_ctrl_start(&f->c, NULL, &q, features), 0);
}

static void ctrl_teardown(struct ctrl_fixture *f)
{
    net_ctrl_stop(&f->c);
    net_ctrl_fini(&f->c);
    close(f->kick);
    close(f->call);
    guest_mem_destroy(&f->mem);
}

static void set_desc(struct vring_desc *d, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
    d->addr = addr;
    d->len = len;
    d->flags = flags;
    d->next = next;
}

static void publish(struct ctrl_fixture *f, uint16_t head)
{
    avail(f)->ring[f->avail_idx % QN] = head;
    f->avail_idx++;
    __atomic_store_n(&avail(f)->idx, f->avail_idx, __ATOMIC_RELEASE);
}

/* Posts class/cmd + data as one readable buffer (split after the header
 * when split is set) and a 1-byte writable ack preset to 0xee; serves it.
 * Returns the ack byte; *len the used length. */
static int command(struct ctrl_fixture *f, uint8_t cls, uint8_t cmd, const void *data,
                   uint32_t len, bool split, uint32_t *used_len)
{
    uint16_t slot = (uint16_t)(f->next_desc % 4), h = (uint16_t)(slot * 3);
    uint64_t buf = BUF_GPA + slot * 0x100, ack = ACK_GPA + slot * 0x10;
    uint8_t *p = gpa(f, buf);

    f->next_desc++;
    p[0] = cls;
    p[1] = cmd;
    if (len)
        memcpy(p + 2, data, len);
    *gpa(f, ack) = 0xee;
    if (split) {
        set_desc(&descs(f)[h], buf, 2, VRING_DESC_F_NEXT, (uint16_t)(h + 1));
        set_desc(&descs(f)[h + 1], buf + 2, len, VRING_DESC_F_NEXT, (uint16_t)(h + 2));
    } else {
        set_desc(&descs(f)[h], buf, 2 + len, VRING_DESC_F_NEXT, (uint16_t)(h + 2));
    }
    set_desc(&descs(f)[h + 2], ack, 1, VRING_DESC_F_WRITE, 0);
    publish(f, h);
    uint16_t before = used(f)->idx;
    net_ctrl_process(&f->c);
    assert_int_equal(used(f)->idx, (uint16_t)(before + 1));
    struct vring_used_elem *e = &used(f)->ring[before % QN];
    assert_int_equal(e->id, h);
    if (used_len)
        *used_len = e->len;
    return *gpa(f, ack);
}

static uint64_t calls(struct ctrl_fixture *f)
{
    uint64_t n = 0;
    if (read(f->call, &n, sizeof(n)) != sizeof(n))
        return 0;
    return n;
}

static void test_ctrl_commands(void **state)
{
    (void)state;
    struct ctrl_fixture f;
    uint16_t two = 2, zero = 0, five = 5;
    uint8_t one_byte = 1, mac_table[8 + 6] = { 1, 0, 0, 0, 0x52, 0x54, 0, 1, 2, 3, 0, 0, 0, 0 };
    uint32_t len;

    ctrl_setup(&f, B(VIRTIO_NET_F_MQ) | B(VIRTIO_NET_F_CTRL_VQ), 4);
    assert_int_equal(command(&f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &two, 2,
                             false, &len), VIRTIO_NET_OK);
    assert_int_equal(len, 1);
    assert_int_equal(f.pairs_calls, 1);
    assert_int_equal(f.last_pairs, 2);
    assert_true(calls(&f) >= 1);   /* no NO_INTERRUPT flag: the driver is interrupted */

    /* Header and data in separate buffers. */
    assert_int_equal(command(&f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, NULL, 0,
                             true, NULL), VIRTIO_NET_ERR);   /* no data at all */
    assert_int_equal(command(&f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &two, 2,
                             true, NULL), VIRTIO_NET_OK);
    assert_int_equal(f.pairs_calls, 2);
    /* Out of range, or the wrong length: refused without reaching the backend. */
    assert_int_equal(command(&f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &zero, 2,
                             false, NULL), VIRTIO_NET_ERR);
    assert_int_equal(command(&f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &five, 2,
                             false, NULL), VIRTIO_NET_ERR);
    assert_int_equal(command(&f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, mac_table, 3,
                             false, NULL), VIRTIO_NET_ERR);
    assert_int_equal(f.pairs_calls, 2);
    /* The backend refusing the enables fails the command. */
    f.pairs_ret = -EIO;
    assert_int_equal(command(&f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &two, 2,
                             false, NULL), VIRTIO_NET_ERR);
    assert_int_equal(f.pairs_calls, 3);

    /* RX modes and the MAC table: acknowledged; other commands refused. */
    assert_int_equal(command(&f, VIRTIO_NET_CTRL_RX, 0, &one_byte, 1, false, NULL), VIRTIO_NET_OK);
    assert_int_equal(command(&f, VIRTIO_NET_CTRL_RX, 5, &one_byte, 1, false, NULL), VIRTIO_NET_OK);
    assert_int_equal(command(&f, VIRTIO_NET_CTRL_RX, 6, &one_byte, 1, false, NULL), VIRTIO_NET_ERR);
    assert_int_equal(command(&f, VIRTIO_NET_CTRL_RX, 0, &two, 2, false, NULL), VIRTIO_NET_ERR);
    assert_int_equal(command(&f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, mac_table,
                             sizeof(mac_table), true, NULL), VIRTIO_NET_OK);
    assert_int_equal(command(&f, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, mac_table + 4,
                             6, false, NULL), VIRTIO_NET_ERR);
    assert_int_equal(command(&f, 2 /* VLAN */, 0, &two, 2, false, NULL), VIRTIO_NET_ERR);
    assert_int_equal(command(&f, 200, 200, NULL, 0, false, NULL), VIRTIO_NET_ERR);
    assert_true(f.c.commands >= 15);
    ctrl_teardown(&f);
}

static void test_ctrl_without_mq(void **state)
{
    (void)state;
    struct ctrl_fixture f;
    uint16_t one = 1;

    ctrl_setup(&f, B(VIRTIO_NET_F_CTRL_VQ), 2);
    assert_int_equal(command(&f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &one, 2,
                             false, NULL), VIRTIO_NET_ERR);
    assert_int_equal(f.pairs_calls, 0);
    ctrl_teardown(&f);
}

static void test_ctrl_hostile_chains(void **state)
{
    (void)state;
    struct ctrl_fixture f;
    uint16_t two = 2;
    uint32_t len;

    ctrl_setup(&f, B(VIRTIO_NET_F_MQ), 4);
    /* A buffer outside guest RAM: used with length 0, nothing executed. */
    set_desc(&descs(&f)[10], 0x7ff00000000ULL, 4, VRING_DESC_F_NEXT, 11);
    set_desc(&descs(&f)[11], ACK_GPA, 1, VRING_DESC_F_WRITE, 0);
    publish(&f, 10);
    net_ctrl_process(&f.c);
    assert_int_equal(used(&f)->idx, 1);
    assert_int_equal(used(&f)->ring[0].id, 10);
    assert_int_equal(used(&f)->ring[0].len, 0);
    /* No writable byte for the ack. */
    uint8_t *p = gpa(&f, BUF_GPA);
    p[0] = VIRTIO_NET_CTRL_MQ, p[1] = 0, p[2] = 2, p[3] = 0;
    set_desc(&descs(&f)[10], BUF_GPA, 4, 0, 0);
    publish(&f, 10);
    net_ctrl_process(&f.c);
    assert_int_equal(used(&f)->idx, 2);
    assert_int_equal(used(&f)->ring[1].len, 0);
    assert_int_equal(f.pairs_calls, 0);
    /* A loop. */
    set_desc(&descs(&f)[10], BUF_GPA, 4, VRING_DESC_F_NEXT, 11);
    set_desc(&descs(&f)[11], BUF_GPA, 4, VRING_DESC_F_NEXT, 10);
    publish(&f, 10);
    net_ctrl_process(&f.c);
    assert_int_equal(used(&f)->idx, 3);
    assert_int_equal(used(&f)->ring[2].len, 0);
    /* Indirect without the feature. */
    set_desc(&descs(&f)[10], BUF_GPA, 32, VRING_DESC_F_INDIRECT, 0);
    publish(&f, 10);
    net_ctrl_process(&f.c);
    assert_int_equal(used(&f)->ring[3].len, 0);
    /* The queue still works. */
    f.next_desc = 0;
    assert_int_equal(command(&f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &two, 2,
                             false, &len), VIRTIO_NET_OK);
    assert_int_equal(len, 1);
    /* An avail index far ahead of the ring: the queue is given up until a reset. */
    uint16_t used_before = used(&f)->idx;
    __atomic_store_n(&avail(&f)->idx, (uint16_t)(f.avail_idx + QN + 5), __ATOMIC_RELEASE);
    net_ctrl_process(&f.c);
    assert_true(f.c.broken);
    assert_int_equal(used(&f)->idx, used_before);
    /* A restart (the driver's reset) takes it up again. */
    memset(avail(&f), 0, 4);
    memset(used(&f), 0, 4);
    f.avail_idx = 0;
    struct virtio_queue_setup q = { .index = 8, .size = QN, .desc = DESC_GPA, .driver = AVAIL_GPA,
                                    .device = USED_GPA, .kick_fd = f.kick, .call_fd = f.call };
    assert_int_equal(net_ctrl_start(&f.c, NULL, &q, B(VIRTIO_NET_F_MQ)), 0);
    assert_int_equal(command(&f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &two, 2,
                             false, NULL), VIRTIO_NET_OK);
    /* Rings outside RAM are refused at start. */
    q.device = 0x7ff00000000ULL;
    assert_int_equal(net_ctrl_start(&f.c, NULL, &q, 0), -EFAULT);
    net_ctrl_process(&f.c);   /* not running: nothing happens */
    ctrl_teardown(&f);
}

static void test_ctrl_event_idx(void **state)
{
    (void)state;
    struct ctrl_fixture f;
    uint16_t two = 2;

    ctrl_setup(&f, B(VIRTIO_NET_F_MQ) | B(VIRTIO_F_EVENT_IDX), 4);
    /* used_event = 0: the first used entry interrupts. */
    avail(&f)->ring[QN] = 0;
    assert_int_equal(command(&f, VIRTIO_NET_CTRL_MQ, 0, &two, 2, false, NULL), VIRTIO_NET_OK);
    assert_int_equal(calls(&f), 1);
    /* used_event far ahead: no interrupt. */
    avail(&f)->ring[QN] = 100;
    assert_int_equal(command(&f, VIRTIO_NET_CTRL_MQ, 0, &two, 2, false, NULL), VIRTIO_NET_OK);
    assert_int_equal(calls(&f), 0);
    /* avail_event asks for the next kick. */
    uint16_t avail_event = *(uint16_t *)&used(&f)->ring[QN];
    assert_int_equal(avail_event, f.avail_idx);
    ctrl_teardown(&f);
}

/* ---------------- the frontend against a scripted backend ---------------- */

struct fake_backend {
    int listen_fd;
    uint64_t queue_num;          /* GET_QUEUE_NUM answer (pairs) */
    pthread_t thread;
    pthread_mutex_t lock;
    /* SET_VRING_ENABLE messages seen, in order. */
    unsigned n_enables;
    struct vhost_user_vring_state enables[64];
    char path[108];
};

static void *backend_thread(void *arg)
{
    struct fake_backend *b = arg;
    int s = accept(b->listen_fd, NULL, NULL);
    struct vhost_user_msg m, r;
    int fds[VHOST_USER_MAX_FDS];
    size_t nfds;

    while (s >= 0 && vhost_user_recv(s, &m, fds, &nfds) == 0) {
        vhost_user_close_fds(fds, nfds);
        uint64_t v = 0;
        bool reply = false;
        switch (m.hdr.request) {
        case VHOST_USER_GET_FEATURES:
            v = B(VIRTIO_F_VERSION_1) | B(VHOST_USER_F_PROTOCOL_FEATURES) |
                B(VIRTIO_NET_F_MRG_RXBUF);
            reply = true;
            break;
        case VHOST_USER_GET_PROTOCOL_FEATURES:
            v = B(VHOST_USER_PROTOCOL_F_MQ);
            reply = true;
            break;
        case VHOST_USER_GET_QUEUE_NUM:
            v = b->queue_num;
            reply = true;
            break;
        case VHOST_USER_GET_VRING_BASE:
            vhost_user_make_reply(&r, m.hdr.request, sizeof(r.payload.state));
            r.payload.state = (struct vhost_user_vring_state){ .index = m.payload.state.index };
            vhost_user_send(s, &r, NULL, 0);
            continue;
        case VHOST_USER_SET_VRING_ENABLE:
            pthread_mutex_lock(&b->lock);
            if (b->n_enables < 64)
                b->enables[b->n_enables++] = m.payload.state;
            pthread_mutex_unlock(&b->lock);
            break;
        default:
            break;
        }
        if (reply) {
            vhost_user_make_reply(&r, m.hdr.request, sizeof(uint64_t));
            r.payload.u64 = v;
            vhost_user_send(s, &r, NULL, 0);
        }
    }
    if (s >= 0)
        close(s);
    return NULL;
}

static void backend_start(struct fake_backend *b, uint64_t queue_num)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    memset(b, 0, sizeof(*b));
    pthread_mutex_init(&b->lock, NULL);
    b->queue_num = queue_num;
    snprintf(b->path, sizeof(b->path), "/tmp/test_virtio_net.%d.sock", (int)getpid());
    unlink(b->path);
    strcpy(sa.sun_path, b->path);
    b->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(b->listen_fd >= 0);
    assert_int_equal(bind(b->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(b->listen_fd, 1), 0);
    assert_int_equal(pthread_create(&b->thread, NULL, backend_thread, b), 0);
}

static void backend_stop(struct fake_backend *b)
{
    pthread_join(b->thread, NULL);
    close(b->listen_fd);
    unlink(b->path);
    pthread_mutex_destroy(&b->lock);
}

/* Waits until the backend saw n enables (the frontend does not wait for
 * replies to SET_VRING_ENABLE without REPLY_ACK). */
static void wait_enables(struct fake_backend *b, unsigned n)
{
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&b->lock);
        unsigned have = b->n_enables;
        pthread_mutex_unlock(&b->lock);
        if (have >= n)
            break;
        usleep(1000);
    }
    pthread_mutex_lock(&b->lock);
    assert_int_equal(b->n_enables, n);
    pthread_mutex_unlock(&b->lock);
}

static void assert_enable(struct fake_backend *b, unsigned i, unsigned queue, unsigned on)
{
    assert_int_equal(b->enables[i].index, queue);
    assert_int_equal(b->enables[i].num, on);
}

static void test_frontend_pairs_and_enables(void **state)
{
    (void)state;
    struct fake_backend b;
    struct guest_mem mem;
    struct virtio_queue_setup q[4];
    int efd[8];

    assert_int_equal(guest_mem_create(&mem, 4 << 20, HUGEPAGES_OFF), 0);
    for (int i = 0; i < 8; i++)
        efd[i] = eventfd(0, EFD_NONBLOCK);
    for (uint16_t i = 0; i < 4; i++)
        q[i] = (struct virtio_queue_setup){ .index = i, .size = 256,
                                            .desc = 0x100000 + i * 0x10000u,
                                            .driver = 0x104000 + i * 0x10000u,
                                            .device = 0x108000 + i * 0x10000u,
                                            .kick_fd = efd[2 * i], .call_fd = efd[2 * i + 1] };

    /* GET_QUEUE_NUM counts pairs: 3 pairs cover the 4 queues asked for. */
    backend_start(&b, 3);
    struct vu_frontend_params p = { .name = "net0", .socket = b.path, .mem = &mem, .queues = 4,
                                    .queues_per_queue_num = 2, .queue_size = 256 };
    struct vu_frontend *fe = vu_frontend_connect(&p);
    assert_non_null(fe);
    assert_int_equal(vu_frontend_queues(fe), 4);
    assert_int_equal(vu_frontend_set_vring_enable(fe, 4, true), -EINVAL);

    /* Pair 1 disabled before the start: its rings start disabled. */
    assert_int_equal(vu_frontend_set_vring_enable(fe, 2, false), 0);
    assert_int_equal(vu_frontend_set_vring_enable(fe, 3, false), 0);
    assert_int_equal(vu_frontend_start(fe, B(VIRTIO_F_VERSION_1), q, 4), 0);
    wait_enables(&b, 4);
    assert_enable(&b, 0, 0, 1);
    assert_enable(&b, 1, 1, 1);
    assert_enable(&b, 2, 2, 0);
    assert_enable(&b, 3, 3, 0);
    /* The driver's VQ_PAIRS_SET 2 reaches the running backend. */
    assert_int_equal(vu_frontend_set_vring_enable(fe, 2, true), 0);
    assert_int_equal(vu_frontend_set_vring_enable(fe, 3, true), 0);
    wait_enables(&b, 6);
    assert_enable(&b, 4, 2, 1);
    assert_enable(&b, 5, 3, 1);
    vu_frontend_stop(fe);
    vu_frontend_destroy(fe);
    backend_stop(&b);

    /* One pair from the backend caps 4 queues at 2. */
    backend_start(&b, 1);
    fe = vu_frontend_connect(&p);
    assert_non_null(fe);
    assert_int_equal(vu_frontend_queues(fe), 2);
    vu_frontend_destroy(fe);
    backend_stop(&b);

    /* A huge hostile answer does not overflow anything. */
    backend_start(&b, ~0ULL);
    fe = vu_frontend_connect(&p);
    assert_non_null(fe);
    assert_int_equal(vu_frontend_queues(fe), 4);
    vu_frontend_destroy(fe);
    backend_stop(&b);

    for (int i = 0; i < 8; i++)
        close(efd[i]);
    guest_mem_destroy(&mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offered_features),
        cmocka_unit_test(test_backend_features),
        cmocka_unit_test(test_config_space),
        cmocka_unit_test(test_ctrl_commands),
        cmocka_unit_test(test_ctrl_without_mq),
        cmocka_unit_test(test_ctrl_hostile_chains),
        cmocka_unit_test(test_ctrl_event_idx),
        cmocka_unit_test(test_frontend_pairs_and_enables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
