/* The NVMe controller proper: BAR0 registers, enable/reset/shutdown, queue
 * bookkeeping, command fetch, completion posting, interrupts and shadow
 * doorbells. Command semantics live in nvme_admin.c and nvme_io.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "blk_backend.h"
#include "memory.h"
#include "nvme.h"
#include "pci.h"
#include "pci_msix.h"

#define NVME_VERSION      0x00010400u
#define CAP_TO_500MS      20                /* CAP.TO: RDY may take up to 10 s */
#define SQ_FETCH_BUDGET   64                /* per queue per round: fairness */
#define MAX_ROUNDS        64                /* then yield to the loop and come back */

static uint64_t cap_value(void)
{
    return NVME_MQES | 1ULL << 16 /* CQR */ | (uint64_t)CAP_TO_500MS << 24 |
           1ULL << 37 /* CSS: NVM command set */;
    /* DSTRD 0 (4-byte doorbell stride), MPSMIN = MPSMAX = 0 (4 KiB pages) */
}

void nvme_warn_once(struct nvme_ctrl *c, enum nvme_warning w, const char *fmt, ...)
{
    va_list ap;

    if (c->warned[w])
        return;
    c->warned[w] = true;
    fprintf(stderr, "vmm: nvme %s: ", c->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (further such messages suppressed)\n", stderr);
}

static void kick(struct nvme_ctrl *c)
{
    uint64_t one = 1;

    if (write(c->kick_fd, &one, sizeof(one)) < 0) {
        /* EAGAIN: the counter is already non-zero, the loop will run */
    }
}

bool nvme_msix_vector_valid(const struct nvme_ctrl *c, uint32_t iv)
{
    (void)c;
    return iv < NVME_MSIX_VECTORS;
}

/* --- interrupts ---------------------------------------------------------- */

static bool msix_on(const struct nvme_ctrl *c)
{
    return c->msix && pci_msix_enabled(c->msix);
}

/* --- shadow doorbells ---------------------------------------------------- */

static uint32_t shadow_load(const uint32_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Publishes an event index, then makes sure the host's next doorbell read
 * is ordered after it (pairs with the mb() in the driver's update). */
static void event_index_store(uint32_t *p, uint32_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static void cq_refresh_head(struct nvme_ctrl *c, struct nvme_cq *cq, unsigned qid)
{
    uint32_t v;

    if (!cq->shadow)
        return;
    v = shadow_load(&c->dbbuf_dbs[2 * qid + 1]);
    if (v < cq->size)
        cq->head = v;
    else
        nvme_warn_once(c, NVME_WARN_DOORBELL_VALUE,
                       "shadow CQ %u head %u is beyond the queue size %u; ignored", qid, v,
                       cq->size);
}

/* Sets the CQ's event index to the head the host last published, so its
 * next head update rings the MMIO doorbell; re-reads in case the head moved
 * while the index was being written. */
static void cq_request_head_doorbell(struct nvme_ctrl *c, struct nvme_cq *cq, unsigned qid)
{
    cq_refresh_head(c, cq, qid);
    for (int i = 0; i < 16; i++) {
        uint32_t head = cq->head;
        event_index_store(&c->dbbuf_eis[2 * qid + 1], head);
        cq_refresh_head(c, cq, qid);
        if (cq->head == head)
            break;
    }
}

/* INTx is a level: up while any interrupt-enabled CQ holds entries the host
 * has not consumed and vector 0 is not masked through INTMS. */
static void update_intx(struct nvme_ctrl *c)
{
    bool level = false;

    if (!c->pdev)
        return;
    if (!msix_on(c) && !(c->intms & 1)) {
        for (unsigned q = 0; q < NVME_NUM_QUEUES && !level; q++) {
            struct nvme_cq *cq = &c->cq[q];
            if (!cq->valid || !cq->ien)
                continue;
            if (cq->shadow && cq->head != cq->tail) {
                /* A level has to fall when the host catches up, so it
                 * must ring the MMIO doorbell on its next head update. */
                cq_request_head_doorbell(c, cq, q);
            }
            level = cq->head != cq->tail;
        }
    }
    if (level != c->intx_level) {
        c->intx_level = level;
        pci_intx_set(c->pdev, level);
    }
}

/* One interrupt per CQ per processing pass, however many entries it got. */
static void flush_irqs(struct nvme_ctrl *c)
{
    bool msix = msix_on(c);

    for (unsigned q = 0; q < NVME_NUM_QUEUES; q++) {
        struct nvme_cq *cq = &c->cq[q];
        if (!cq->valid || !cq->irq_pending)
            continue;
        cq->irq_pending = false;
        if (cq->ien && msix)
            pci_msix_notify(c->msix, cq->iv);
    }
    update_intx(c);
}

void nvme_enable_shadow_doorbells(struct nvme_ctrl *c, uint32_t *dbs, uint32_t *eis)
{
    c->dbbuf_dbs = dbs;
    c->dbbuf_eis = eis;
    /* The admin queue keeps its MMIO doorbells: Linux never shadows them. */
    for (unsigned q = 1; q < NVME_NUM_QUEUES; q++) {
        if (c->sq[q].valid) {
            c->sq[q].shadow = true;
            event_index_store(&eis[2 * q], c->sq[q].head);
        }
        if (c->cq[q].valid) {
            c->cq[q].shadow = true;
            event_index_store(&eis[2 * q + 1], c->cq[q].head);
        }
    }
    if (c->hooks && c->hooks->shadow_doorbells)
        c->hooks->shadow_doorbells(c, true);
}

static void disable_shadow_doorbells(struct nvme_ctrl *c)
{
    if (!c->dbbuf_dbs)
        return;
    c->dbbuf_dbs = c->dbbuf_eis = NULL;
    if (c->hooks && c->hooks->shadow_doorbells)
        c->hooks->shadow_doorbells(c, false);
}

/* --- queues -------------------------------------------------------------- */

int nvme_create_cq(struct nvme_ctrl *c, uint16_t qid, uint64_t base, uint32_t size, bool ien,
                   uint16_t iv)
{
    struct nvme_cq *cq = &c->cq[qid];

    *cq = (struct nvme_cq){ .valid = true, .ien = ien, .iv = iv, .size = size, .base = base,
                            .phase = true };
    if (qid && c->dbbuf_dbs) {
        /* A new queue starts at 0 whatever a previous one left there. */
        cq->shadow = true;
        __atomic_store_n(&c->dbbuf_dbs[2 * qid + 1], 0, __ATOMIC_RELAXED);
        event_index_store(&c->dbbuf_eis[2 * qid + 1], 0);
    }
    return 0;
}

int nvme_create_sq(struct nvme_ctrl *c, uint16_t qid, uint64_t base, uint32_t size, uint16_t cqid)
{
    struct nvme_sq *sq = &c->sq[qid];

    sq->valid = true;
    sq->deleting = false;
    sq->shadow = false;
    sq->cqid = cqid;
    sq->size = size;
    sq->head = 0;
    sq->base = base;
    sq->inflight = 0;
    if (qid)   /* the admin doorbell may already have been rung after enable */
        atomic_store(&sq->mmio_tail, 0);
    c->cq[cqid].n_sq++;
    if (qid && c->dbbuf_dbs) {
        sq->shadow = true;
        __atomic_store_n(&c->dbbuf_dbs[2 * qid], 0, __ATOMIC_RELAXED);
        event_index_store(&c->dbbuf_eis[2 * qid], 0);
    }
    return 0;
}

void nvme_delete_sq(struct nvme_ctrl *c, uint16_t qid)
{
    struct nvme_sq *sq = &c->sq[qid];

    if (!sq->valid)
        return;
    c->cq[sq->cqid].n_sq--;
    sq->valid = sq->deleting = sq->shadow = false;
}

void nvme_delete_cq(struct nvme_ctrl *c, uint16_t qid)
{
    c->cq[qid].valid = false;
    update_intx(c);
}

/* --- completions --------------------------------------------------------- */

void nvme_post_completion(struct nvme_ctrl *c, uint16_t sqid, uint16_t cid, uint16_t status,
                          uint32_t dw0)
{
    struct nvme_sq *sq = &c->sq[sqid];
    struct nvme_cq *cq = &c->cq[sq->cqid];
    uint16_t field = status ? (uint16_t)((status | NVME_STATUS_DNR) << 1) : 0;
    struct nvme_cqe *slot;

    sq->inflight--;
    cq->reserved--;
    /* The queue was checked to lie in RAM when it was created. */
    slot = pci_dma_ptr(c->pdev, c->mem, cq->base + (uint64_t)cq->tail * sizeof(*slot),
                       sizeof(*slot));
    if (slot) {
        uint32_t last = cid | (uint32_t)(field | cq->phase) << 16;
        slot->dw0 = dw0;
        slot->dw1 = 0;
        slot->sq_head = (uint16_t)sq->head;
        slot->sq_id = sqid;
        /* The phase bit makes the entry valid: it goes last. */
        __atomic_store_n((uint32_t *)&slot->cid, last, __ATOMIC_RELEASE);
    }
    if (++cq->tail == cq->size) {
        cq->tail = 0;
        cq->phase = !cq->phase;
    }
    cq->irq_pending = true;
    if (sq->deleting && sq->inflight == 0) {
        uint16_t delete_cid = sq->delete_cid;
        nvme_delete_sq(c, sqid);
        nvme_post_completion(c, 0, delete_cid, NVME_SC_SUCCESS, 0);
    }
}

/* Room for one more command's completion, counting those promised to
 * commands in flight, so a completion never overwrites an unread entry. */
static bool cq_has_room(struct nvme_ctrl *c, struct nvme_cq *cq, unsigned qid)
{
    uint32_t used = (cq->tail + cq->size - cq->head) % cq->size;

    if (used + cq->reserved < cq->size - 1)
        return true;
    if (cq->shadow) {
        cq_request_head_doorbell(c, cq, qid);
        used = (cq->tail + cq->size - cq->head) % cq->size;
        if (used + cq->reserved < cq->size - 1)
            return true;
    }
    cq->stalled = true;
    return false;
}

/* --- command fetch ------------------------------------------------------- */

static bool read_tail(struct nvme_ctrl *c, struct nvme_sq *sq, unsigned qid, uint32_t *tail)
{
    uint32_t v = sq->shadow ? shadow_load(&c->dbbuf_dbs[2 * qid]) : atomic_load(&sq->mmio_tail);

    if (v >= sq->size) {
        nvme_warn_once(c, NVME_WARN_DOORBELL_VALUE,
                       "SQ %u tail %u is beyond the queue size %u; ignored", qid, v, sq->size);
        return false;
    }
    *tail = v;
    return true;
}

static void execute(struct nvme_ctrl *c, uint16_t qid, const struct nvme_sqe *cmd)
{
    uint32_t dw0 = 0;
    uint16_t status;

    if (qid == 0)
        status = nvme_admin_execute(c, cmd, &dw0);
    else
        status = nvme_io_execute(c, qid, cmd);
    if (status != NVME_NO_COMPLETION)
        nvme_post_completion(c, qid, cmd->cid, status, dw0);
}

static bool running(const struct nvme_ctrl *c)
{
    return (c->csts & NVME_CSTS_RDY) && !(c->csts & NVME_CSTS_CFS) && !c->reset_pending;
}

/* Fetches and starts up to budget commands; true if any was. */
static bool process_sq(struct nvme_ctrl *c, uint16_t qid, unsigned budget)
{
    struct nvme_sq *sq = &c->sq[qid];
    unsigned done = 0;
    uint32_t tail;

    while (sq->valid && !sq->deleting && running(c) && read_tail(c, sq, qid, &tail)) {
        struct nvme_cq *cq = &c->cq[sq->cqid];
        while (sq->head != tail && done < budget && sq->valid && !sq->deleting && running(c)) {
            struct nvme_sqe cmd;
            const void *slot;
            if (!cq_has_room(c, cq, sq->cqid))
                return done > 0;
            slot = pci_dma_ptr(c->pdev, c->mem, sq->base + (uint64_t)sq->head * sizeof(cmd),
                                 sizeof(cmd));
            if (!slot) {
                nvme_warn_once(c, NVME_WARN_DMA, "SQ %u entry outside RAM", qid);
                return done > 0;
            }
            memcpy(&cmd, slot, sizeof(cmd));
            if (++sq->head == sq->size)
                sq->head = 0;
            sq->inflight++;
            cq->reserved++;
            done++;
            execute(c, qid, &cmd);
        }
        if (!sq->valid || !sq->shadow || done >= budget)
            break;
        /* Caught up with what we saw: have the host ring on its next tail
         * update, and catch one it made meanwhile. */
        event_index_store(&c->dbbuf_eis[2 * qid], tail);
        if (shadow_load(&c->dbbuf_dbs[2 * qid]) == tail)
            break;
    }
    return done > 0;
}

/* A tail written for a queue that does not exist is dropped here, where
 * the queue table can be read (the doorbell itself takes no lock). */
static void drop_stray_tails(struct nvme_ctrl *c)
{
    for (unsigned q = 1; q < NVME_NUM_QUEUES; q++) {
        if (c->sq[q].valid || atomic_load(&c->sq[q].mmio_tail) == 0)
            continue;
        nvme_warn_once(c, NVME_WARN_DOORBELL_QID, "doorbell for SQ %u, which does not exist", q);
        atomic_store(&c->sq[q].mmio_tail, 0);
    }
}

static void process_queues(struct nvme_ctrl *c)
{
    bool progress = true;

    drop_stray_tails(c);

    for (unsigned round = 0; progress && running(c); round++) {
        if (round == MAX_ROUNDS) {
            kick(c);   /* let the loop serve other devices, then come back */
            return;
        }
        progress = false;
        for (uint16_t q = 0; q < NVME_NUM_QUEUES; q++)
            progress |= process_sq(c, q, SQ_FETCH_BUDGET);
    }
}

/* --- enable, reset, shutdown --------------------------------------------- */

static void reset_features(struct nvme_ctrl *c)
{
    c->nr_io_sq = c->nr_io_cq = NVME_MAX_IO_QUEUES;
    c->feat_arbitration = 0;
    c->feat_power = 0;
    c->feat_temp_over = NVME_WCTEMP;
    c->feat_temp_under = 0;
    c->feat_err_recovery = 0;
    c->feat_irq_coalescing = 0;
    c->feat_write_atomicity = 0;
    c->feat_aec = 0;
    c->vwc_enabled = true;
}

static void try_enable(struct nvme_ctrl *c)
{
    uint32_t cc = c->cc;
    unsigned css = (cc >> 4) & 7, mps = (cc >> 7) & 0xf, ams = (cc >> 11) & 7;
    unsigned iosqes = (cc >> 16) & 0xf, iocqes = (cc >> 20) & 0xf;
    uint32_t asqs = (c->aqa & 0xfff) + 1, acqs = ((c->aqa >> 16) & 0xfff) + 1;
    uint64_t asq = c->asq & ~0xfffULL, acq = c->acq & ~0xfffULL;
    const char *why = NULL;

    if (css != 0)
        why = "CC.CSS is not the NVM command set";
    else if (mps != 0)
        why = "CC.MPS asks for pages other than 4 KiB";
    else if (ams != 0)
        why = "CC.AMS asks for an arbitration other than round robin";
    else if ((iosqes && iosqes != 6) || (iocqes && iocqes != 4))
        why = "CC.IOSQES/IOCQES are not 64/16-byte entries";
    else if (asqs < 2 || acqs < 2)
        why = "AQA gives an admin queue of fewer than 2 entries";
    else if (!pci_dma_ptr(c->pdev, c->mem, asq, asqs * 64ULL) ||
             !pci_dma_ptr(c->pdev, c->mem, acq, acqs * 16ULL))
        why = "the admin queues do not lie in RAM";
    if (why) {
        nvme_warn_once(c, NVME_WARN_BAD_ENABLE, "enable refused: %s (CC=0x%x); controller fatal",
                       why, cc);
        c->csts |= NVME_CSTS_CFS;
        return;
    }
    nvme_create_cq(c, 0, acq, acqs, true, 0);
    nvme_create_sq(c, 0, asq, asqs, 0);
    c->csts = (c->csts & ~NVME_CSTS_SHST_MASK) | NVME_CSTS_RDY;
    kick(c);   /* the admin doorbell may have been rung already */
}

static void finish_reset(struct nvme_ctrl *c)
{
    c->reset_pending = false;
    c->csts &= ~NVME_CSTS_RDY;
    if (c->cc & NVME_CC_EN)
        try_enable(c);
}

/* CC.EN 1 -> 0: every queue goes. Backend requests in flight cannot be
 * recalled; they finish into nothing (their generation is stale), and RDY
 * only drops once the last one has, so the host does not reuse memory a
 * read is still filling. */
static void reset(struct nvme_ctrl *c)
{
    c->generation++;
    for (unsigned q = 0; q < NVME_NUM_QUEUES; q++) {
        c->sq[q].valid = c->sq[q].deleting = c->sq[q].shadow = false;
        c->sq[q].inflight = 0;
        atomic_store(&c->sq[q].mmio_tail, 0);
        c->cq[q] = (struct nvme_cq){ 0 };
    }
    c->n_aer = 0;
    disable_shadow_doorbells(c);
    reset_features(c);
    c->intms = 0;
    c->shutdown = NVME_SHN_NONE;
    c->csts &= ~(NVME_CSTS_CFS | NVME_CSTS_SHST_MASK);
    update_intx(c);
    if (c->io_inflight)
        c->reset_pending = true;
    else
        c->csts &= ~NVME_CSTS_RDY;
}

void nvme_io_request_done(struct nvme_ctrl *c)
{
    c->io_inflight--;
    if (c->reset_pending && c->io_inflight == 0)
        finish_reset(c);
}

struct shutdown_flush {
    struct nvme_ctrl *c;
    uint64_t generation;
};

static void shutdown_flushed(void *opaque, int result)
{
    struct shutdown_flush *f = opaque;
    struct nvme_ctrl *c = f->c;

    if (f->generation == c->generation) {
        if (result < 0)
            nvme_warn_once(c, NVME_WARN_BACKEND, "flush at shutdown failed: %s",
                           strerror(-result));
        c->shutdown = NVME_SHN_NONE;
        c->csts = (c->csts & ~NVME_CSTS_SHST_MASK) | NVME_CSTS_SHST_DONE;
    }
    free(f);
    nvme_io_request_done(c);
}

static void start_shutdown(struct nvme_ctrl *c)
{
    c->csts = (c->csts & ~NVME_CSTS_SHST_MASK) | NVME_CSTS_SHST_BUSY;
    c->shutdown = NVME_SHN_REQUESTED;
    /* Asynchronous Event Requests end here: nothing will be reported. */
    while (c->n_aer)
        nvme_post_completion(c, 0, c->aer_cids[--c->n_aer], NVME_SC_ABORT_REQ, 0);
    flush_irqs(c);
    kick(c);
}

/* Once the commands in flight are done, write the cache back, then report
 * the shutdown complete. */
static void progress_shutdown(struct nvme_ctrl *c)
{
    struct shutdown_flush *f;

    if (c->shutdown != NVME_SHN_REQUESTED || c->io_inflight)
        return;
    f = malloc(sizeof(*f));
    if (f) {
        *f = (struct shutdown_flush){ .c = c, .generation = c->generation };
        if (blk_backend_flush(c->blk, shutdown_flushed, f) == 0) {
            c->io_inflight++;
            c->shutdown = NVME_SHN_FLUSHING;
            return;
        }
        free(f);
    }
    nvme_warn_once(c, NVME_WARN_BACKEND, "cannot flush at shutdown");
    c->shutdown = NVME_SHN_NONE;
    c->csts = (c->csts & ~NVME_CSTS_SHST_MASK) | NVME_CSTS_SHST_DONE;
}

static void write_cc(struct nvme_ctrl *c, uint32_t v)
{
    uint32_t old = c->cc;

    c->cc = v;
    if ((old & NVME_CC_EN) && !(v & NVME_CC_EN)) {
        reset(c);
        return;
    }
    if (!(old & NVME_CC_EN) && (v & NVME_CC_EN)) {
        /* Enabling while a reset still waits for requests: the reset
         * finishes first and enables then (finish_reset). */
        if (!c->reset_pending && !(c->csts & NVME_CSTS_CFS))
            try_enable(c);
    }
    if ((v & NVME_CC_EN) && (v & NVME_CC_SHN_MASK) && !(old & NVME_CC_SHN_MASK) &&
        (c->csts & NVME_CSTS_RDY))
        start_shutdown(c);
    if (!(v & NVME_CC_SHN_MASK) && c->shutdown == NVME_SHN_NONE)
        c->csts &= ~NVME_CSTS_SHST_MASK;
}

/* --- registers ----------------------------------------------------------- */

static uint32_t reg_read32(struct nvme_ctrl *c, uint64_t off)
{
    switch (off) {
    case NVME_REG_CAP:      return (uint32_t)cap_value();
    case NVME_REG_CAP + 4:  return (uint32_t)(cap_value() >> 32);
    case NVME_REG_VS:       return NVME_VERSION;
    case NVME_REG_INTMS:
    case NVME_REG_INTMC:    return c->intms;
    case NVME_REG_CC:       return c->cc;
    case NVME_REG_CSTS:     return c->csts;
    case NVME_REG_AQA:      return c->aqa;
    case NVME_REG_ASQ:      return (uint32_t)c->asq;
    case NVME_REG_ASQ + 4:  return (uint32_t)(c->asq >> 32);
    case NVME_REG_ACQ:      return (uint32_t)c->acq;
    case NVME_REG_ACQ + 4:  return (uint32_t)(c->acq >> 32);
    default:                return 0;   /* NSSR, CMB, BP, PMR: not implemented */
    }
}

static void reg_write32(struct nvme_ctrl *c, uint64_t off, uint32_t v)
{
    switch (off) {
    case NVME_REG_INTMS:
        c->intms |= v;
        update_intx(c);
        break;
    case NVME_REG_INTMC:
        c->intms &= ~v;
        update_intx(c);
        break;
    case NVME_REG_CC:
        write_cc(c, v);
        break;
    case NVME_REG_AQA:
        c->aqa = v & 0x0fff0fff;
        break;
    case NVME_REG_ASQ:      c->asq = (c->asq & ~0xffffffffULL) | (v & ~0xfffu); break;
    case NVME_REG_ASQ + 4:  c->asq = (c->asq & 0xffffffffULL) | (uint64_t)v << 32; break;
    case NVME_REG_ACQ:      c->acq = (c->acq & ~0xffffffffULL) | (v & ~0xfffu); break;
    case NVME_REG_ACQ + 4:  c->acq = (c->acq & 0xffffffffULL) | (uint64_t)v << 32; break;
    default:
        /* CAP, VS, CSTS (NSSRO is never set), NSSR (no subsystem reset),
         * reserved space: read-only or absent. */
        break;
    }
}

static void cq_head_doorbell(struct nvme_ctrl *c, unsigned qid, uint32_t v)
{
    struct nvme_cq *cq = &c->cq[qid];

    if (!cq->valid) {
        /* Linux reaps the admin CQ once more after clearing CC.EN: a
         * doorbell of a disabled controller is simply ignored. */
        if (running(c))
            nvme_warn_once(c, NVME_WARN_DOORBELL_QID, "doorbell for CQ %u, which does not exist",
                           qid);
        return;
    }
    if (v >= cq->size) {
        nvme_warn_once(c, NVME_WARN_DOORBELL_VALUE,
                       "CQ %u head %u is beyond the queue size %u; ignored", qid, v, cq->size);
        return;
    }
    cq->head = v;
    if (cq->stalled) {
        cq->stalled = false;
        kick(c);
    }
    update_intx(c);
}

static void doorbell(struct nvme_ctrl *c, uint64_t offset, void *data, uint32_t len, bool is_write)
{
    uint64_t idx = (offset - NVME_REG_DBS) / 4;
    unsigned qid = (unsigned)(idx / 2);
    uint32_t v;

    if (!is_write) {
        memset(data, 0, len);
        return;
    }
    if (len != 4 || (offset & 3) || qid >= NVME_NUM_QUEUES) {
        pthread_mutex_lock(&c->lock);
        nvme_warn_once(c, NVME_WARN_DOORBELL_QID, "doorbell write of %u bytes at 0x%llx ignored",
                       len, (unsigned long long)offset);
        pthread_mutex_unlock(&c->lock);
        return;
    }
    memcpy(&v, data, 4);
    if (idx & 1) {
        pthread_mutex_lock(&c->lock);
        cq_head_doorbell(c, qid, v);
        pthread_mutex_unlock(&c->lock);
    } else {
        /* No lock: the loop validates the value when it fetches. */
        atomic_store(&c->sq[qid].mmio_tail, v);
        kick(c);
    }
}

void nvme_ctrl_mmio(struct nvme_ctrl *c, uint64_t offset, void *data, uint32_t len, bool is_write)
{
    uint8_t *bytes = data;

    if (offset >= NVME_REG_DBS) {
        doorbell(c, offset, data, len, is_write);
        return;
    }
    pthread_mutex_lock(&c->lock);
    if (!is_write) {
        /* Any size reads: byte i comes from the dword that holds it. */
        for (uint32_t i = 0; i < len; i++) {
            uint64_t at = offset + i;
            bytes[i] = (uint8_t)(reg_read32(c, at & ~3ULL) >> (8 * (at & 3)));
        }
    } else if ((len == 4 || len == 8) && !(offset & (len - 1))) {
        uint32_t lo, hi;
        memcpy(&lo, bytes, 4);
        reg_write32(c, offset, lo);
        if (len == 8) {
            memcpy(&hi, bytes + 4, 4);
            reg_write32(c, offset + 4, hi);
        }
    } else {
        nvme_warn_once(c, NVME_WARN_REG_ACCESS, "register write of %u bytes at 0x%llx ignored",
                       len, (unsigned long long)offset);
    }
    pthread_mutex_unlock(&c->lock);
}

/* --- the event loop's side ----------------------------------------------- */

void nvme_ctrl_process(struct nvme_ctrl *c)
{
    uint64_t ticks;

    pthread_mutex_lock(&c->lock);
    if (read(c->kick_fd, &ticks, sizeof(ticks)) < 0) {
        /* EAGAIN: woken by the backend, not by a doorbell */
    }
    blk_backend_poll(c->blk);
    progress_shutdown(c);
    process_queues(c);
    blk_backend_submit(c->blk);
    flush_irqs(c);
    pthread_mutex_unlock(&c->lock);
}

void nvme_ctrl_wait_and_process(struct nvme_ctrl *c, int timeout_ms)
{
    pthread_mutex_lock(&c->lock);
    blk_backend_submit(c->blk);
    pthread_mutex_unlock(&c->lock);
    blk_backend_wait(c->blk, timeout_ms);
    nvme_ctrl_process(c);
}

static void make_nguid(struct nvme_ctrl *c)
{
    /* Stable per serial, so the guest sees the same disk on every boot. */
    uint64_t h1 = 0xcbf29ce484222325ULL, h2 = 0x84222325cbf29ce4ULL;

    for (const char *s = c->serial; *s; s++) {
        h1 = (h1 ^ (uint8_t)*s) * 0x100000001b3ULL;
        h2 = (h2 ^ (uint8_t)*s) * 0x100000001b3ULL + 0x9e3779b97f4a7c15ULL;
    }
    memcpy(c->nguid, &h1, 8);
    memcpy(c->nguid + 8, &h2, 8);
}

int nvme_ctrl_init(struct nvme_ctrl *c, const struct nvme_ctrl_params *p)
{
    memset(c, 0, sizeof(*c));
    c->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (c->kick_fd < 0)
        return -errno;
    pthread_mutex_init(&c->lock, NULL);
    c->name = p->name;
    c->mem = p->mem;
    c->blk = p->blk;
    c->pdev = p->pdev;
    c->msix = p->msix;
    c->hooks = p->hooks;
    c->hooks_opaque = p->hooks_opaque;
    snprintf(c->serial, sizeof(c->serial), "%s", p->serial);
    c->nsze = blk_backend_size(p->blk) >> NVME_LBA_SHIFT;
    c->read_only = blk_backend_read_only(p->blk);
    c->dbbuf_supported = p->shadow_doorbells;
    clock_gettime(CLOCK_MONOTONIC, &c->created);
    make_nguid(c);
    for (unsigned q = 0; q < NVME_NUM_QUEUES; q++)
        atomic_init(&c->sq[q].mmio_tail, 0);
    reset_features(c);
    return 0;
}

void nvme_ctrl_destroy(struct nvme_ctrl *c)
{
    if (c->kick_fd < 0)
        return;
    pthread_mutex_lock(&c->lock);
    c->cc = 0;   /* nothing re-enables once the last request is in */
    reset(c);
    pthread_mutex_unlock(&c->lock);
    /* Completions of what is still in flight find a stale generation and
     * post nothing. No other thread runs by now. */
    blk_backend_close(c->blk);
    c->blk = NULL;
    close(c->kick_fd);
    c->kick_fd = -1;
    pthread_mutex_destroy(&c->lock);
}
