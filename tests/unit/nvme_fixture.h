/* Shared fixture for the NVMe controller unit tests (test_nvme_*.c): a fake
 * guest RAM, a temporary disk image served by the real io_uring backend, and
 * a tiny driver that talks to BAR0. The test plays the event loop
 * (nvme_ctrl_process), so every step is deterministic. Header-only: every
 * test_*.c is its own program. */
#ifndef NVME_FIXTURE_H
#define NVME_FIXTURE_H

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "blk_backend.h"
#include "device.h"
#include "eventloop.h"
#include "layout.h"
#include "nvme.h"
#include "nvme_device.h"
#include "pci.h"
#include "registry.h"
#include "vm.h"

#define RAM_SIZE      (64u << 20)
#define DISK_SIZE     (4u << 20)
#define DISK_BLOCKS   (DISK_SIZE / 512)
#define ADMIN_DEPTH   32
#define ASQ_GPA       0x10000
#define ACQ_GPA       0x11000
#define IOSQ_GPA      0x20000
#define IOCQ_GPA      0x30000
#define DBS_GPA       0x40000
#define EIS_GPA       0x41000
#define ID_GPA        0x50000
#define LIST_GPA      0x60000      /* PRP list pages */
#define DATA_GPA      0x100000     /* 1 MiB */
#define DATA2_GPA     0x200000     /* 1 MiB */
#define HOLE_GPA      0xd0000000   /* in the PCI hole: not RAM */
#define NVME_SLOT     1

#define SC(cqe)       (((cqe).status >> 1) & 0x7ff)
#define DNR(cqe)      (((cqe).status >> 15) & 1)

struct fixture {
    struct vm vm;
    struct device bridge_dev;
    char dir[64], img[96];
    struct device_config dc;
    struct cfg_value values[8];
    struct device *dev;
    struct nvme_ctrl *ctrl;
    uint8_t *ram;
    uint64_t bar;
    uint16_t cid;
    uint16_t asq_tail, acq_head;
    bool acq_phase;
    uint16_t iosq_tail, iocq_head, iosq_size, iocq_size;
    bool iocq_phase;
    bool shadow;                 /* the test uses shadow doorbells for queue 1 */
};

/* --- plumbing ------------------------------------------------------------ */

static inline void mmio(struct fixture *f, uint64_t off, void *v, uint32_t len, bool write)
{
    assert_true(iobus_dispatch(&f->vm.mmio, f->bar + off, v, len, write));
}

static inline void wr32(struct fixture *f, uint64_t off, uint32_t v) { mmio(f, off, &v, 4, true); }

static inline uint32_t rd32(struct fixture *f, uint64_t off)
{
    uint32_t v = 0;
    mmio(f, off, &v, 4, false);
    return v;
}

static inline uint32_t cfg_read(struct fixture *f, unsigned reg, uint32_t len)
{
    uint32_t v = 0;
    pci_config_access(f->vm.pci, 0, NVME_SLOT << 3, reg, &v, len, false);
    return v;
}

static inline void cfg_write(struct fixture *f, unsigned reg, uint32_t v, uint32_t len)
{
    pci_config_access(f->vm.pci, 0, NVME_SLOT << 3, reg, &v, len, true);
}

static inline void add_value(struct fixture *f, const char *key, const char *value)
{
    f->values[f->dc.n_values++] = (struct cfg_value){ .section = "emulated", .key = (char *)key,
                                                      .value = (char *)value, .line = 10 };
}

static inline int make_device(struct fixture *f, const char *k1, const char *v1, const char *k2,
                       const char *v2)
{
    f->dc = (struct device_config){
        .file = "test/disk0.conf", .dir = f->dir, .id = "disk0", .cls = DEV_CLASS_BLOCK,
        .path = IO_PATH_EMULATED, .path_line = 4, .values = f->values,
        .impl = registry_find(DEV_CLASS_BLOCK, IO_PATH_EMULATED, "nvme"),
    };
    assert_non_null(f->dc.impl);
    add_value(f, "model", "nvme");
    add_value(f, "file", "disk.img");
    if (k1)
        add_value(f, k1, v1);
    if (k2)
        add_value(f, k2, v2);
    return nvme_device_create(&f->vm, &f->dc);
}

