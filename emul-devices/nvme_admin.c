/* Admin commands: Identify, features, log pages, I/O queue management,
 * asynchronous events, abort and Doorbell Buffer Config. All run on the
 * event loop with the controller lock held and complete at once, except
 * Asynchronous Event Requests (held) and a Delete I/O SQ that waits for its
 * commands in flight. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "memory.h"
#include "nvme.h"
#include "pci.h"

enum {
    ADM_DELETE_SQ = 0x00, ADM_CREATE_SQ = 0x01, ADM_GET_LOG = 0x02, ADM_DELETE_CQ = 0x04,
    ADM_CREATE_CQ = 0x05, ADM_IDENTIFY = 0x06, ADM_ABORT = 0x08, ADM_SET_FEATURES = 0x09,
    ADM_GET_FEATURES = 0x0a, ADM_ASYNC_EVENT = 0x0c, ADM_KEEP_ALIVE = 0x18,
    ADM_DBBUF_CONFIG = 0x7c,
};

enum {
    FEAT_ARBITRATION = 0x01, FEAT_POWER = 0x02, FEAT_TEMP_THRESH = 0x04, FEAT_ERR_RECOVERY = 0x05,
    FEAT_VWC = 0x06, FEAT_NUM_QUEUES = 0x07, FEAT_IRQ_COALESCING = 0x08, FEAT_IRQ_CONFIG = 0x09,
    FEAT_WRITE_ATOMICITY = 0x0a, FEAT_ASYNC_EVENT = 0x0b, FEAT_TIMESTAMP = 0x0e,
};

#define ONCS_DSM           (1u << 2)
#define ONCS_WRITE_ZEROES  (1u << 3)
#define ONCS_TIMESTAMP     (1u << 6)
#define OACS_DBBUF         (1u << 8)
#define IDENTIFY_SIZE      4096
#define NSID_ALL           0xffffffffu

static const char model_name[] = "iovmm NVMe";
static const char firmware_rev[] = "1.0";

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* ASCII fields are padded with spaces, not NULs. */
static void put_str(uint8_t *p, size_t len, const char *s)
{
    size_t n = strlen(s);

    memset(p, ' ', len);
    memcpy(p, s, n < len ? n : len);
}

static void identify_controller(const struct nvme_ctrl *c, uint8_t *id)
{
    char nqn[256];

    put16(id + 0, 0x1b36);                /* VID */
    put16(id + 2, 0x1af4);                /* SSVID */
    put_str(id + 4, 20, c->serial);       /* SN */
    put_str(id + 24, 40, model_name);     /* MN */
    put_str(id + 64, 8, firmware_rev);    /* FR */
    id[72] = 6;                           /* RAB */
    id[77] = NVME_MDTS;
    put16(id + 78, 0);                    /* CNTLID */
    put32(id + 80, 0x00010400);           /* VER */
    put16(id + 256, c->dbbuf_supported ? OACS_DBBUF : 0);
    id[258] = NVME_ACL;
    id[259] = NVME_AERL;
    id[260] = 0x03;                       /* FRMW: one slot, read-only */
    id[261] = 0x04;                       /* LPA: extended data (NUMDU, offsets) */
    id[262] = 0;                          /* ELPE: one error log entry */
    id[263] = 0;                          /* NPSS: one power state */
    put16(id + 266, NVME_WCTEMP);
    put16(id + 268, NVME_CCTEMP);
    id[512] = 0x66;                       /* SQES: 64 bytes */
    id[513] = 0x44;                       /* CQES: 16 bytes */
    put32(id + 516, 1);                   /* NN */
    put16(id + 520, ONCS_DSM | ONCS_WRITE_ZEROES | ONCS_TIMESTAMP);
    id[525] = 0x01;                       /* VWC present */
    put32(id + 536, 0);                   /* SGLS: PRPs only */
    /* Unique per disk, or Linux would merge two of them into one subsystem. */
    snprintf(nqn, sizeof(nqn), "nqn.2024-01.org.iovmm:nvme:%s", c->serial);
    memcpy(id + 768, nqn, strlen(nqn));
    put16(id + 2048, 2500);               /* PSD0: MP 25 W (centiwatts) */
}

