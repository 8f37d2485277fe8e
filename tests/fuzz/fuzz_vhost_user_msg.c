/* fuzz_vhost_user_msg: vhost-user message framing and validation
 * (vhost-user/protocol.c) on arbitrary bytes and fd counts.
 *
 * Two ways in, chosen by the first byte:
 *  - straight into vhost_user_validate(): the bytes as a header + payload,
 *    with any fd count 0..15;
 *  - through a real AF_UNIX socketpair: the bytes are written to one end with
 *    0..15 fds (dups of /dev/null) attached to the first chunk, the writer
 *    shuts down, and vhost_user_recv() reads messages until it fails.
 * Invariants: recv never reports more fds than VHOST_USER_MAX_FDS, a message
 * it accepts passes vhost_user_validate() again, its size is within the
 * payload, and after everything is closed no fd leaked. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vhost_user.h"

#define MAX_SEND_FDS 15   /* more than VHOST_USER_MAX_FDS: the excess must be closed */

/* Fds 0..FD_SCAN-1 that are open: taken before and compared after an input,
 * so any fd this input opened (socket, sent, received) and did not close shows
 * up. The range covers the sockets, the fds sent and the fds received even if
 * libFuzzer holds a few low fds of its own. */
#define FD_SCAN 128
static void open_fds(uint8_t open[FD_SCAN])
{
    for (int fd = 0; fd < FD_SCAN; fd++)
        open[fd] = fcntl(fd, F_GETFD) != -1;
}

static void check_no_leak(const uint8_t before[FD_SCAN])
{
    uint8_t after[FD_SCAN];
    open_fds(after);
    for (int fd = 0; fd < FD_SCAN; fd++)
        if (after[fd] && !before[fd]) {
            char path[64], target[256] = "";
            snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
            (void)!readlink(path, target, sizeof(target) - 1);
            fprintf(stderr, "fd %d (%s) left open\n", fd, target);
            abort();
        }
}

static void fuzz_validate(const uint8_t *data, size_t size, unsigned nfds)
{
    struct vhost_user_msg msg;
    memset(&msg, 0, sizeof(msg));
    size_t n = size > sizeof(msg.hdr) ? sizeof(msg.hdr) : size;
    memcpy(&msg.hdr, data, n);
    if (size > n) {
        size_t p = size - n > sizeof(msg.payload) ? sizeof(msg.payload) : size - n;
        memcpy(&msg.payload, data + n, p);
    }
    if (vhost_user_validate(&msg, nfds) == 0 && msg.hdr.size > VHOST_USER_PAYLOAD_MAX)
        abort();
    (void)vhost_user_msg_name(msg.hdr.request);
}

static void fuzz_socket(const uint8_t *data, size_t size, unsigned nfds)
{
    uint8_t before[FD_SCAN];
    open_fds(before);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        abort();

    /* One sendmsg with the fds on the first byte(s), the rest after. The
     * socket buffer holds far more than libFuzzer's inputs here (-max_len). */
    int fds[MAX_SEND_FDS];
    for (unsigned i = 0; i < nfds; i++)
        fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    union {
        char buf[CMSG_SPACE(sizeof(int) * MAX_SEND_FDS)];
        struct cmsghdr align;
    } ctrl;
    memset(&ctrl, 0, sizeof(ctrl));
    struct iovec iov = { .iov_base = (void *)data, .iov_len = size };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (nfds) {
        mh.msg_control = ctrl.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    if (size && sendmsg(sv[0], &mh, MSG_NOSIGNAL) != (ssize_t)size)
        abort();
    for (unsigned i = 0; i < nfds; i++)
        close(fds[i]);
    /* EOF after the bytes: a message announcing more payload than was sent
     * ends in -ECONNRESET instead of blocking. */
    shutdown(sv[0], SHUT_WR);

    for (int msgs = 0; msgs < 64; msgs++) {
        struct vhost_user_msg msg;
        int got[VHOST_USER_MAX_FDS];
        size_t ngot = 99;
        int ret = vhost_user_recv(sv[1], &msg, got, &ngot);
        if (ngot > VHOST_USER_MAX_FDS)
            abort();
        if (ret) {
            if (ngot != 0)
                abort();
            break;
        }
        if (msg.hdr.size > VHOST_USER_PAYLOAD_MAX || vhost_user_validate(&msg, ngot) != 0)
            abort();
        vhost_user_close_fds(got, ngot);
    }
    close(sv[0]);
    close(sv[1]);
    check_no_leak(before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0] & 1;
    unsigned nfds = (data[0] >> 1) % (MAX_SEND_FDS + 1);
    if (mode == 0)
        fuzz_validate(data + 1, size - 1, nfds);
    else
        fuzz_socket(data + 1, size - 1, nfds);
    return 0;
}
