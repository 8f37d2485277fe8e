/* protocol.c: vhost-user message framing over a Unix stream socket, with fds
 * as SCM_RIGHTS, and validation of every received message against the one
 * message table in vhost_user.h. Nothing here knows about devices or rings. */
#include "vhost_user.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

struct vu_msg_info {
    const char *name;
    enum vhost_user_payload_kind req_kind;
    unsigned req_fds;
    enum vhost_user_payload_kind reply_kind;
    unsigned reply_fds;
};

static const struct vu_msg_info msg_info[VHOST_USER_REQ_MAX] = {
#define VU_INFO_(name_, value, rk, rf, pk, pf) \
    [value] = { .name = #name_, .req_kind = rk, .req_fds = rf, .reply_kind = pk, .reply_fds = pf },
    VHOST_USER_MESSAGES(VU_INFO_)
#undef VU_INFO_
};

int vhost_user_msg_known(uint32_t request)
{
    return request < VHOST_USER_REQ_MAX && msg_info[request].name != NULL;
}

const char *vhost_user_msg_name(uint32_t request)
{
    return vhost_user_msg_known(request) ? msg_info[request].name : "UNKNOWN";
}

/* Exact size of a fixed-size kind, or -1 for the variable ones. */
static long fixed_size(enum vhost_user_payload_kind kind)
{
    switch (kind) {
    case VU_P_NONE:     return 0;
    case VU_P_U64:      return sizeof(uint64_t);
    case VU_P_STATE:    return sizeof(struct vhost_user_vring_state);
    case VU_P_ADDR:     return sizeof(struct vhost_user_vring_addr);
    case VU_P_LOG:      return sizeof(struct vhost_user_log);
    case VU_P_IOTLB:    return sizeof(struct vhost_user_iotlb);
    case VU_P_INFLIGHT: return sizeof(struct vhost_user_inflight);
    case VU_P_REGION:   return sizeof(struct vhost_user_mem_reg);
    case VU_P_MEM:
    case VU_P_CONFIG:
    case VU_P_ANY:      return -1;
    }
    return -1;
}

static int check_payload(const struct vhost_user_msg *msg, enum vhost_user_payload_kind kind,
                         size_t nfds, unsigned max_fds)
{
    uint32_t size = msg->hdr.size;
    long want = fixed_size(kind);

    if (size > VHOST_USER_PAYLOAD_MAX)
        return -EMSGSIZE;
    if (nfds > max_fds)
        return -E2BIG;
    if (want >= 0)
        return size == (uint32_t)want ? 0 : -EMSGSIZE;

    switch (kind) {
    case VU_P_MEM: {
        /* the header (nregions, padding) and exactly nregions regions, one fd each */
        size_t hdr = offsetof(struct vhost_user_memory, regions);
        if (size < hdr)
            return -EMSGSIZE;
        uint32_t n = msg->payload.memory.nregions;
        if (n > VHOST_USER_MAX_REGIONS ||
            size != hdr + n * sizeof(struct vhost_user_mem_region))
            return -EMSGSIZE;
        if (nfds != n)
            return -E2BIG;
        return 0;
    }
    case VU_P_CONFIG: {
        if (size < VHOST_USER_CONFIG_HDR_SIZE)
            return -EMSGSIZE;
        uint32_t csize = msg->payload.config.size;
        if (csize > VHOST_USER_MAX_CONFIG_SIZE || size != VHOST_USER_CONFIG_HDR_SIZE + csize)
            return -EMSGSIZE;
        return 0;
    }
    default:
        return 0; /* VU_P_ANY: bounded by VHOST_USER_PAYLOAD_MAX above */
    }
}

int vhost_user_validate(const struct vhost_user_msg *msg, size_t nfds)
{
    uint32_t flags = msg->hdr.flags;

    if ((flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION)
        return -EPROTO;
    if (flags & ~(VHOST_USER_VERSION_MASK | VHOST_USER_REPLY | VHOST_USER_NEED_REPLY))
        return -EPROTO;
    if (!vhost_user_msg_known(msg->hdr.request))
        return -EOPNOTSUPP;

    const struct vu_msg_info *info = &msg_info[msg->hdr.request];
    if (!(flags & VHOST_USER_REPLY))
        return check_payload(msg, info->req_kind, nfds, info->req_fds);

    /* A message without a reply of its own may only be answered by a REPLY_ACK u64. */
    enum vhost_user_payload_kind kind = info->reply_kind == VU_P_NONE ? VU_P_U64 : info->reply_kind;
    return check_payload(msg, kind, nfds, info->reply_fds);
}

void vhost_user_close_fds(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        fds[i] = -1;
    }
}

void vhost_user_make_reply(struct vhost_user_msg *reply, uint32_t request, uint32_t size)
{
    memset(&reply->hdr, 0, sizeof(reply->hdr));
    reply->hdr.request = request;
    reply->hdr.flags = VHOST_USER_VERSION | VHOST_USER_REPLY;
    reply->hdr.size = size;
}

int vhost_user_send(int sock, struct vhost_user_msg *msg, const int *fds, size_t nfds)
{
    if (nfds > VHOST_USER_MAX_FDS || msg->hdr.size > VHOST_USER_PAYLOAD_MAX)
        return -EINVAL;
    msg->hdr.flags = (msg->hdr.flags & ~VHOST_USER_VERSION_MASK) | VHOST_USER_VERSION;

    struct iovec iov[2] = {
        { .iov_base = &msg->hdr, .iov_len = VHOST_USER_HDR_SIZE },
        { .iov_base = &msg->payload, .iov_len = msg->hdr.size },
    };
    union {
        char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
        struct cmsghdr align;
    } ctrl;
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = msg->hdr.size ? 2 : 1 };
    size_t total = VHOST_USER_HDR_SIZE + msg->hdr.size;

    if (nfds) {
        memset(&ctrl, 0, sizeof(ctrl));
        mh.msg_control = ctrl.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }

    /* The fds go with the first sendmsg; a short write sends the rest without them. */
    size_t done = 0;
    while (done < total) {
        ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        done += (size_t)n;
        mh.msg_control = NULL;
        mh.msg_controllen = 0;
        /* advance the iovecs past what was sent */
        size_t skip = (size_t)n;
        while (mh.msg_iovlen && skip >= mh.msg_iov[0].iov_len) {
            skip -= mh.msg_iov[0].iov_len;
            mh.msg_iov++;
            mh.msg_iovlen--;
        }
        if (mh.msg_iovlen) {
            mh.msg_iov[0].iov_base = (char *)mh.msg_iov[0].iov_base + skip;
            mh.msg_iov[0].iov_len -= skip;
        }
    }
    return 0;
}

