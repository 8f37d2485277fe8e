/* An NVMe 1.4 controller with one namespace of 512-byte blocks, served by an
 * io_uring block backend. Split by concern: nvme.c (registers, queues,
 * doorbells, shadow doorbells, interrupts, reset), nvme_admin.c (admin
 * commands), nvme_io.c (PRPs and I/O commands), nvme_device.c (PCI and
 * config glue).
 *
 * Threads: vCPUs reach the registers through BAR0; everything that touches a
 * queue or the backend runs on the event-loop thread (or a unit test driving
 * nvme_ctrl_process). One mutex guards the controller; a submission doorbell
 * takes no lock at all: it records the tail and kicks the loop. */
#ifndef EMUL_NVME_H
#define EMUL_NVME_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

struct guest_mem;
struct blk_backend;
struct pci_device;
struct pci_msix;

/* Geometry of what the controller offers. */
#define NVME_MAX_IO_QUEUES   64
#define NVME_NUM_QUEUES      (NVME_MAX_IO_QUEUES + 1)      /* with the admin queue */
#define NVME_MSIX_VECTORS    NVME_NUM_QUEUES               /* one per completion queue */
#define NVME_MQES            1023                          /* 0-based: 1024 entries */
#define NVME_PAGE_SHIFT      12
#define NVME_PAGE_SIZE       (1u << NVME_PAGE_SHIFT)
#define NVME_MDTS            7                             /* 2^7 pages: 512 KiB */
#define NVME_MAX_XFER        (NVME_PAGE_SIZE << NVME_MDTS)
#define NVME_MAX_IOV         (NVME_MAX_XFER / NVME_PAGE_SIZE + 1)
#define NVME_LBA_SHIFT       9
#define NVME_AERL            3                             /* 0-based: 4 outstanding */
#define NVME_ACL             3
#define NVME_NSID            1
#define NVME_WCTEMP          343                           /* kelvin: warning threshold */
#define NVME_CCTEMP          373
#define NVME_TEMPERATURE     313                           /* what SMART reports */

/* BAR0 layout. */
#define NVME_BAR0_SIZE       0x4000
#define NVME_REG_CAP         0x00
#define NVME_REG_VS          0x08
#define NVME_REG_INTMS       0x0c
#define NVME_REG_INTMC       0x10
#define NVME_REG_CC          0x14
#define NVME_REG_CSTS        0x1c
#define NVME_REG_AQA         0x24
#define NVME_REG_ASQ         0x28
#define NVME_REG_ACQ         0x30
#define NVME_REG_DBS         0x1000
#define NVME_MSIX_TABLE      0x2000
#define NVME_MSIX_PBA        0x3000

#define NVME_CC_EN           0x1u
#define NVME_CC_SHN_MASK     (3u << 14)
#define NVME_CSTS_RDY        0x1u
#define NVME_CSTS_CFS        0x2u
#define NVME_CSTS_SHST_MASK  (3u << 2)
#define NVME_CSTS_SHST_BUSY  (1u << 2)
#define NVME_CSTS_SHST_DONE  (2u << 2)

/* Status: status code type in bits 10:8, status code in 7:0 (the CQE's
 * status field without phase, before DNR is added). */
#define NVME_SCT(sct, sc)    ((uint16_t)(((sct) << 8) | (sc)))
enum {
    NVME_SC_SUCCESS               = 0x00,
    NVME_SC_INVALID_OPCODE        = 0x01,
    NVME_SC_INVALID_FIELD         = 0x02,
    NVME_SC_DATA_XFER_ERROR       = 0x04,
    NVME_SC_INTERNAL              = 0x06,
    NVME_SC_ABORT_REQ             = 0x07,
    NVME_SC_INVALID_NS            = 0x0b,
    NVME_SC_CMD_SEQ_ERROR         = 0x0c,
    NVME_SC_PRP_OFFSET_INVALID    = 0x13,
    NVME_SC_NS_WRITE_PROTECTED    = 0x20,
    NVME_SC_LBA_RANGE             = 0x80,
    NVME_SC_CAP_EXCEEDED          = 0x81,
    NVME_SC_CQ_INVALID            = 0x100,
    NVME_SC_QID_INVALID           = 0x101,
    NVME_SC_QUEUE_SIZE            = 0x102,
    NVME_SC_AER_LIMIT             = 0x105,
    NVME_SC_INVALID_VECTOR        = 0x108,
    NVME_SC_INVALID_LOG_PAGE      = 0x109,
    NVME_SC_INVALID_QUEUE_DELETE  = 0x10c,
    NVME_SC_FEATURE_NOT_SAVEABLE  = 0x10d,
    NVME_SC_WRITE_FAULT           = 0x280,
    NVME_SC_READ_ERROR            = 0x281,
};
#define NVME_STATUS_DNR      0x4000u
/* Returned by a command handler that will complete the command later. */
#define NVME_NO_COMPLETION   0xffffu

