/* NVMe controller, admin side: registers and Identify, features and log
 * pages, queue management errors, shutdown and asynchronous events. */
#include "nvme_fixture.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_registers_and_identify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_features_and_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_management_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_and_async_events, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
