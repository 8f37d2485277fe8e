/* NVMe controller: driven through BAR0 like a driver would, against a fake
 * guest RAM and a temporary disk image served by the real io_uring
 * backend. The test plays the event loop (nvme_ctrl_process), so every step
 * is deterministic. Covers bring-up, Identify, I/O queues, every PRP shape,
 * flush / write zeroes / deallocate, CQ-full handling and phase wrap, error
 * statuses, shadow doorbells, INTx and MSI-X, shutdown, reset with requests
 * in flight, and random register writes. */
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

static void mmio(struct fixture *f, uint64_t off, void *v, uint32_t len, bool write)
{
    assert_true(iobus_dispatch(&f->vm.mmio, f->bar + off, v, len, write));
}

static void wr32(struct fixture *f, uint64_t off, uint32_t v) { mmio(f, off, &v, 4, true); }

static uint32_t rd32(struct fixture *f, uint64_t off)
{
    uint32_t v = 0;
    mmio(f, off, &v, 4, false);
    return v;
}

static uint32_t cfg_read(struct fixture *f, unsigned reg, uint32_t len)
{
    uint32_t v = 0;
    pci_config_access(f->vm.pci, 0, NVME_SLOT << 3, reg, &v, len, false);
    return v;
}

static void cfg_write(struct fixture *f, unsigned reg, uint32_t v, uint32_t len)
{
    pci_config_access(f->vm.pci, 0, NVME_SLOT << 3, reg, &v, len, true);
}

static void add_value(struct fixture *f, const char *key, const char *value)
{
    f->values[f->dc.n_values++] = (struct cfg_value){ .section = "emulated", .key = (char *)key,
                                                      .value = (char *)value, .line = 10 };
}

static int make_device(struct fixture *f, const char *k1, const char *v1, const char *k2,
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

static int base_setup(void **state)
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

static void attach(struct fixture *f)
{
    f->dev = f->vm.devices;
    assert_non_null(f->dev);
    f->ctrl = nvme_device_ctrl(f->dev);
    assert_int_equal(cfg_read(f, 0, 4), 0x00101b36);
    assert_int_equal(cfg_read(f, 0x08, 4) >> 8, 0x010802);
    f->bar = (cfg_read(f, 0x10, 4) & ~0xfu) | (uint64_t)cfg_read(f, 0x14, 4) << 32;
    cfg_write(f, 0x04, 0x6, 2);   /* memory decoding, bus master */
}

static int setup_with(void **state, const char *k1, const char *v1, const char *k2,
                      const char *v2)
{
    struct fixture *f;

    base_setup(state);
    f = *state;
    assert_int_equal(make_device(f, k1, v1, k2, v2), 0);
    attach(f);
    return 0;
}

static int setup(void **state) { return setup_with(state, "size", "4M", NULL, NULL); }
static int setup_noshadow(void **state)
{
    return setup_with(state, "size", "4M", "shadow-doorbells", "off");
}

static int teardown(void **state)
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

static void enable(struct fixture *f)
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

static bool poll_cq(struct fixture *f, uint64_t gpa, uint16_t depth, uint16_t *head, bool *phase,
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

static struct nvme_cqe wait_cq(struct fixture *f, uint64_t gpa, uint16_t depth, uint16_t *head,
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

static void admin_submit(struct fixture *f, struct nvme_sqe *cmd)
{
    cmd->cid = f->cid++;
    memcpy(f->ram + ASQ_GPA + 64 * f->asq_tail, cmd, 64);
    f->asq_tail = (f->asq_tail + 1) % ADMIN_DEPTH;
    wr32(f, NVME_REG_DBS, f->asq_tail);
}

static struct nvme_cqe admin_wait(struct fixture *f)
{
    return wait_cq(f, ACQ_GPA, ADMIN_DEPTH, &f->acq_head, &f->acq_phase, NVME_REG_DBS + 4);
}

static struct nvme_cqe admin(struct fixture *f, struct nvme_sqe cmd)
{
    struct nvme_cqe cqe;

    admin_submit(f, &cmd);
    cqe = admin_wait(f);
    assert_int_equal(cqe.cid, cmd.cid);
    assert_int_equal(cqe.sq_id, 0);
    assert_int_equal(cqe.sq_head, f->asq_tail);
    return cqe;
}

static uint16_t admin_status(struct fixture *f, struct nvme_sqe cmd)
{
    struct nvme_cqe cqe = admin(f, cmd);

    if (SC(cqe))
        assert_int_equal(DNR(cqe), 1);
    return (uint16_t)SC(cqe);
}

static void create_io_queues(struct fixture *f, uint16_t cq_size, uint16_t sq_size)
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

static void io_queue(struct fixture *f, struct nvme_sqe *cmd)
{
    cmd->cid = f->cid++;
    memcpy(f->ram + IOSQ_GPA + 64 * f->iosq_tail, cmd, 64);
    f->iosq_tail = (f->iosq_tail + 1) % f->iosq_size;
}

static void io_ring(struct fixture *f)
{
    if (f->shadow)
        ((uint32_t *)(f->ram + DBS_GPA))[2] = f->iosq_tail;
    wr32(f, NVME_REG_DBS + 8, f->iosq_tail);
}

static struct nvme_cqe io_wait(struct fixture *f)
{
    return wait_cq(f, IOCQ_GPA, f->iocq_size, &f->iocq_head, &f->iocq_phase, NVME_REG_DBS + 12);
}

static uint16_t io(struct fixture *f, struct nvme_sqe cmd)
{
    struct nvme_cqe cqe;

    io_queue(f, &cmd);
    io_ring(f);
    cqe = io_wait(f);
    assert_int_equal(cqe.cid, cmd.cid);
    assert_int_equal(cqe.sq_id, 1);
    return (uint16_t)SC(cqe);
}

static struct nvme_sqe rw(uint8_t opcode, uint64_t slba, uint32_t nlb, uint64_t prp1,
                          uint64_t prp2)
{
    return (struct nvme_sqe){ .opcode = opcode, .nsid = 1, .prp1 = prp1, .prp2 = prp2,
                              .cdw10 = (uint32_t)slba, .cdw11 = (uint32_t)(slba >> 32),
                              .cdw12 = nlb - 1 };
}

static void fill(struct fixture *f, uint64_t gpa, size_t len, uint8_t seed)
{
    for (size_t i = 0; i < len; i++)
        f->ram[gpa + i] = (uint8_t)(seed + i * 7 + (i >> 9));
}

static void assert_image(struct fixture *f, uint64_t offset, const void *expect, size_t len)
{
    uint8_t *buf = malloc(len);
    int fd = open(f->img, O_RDONLY);

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, len, (off_t)offset), (ssize_t)len);
    assert_memory_equal(buf, expect, len);
    close(fd);
    free(buf);
}

static bool all_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i])
            return false;
    return true;
}

static void bring_up(struct fixture *f)
{
    enable(f);
    create_io_queues(f, 16, 16);
}

/* --- tests --------------------------------------------------------------- */

