/* vhost_user.h: the vhost-user protocol, shared by the VMM's frontend and our backends.
 *
 * One message table (VHOST_USER_MESSAGES) gives the request enum, the names in
 * logs, and the payload shape and fd count each message may carry, in both
 * directions. vhost_user_recv() checks every received message against it, so
 * a handler only ever sees a message whose size and fd count are already right.
 * Each side builds its dispatch array with designated initializers indexed by
 * the enum (a NULL slot means "not supported here").
 *
 * Wire format per the vhost-user spec: a 12-byte header (request, flags, size)
 * followed by `size` payload bytes; fds travel as SCM_RIGHTS with the header.
 */
#ifndef VHOST_USER_H
#define VHOST_USER_H

#include <stddef.h>
#include <stdint.h>

/* Payload shapes. Fixed sizes are checked exactly; MEM, CONFIG and ANY are
 * variable and checked by vhost_user_validate(). */
enum vhost_user_payload_kind {
    VU_P_NONE,      /* size 0 */
    VU_P_U64,       /* u64: features, ack, vring index for KICK/CALL/ERR */
    VU_P_STATE,     /* struct vhost_user_vring_state */
    VU_P_ADDR,      /* struct vhost_user_vring_addr */
    VU_P_MEM,       /* struct vhost_user_memory: 8 + nregions * 32, one fd per region */
    VU_P_LOG,       /* struct vhost_user_log */
    VU_P_IOTLB,     /* struct vhost_user_iotlb */
    VU_P_CONFIG,    /* struct vhost_user_config: 12 + size (size <= 256) */
    VU_P_INFLIGHT,  /* struct vhost_user_inflight */
    VU_P_REGION,    /* struct vhost_user_mem_reg (single region, ADD/REM_MEM_REG) */
    VU_P_ANY,       /* not interpreted here: any size up to the payload union */
};

/* X(name, request value, request payload, max fds with the request,
 *   reply payload, fds with the reply).
 * Reply payload VU_P_NONE means "no reply of its own": with REPLY_ACK and
 * NEED_REPLY the backend then answers with a u64 (0 = success). */
#define VHOST_USER_MESSAGES(X) \
    X(GET_FEATURES,          1, VU_P_NONE,     0, VU_P_U64,      0) \
    X(SET_FEATURES,          2, VU_P_U64,      0, VU_P_NONE,     0) \
    X(SET_OWNER,             3, VU_P_NONE,     0, VU_P_NONE,     0) \
    X(RESET_OWNER,           4, VU_P_NONE,     0, VU_P_NONE,     0) \
    X(SET_MEM_TABLE,         5, VU_P_MEM,      8, VU_P_NONE,     0) \
    X(SET_LOG_BASE,          6, VU_P_LOG,      1, VU_P_U64,      0) \
    X(SET_LOG_FD,            7, VU_P_NONE,     1, VU_P_NONE,     0) \
    X(SET_VRING_NUM,         8, VU_P_STATE,    0, VU_P_NONE,     0) \
    X(SET_VRING_ADDR,        9, VU_P_ADDR,     0, VU_P_NONE,     0) \
    X(SET_VRING_BASE,       10, VU_P_STATE,    0, VU_P_NONE,     0) \
    X(GET_VRING_BASE,       11, VU_P_STATE,    0, VU_P_STATE,    0) \
    X(SET_VRING_KICK,       12, VU_P_U64,      1, VU_P_NONE,     0) \
    X(SET_VRING_CALL,       13, VU_P_U64,      1, VU_P_NONE,     0) \
    X(SET_VRING_ERR,        14, VU_P_U64,      1, VU_P_NONE,     0) \
    X(GET_PROTOCOL_FEATURES,15, VU_P_NONE,     0, VU_P_U64,      0) \
    X(SET_PROTOCOL_FEATURES,16, VU_P_U64,      0, VU_P_NONE,     0) \
    X(GET_QUEUE_NUM,        17, VU_P_NONE,     0, VU_P_U64,      0) \
    X(SET_VRING_ENABLE,     18, VU_P_STATE,    0, VU_P_NONE,     0) \
    X(SEND_RARP,            19, VU_P_U64,      0, VU_P_NONE,     0) \
    X(NET_SET_MTU,          20, VU_P_U64,      0, VU_P_NONE,     0) \
    X(SET_BACKEND_REQ_FD,   21, VU_P_NONE,     1, VU_P_NONE,     0) \
    X(IOTLB_MSG,            22, VU_P_IOTLB,    0, VU_P_NONE,     0) \
    X(SET_VRING_ENDIAN,     23, VU_P_STATE,    0, VU_P_NONE,     0) \
    X(GET_CONFIG,           24, VU_P_CONFIG,   0, VU_P_CONFIG,   0) \
    X(SET_CONFIG,           25, VU_P_CONFIG,   0, VU_P_NONE,     0) \
    X(CREATE_CRYPTO_SESSION,26, VU_P_ANY,      0, VU_P_ANY,      0) \
    X(CLOSE_CRYPTO_SESSION, 27, VU_P_U64,      0, VU_P_NONE,     0) \
    X(POSTCOPY_ADVISE,      28, VU_P_NONE,     0, VU_P_NONE,     1) \
    X(POSTCOPY_LISTEN,      29, VU_P_NONE,     0, VU_P_NONE,     0) \
    X(POSTCOPY_END,         30, VU_P_NONE,     0, VU_P_U64,      0) \
    X(GET_INFLIGHT_FD,      31, VU_P_INFLIGHT, 0, VU_P_INFLIGHT, 1) \
    X(SET_INFLIGHT_FD,      32, VU_P_INFLIGHT, 1, VU_P_NONE,     0) \
    X(GPU_SET_SOCKET,       33, VU_P_NONE,     1, VU_P_NONE,     0) \
    X(RESET_DEVICE,         34, VU_P_NONE,     0, VU_P_NONE,     0) \
    X(VRING_KICK,           35, VU_P_STATE,    0, VU_P_NONE,     0) \
    X(GET_MAX_MEM_SLOTS,    36, VU_P_NONE,     0, VU_P_U64,      0) \
    X(ADD_MEM_REG,          37, VU_P_REGION,   1, VU_P_NONE,     0) \
    X(REM_MEM_REG,          38, VU_P_REGION,   1, VU_P_NONE,     0) \
    X(SET_STATUS,           39, VU_P_U64,      0, VU_P_NONE,     0) \
    X(GET_STATUS,           40, VU_P_NONE,     0, VU_P_U64,      0) \
    X(GET_SHARED_OBJECT,    41, VU_P_ANY,      0, VU_P_ANY,      1) \
    X(SET_DEVICE_STATE_FD,  42, VU_P_ANY,      1, VU_P_U64,      0) \
    X(CHECK_DEVICE_STATE,   43, VU_P_NONE,     0, VU_P_U64,      0)