static void identify_namespace(const struct nvme_ctrl *c, uint8_t *id, bool common)
{
    uint64_t blocks = common ? 0 : c->nsze;

    put64(id + 0, blocks);                /* NSZE */
    put64(id + 8, blocks);                /* NCAP */
    put64(id + 16, blocks);               /* NUSE */
    id[25] = 0;                           /* NLBAF: one format */
    id[26] = 0;                           /* FLBAS: format 0 */
    /* DLFEAT: deallocated blocks read as zeroes, and Write Zeroes may
     * deallocate. */
    id[33] = 0x01 | 0x08;
    id[99] = c->read_only ? 0x01 : 0;     /* NSATTR: write protected */
    if (!common)
        memcpy(id + 104, c->nguid, 16);   /* NGUID */
    put32(id + 128, NVME_LBA_SHIFT << 16);   /* LBAF0: LBADS 9, no metadata */
}

static void identify_ns_descriptors(const struct nvme_ctrl *c, uint8_t *id)
{
    uint8_t uuid[16];

    /* NGUID, then a UUID derived from it (version 4 / RFC 4122 bits). */
    id[0] = 2;
    id[1] = 16;
    memcpy(id + 4, c->nguid, 16);
    memcpy(uuid, c->nguid, 16);
    uuid[0] ^= 0x5a;
    uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40);
    uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);
    id[20] = 3;
    id[21] = 16;
    memcpy(id + 24, uuid, 16);
}

static uint16_t identify(struct nvme_ctrl *c, const struct nvme_sqe *cmd)
{
    uint8_t id[IDENTIFY_SIZE] = { 0 };
    unsigned cns = cmd->cdw10 & 0xff, csi = cmd->cdw11 >> 24;
    uint32_t nsid = cmd->nsid;

    switch (cns) {
    case 0x00:   /* namespace */
        if (nsid != NVME_NSID && nsid != NSID_ALL)
            return NVME_SC_INVALID_NS;
        identify_namespace(c, id, nsid == NSID_ALL);
        break;
    case 0x01:   /* controller */
        identify_controller(c, id);
        break;
    case 0x02:   /* active namespace IDs above nsid */
        if (nsid >= 0xfffffffe)
            return NVME_SC_INVALID_NS;
        if (nsid < NVME_NSID)
            put32(id, NVME_NSID);
        break;
    case 0x03:   /* namespace identification descriptors */
        if (nsid != NVME_NSID)
            return NVME_SC_INVALID_NS;
        identify_ns_descriptors(c, id);
        break;
    case 0x06:   /* I/O command set specific controller (NVM): no limits */
        if (csi != 0)
            return NVME_SC_INVALID_FIELD;
        break;
    default:
        return NVME_SC_INVALID_FIELD;
    }
    return nvme_copy_to_guest(c, cmd, id, sizeof(id), sizeof(id));
}

/* --- queues -------------------------------------------------------------- */

static bool queue_in_ram(struct nvme_ctrl *c, uint64_t base, uint64_t bytes)
{
    return pci_dma_ptr(c->pdev, c->mem, base, bytes) != NULL;
}

static uint16_t create_cq(struct nvme_ctrl *c, const struct nvme_sqe *cmd)
{
    uint16_t qid = (uint16_t)cmd->cdw10;
    uint32_t size = (cmd->cdw10 >> 16) + 1;
    bool pc = cmd->cdw11 & 1, ien = cmd->cdw11 & 2;
    uint16_t iv = (uint16_t)(cmd->cdw11 >> 16);

    if (qid == 0 || qid > c->nr_io_cq || c->cq[qid].valid)
        return NVME_SC_QID_INVALID;
    if (size < 2 || size > NVME_MQES + 1)
        return NVME_SC_QUEUE_SIZE;
    if (!pc)
        return NVME_SC_INVALID_FIELD;   /* CAP.CQR: queues must be contiguous */
    if (ien && !nvme_msix_vector_valid(c, iv))
        return NVME_SC_INVALID_VECTOR;
    if (cmd->prp1 & (NVME_PAGE_SIZE - 1))
        return NVME_SC_PRP_OFFSET_INVALID;
    if (((c->cc >> 20) & 0xf) != 4)
        return NVME_SC_INVALID_FIELD;   /* CC.IOCQES must say 16 bytes */
    if (!queue_in_ram(c, cmd->prp1, size * 16ULL))
        return NVME_SC_INVALID_FIELD;
    nvme_create_cq(c, qid, cmd->prp1, size, ien, iv);
    return NVME_SC_SUCCESS;
}