static void test_registers_and_identify(void **state)
{
    struct fixture *f = *state;
    uint8_t *id = f->ram + ID_GPA;
    uint64_t cap = rd32(f, NVME_REG_CAP) | (uint64_t)rd32(f, NVME_REG_CAP + 4) << 32;

    assert_int_equal(cap & 0xffff, NVME_MQES);
    assert_true(cap >> 16 & 1);                           /* CQR */
    assert_int_equal(cap >> 32 & 0xf, 0);                 /* DSTRD */
    assert_true(cap >> 37 & 1);                           /* NVM command set */
    assert_int_equal(cap >> 48 & 0xff, 0);                /* MPSMIN/MAX: 4 KiB */
    assert_int_equal(rd32(f, NVME_REG_VS), 0x00010400);
    assert_int_equal(rd32(f, NVME_REG_CSTS), 0);
    enable(f);

    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x06, .prp1 = ID_GPA,
                                                        .cdw10 = 1 }), 0);
    assert_int_equal(id[0] | id[1] << 8, 0x1b36);
    assert_memory_equal(id + 4, "disk0               ", 20);
    assert_memory_equal(id + 24, "iovmm NVMe", 10);
    assert_int_equal(id[77], NVME_MDTS);
    assert_int_equal(id[512], 0x66);
    assert_int_equal(id[513], 0x44);
    assert_int_equal(id[516], 1);                         /* NN */
    assert_int_equal(id[520] & 0x0c, 0x0c);               /* DSM, Write Zeroes */
    assert_int_equal(id[525] & 1, 1);                     /* VWC */
    assert_int_equal(id[257] & 1, 1);                     /* OACS: Doorbell Buffer Config */
    assert_int_equal(id[80] | id[81] << 8 | id[82] << 16, 0x010400);
    assert_string_equal((char *)id + 768, "nqn.2024-01.org.iovmm:nvme:disk0");

    memset(id, 0xee, 4096);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x06, .nsid = 1,
                                                        .prp1 = ID_GPA }), 0);
    uint64_t nsze;
    memcpy(&nsze, id, 8);
    assert_int_equal(nsze, DISK_BLOCKS);
    assert_int_equal(id[25], 0);                          /* NLBAF */
    assert_int_equal(id[26], 0);                          /* FLBAS */
    assert_int_equal(id[33] & 0x09, 0x09);                /* DLFEAT */
    assert_int_equal(id[99], 0);                          /* not write protected */
    assert_int_equal(id[130], 9);                         /* LBADS */
    assert_false(all_zero(id + 104, 16));                 /* NGUID */

    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x06, .prp1 = ID_GPA,
                                                        .cdw10 = 2 }), 0);
    assert_int_equal(id[0], 1);
    assert_true(all_zero(id + 4, 4092));
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x06, .nsid = 1,
                                                        .prp1 = ID_GPA, .cdw10 = 3 }), 0);
    assert_int_equal(id[0], 2);                           /* NGUID descriptor */
    assert_int_equal(id[1], 16);

    /* Hostile identifies. */
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x06, .prp1 = ID_GPA,
                                                        .cdw10 = 0x42 }), NVME_SC_INVALID_FIELD);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x06, .nsid = 7,
                                                        .prp1 = ID_GPA }), NVME_SC_INVALID_NS);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x06, .prp1 = HOLE_GPA,
                                                        .cdw10 = 1 }), NVME_SC_DATA_XFER_ERROR);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x06, .prp1 = ID_GPA + 2,
                                                        .cdw10 = 1 }), NVME_SC_PRP_OFFSET_INVALID);
    /* Identify split over two pages through PRP2. */
    memset(f->ram + DATA_GPA, 0, 0x2000);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x06, .prp1 = DATA_GPA + 0x800,
                                                        .prp2 = DATA2_GPA, .cdw10 = 1 }), 0);
    assert_int_equal(f->ram[DATA_GPA + 0x800], 0x36);
    assert_int_equal(f->ram[DATA_GPA + 0x800 + 512], 0x66);      /* SQES */
    assert_int_equal(f->ram[DATA2_GPA], 2500 & 0xff);            /* PSD0 at 2048 */
}

static void test_features_and_logs(void **state)
{
    struct fixture *f = *state;
    struct nvme_cqe cqe;
    uint8_t *log = f->ram + ID_GPA;

    enable(f);
    cqe = admin(f, (struct nvme_sqe){ .opcode = 0x09, .cdw10 = 0x07, .cdw11 = 3u << 16 | 200 });
    assert_int_equal(SC(cqe), 0);
    assert_int_equal(cqe.dw0, (uint32_t)(NVME_MAX_IO_QUEUES - 1) | 3u << 16);
    cqe = admin(f, (struct nvme_sqe){ .opcode = 0x0a, .cdw10 = 0x06 });
    assert_int_equal(cqe.dw0, 1);                        /* write cache on */
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x09, .cdw10 = 0x06 }), 0);
    cqe = admin(f, (struct nvme_sqe){ .opcode = 0x0a, .cdw10 = 0x06 });
    assert_int_equal(cqe.dw0, 0);
    cqe = admin(f, (struct nvme_sqe){ .opcode = 0x0a, .cdw10 = 0x04 });
    assert_int_equal(cqe.dw0, NVME_WCTEMP);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x09, .cdw10 = 0x08,
                                                        .cdw11 = 0x0a04 }), 0);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x0a, .cdw10 = 0x55 }),
                     NVME_SC_INVALID_FIELD);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x09, .cdw10 = 0x02,
                                                        .cdw11 = 3 }), NVME_SC_INVALID_FIELD);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x09,
                                                        .cdw10 = 0x80000006 }),
                     NVME_SC_FEATURE_NOT_SAVEABLE);

    /* SMART log, all of it, then 8 bytes from offset 4. */
    memset(log, 0xee, 4096);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x02, .nsid = 0xffffffff,
                                                        .prp1 = ID_GPA,
                                                        .cdw10 = 127u << 16 | 0x02 }), 0);
    assert_int_equal(log[1] | log[2] << 8, NVME_TEMPERATURE);
    assert_int_equal(log[3], 100);
    assert_int_equal(log[512], 0xee);                    /* nothing past 512 bytes */
    memset(log, 0xee, 16);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x02, .prp1 = ID_GPA,
                                                        .cdw10 = 1u << 16 | 0x02, .cdw12 = 4 }),
                     0);
    assert_int_equal(log[0], 10);                        /* byte 4: spare threshold */
    assert_int_equal(log[8], 0xee);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x02, .prp1 = ID_GPA,
                                                        .cdw10 = 1u << 16 | 0x03 }), 0);
    assert_int_equal(log[0], 1);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x02, .prp1 = ID_GPA,
                                                        .cdw10 = 1u << 16 | 0x77 }),
                     NVME_SC_INVALID_LOG_PAGE);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x02, .prp1 = ID_GPA,
                                                        .cdw10 = 1u << 16 | 0x02, .cdw12 = 3 }),
                     NVME_SC_INVALID_FIELD);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x02, .prp1 = ID_GPA,
                                                        .cdw10 = 1u << 16 | 0x02,
                                                        .cdw12 = 1024 }),
                     NVME_SC_INVALID_FIELD);
    /* Abort never aborts; unknown admin opcodes are refused. */
    cqe = admin(f, (struct nvme_sqe){ .opcode = 0x08, .cdw10 = 1u << 16 | 5 });
    assert_int_equal(SC(cqe), 0);
    assert_int_equal(cqe.dw0 & 1, 1);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x7f }),
                     NVME_SC_INVALID_OPCODE);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x06, .flags = 0x40,
                                                        .prp1 = ID_GPA, .cdw10 = 1 }),
                     NVME_SC_INVALID_FIELD);   /* SGL asked for */
}