enum vhost_user_request {
    VHOST_USER_NONE = 0,
#define VU_ENUM_(name, value, ...) VHOST_USER_##name = value,
    VHOST_USER_MESSAGES(VU_ENUM_)
#undef VU_ENUM_
    VHOST_USER_REQ_MAX /* one past the largest request: size of dispatch arrays */
};

/* Header flags */
#define VHOST_USER_VERSION          0x1u
#define VHOST_USER_VERSION_MASK     0x3u
#define VHOST_USER_REPLY            0x4u
#define VHOST_USER_NEED_REPLY       0x8u

/* Feature bit in GET/SET_FEATURES that enables the protocol features. */
#define VHOST_USER_F_PROTOCOL_FEATURES 30

/* Protocol feature bits (GET/SET_PROTOCOL_FEATURES). */
#define VHOST_USER_PROTOCOL_F_MQ                    0
#define VHOST_USER_PROTOCOL_F_LOG_SHMFD             1
#define VHOST_USER_PROTOCOL_F_RARP                  2
#define VHOST_USER_PROTOCOL_F_REPLY_ACK             3
#define VHOST_USER_PROTOCOL_F_NET_MTU               4
#define VHOST_USER_PROTOCOL_F_BACKEND_REQ           5
#define VHOST_USER_PROTOCOL_F_CROSS_ENDIAN          6
#define VHOST_USER_PROTOCOL_F_CRYPTO_SESSION        7
#define VHOST_USER_PROTOCOL_F_PAGEFAULT             8
#define VHOST_USER_PROTOCOL_F_CONFIG                9
#define VHOST_USER_PROTOCOL_F_BACKEND_SEND_FD      10
#define VHOST_USER_PROTOCOL_F_HOST_NOTIFIER        11
#define VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD       12
#define VHOST_USER_PROTOCOL_F_RESET_DEVICE         13
#define VHOST_USER_PROTOCOL_F_INBAND_NOTIFICATIONS 14
#define VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS  15
#define VHOST_USER_PROTOCOL_F_STATUS               16
#define VHOST_USER_PROTOCOL_F_XEN_MMAP             17
#define VHOST_USER_PROTOCOL_F_SHARED_OBJECT        18
#define VHOST_USER_PROTOCOL_F_DEVICE_STATE         19

/* SET_VRING_KICK/CALL/ERR payload: bits 0-7 the vring index, bit 8 "no fd"
 * (polling mode / notifications off); other bits must be zero. */
#define VHOST_USER_VRING_IDX_MASK   0xffu
#define VHOST_USER_VRING_NOFD_MASK  0x100u

#define VHOST_USER_MAX_FDS          8   /* per message, as in the spec's reference frontend */
#define VHOST_USER_MAX_REGIONS      8   /* regions in one SET_MEM_TABLE */
#define VHOST_USER_MAX_CONFIG_SIZE  256

struct vhost_user_hdr {
    uint32_t request;
    uint32_t flags;
    uint32_t size;  /* payload bytes that follow */
};

struct vhost_user_vring_state {
    uint32_t index;
    uint32_t num;
};