static inline int base_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    iobus_init(&f->vm.pio, IOBUS_PIO);
    iobus_init(&f->vm.mmio, IOBUS_MMIO);
    assert_int_equal(guest_mem_create(&f->vm.mem, RAM_SIZE, HUGEPAGES_OFF), 0);
    f->ram = f->vm.mem.regions[0].hva;
    f->vm.pci = pci_bus_create(&f->vm, &f->bridge_dev);
    assert_non_null(f->vm.pci);
    f->vm.loop = eventloop_create();   /* never started: the test runs the work */
    assert_non_null(f->vm.loop);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test-nvme-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->img, sizeof(f->img), "%s/disk.img", f->dir);
    f->acq_phase = f->iocq_phase = true;
    *state = f;
    return 0;
}

static inline void attach(struct fixture *f)
{
    f->dev = f->vm.devices;
    assert_non_null(f->dev);
    f->ctrl = nvme_device_ctrl(f->dev);
    assert_int_equal(cfg_read(f, 0, 4), 0x00101b36);
    assert_int_equal(cfg_read(f, 0x08, 4) >> 8, 0x010802);
    f->bar = (cfg_read(f, 0x10, 4) & ~0xfu) | (uint64_t)cfg_read(f, 0x14, 4) << 32;
    cfg_write(f, 0x04, 0x6, 2);   /* memory decoding, bus master */
}

static inline int setup_with(void **state, const char *k1, const char *v1, const char *k2,
                      const char *v2)
{
    struct fixture *f;

    base_setup(state);
    f = *state;
    assert_int_equal(make_device(f, k1, v1, k2, v2), 0);
    attach(f);
    return 0;
}

static inline int setup(void **state) { return setup_with(state, "size", "4M", NULL, NULL); }
static inline int setup_noshadow(void **state)
{
    return setup_with(state, "size", "4M", "shadow-doorbells", "off");
}

static inline int teardown(void **state)
{
    struct fixture *f = *state;

    while (f->vm.devices) {
        struct device *dev = f->vm.devices;
        f->vm.devices = dev->next;
        dev->ops->teardown(dev);
    }
    eventloop_destroy(f->vm.loop);
    pci_bus_destroy(f->vm.pci);
    iobus_destroy(&f->vm.pio);
    iobus_destroy(&f->vm.mmio);
    guest_mem_destroy(&f->vm.mem);
    unlink(f->img);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* --- a tiny driver ------------------------------------------------------- */

static inline void enable(struct fixture *f)
{
    memset(f->ram + ASQ_GPA, 0, 0x2000);
    f->asq_tail = f->acq_head = 0;
    f->acq_phase = true;
    wr32(f, NVME_REG_AQA, (ADMIN_DEPTH - 1) << 16 | (ADMIN_DEPTH - 1));
    wr32(f, NVME_REG_ASQ, ASQ_GPA);
    wr32(f, NVME_REG_ASQ + 4, 0);
    wr32(f, NVME_REG_ACQ, ACQ_GPA);
    wr32(f, NVME_REG_ACQ + 4, 0);
    wr32(f, NVME_REG_CC, 1 | 6 << 16 | 4 << 20);
    assert_int_equal(rd32(f, NVME_REG_CSTS) & 3, NVME_CSTS_RDY);
}

static inline bool poll_cq(struct fixture *f, uint64_t gpa, uint16_t depth, uint16_t *head, bool *phase,
                    uint64_t db, struct nvme_cqe *out)
{
    volatile struct nvme_cqe *e = (struct nvme_cqe *)(f->ram + gpa) + *head;

    if ((e->status & 1) != *phase)
        return false;
    memcpy(out, (const void *)e, sizeof(*out));
    if (++*head == depth) {
        *head = 0;
        *phase = !*phase;
    }
    if (f->shadow && db == NVME_REG_DBS + 12) {
        /* The host only updates the shadow head; the controller reads it. */
        ((uint32_t *)(f->ram + DBS_GPA))[3] = *head;
    } else if (db) {
        wr32(f, db, *head);
    }
    return true;
}

static inline struct nvme_cqe wait_cq(struct fixture *f, uint64_t gpa, uint16_t depth, uint16_t *head,
                               bool *phase, uint64_t db)
{
    struct nvme_cqe cqe;

    for (int i = 0; i < 200; i++) {
        nvme_ctrl_process(f->ctrl);
        if (poll_cq(f, gpa, depth, head, phase, db, &cqe))
            return cqe;
        nvme_ctrl_wait_and_process(f->ctrl, 25);
        if (poll_cq(f, gpa, depth, head, phase, db, &cqe))
            return cqe;
    }
    fail_msg("no completion arrived");
    return cqe;
}

static inline void admin_submit(struct fixture *f, struct nvme_sqe *cmd)
{
    cmd->cid = f->cid++;
    memcpy(f->ram + ASQ_GPA + 64 * f->asq_tail, cmd, 64);
    f->asq_tail = (f->asq_tail + 1) % ADMIN_DEPTH;
    wr32(f, NVME_REG_DBS, f->asq_tail);
}

static inline struct nvme_cqe admin_wait(struct fixture *f)
{
    return wait_cq(f, ACQ_GPA, ADMIN_DEPTH, &f->acq_head, &f->acq_phase, NVME_REG_DBS + 4);
}

static inline struct nvme_cqe admin(struct fixture *f, struct nvme_sqe cmd)
{
    struct nvme_cqe cqe;

    admin_submit(f, &cmd);
    cqe = admin_wait(f);
    assert_int_equal(cqe.cid, cmd.cid);
    assert_int_equal(cqe.sq_id, 0);
    assert_int_equal(cqe.sq_head, f->asq_tail);
    return cqe;
}

static inline uint16_t admin_status(struct fixture *f, struct nvme_sqe cmd)
{
    struct nvme_cqe cqe = admin(f, cmd);

    if (SC(cqe))
        assert_int_equal(DNR(cqe), 1);
    return (uint16_t)SC(cqe);
}

static inline void create_io_queues(struct fixture *f, uint16_t cq_size, uint16_t sq_size)
{
    memset(f->ram + IOSQ_GPA, 0, 0x20000);
    f->iosq_tail = f->iocq_head = 0;
    f->iocq_phase = true;
    f->iosq_size = sq_size;
    f->iocq_size = cq_size;
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x05, .prp1 = IOCQ_GPA,
                                                        .cdw10 = (cq_size - 1u) << 16 | 1,
                                                        .cdw11 = 1u << 16 | 3 }), 0);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x01, .prp1 = IOSQ_GPA,
                                                        .cdw10 = (sq_size - 1u) << 16 | 1,
                                                        .cdw11 = 1u << 16 | 1 }), 0);
}