static void test_queue_management_errors(void **state)
{
    struct fixture *f = *state;

    enable(f);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x09, .cdw10 = 0x07,
                                                        .cdw11 = 1u << 16 | 1 }), 0);
    /* CQ: qid 0, beyond the two allocated, size 1, too big, not contiguous,
     * bad vector, misaligned, outside RAM. */
    struct { uint32_t cdw10, cdw11; uint64_t prp1; uint16_t sc; } bad_cq[] = {
        { 15u << 16 | 0, 3, IOCQ_GPA, NVME_SC_QID_INVALID },
        { 15u << 16 | 3, 3, IOCQ_GPA, NVME_SC_QID_INVALID },
        { 0u << 16 | 1, 3, IOCQ_GPA, NVME_SC_QUEUE_SIZE },
        { 4096u << 16 | 1, 3, IOCQ_GPA, NVME_SC_QUEUE_SIZE },
        { 15u << 16 | 1, 2, IOCQ_GPA, NVME_SC_INVALID_FIELD },
        { 15u << 16 | 1, 500u << 16 | 3, IOCQ_GPA, NVME_SC_INVALID_VECTOR },
        { 15u << 16 | 1, 3, IOCQ_GPA + 8, NVME_SC_PRP_OFFSET_INVALID },
        { 15u << 16 | 1, 3, HOLE_GPA, NVME_SC_INVALID_FIELD },
        { 1023u << 16 | 1, 3, RAM_SIZE - 0x1000, NVME_SC_INVALID_FIELD },
    };
    for (size_t i = 0; i < sizeof(bad_cq) / sizeof(bad_cq[0]); i++)
        assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x05,
                                                            .prp1 = bad_cq[i].prp1,
                                                            .cdw10 = bad_cq[i].cdw10,
                                                            .cdw11 = bad_cq[i].cdw11 }),
                         bad_cq[i].sc);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x01, .prp1 = IOSQ_GPA,
                                                        .cdw10 = 15u << 16 | 1,
                                                        .cdw11 = 1u << 16 | 1 }),
                     NVME_SC_CQ_INVALID);
    create_io_queues(f, 16, 16);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x05, .prp1 = IOCQ_GPA,
                                                        .cdw10 = 15u << 16 | 1, .cdw11 = 3 }),
                     NVME_SC_QID_INVALID);               /* exists */
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x01, .prp1 = IOSQ_GPA,
                                                        .cdw10 = 15u << 16 | 2,
                                                        .cdw11 = 9u << 16 | 1 }),
                     NVME_SC_CQ_INVALID);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x09, .cdw10 = 0x07,
                                                        .cdw11 = 0 }), NVME_SC_CMD_SEQ_ERROR);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x04, .cdw10 = 1 }),
                     NVME_SC_INVALID_QUEUE_DELETE);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x00, .cdw10 = 2 }),
                     NVME_SC_QID_INVALID);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x00, .cdw10 = 0 }),
                     NVME_SC_QID_INVALID);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x04, .cdw10 = 0xffff }),
                     NVME_SC_QID_INVALID);
    /* Doorbells beyond the queues, and values beyond the queue size. */
    wr32(f, NVME_REG_DBS + 8 * 40, 3);
    wr32(f, NVME_REG_DBS + 8 * 40 + 4, 3);
    wr32(f, NVME_REG_DBS + 8 * NVME_NUM_QUEUES + 0x100, 1);
    wr32(f, NVME_REG_DBS + 8, 999);
    wr32(f, NVME_REG_DBS + 12, 999);
    nvme_ctrl_process(f->ctrl);
    assert_int_equal(rd32(f, NVME_REG_CSTS) & 3, NVME_CSTS_RDY);
    /* The queue still works, and deleting in the right order succeeds. */
    fill(f, DATA_GPA, 512, 1);
    assert_int_equal(io(f, rw(0x01, 0, 1, DATA_GPA, 0)), 0);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x00, .cdw10 = 1 }), 0);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x04, .cdw10 = 1 }), 0);
}

