/* NVMe controller: shadow doorbells (on and off), INTx and MSI-X. */
#include "nvme_fixture.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_shadow_doorbells, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shadow_doorbells_off, setup_noshadow, teardown),
        cmocka_unit_test_setup_teardown(test_intx_and_msix, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