struct nvme_sqe {
    uint8_t opcode;
    uint8_t flags;           /* FUSE 1:0, PSDT 7:6 */
    uint16_t cid;
    uint32_t nsid;
    uint32_t cdw2, cdw3;
    uint64_t mptr;
    uint64_t prp1, prp2;
    uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};

struct nvme_cqe {
    uint32_t dw0, dw1;
    uint16_t sq_head, sq_id;
    uint16_t cid;
    uint16_t status;         /* phase in bit 0 */
};

struct nvme_sq {
    bool valid;
    bool deleting;           /* Delete SQ waits for its commands in flight */
    bool shadow;             /* tail comes from the shadow doorbell buffer */
    uint16_t cqid;
    uint16_t delete_cid;     /* the admin command to complete once drained */
    uint32_t size;
    uint32_t head;
    uint64_t base;
    unsigned inflight;       /* fetched, not yet completed */
    atomic_uint mmio_tail;   /* last value written to the doorbell */
};

struct nvme_cq {
    bool valid;
    bool ien;
    bool phase;
    bool shadow;
    bool irq_pending;        /* posted since the last interrupt */
    bool stalled;            /* a command waits for room: head doorbell kicks */
    uint16_t iv;
    uint32_t size;
    uint32_t head, tail;
    uint64_t base;
    unsigned reserved;       /* slots promised to commands in flight */
    unsigned n_sq;           /* submission queues posting here */
};

/* Counters for the SMART log. */
struct nvme_smart_counters {
    uint64_t read_bytes, write_bytes, read_cmds, write_cmds;
};

enum nvme_warning {
    NVME_WARN_REG_ACCESS,
    NVME_WARN_BAD_ENABLE,
    NVME_WARN_DOORBELL_QID,
    NVME_WARN_DOORBELL_VALUE,
    NVME_WARN_BAD_COMMAND,
    NVME_WARN_DMA,
    NVME_WARN_BACKEND,
    NVME_WARN_COUNT,
};

struct nvme_ctrl;

/* Hooks into the device glue. */
struct nvme_ctrl_hooks {
    /* Shadow doorbells were turned on or off: move the tail doorbells onto
     * ioeventfds or back to trapping. Called with the controller lock held. */
    void (*shadow_doorbells)(struct nvme_ctrl *c, bool on);
};

struct nvme_ctrl {
    pthread_mutex_t lock;
    const char *name;                   /* device id, for messages */
    struct guest_mem *mem;
    struct blk_backend *blk;
    struct pci_device *pdev;            /* INTx; NULL: no interrupts */
    struct pci_msix *msix;
    const struct nvme_ctrl_hooks *hooks;
    void *hooks_opaque;
    int kick_fd;                        /* eventfd: doorbells wake the loop */

    /* Identity and namespace. */
    char serial[21];
    uint64_t nsze;                      /* blocks */
    bool read_only;
    bool dbbuf_supported;               /* offered in OACS (device file switch) */
    uint8_t nguid[16];
    struct timespec created;

    /* Registers. */
    uint32_t cc, csts, aqa, intms;
    uint64_t asq, acq;

    struct nvme_sq sq[NVME_NUM_QUEUES];
    struct nvme_cq cq[NVME_NUM_QUEUES];
    uint16_t nr_io_sq, nr_io_cq;        /* Number of Queues feature */

    /* Shadow doorbell and event index buffers (host pointers into RAM). */
    uint32_t *dbbuf_dbs, *dbbuf_eis;