static void test_read_write_prp_shapes(void **state)
{
    struct fixture *f = *state;
    uint64_t *list = (uint64_t *)(f->ram + LIST_GPA);

    bring_up(f);
    /* PRP1 only: one page. */
    fill(f, DATA_GPA, 4096, 1);
    assert_int_equal(io(f, rw(0x01, 8, 8, DATA_GPA, 0)), 0);
    assert_image(f, 8 * 512, f->ram + DATA_GPA, 4096);
    memset(f->ram + DATA2_GPA, 0, 4096);
    assert_int_equal(io(f, rw(0x02, 8, 8, DATA2_GPA, 0)), 0);
    assert_memory_equal(f->ram + DATA2_GPA, f->ram + DATA_GPA, 4096);

    /* PRP1 with an offset plus PRP2 as a data pointer: 1 KiB + 2 KiB. */
    fill(f, DATA_GPA + 0xc00, 1024, 2);
    fill(f, DATA_GPA + 0x3000, 2048, 3);
    assert_int_equal(io(f, rw(0x01, 100, 6, DATA_GPA + 0xc00, DATA_GPA + 0x3000)), 0);
    assert_image(f, 100 * 512, f->ram + DATA_GPA + 0xc00, 1024);
    assert_image(f, 100 * 512 + 1024, f->ram + DATA_GPA + 0x3000, 2048);

    /* 64 KiB through a PRP list of scattered pages (in reverse order). */
    for (int i = 0; i < 16; i++)
        fill(f, DATA_GPA + (uint64_t)(15 - i) * 4096, 4096, (uint8_t)(10 + i));
    for (int i = 1; i < 16; i++)
        list[i - 1] = DATA_GPA + (uint64_t)(15 - i) * 4096;
    assert_int_equal(io(f, rw(0x01, 256, 128, DATA_GPA + 15 * 4096, LIST_GPA)), 0);
    for (int i = 0; i < 16; i++)
        assert_image(f, 256 * 512 + (uint64_t)i * 4096, f->ram + DATA_GPA + (15 - i) * 4096ULL,
                     4096);
    memset(f->ram + DATA2_GPA, 0, 16 * 4096);
    for (int i = 1; i < 16; i++)
        list[i - 1] = DATA2_GPA + (uint64_t)i * 4096;
    assert_int_equal(io(f, rw(0x02, 256, 128, DATA2_GPA, LIST_GPA)), 0);
    for (int i = 0; i < 16; i++)
        assert_memory_equal(f->ram + DATA2_GPA + i * 4096ULL,
                            f->ram + DATA_GPA + (15 - i) * 4096ULL, 4096);

    /* The largest transfer (MDTS, 512 KiB) starting at an offset, with a
     * list that starts 4 entries before the end of its page and chains:
     * 3 data entries, a pointer, then the rest in another page. */
    uint64_t first = LIST_GPA + 0x2000 - 32;
    uint64_t *l1 = (uint64_t *)(f->ram + first), *l2 = (uint64_t *)(f->ram + LIST_GPA + 0x3000);
    fill(f, DATA_GPA, 1 << 20, 77);
    for (int i = 0; i < 3; i++)
        l1[i] = DATA_GPA + 4096ULL * (i + 1);
    l1[3] = LIST_GPA + 0x3000;
    for (int i = 0; i < 126; i++)
        l2[i] = DATA_GPA + 4096ULL * (i + 4);
    assert_int_equal(io(f, rw(0x01, 1024, 1024, DATA_GPA + 0x200, first)), 0);
    assert_image(f, 1024 * 512, f->ram + DATA_GPA + 0x200, 512 * 1024);
    memset(f->ram + DATA2_GPA, 0, 1 << 20);
    for (int i = 0; i < 3; i++)
        l1[i] = DATA2_GPA + 4096ULL * (i + 1);
    for (int i = 0; i < 126; i++)
        l2[i] = DATA2_GPA + 4096ULL * (i + 4);
    assert_int_equal(io(f, rw(0x02, 1024, 1024, DATA2_GPA + 0x200, first)), 0);
    assert_memory_equal(f->ram + DATA2_GPA + 0x200, f->ram + DATA_GPA + 0x200, 512 * 1024);
    assert_true(all_zero(f->ram + DATA2_GPA, 0x200));    /* nothing before PRP1 */

    /* Last block of the disk; FUA write. */
    struct nvme_sqe fua = rw(0x01, DISK_BLOCKS - 1, 1, DATA_GPA, 0);
    fua.cdw12 |= 1u << 30;
    assert_int_equal(io(f, fua), 0);
    assert_image(f, DISK_SIZE - 512, f->ram + DATA_GPA, 512);
}

static void test_io_errors(void **state)
{
    struct fixture *f = *state;
    uint64_t *list = (uint64_t *)(f->ram + LIST_GPA);
    struct nvme_sqe cmd;

    bring_up(f);
    assert_int_equal(io(f, (struct nvme_sqe){ .opcode = 0x7f, .nsid = 1 }),
                     NVME_SC_INVALID_OPCODE);
    assert_int_equal(io(f, (struct nvme_sqe){ .opcode = 0x05, .nsid = 1 }),
                     NVME_SC_INVALID_OPCODE);   /* Compare: not offered */
    assert_int_equal(io(f, rw(0x02, DISK_BLOCKS, 1, DATA_GPA, 0)), NVME_SC_LBA_RANGE);
    assert_int_equal(io(f, rw(0x02, DISK_BLOCKS - 1, 2, DATA_GPA, 0)), NVME_SC_LBA_RANGE);
    assert_int_equal(io(f, rw(0x02, ~0ULL, 1, DATA_GPA, 0)), NVME_SC_LBA_RANGE);
    assert_int_equal(io(f, rw(0x02, 0, 2048, DATA_GPA, LIST_GPA)), NVME_SC_INVALID_FIELD);
    /* 32 MiB: past the end of this 4 MiB disk before it is past MDTS. */
    assert_int_equal(io(f, rw(0x02, 0, 65536, DATA_GPA, LIST_GPA)), NVME_SC_LBA_RANGE);
    cmd = rw(0x02, 0, 1, DATA_GPA, 0);
    cmd.nsid = 2;
    assert_int_equal(io(f, cmd), NVME_SC_INVALID_NS);
    cmd.nsid = 0;
    assert_int_equal(io(f, cmd), NVME_SC_INVALID_NS);
    cmd = rw(0x02, 0, 1, DATA_GPA, 0);
    cmd.flags = 0x40;
    assert_int_equal(io(f, cmd), NVME_SC_INVALID_FIELD);
    /* PRPs: in the hole, past the end of RAM, misaligned, bad list. */
    assert_int_equal(io(f, rw(0x02, 0, 1, HOLE_GPA, 0)), NVME_SC_DATA_XFER_ERROR);
    assert_int_equal(io(f, rw(0x02, 0, 8, RAM_SIZE - 2048, RAM_SIZE)), NVME_SC_DATA_XFER_ERROR);
    assert_int_equal(io(f, rw(0x02, 0, 1, DATA_GPA + 1, 0)), NVME_SC_PRP_OFFSET_INVALID);
    assert_int_equal(io(f, rw(0x02, 0, 16, DATA_GPA, DATA2_GPA + 8)),
                     NVME_SC_PRP_OFFSET_INVALID);
    assert_int_equal(io(f, rw(0x02, 0, 16, DATA_GPA, HOLE_GPA)), NVME_SC_DATA_XFER_ERROR);
    assert_int_equal(io(f, rw(0x02, 0, 24, DATA_GPA, LIST_GPA + 4)),
                     NVME_SC_PRP_OFFSET_INVALID);
    list[0] = DATA2_GPA + 0x10;
    list[1] = DATA2_GPA + 0x1000;
    assert_int_equal(io(f, rw(0x02, 0, 24, DATA_GPA, LIST_GPA)), NVME_SC_PRP_OFFSET_INVALID);
    list[0] = HOLE_GPA;
    assert_int_equal(io(f, rw(0x02, 0, 24, DATA_GPA, LIST_GPA)), NVME_SC_DATA_XFER_ERROR);
    /* A list whose last entry points back at itself: bounded by the length. */
    for (int i = 0; i < 511; i++)
        list[i] = DATA_GPA;
    list[511] = LIST_GPA;
    assert_int_equal(io(f, rw(0x02, 0, 1024, DATA_GPA, LIST_GPA)), 0);
    /* Still alive. */
    fill(f, DATA_GPA, 512, 9);
    assert_int_equal(io(f, rw(0x01, 3, 1, DATA_GPA, 0)), 0);
    assert_image(f, 3 * 512, f->ram + DATA_GPA, 512);
}

