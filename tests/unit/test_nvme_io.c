/* NVMe controller, I/O path: every PRP shape, error statuses, flush / write
 * zeroes / deallocate, CQ-full handling and phase wrap, a deep queue, and an
 * image truncated under the VMM. */
#include "nvme_fixture.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_write_prp_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_zeroes_deallocate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cq_full_and_phase_wrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deep_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_image_truncated_under_us, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