static uint16_t create_sq(struct nvme_ctrl *c, const struct nvme_sqe *cmd)
{
    uint16_t qid = (uint16_t)cmd->cdw10, cqid = (uint16_t)(cmd->cdw11 >> 16);
    uint32_t size = (cmd->cdw10 >> 16) + 1;
    bool pc = cmd->cdw11 & 1;

    if (qid == 0 || qid > c->nr_io_sq || c->sq[qid].valid)
        return NVME_SC_QID_INVALID;
    if (cqid == 0 || cqid >= NVME_NUM_QUEUES || !c->cq[cqid].valid)
        return NVME_SC_CQ_INVALID;
    if (size < 2 || size > NVME_MQES + 1)
        return NVME_SC_QUEUE_SIZE;
    if (!pc)
        return NVME_SC_INVALID_FIELD;
    if (cmd->prp1 & (NVME_PAGE_SIZE - 1))
        return NVME_SC_PRP_OFFSET_INVALID;
    if (((c->cc >> 16) & 0xf) != 6)
        return NVME_SC_INVALID_FIELD;   /* CC.IOSQES must say 64 bytes */
    if (!queue_in_ram(c, cmd->prp1, size * 64ULL))
        return NVME_SC_INVALID_FIELD;
    nvme_create_sq(c, qid, cmd->prp1, size, cqid);
    return NVME_SC_SUCCESS;
}

static uint16_t delete_sq(struct nvme_ctrl *c, const struct nvme_sqe *cmd)
{
    uint16_t qid = (uint16_t)cmd->cdw10;
    struct nvme_sq *sq;

    if (qid == 0 || qid >= NVME_NUM_QUEUES || !c->sq[qid].valid || c->sq[qid].deleting)
        return NVME_SC_QID_INVALID;
    sq = &c->sq[qid];
    if (sq->inflight) {
        /* Data may still be landing in the host's buffers: answer once the
         * last command has completed (nvme_post_completion). */
        sq->deleting = true;
        sq->delete_cid = cmd->cid;
        return NVME_NO_COMPLETION;
    }
    nvme_delete_sq(c, qid);
    return NVME_SC_SUCCESS;
}

static uint16_t delete_cq(struct nvme_ctrl *c, const struct nvme_sqe *cmd)
{
    uint16_t qid = (uint16_t)cmd->cdw10;

    if (qid == 0 || qid >= NVME_NUM_QUEUES || !c->cq[qid].valid)
        return NVME_SC_QID_INVALID;
    if (c->cq[qid].n_sq)
        return NVME_SC_INVALID_QUEUE_DELETE;
    nvme_delete_cq(c, qid);
    return NVME_SC_SUCCESS;
}

/* --- features ------------------------------------------------------------ */

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint16_t timestamp_get(struct nvme_ctrl *c, const struct nvme_sqe *cmd)
{
    uint8_t data[8] = { 0 };
    uint64_t ts = (now_ms() + (uint64_t)c->timestamp_offset_ms) & 0xffffffffffffULL;

    memcpy(data, &ts, 6);
    /* Synch 0 (never stopped); origin 1 once the host set it. */
    data[6] = c->timestamp_set ? 0x02 : 0;
    return nvme_copy_to_guest(c, cmd, data, sizeof(data), sizeof(data));
}

static uint16_t timestamp_set(struct nvme_ctrl *c, const struct nvme_sqe *cmd)
{
    uint8_t data[8];
    uint64_t ts = 0;
    uint16_t status = nvme_copy_from_guest(c, cmd, data, sizeof(data));

    if (status)
        return status;
    memcpy(&ts, data, 6);
    c->timestamp_offset_ms = (int64_t)(ts - now_ms());
    c->timestamp_set = true;
    return NVME_SC_SUCCESS;
}

static uint16_t temp_threshold(struct nvme_ctrl *c, uint32_t cdw11, bool set, uint32_t *dw0)
{
    unsigned tmpsel = (cdw11 >> 16) & 0xf, thsel = (cdw11 >> 20) & 3;
    uint32_t *th = thsel == 0 ? &c->feat_temp_over : &c->feat_temp_under;

    /* One sensor: the composite temperature (0), or all of them (0xf). */
    if (thsel > 1 || (tmpsel != 0 && !(set && tmpsel == 0xf)))
        return NVME_SC_INVALID_FIELD;
    if (set)
        *th = cdw11 & 0xffff;
    else
        *dw0 = *th;
    return NVME_SC_SUCCESS;
}