/* flags bit 0 (VHOST_VRING_F_LOG) asks for logging of used ring writes */
struct vhost_user_vring_addr {
    uint32_t index;
    uint32_t flags;
    uint64_t desc_user_addr;   /* frontend virtual addresses (translated */
    uint64_t used_user_addr;   /*  with the userspace_addr of the regions) */
    uint64_t avail_user_addr;
    uint64_t log_guest_addr;
};

struct vhost_user_mem_region {
    uint64_t guest_phys_addr;
    uint64_t memory_size;
    uint64_t userspace_addr;
    uint64_t mmap_offset;      /* offset of the region in its fd */
};

struct vhost_user_memory {
    uint32_t nregions;
    uint32_t padding;
    struct vhost_user_mem_region regions[VHOST_USER_MAX_REGIONS];
};

struct vhost_user_mem_reg {     /* ADD_MEM_REG / REM_MEM_REG */
    uint64_t padding;
    struct vhost_user_mem_region region;
};

struct vhost_user_log {
    uint64_t mmap_size;
    uint64_t mmap_offset;
};

struct vhost_user_iotlb {
    uint64_t iova;
    uint64_t size;
    uint64_t uaddr;
    uint8_t perm;
    uint8_t type;
};

#define VHOST_USER_CONFIG_HDR_SIZE 12
struct vhost_user_config {
    uint32_t offset;
    uint32_t size;
    uint32_t flags;            /* 0: writable fields, 1: live migration */
    uint8_t region[VHOST_USER_MAX_CONFIG_SIZE];
};

struct vhost_user_inflight {
    uint64_t mmap_size;
    uint64_t mmap_offset;
    uint16_t num_queues;
    uint16_t queue_size;
};

union vhost_user_payload {
    uint64_t u64;
    struct vhost_user_vring_state state;
    struct vhost_user_vring_addr addr;
    struct vhost_user_memory memory;
    struct vhost_user_mem_reg mem_reg;
    struct vhost_user_log log;
    struct vhost_user_iotlb iotlb;
    struct vhost_user_config config;
    struct vhost_user_inflight inflight;
    uint8_t raw[sizeof(struct vhost_user_config)];
};

/* In memory the payload is naturally aligned after the header; on the wire
 * it follows the 12 header bytes directly (send/recv use two iovecs). */
struct vhost_user_msg {
    struct vhost_user_hdr hdr;
    union vhost_user_payload payload;
};

#define VHOST_USER_HDR_SIZE      sizeof(struct vhost_user_hdr)
#define VHOST_USER_PAYLOAD_MAX   sizeof(union vhost_user_payload)

/* Inflight I/O tracking, split ring layout (vhost-user spec, "Inflight I/O
 * tracking"): per queue, a header followed by queue_size descriptors. */
struct vhost_user_inflight_desc {
    uint8_t inflight;          /* 1 while the request is being processed */
    uint8_t padding[5];
    uint16_t next;             /* link in the list of completed-not-yet-used */
    uint64_t counter;          /* order of arrival, to resubmit in order */
};

struct vhost_user_inflight_queue {
    uint64_t features;         /* reserved, 0 */
    uint16_t version;          /* 1 */
    uint16_t desc_num;         /* queue size */
    uint16_t last_batch_head;  /* head of the last batch of used descriptors */
    uint16_t used_idx;         /* used->idx as the backend last stored it */
    struct vhost_user_inflight_desc desc[];
};

/* --- functions (protocol.c) --- */

/* Name for logs: "GET_FEATURES", or "UNKNOWN" for a value outside the table. */
const char *vhost_user_msg_name(uint32_t request);

/* 1 if the request value is in the table. */
int vhost_user_msg_known(uint32_t request);

/* Checks a received message against the table: version, known request,
 * payload size for its kind and direction (REPLY flag), and fd count.
 * Returns 0, -EPROTO (bad version/flags), -EOPNOTSUPP (unknown request),
 * -EMSGSIZE (size does not fit the shape) or -E2BIG (too many fds). */
int vhost_user_validate(const struct vhost_user_msg *msg, size_t nfds);

/* Sends hdr + hdr.size payload bytes with nfds fds (nfds <= VHOST_USER_MAX_FDS).
 * Sets VHOST_USER_VERSION in the flags. Retries on EINTR. 0 or -errno. */
int vhost_user_send(int sock, struct vhost_user_msg *msg, const int *fds, size_t nfds);

/* Receives one message. fds must hold VHOST_USER_MAX_FDS entries; *nfds gets
 * the number received. The message is validated; on any error every fd that
 * arrived is closed, *nfds is 0, and -errno is returned (-ECONNRESET at EOF,
 * or a vhost_user_validate() error). Fds beyond the table's count for the
 * request are a -E2BIG error, never silently kept. */
int vhost_user_recv(int sock, struct vhost_user_msg *msg, int *fds, size_t *nfds);

/* Fills a reply header for a request (same request, REPLY flag, size). */
void vhost_user_make_reply(struct vhost_user_msg *reply, uint32_t request, uint32_t size);

/* Closes fds[0..n) that are >= 0 and sets them to -1. */
void vhost_user_close_fds(int *fds, size_t n);

#endif