static void test_flush_zeroes_deallocate(void **state)
{
    struct fixture *f = *state;
    struct { uint32_t attr, nlb; uint64_t slba; } *ranges = (void *)(f->ram + ID_GPA);
    uint64_t *list = (uint64_t *)(f->ram + LIST_GPA);

    bring_up(f);
    for (int i = 1; i < 16; i++)
        list[i - 1] = DATA_GPA + (uint64_t)i * 4096;
    fill(f, DATA_GPA, 65536, 5);
    assert_int_equal(io(f, rw(0x01, 0, 128, DATA_GPA, LIST_GPA)), 0);
    assert_int_equal(io(f, (struct nvme_sqe){ .opcode = 0x00, .nsid = 1 }), 0);
    assert_int_equal(io(f, (struct nvme_sqe){ .opcode = 0x00, .nsid = 0xffffffff }), 0);

    /* Write Zeroes over blocks 8..15, deallocating ones over 24..39. */
    assert_int_equal(io(f, (struct nvme_sqe){ .opcode = 0x08, .nsid = 1, .cdw10 = 8,
                                              .cdw12 = 7 }), 0);
    assert_int_equal(io(f, (struct nvme_sqe){ .opcode = 0x08, .nsid = 1, .cdw10 = 24,
                                              .cdw12 = 15 | 1u << 25 }), 0);
    assert_int_equal(io(f, (struct nvme_sqe){ .opcode = 0x08, .nsid = 1, .cdw10 = DISK_BLOCKS,
                                              .cdw12 = 0 }), NVME_SC_LBA_RANGE);
    /* Deallocate blocks 64..71 and 100..127 (two ranges, one empty). */
    ranges[0] = (typeof(ranges[0])){ .nlb = 8, .slba = 64 };
    ranges[1] = (typeof(ranges[0])){ .nlb = 0, .slba = 5 };
    ranges[2] = (typeof(ranges[0])){ .nlb = 28, .slba = 100 };
    assert_int_equal(io(f, (struct nvme_sqe){ .opcode = 0x09, .nsid = 1, .prp1 = ID_GPA,
                                              .cdw10 = 2, .cdw11 = 4 }), 0);
    ranges[0].slba = DISK_BLOCKS - 4;
    assert_int_equal(io(f, (struct nvme_sqe){ .opcode = 0x09, .nsid = 1, .prp1 = ID_GPA,
                                              .cdw10 = 0, .cdw11 = 4 }), NVME_SC_LBA_RANGE);
    assert_int_equal(io(f, (struct nvme_sqe){ .opcode = 0x09, .nsid = 1, .prp1 = HOLE_GPA,
                                              .cdw10 = 0, .cdw11 = 4 }),
                     NVME_SC_DATA_XFER_ERROR);
    assert_int_equal(io(f, (struct nvme_sqe){ .opcode = 0x09, .nsid = 1, .cdw11 = 1 }), 0);

    for (int i = 1; i < 16; i++)
        list[i - 1] = DATA2_GPA + (uint64_t)i * 4096;
    memset(f->ram + DATA2_GPA, 0xaa, 65536);
    assert_int_equal(io(f, rw(0x02, 0, 128, DATA2_GPA, LIST_GPA)), 0);
    for (unsigned b = 0; b < 128; b++) {
        bool zero = (b >= 8 && b < 16) || (b >= 24 && b < 40) || (b >= 64 && b < 72) || b >= 100;
        const uint8_t *got = f->ram + DATA2_GPA + b * 512;
        if (zero)
            assert_true(all_zero(got, 512));
        else
            assert_memory_equal(got, f->ram + DATA_GPA + b * 512, 512);
    }
}

/* A 4-entry CQ holds 3 completions: the controller fetches no more than it
 * can complete, never overwrites an unread entry, and the phase flips on
 * every wrap. */
static void test_cq_full_and_phase_wrap(void **state)
{
    struct fixture *f = *state;
    volatile struct nvme_cqe *cq = (struct nvme_cqe *)(f->ram + IOCQ_GPA);
    unsigned completed = 0;

    enable(f);
    create_io_queues(f, 4, 16);
    fill(f, DATA_GPA, 512, 3);
    assert_int_equal(io(f, rw(0x01, 0, 1, DATA_GPA, 0)), 0);
    for (int i = 0; i < 10; i++) {
        struct nvme_sqe cmd = rw(0x02, 0, 1, DATA2_GPA + 512ULL * i, 0);
        io_queue(f, &cmd);
    }
    io_ring(f);
    for (int i = 0; i < 20; i++)
        nvme_ctrl_wait_and_process(f->ctrl, 20);
    /* Slot 0 was used by the write; 1, 2, 3 now hold new completions, and
     * slot 0 is not overwritten (its phase is still the first pass's). */
    assert_int_equal(cq[1].status & 1, 1);
    assert_int_equal(cq[2].status & 1, 1);
    assert_int_equal(cq[3].status & 1, 1);
    assert_int_equal(cq[0].status & 1, 1);
    assert_int_equal(f->ctrl->sq[1].head, 4);   /* fetched only what fits */
    while (completed < 10) {
        struct nvme_cqe cqe = io_wait(f);
        assert_int_equal(SC(cqe), 0);
        completed++;
    }
    assert_int_equal(f->iocq_head, 3);           /* 11 entries: wrapped twice, */
    assert_true(f->iocq_phase);                  /* so the phase is back to 1 */
    for (int i = 0; i < 10; i++)
        assert_memory_equal(f->ram + DATA2_GPA + 512 * i, f->ram + DATA_GPA, 512);
}