/* Reads exactly len bytes (no fds expected past the header). 0, -ECONNRESET or -errno. */
static int read_full(int sock, void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = recv(sock, (char *)buf + done, len - done, 0);
        if (n == 0)
            return -ECONNRESET;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        done += (size_t)n;
    }
    return 0;
}

int vhost_user_recv(int sock, struct vhost_user_msg *msg, int *fds, size_t *nfds)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
        struct cmsghdr align;
    } ctrl;
    struct iovec iov = { .iov_base = &msg->hdr, .iov_len = VHOST_USER_HDR_SIZE };
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = ctrl.buf, .msg_controllen = sizeof(ctrl.buf),
    };
    ssize_t n;
    int ret;

    *nfds = 0;
    for (size_t i = 0; i < VHOST_USER_MAX_FDS; i++)
        fds[i] = -1;

    do {
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if (n == 0)
        return -ECONNRESET;

    /* Collect every fd that arrived, even from a truncated control message,
     * so that none leaks whatever happens next. */
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < cnt; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (*nfds < VHOST_USER_MAX_FDS)
                fds[(*nfds)++] = fd;
            else
                close(fd);
        }
    }
    if (mh.msg_flags & MSG_CTRUNC) {
        ret = -E2BIG;
        goto fail;
    }

    if ((size_t)n < VHOST_USER_HDR_SIZE) {
        ret = read_full(sock, (char *)&msg->hdr + n, VHOST_USER_HDR_SIZE - (size_t)n);
        if (ret)
            goto fail;
    }
    if (msg->hdr.size > VHOST_USER_PAYLOAD_MAX) {
        /* cannot resynchronise a stream after an oversized frame: the caller drops the peer */
        ret = -EMSGSIZE;
        goto fail;
    }
    memset(&msg->payload, 0, sizeof(msg->payload));
    ret = read_full(sock, &msg->payload, msg->hdr.size);
    if (ret)
        goto fail;

    ret = vhost_user_validate(msg, *nfds);
    if (ret)
        goto fail;
    return 0;

fail:
    vhost_user_close_fds(fds, VHOST_USER_MAX_FDS);
    *nfds = 0;
    return ret;
}