static inline void io_queue(struct fixture *f, struct nvme_sqe *cmd)
{
    cmd->cid = f->cid++;
    memcpy(f->ram + IOSQ_GPA + 64 * f->iosq_tail, cmd, 64);
    f->iosq_tail = (f->iosq_tail + 1) % f->iosq_size;
}

static inline void io_ring(struct fixture *f)
{
    if (f->shadow)
        ((uint32_t *)(f->ram + DBS_GPA))[2] = f->iosq_tail;
    wr32(f, NVME_REG_DBS + 8, f->iosq_tail);
}

static inline struct nvme_cqe io_wait(struct fixture *f)
{
    return wait_cq(f, IOCQ_GPA, f->iocq_size, &f->iocq_head, &f->iocq_phase, NVME_REG_DBS + 12);
}

static inline uint16_t io(struct fixture *f, struct nvme_sqe cmd)
{
    struct nvme_cqe cqe;

    io_queue(f, &cmd);
    io_ring(f);
    cqe = io_wait(f);
    assert_int_equal(cqe.cid, cmd.cid);
    assert_int_equal(cqe.sq_id, 1);
    return (uint16_t)SC(cqe);
}

static inline struct nvme_sqe rw(uint8_t opcode, uint64_t slba, uint32_t nlb, uint64_t prp1,
                          uint64_t prp2)
{
    return (struct nvme_sqe){ .opcode = opcode, .nsid = 1, .prp1 = prp1, .prp2 = prp2,
                              .cdw10 = (uint32_t)slba, .cdw11 = (uint32_t)(slba >> 32),
                              .cdw12 = nlb - 1 };
}

static inline void fill(struct fixture *f, uint64_t gpa, size_t len, uint8_t seed)
{
    for (size_t i = 0; i < len; i++)
        f->ram[gpa + i] = (uint8_t)(seed + i * 7 + (i >> 9));
}

static inline void assert_image(struct fixture *f, uint64_t offset, const void *expect, size_t len)
{
    uint8_t *buf = malloc(len);
    int fd = open(f->img, O_RDONLY);

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, len, (off_t)offset), (ssize_t)len);
    assert_memory_equal(buf, expect, len);
    close(fd);
    free(buf);
}

static inline bool all_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i])
            return false;
    return true;
}

static inline void bring_up(struct fixture *f)
{
    enable(f);
    create_io_queues(f, 16, 16);
}

#endif