static void test_shadow_doorbells(void **state)
{
    struct fixture *f = *state;
    uint32_t *dbs = (uint32_t *)(f->ram + DBS_GPA), *eis = (uint32_t *)(f->ram + EIS_GPA);
    uint8_t *id = f->ram + ID_GPA;

    bring_up(f);
    memset(dbs, 0, 4096);
    memset(eis, 0xff, 4096);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x7c, .prp1 = DBS_GPA + 8,
                                                        .prp2 = EIS_GPA }),
                     NVME_SC_INVALID_FIELD);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x7c, .prp1 = DBS_GPA,
                                                        .prp2 = HOLE_GPA }),
                     NVME_SC_INVALID_FIELD);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x7c, .prp1 = DBS_GPA,
                                                        .prp2 = EIS_GPA }), 0);
    assert_true(f->ctrl->sq[1].shadow && f->ctrl->cq[1].shadow);
    assert_false(f->ctrl->sq[0].shadow);          /* the admin queue keeps MMIO */
    assert_int_equal(eis[2], 0);
    assert_int_equal(eis[3], 0);
    f->shadow = true;

    /* A tail seen only in the shadow buffer (no MMIO) is fetched the next
     * time the controller runs, and the event index follows it. */
    fill(f, DATA_GPA, 4096, 8);
    struct nvme_sqe cmd = rw(0x01, 0, 8, DATA_GPA, 0);
    io_queue(f, &cmd);
    dbs[2] = f->iosq_tail;
    struct nvme_cqe cqe = io_wait(f);
    assert_int_equal(cqe.cid, cmd.cid);
    assert_int_equal(SC(cqe), 0);
    assert_int_equal(eis[2], 1);
    /* INTx here (no MSI-X): the level stays up until the host rings the CQ
     * doorbell, so the event index (the head it had published, 0) makes
     * the driver's update from 0 to 1 ring it. */
    assert_true(cfg_read(f, 0x06, 2) & 0x08);
    assert_int_equal(eis[3], 0);
    wr32(f, NVME_REG_DBS + 12, f->iocq_head);
    assert_false(cfg_read(f, 0x06, 2) & 0x08);
    io_queue(f, &cmd);
    dbs[2] = f->iosq_tail;
    cqe = io_wait(f);
    assert_int_equal(SC(cqe), 0);
    assert_int_equal(eis[3], 1);
    assert_true(cfg_read(f, 0x06, 2) & 0x08);
    wr32(f, NVME_REG_DBS + 12, f->iocq_head);
    assert_false(cfg_read(f, 0x06, 2) & 0x08);

    /* 40 commands through a 16-entry CQ whose head the host only ever
     * writes to the shadow buffer: the controller reads it when it needs
     * room, and asks for an MMIO (event index = head) when still full. */
    unsigned done = 0;
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 10; i++) {
            struct nvme_sqe r = rw(0x02, (uint64_t)i, 1, DATA2_GPA + 512ULL * i, 0);
            io_queue(f, &r);
        }
        dbs[2] = f->iosq_tail;
        for (int i = 0; i < 10; i++) {
            cqe = io_wait(f);
            assert_int_equal(SC(cqe), 0);
            done++;
        }
    }
    assert_int_equal(done, 40);
    assert_int_equal(eis[2], f->iosq_tail);
    assert_memory_equal(f->ram + DATA2_GPA, f->ram + DATA_GPA, 512);

    /* Shadow tails beyond the queue are ignored; the queue goes on. */
    dbs[2] = 999;
    nvme_ctrl_process(f->ctrl);
    assert_int_equal(io(f, rw(0x02, 0, 1, DATA2_GPA, 0)), 0);

    /* Offered in Identify; a reset turns shadow doorbells off. */
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x06, .prp1 = ID_GPA,
                                                        .cdw10 = 1 }), 0);
    assert_int_equal(id[257] & 1, 1);
    wr32(f, NVME_REG_CC, 0);
    assert_null(f->ctrl->dbbuf_dbs);
}

static void test_shadow_doorbells_off(void **state)
{
    struct fixture *f = *state;
    uint8_t *id = f->ram + ID_GPA;

    enable(f);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x06, .prp1 = ID_GPA,
                                                        .cdw10 = 1 }), 0);
    assert_int_equal(id[257] & 1, 0);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x7c, .prp1 = DBS_GPA,
                                                        .prp2 = EIS_GPA }),
                     NVME_SC_INVALID_OPCODE);
}

static uint64_t irqs(struct fixture *f)
{
    return atomic_load(&f->dev->stats.irqs_injected);
}

static void test_intx_and_msix(void **state)
{
    struct fixture *f = *state;
    struct nvme_cqe cqe;
    uint64_t before;
    unsigned cap;

    enable(f);
    /* INTx: up with an unread completion, down once the head catches up. */
    before = irqs(f);
    struct nvme_sqe cmd = { .opcode = 0x0a, .cdw10 = 0x07 };
    admin_submit(f, &cmd);
    nvme_ctrl_process(f->ctrl);
    assert_int_equal(irqs(f), before + 1);
    assert_true(cfg_read(f, 0x06, 2) & 0x08);           /* interrupt status */
    wr32(f, NVME_REG_INTMS, 1);                         /* masked: line down */
    assert_false(cfg_read(f, 0x06, 2) & 0x08);
    wr32(f, NVME_REG_INTMC, 1);
    assert_true(cfg_read(f, 0x06, 2) & 0x08);
    assert_int_equal(rd32(f, NVME_REG_INTMS), 0);
    cqe = admin_wait(f);                                /* rings the head doorbell */
    assert_int_equal(SC(cqe), 0);
    assert_false(cfg_read(f, 0x06, 2) & 0x08);

    /* MSI-X: find the capability, enable it, unmask vectors 0 and 1. */
    for (cap = cfg_read(f, 0x34, 1); cap && cfg_read(f, cap, 1) != 0x11;
         cap = cfg_read(f, cap + 1, 1))
        ;
    assert_int_not_equal(cap, 0);
    assert_int_equal((cfg_read(f, cap + 2, 2) & 0x7ff) + 1, NVME_MSIX_VECTORS);
    cfg_write(f, cap + 2, 0x8000, 2);
    wr32(f, NVME_MSIX_TABLE + 12, 0);
    wr32(f, NVME_MSIX_TABLE + 16 + 12, 0);
    create_io_queues(f, 16, 16);
    assert_false(cfg_read(f, 0x06, 2) & 0x08);          /* no INTx with MSI-X */
    before = irqs(f);
    assert_int_equal(io(f, rw(0x02, 0, 1, DATA_GPA, 0)), 0);
    assert_int_equal(irqs(f), before + 1);
    /* A masked vector stays pending, delivered when unmasked. */
    wr32(f, NVME_MSIX_TABLE + 16 + 12, 1);
    before = irqs(f);
    assert_int_equal(io(f, rw(0x02, 0, 1, DATA_GPA, 0)), 0);
    assert_int_equal(irqs(f), before);
    wr32(f, NVME_MSIX_TABLE + 16 + 12, 0);
    assert_int_equal(irqs(f), before + 1);
}

static void test_shutdown_and_async_events(void **state)
{
    struct fixture *f = *state;
    struct nvme_sqe aer = { .opcode = 0x0c };
    struct nvme_cqe cqe;

    bring_up(f);
    for (int i = 0; i < NVME_AERL + 1; i++) {
        struct nvme_sqe a = aer;
        admin_submit(f, &a);
    }
    /* Held: the next admin command completes first. */
    cqe = admin(f, (struct nvme_sqe){ .opcode = 0x0a, .cdw10 = 0x07 });
    assert_int_equal(SC(cqe), 0);
    assert_int_equal(admin_status(f, aer), NVME_SC_AER_LIMIT);
    fill(f, DATA_GPA, 512, 4);
    assert_int_equal(io(f, rw(0x01, 7, 1, DATA_GPA, 0)), 0);

    wr32(f, NVME_REG_CC, 1 | 6 << 16 | 4 << 20 | 1 << 14);
    assert_int_equal(rd32(f, NVME_REG_CSTS) & NVME_CSTS_SHST_MASK, NVME_CSTS_SHST_BUSY);
    for (int i = 0; i < NVME_AERL + 1; i++) {
        cqe = admin_wait(f);
        assert_int_equal(SC(cqe), NVME_SC_ABORT_REQ);
    }
    for (int i = 0; i < 100 && (rd32(f, NVME_REG_CSTS) & NVME_CSTS_SHST_MASK) !=
                                   NVME_CSTS_SHST_DONE; i++)
        nvme_ctrl_wait_and_process(f->ctrl, 20);
    assert_int_equal(rd32(f, NVME_REG_CSTS) & NVME_CSTS_SHST_MASK, NVME_CSTS_SHST_DONE);
    assert_image(f, 7 * 512, f->ram + DATA_GPA, 512);
    wr32(f, NVME_REG_CC, 0);
    assert_int_equal(rd32(f, NVME_REG_CSTS), 0);
}