static uint16_t features(struct nvme_ctrl *c, const struct nvme_sqe *cmd, bool set, uint32_t *dw0)
{
    unsigned fid = cmd->cdw10 & 0xff, sel = (cmd->cdw10 >> 8) & 7;
    uint32_t v = cmd->cdw11;
    uint32_t *plain = NULL;

    if (set && (cmd->cdw10 & 0x80000000u))
        return NVME_SC_FEATURE_NOT_SAVEABLE;
    if (!set && sel == 3) {   /* supported capabilities: changeable, not saveable */
        *dw0 = 0x4;
        return NVME_SC_SUCCESS;
    }
    switch (fid) {
    case FEAT_ARBITRATION:     plain = &c->feat_arbitration; break;
    case FEAT_IRQ_COALESCING:  plain = &c->feat_irq_coalescing; v &= 0xffff; break;
    case FEAT_WRITE_ATOMICITY: plain = &c->feat_write_atomicity; v &= 1; break;
    case FEAT_ASYNC_EVENT:     plain = &c->feat_aec; break;
    case FEAT_POWER:
        if (set && (v & 0x1f) != 0)
            return NVME_SC_INVALID_FIELD;   /* only power state 0 exists */
        plain = &c->feat_power;
        v &= 0xff;
        break;
    case FEAT_ERR_RECOVERY:
        if (set && (v & 0x10000))
            return NVME_SC_INVALID_FIELD;   /* DULBE: no deallocated-block errors */
        plain = &c->feat_err_recovery;
        break;
    case FEAT_TEMP_THRESH:
        return temp_threshold(c, v, set, dw0);
    case FEAT_VWC:
        if (set)
            c->vwc_enabled = v & 1;
        *dw0 = c->vwc_enabled;
        return NVME_SC_SUCCESS;
    case FEAT_NUM_QUEUES:
        if (set) {
            uint32_t nsq = (v & 0xffff) + 1, ncq = (v >> 16) + 1;
            bool any_io = false;
            for (unsigned q = 1; q < NVME_NUM_QUEUES; q++)
                any_io |= c->sq[q].valid || c->cq[q].valid;
            if ((v & 0xffff) == 0xffff || (v >> 16) == 0xffff)
                return NVME_SC_INVALID_FIELD;
            if (any_io)
                return NVME_SC_CMD_SEQ_ERROR;
            c->nr_io_sq = (uint16_t)(nsq < NVME_MAX_IO_QUEUES ? nsq : NVME_MAX_IO_QUEUES);
            c->nr_io_cq = (uint16_t)(ncq < NVME_MAX_IO_QUEUES ? ncq : NVME_MAX_IO_QUEUES);
        }
        *dw0 = (uint32_t)(c->nr_io_sq - 1) | (uint32_t)(c->nr_io_cq - 1) << 16;
        return NVME_SC_SUCCESS;
    case FEAT_IRQ_CONFIG:
        if (!nvme_msix_vector_valid(c, v & 0xffff))
            return NVME_SC_INVALID_FIELD;
        *dw0 = v & 0xffff;   /* coalescing is never applied, CD reads 0 */
        return NVME_SC_SUCCESS;
    case FEAT_TIMESTAMP:
        return set ? timestamp_set(c, cmd) : timestamp_get(c, cmd);
    default:
        return NVME_SC_INVALID_FIELD;
    }
    if (set)
        *plain = v;
    *dw0 = *plain;
    return NVME_SC_SUCCESS;
}

/* --- log pages ----------------------------------------------------------- */

/* Counts in units of 1000 512-byte blocks, rounded up (SMART). */
static void put_data_units(uint8_t *p, uint64_t bytes)
{
    put64(p, (bytes / 512 + 999) / 1000);
}

static size_t build_log(struct nvme_ctrl *c, unsigned lid, uint8_t *log)
{
    struct timespec now;

    switch (lid) {
    case 0x01:   /* error information: no errors recorded */
        return 64;
    case 0x02:   /* SMART / health */
        clock_gettime(CLOCK_MONOTONIC, &now);
        put16(log + 1, NVME_TEMPERATURE);
        log[3] = 100;                      /* available spare */
        log[4] = 10;                       /* threshold */
        put_data_units(log + 32, c->smart.read_bytes);
        put_data_units(log + 48, c->smart.write_bytes);
        put64(log + 64, c->smart.read_cmds);
        put64(log + 80, c->smart.write_cmds);
        put64(log + 112, 1);               /* power cycles */
        put64(log + 128, (uint64_t)(now.tv_sec - c->created.tv_sec) / 3600);
        return 512;
    case 0x03:   /* firmware slot information */
        log[0] = 1;                        /* slot 1 active */
        put_str(log + 8, 8, firmware_rev);
        return 512;
    default:
        return 0;
    }
}

