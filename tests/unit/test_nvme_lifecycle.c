/* NVMe controller lifecycle and robustness: reset with requests in flight,
 * bad enables, random register writes, read-only disks and bad device
 * files. */
#include "nvme_fixture.h"

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
    /* vhost-user-blk's way in: it waits a little for the lock, then gives
     * up with the same cause, for writing and for reading alike. */
    int fd = open(f->img, O_RDWR);
    assert_true(fd >= 0);
    err[0] = 0;
    assert_int_equal(blk_image_claim(fd, false, false, 200, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "in use"));
    err[0] = 0;
    assert_int_equal(blk_image_claim(fd, true, false, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "in use"));
    close(fd);
    attach(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reset_with_requests_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_enable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_register_writes, setup, teardown),
        cmocka_unit_test_teardown(test_read_only_disk, teardown),
        cmocka_unit_test_teardown(test_bad_device_files, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