/* CC.EN 1 -> 0 while the backend still works on writes: RDY stays up until
 * they are done, none of them posts a completion into the queues that are
 * gone, and the controller works again after the next enable. */
static void test_reset_with_requests_in_flight(void **state)
{
    struct fixture *f = *state;
    uint64_t *list = (uint64_t *)(f->ram + LIST_GPA);

    bring_up(f);
    for (int i = 0; i < 127; i++)
        list[i] = DATA_GPA + 4096ULL * (i + 1);
    fill(f, DATA_GPA, 1 << 20, 6);
    for (int i = 0; i < 8; i++) {
        struct nvme_sqe cmd = rw(i % 2 ? 0x02 : 0x01, (uint64_t)i * 1024 % DISK_BLOCKS, 1024,
                                 DATA_GPA, LIST_GPA);
        io_queue(f, &cmd);
    }
    io_ring(f);
    nvme_ctrl_process(f->ctrl);                  /* all 8 handed to io_uring */
    assert_int_equal(f->ctrl->io_inflight, 8);
    memset(f->ram + IOCQ_GPA, 0, 4096);
    wr32(f, NVME_REG_CC, 0);
    assert_int_equal(rd32(f, NVME_REG_CSTS) & NVME_CSTS_RDY, NVME_CSTS_RDY);
    wr32(f, NVME_REG_DBS + 8, 3);                /* doorbells of gone queues */
    wr32(f, NVME_REG_DBS + 12, 3);
    for (int i = 0; i < 200 && (rd32(f, NVME_REG_CSTS) & NVME_CSTS_RDY); i++)
        nvme_ctrl_wait_and_process(f->ctrl, 20);
    assert_int_equal(rd32(f, NVME_REG_CSTS) & NVME_CSTS_RDY, 0);
    assert_int_equal(f->ctrl->io_inflight, 0);
    assert_true(all_zero(f->ram + IOCQ_GPA, 4096));
    assert_true(all_zero(f->ram + ACQ_GPA + 16 * f->acq_head, 16));

    bring_up(f);
    fill(f, DATA_GPA, 512, 11);
    assert_int_equal(io(f, rw(0x01, 1, 1, DATA_GPA, 0)), 0);
    assert_image(f, 512, f->ram + DATA_GPA, 512);

    /* Enabling again while a reset still waits: enabled once it is done. */
    struct nvme_sqe w = rw(0x01, 0, 1024, DATA_GPA, LIST_GPA);
    io_queue(f, &w);
    io_ring(f);
    nvme_ctrl_process(f->ctrl);
    wr32(f, NVME_REG_CC, 0);
    wr32(f, NVME_REG_CC, 1 | 6 << 16 | 4 << 20);
    for (int i = 0; i < 200 && f->ctrl->reset_pending; i++)
        nvme_ctrl_wait_and_process(f->ctrl, 20);
    assert_false(f->ctrl->reset_pending);
    assert_int_equal(rd32(f, NVME_REG_CSTS) & 3, NVME_CSTS_RDY);

    /* And teardown with a request still in flight (fixture teardown). */
    bring_up(f);
    io_queue(f, &w);
    io_ring(f);
    nvme_ctrl_process(f->ctrl);
}

static void test_bad_enable(void **state)
{
    struct fixture *f = *state;

    /* 8 KiB pages: controller fatal, never ready. */
    wr32(f, NVME_REG_AQA, 0x001f001f);
    wr32(f, NVME_REG_ASQ, ASQ_GPA);
    wr32(f, NVME_REG_ACQ, ACQ_GPA);
    wr32(f, NVME_REG_CC, 1 | 1 << 7 | 6 << 16 | 4 << 20);
    assert_int_equal(rd32(f, NVME_REG_CSTS) & 3, NVME_CSTS_CFS);
    wr32(f, NVME_REG_CC, 0);
    assert_int_equal(rd32(f, NVME_REG_CSTS), 0);
    /* 128-byte submission entries. */
    wr32(f, NVME_REG_CC, 1 | 7 << 16 | 4 << 20);
    assert_int_equal(rd32(f, NVME_REG_CSTS) & 3, NVME_CSTS_CFS);
    wr32(f, NVME_REG_CC, 0);
    /* Admin queue in the hole. */
    wr32(f, NVME_REG_ASQ, (uint32_t)HOLE_GPA);
    wr32(f, NVME_REG_CC, 1 | 6 << 16 | 4 << 20);
    assert_int_equal(rd32(f, NVME_REG_CSTS) & 3, NVME_CSTS_CFS);
    wr32(f, NVME_REG_CC, 0);
    /* Odd sizes and offsets of register accesses are harmless. */
    uint64_t v64 = ~0ULL;
    uint8_t b = 0xff;
    mmio(f, NVME_REG_CC, &b, 1, true);
    mmio(f, NVME_REG_CAP + 1, &b, 1, false);
    assert_int_equal(b, (NVME_MQES >> 8) & 0xff);
    mmio(f, NVME_REG_ASQ, &v64, 8, true);
    v64 = 0;
    mmio(f, NVME_REG_ASQ, &v64, 8, false);
    assert_int_equal(v64, ~0xfffULL);
    enable(f);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x0a, .cdw10 = 0x07 }), 0);
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_random_register_writes(void **state)
{
    struct fixture *f = *state;
    static const uint32_t sizes[] = { 1, 2, 4, 8 };
    uint64_t seed = 0x9e3779b97f4a7c15ULL;

    bring_up(f);
    /* Plausible admin queues in RAM, so random enables reach the command
     * paths with random commands too. */
    for (int i = 0; i < 0x1000; i++)
        f->ram[ASQ_GPA + i] = (uint8_t)xorshift(&seed);
    for (int pass = 0; pass < 4; pass++) {
        for (uint64_t off = 0; off < NVME_BAR0_SIZE; off += 4) {
            uint64_t v = xorshift(&seed);
            uint32_t len = sizes[xorshift(&seed) % 4];
            uint64_t at = off + (xorshift(&seed) % 4 == 0 ? xorshift(&seed) % 8 : 0);
            if (at + len > NVME_BAR0_SIZE)
                continue;
            if (at == NVME_REG_ASQ || at == NVME_REG_ACQ)
                v = (v % (RAM_SIZE / 4096)) * 4096;   /* sometimes in RAM */
            mmio(f, at, &v, len, true);
            mmio(f, at, &v, len, false);
            if ((off & 0xff) == 0)
                nvme_ctrl_process(f->ctrl);
        }
    }
    /* Recover the way a driver would: disable, wait for RDY to drop. */
    wr32(f, NVME_REG_CC, 0);
    for (int i = 0; i < 500 && (rd32(f, NVME_REG_CSTS) & NVME_CSTS_RDY); i++)
        nvme_ctrl_wait_and_process(f->ctrl, 20);
    assert_int_equal(rd32(f, NVME_REG_CSTS) & NVME_CSTS_RDY, 0);
    wr32(f, NVME_REG_INTMC, ~0u);
    for (uint64_t off = NVME_MSIX_TABLE; off < NVME_MSIX_TABLE + 16 * NVME_MSIX_VECTORS; off += 16)
        wr32(f, off + 12, 1);
    bring_up(f);
    fill(f, DATA_GPA, 4096, 12);
    assert_int_equal(io(f, rw(0x01, 16, 8, DATA_GPA, 0)), 0);
    memset(f->ram + DATA2_GPA, 0, 4096);
    assert_int_equal(io(f, rw(0x02, 16, 8, DATA2_GPA, 0)), 0);
    assert_memory_equal(f->ram + DATA2_GPA, f->ram + DATA_GPA, 4096);
}