    /* Features. */
    uint32_t feat_arbitration, feat_power, feat_temp_over, feat_temp_under, feat_err_recovery,
             feat_irq_coalescing, feat_write_atomicity, feat_aec;
    bool vwc_enabled;
    int64_t timestamp_offset_ms;
    bool timestamp_set;

    uint16_t aer_cids[NVME_AERL + 1];
    unsigned n_aer;

    /* Lifecycle. */
    uint64_t generation;                /* bumped by every reset */
    unsigned io_inflight;               /* backend requests not yet completed */
    bool reset_pending;                 /* RDY drops once io_inflight is 0 */
    enum { NVME_SHN_NONE, NVME_SHN_REQUESTED, NVME_SHN_FLUSHING } shutdown;
    bool intx_level;

    struct nvme_smart_counters smart;
    bool warned[NVME_WARN_COUNT];
};

struct nvme_ctrl_params {
    const char *name;
    struct guest_mem *mem;
    struct blk_backend *blk;
    struct pci_device *pdev;
    struct pci_msix *msix;
    const char *serial;
    bool shadow_doorbells;
    const struct nvme_ctrl_hooks *hooks;
    void *hooks_opaque;
};

/* nvme.c: the controller. */
int nvme_ctrl_init(struct nvme_ctrl *c, const struct nvme_ctrl_params *p);
/* Waits for backend requests in flight, then releases everything. */
void nvme_ctrl_destroy(struct nvme_ctrl *c);
/* BAR0 access from a vCPU (offsets below the MSI-X table). */
void nvme_ctrl_mmio(struct nvme_ctrl *c, uint64_t offset, void *data, uint32_t len, bool is_write);
/* Event-loop work: backend completions, doorbells, shutdown; then
 * interrupts. Never blocks. */
void nvme_ctrl_process(struct nvme_ctrl *c);
/* For tests: waits up to timeout_ms for a backend completion, then
 * processes. */
void nvme_ctrl_wait_and_process(struct nvme_ctrl *c, int timeout_ms);

/* Shared between the command files (controller lock held). */
void nvme_warn_once(struct nvme_ctrl *c, enum nvme_warning w, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Posts the completion of command cid fetched from sqid. */
void nvme_post_completion(struct nvme_ctrl *c, uint16_t sqid, uint16_t cid, uint16_t status,
                          uint32_t dw0);
/* A backend request of the current generation ended. */
void nvme_io_request_done(struct nvme_ctrl *c);
int nvme_create_cq(struct nvme_ctrl *c, uint16_t qid, uint64_t base, uint32_t size, bool ien,
                   uint16_t iv);
int nvme_create_sq(struct nvme_ctrl *c, uint16_t qid, uint64_t base, uint32_t size, uint16_t cqid);
void nvme_delete_sq(struct nvme_ctrl *c, uint16_t qid);
void nvme_delete_cq(struct nvme_ctrl *c, uint16_t qid);
/* Doorbell Buffer Config: buffers already validated. */
void nvme_enable_shadow_doorbells(struct nvme_ctrl *c, uint32_t *dbs, uint32_t *eis);
bool nvme_msix_vector_valid(const struct nvme_ctrl *c, uint32_t iv);

/* nvme_admin.c */
uint16_t nvme_admin_execute(struct nvme_ctrl *c, const struct nvme_sqe *cmd, uint32_t *dw0);

/* nvme_io.c */
uint16_t nvme_io_execute(struct nvme_ctrl *c, uint16_t sqid, const struct nvme_sqe *cmd);
/* Maps the PRP1/PRP2 (and lists) of a len-byte transfer to host iovecs. */
uint16_t nvme_map_prps(struct nvme_ctrl *c, uint64_t prp1, uint64_t prp2, uint64_t len,
                       struct iovec *iov, unsigned max_iov, unsigned *niov);
/* Copies between a buffer and the guest pages a command's PRPs name; a
 * transfer of xfer_len bytes to the guest is zero-filled past len. */
uint16_t nvme_copy_to_guest(struct nvme_ctrl *c, const struct nvme_sqe *cmd, const void *buf,
                            uint32_t len, uint32_t xfer_len);
uint16_t nvme_copy_from_guest(struct nvme_ctrl *c, const struct nvme_sqe *cmd, void *buf,
                              uint32_t len);

#endif