static uint16_t get_log_page(struct nvme_ctrl *c, const struct nvme_sqe *cmd)
{
    uint8_t log[512] = { 0 };
    unsigned lid = cmd->cdw10 & 0xff;
    uint64_t numd = ((uint64_t)(cmd->cdw11 & 0xffff) << 16 | cmd->cdw10 >> 16) + 1;
    uint64_t len = numd * 4, offset = (uint64_t)cmd->cdw13 << 32 | cmd->cdw12;
    size_t size = build_log(c, lid, log);

    if (!size)
        return NVME_SC_INVALID_LOG_PAGE;
    if (cmd->nsid != 0 && cmd->nsid != NSID_ALL && cmd->nsid != NVME_NSID)
        return NVME_SC_INVALID_NS;
    if ((offset & 3) || offset > size || len > NVME_MAX_XFER)
        return NVME_SC_INVALID_FIELD;
    /* Beyond the end of the log the host reads zeroes. */
    return nvme_copy_to_guest(c, cmd, log + offset,
                              (uint32_t)(len < size - offset ? len : size - offset),
                              (uint32_t)len);
}

/* --- the rest ------------------------------------------------------------ */

static uint16_t async_event_request(struct nvme_ctrl *c, const struct nvme_sqe *cmd)
{
    if (c->n_aer > NVME_AERL)
        return NVME_SC_AER_LIMIT;
    /* Nothing is ever reported: held until shutdown or reset. */
    c->aer_cids[c->n_aer++] = cmd->cid;
    return NVME_NO_COMPLETION;
}

static uint16_t dbbuf_config(struct nvme_ctrl *c, const struct nvme_sqe *cmd)
{
    uint32_t *dbs, *eis;

    if (!c->dbbuf_supported)
        return NVME_SC_INVALID_OPCODE;
    if ((cmd->prp1 | cmd->prp2) & (NVME_PAGE_SIZE - 1))
        return NVME_SC_INVALID_FIELD;
    dbs = pci_dma_ptr(c->pdev, c->mem, cmd->prp1, NVME_PAGE_SIZE);
    eis = pci_dma_ptr(c->pdev, c->mem, cmd->prp2, NVME_PAGE_SIZE);
    if (!dbs || !eis)
        return NVME_SC_INVALID_FIELD;
    nvme_enable_shadow_doorbells(c, dbs, eis);
    return NVME_SC_SUCCESS;
}

uint16_t nvme_admin_execute(struct nvme_ctrl *c, const struct nvme_sqe *cmd, uint32_t *dw0)
{
    if (cmd->flags & 0xc3) {   /* fused operations, SGLs */
        nvme_warn_once(c, NVME_WARN_BAD_COMMAND, "admin command with FUSE/PSDT bits 0x%x",
                       cmd->flags);
        return NVME_SC_INVALID_FIELD;
    }
    switch (cmd->opcode) {
    case ADM_IDENTIFY:      return identify(c, cmd);
    case ADM_CREATE_CQ:     return create_cq(c, cmd);
    case ADM_CREATE_SQ:     return create_sq(c, cmd);
    case ADM_DELETE_SQ:     return delete_sq(c, cmd);
    case ADM_DELETE_CQ:     return delete_cq(c, cmd);
    case ADM_GET_FEATURES:  return features(c, cmd, false, dw0);
    case ADM_SET_FEATURES:  return features(c, cmd, true, dw0);
    case ADM_GET_LOG:       return get_log_page(c, cmd);
    case ADM_ASYNC_EVENT:   return async_event_request(c, cmd);
    case ADM_ABORT:
        *dw0 = 1;   /* bit 0: the command was not aborted */
        return NVME_SC_SUCCESS;
    case ADM_KEEP_ALIVE:    return NVME_SC_SUCCESS;
    case ADM_DBBUF_CONFIG:  return dbbuf_config(c, cmd);
    default:
        nvme_warn_once(c, NVME_WARN_BAD_COMMAND, "unsupported admin opcode 0x%02x",
                       cmd->opcode);
        return NVME_SC_INVALID_OPCODE;
    }
}