/* A thousand commands at once through 1024-entry queues: more than the
 * io_uring holds, completed in any order, each once. */
static void test_deep_queue(void **state)
{
    struct fixture *f = *state;
    static bool seen[1000];
    uint16_t first_cid;

    enable(f);
    create_io_queues(f, 1024, 1024);
    fill(f, DATA_GPA, 1000 * 512, 21);
    first_cid = f->cid;
    for (int i = 0; i < 1000; i++) {
        struct nvme_sqe cmd = rw(i % 3 ? 0x01 : 0x02, (uint64_t)i, 1, DATA_GPA + 512ULL * i, 0);
        if (cmd.opcode == 0x02)
            cmd = rw(0x02, (uint64_t)i + 4096, 1, DATA2_GPA + 512ULL * i, 0);
        io_queue(f, &cmd);
    }
    memset(seen, 0, sizeof(seen));
    io_ring(f);
    for (int i = 0; i < 1000; i++) {
        struct nvme_cqe cqe = io_wait(f);
        uint16_t n = (uint16_t)(cqe.cid - first_cid);
        assert_int_equal(SC(cqe), 0);
        assert_true(n < 1000);
        assert_false(seen[n]);
        seen[n] = true;
    }
    assert_int_equal(f->ctrl->io_inflight, 0);
    for (int i = 0; i < 1000; i++)
        if (i % 3)
            assert_image(f, 512ULL * i, f->ram + DATA_GPA + 512ULL * i, 512);
}

/* The image shrinks under the VMM: a read across the new end of file comes
 * back short from the kernel, is resubmitted for the rest, and what lies
 * beyond reads as zeroes, as a hole would. */
static void test_image_truncated_under_us(void **state)
{
    struct fixture *f = *state;
    uint64_t *list = (uint64_t *)(f->ram + LIST_GPA);

    bring_up(f);
    for (int i = 1; i < 16; i++)
        list[i - 1] = DATA_GPA + (uint64_t)i * 4096;
    fill(f, DATA_GPA, 65536, 31);
    assert_int_equal(io(f, rw(0x01, 4096 - 64, 128, DATA_GPA, LIST_GPA)), 0);
    assert_int_equal(truncate(f->img, 2 << 20), 0);
    for (int i = 1; i < 16; i++)
        list[i - 1] = DATA2_GPA + (uint64_t)i * 4096;
    memset(f->ram + DATA2_GPA, 0xaa, 65536);
    assert_int_equal(io(f, rw(0x02, 4096 - 64, 128, DATA2_GPA, LIST_GPA)), 0);
    assert_memory_equal(f->ram + DATA2_GPA, f->ram + DATA_GPA, 32768);
    assert_true(all_zero(f->ram + DATA2_GPA + 32768, 32768));
}

/* --- device files -------------------------------------------------------- */

static void test_read_only_disk(void **state)
{
    struct fixture *f;

    base_setup(state);
    f = *state;
    int fd = open(f->img, O_CREAT | O_RDWR, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 1 << 20), 0);
    assert_int_equal(pwrite(fd, "hello", 5, 512), 5);
    close(fd);
    assert_int_equal(make_device(f, "read-only", "on", "serial", "RO-SERIAL-1"), 0);
    attach(f);
    bring_up(f);
    assert_int_equal(io(f, rw(0x01, 0, 1, DATA_GPA, 0)), NVME_SC_NS_WRITE_PROTECTED);
    assert_int_equal(io(f, (struct nvme_sqe){ .opcode = 0x08, .nsid = 1 }),
                     NVME_SC_NS_WRITE_PROTECTED);
    assert_int_equal(io(f, rw(0x02, 1, 1, DATA_GPA, 0)), 0);
    assert_memory_equal(f->ram + DATA_GPA, "hello", 5);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x06, .nsid = 1,
                                                        .prp1 = ID_GPA }), 0);
    assert_int_equal(f->ram[ID_GPA + 99], 1);
    assert_int_equal(f->ram[ID_GPA], (1 << 20) / 512 & 0xff);
    assert_int_equal(admin_status(f, (struct nvme_sqe){ .opcode = 0x06, .prp1 = ID_GPA,
                                                        .cdw10 = 1 }), 0);
    assert_memory_equal(f->ram + ID_GPA + 4, "RO-SERIAL-1         ", 20);
}

static void test_bad_device_files(void **state)
{
    struct fixture *f;

    base_setup(state);
    f = *state;
    /* No image and no size to create one. */
    assert_int_equal(make_device(f, NULL, NULL, NULL, NULL), -1);
    assert_int_equal(access(f->img, F_OK), -1);
    assert_int_equal(make_device(f, "size", "1000", NULL, NULL), -1);
    assert_int_equal(make_device(f, "size", "1M", "serial", "123456789012345678901"), -1);
    assert_int_equal(make_device(f, "size", "1M", "serial", "tab\there"), -1);
    assert_null(f->vm.devices);
    /* A file that is a directory. */
    unlink(f->img);
    assert_int_equal(mkdir(f->img, 0755), 0);
    assert_int_equal(make_device(f, "size", "1M", NULL, NULL), -1);
    rmdir(f->img);
    /* Created at the given size; then a second VM cannot open it for writing. */
    assert_int_equal(make_device(f, "size", "2M", NULL, NULL), 0);
    struct stat st;
    assert_int_equal(stat(f->img, &st), 0);
    assert_int_equal(st.st_size, 2 << 20);
    char err[128];
    struct blk_backend *b = blk_backend_open(f->img, 0, false, err, sizeof(err));
    assert_null(b);
    assert_non_null(strstr(err, "in use"));
    attach(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_registers_and_identify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_features_and_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_management_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_write_prp_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_zeroes_deallocate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cq_full_and_phase_wrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shadow_doorbells, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shadow_doorbells_off, setup_noshadow, teardown),
        cmocka_unit_test_setup_teardown(test_intx_and_msix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_and_async_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_with_requests_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_enable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_register_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deep_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_image_truncated_under_us, setup, teardown),
        cmocka_unit_test_teardown(test_read_only_disk, teardown),
        cmocka_unit_test_teardown(test_bad_device_files, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
