/* blkio: the block-device operations the guest's tests need and busybox
 * lacks. Built static by tests/guest/mkinitramfs (the initramfs has no libc).
 *
 *   blkio zeroout DEV OFFSET LENGTH   BLKZEROOUT: the kernel sends the device
 *                                     Write Zeroes when it offers it
 *   blkio randread DEV COUNT QD [SEED]
 *                                     COUNT 4 KiB reads at random aligned
 *                                     offsets, O_DIRECT, QD in flight through
 *                                     Linux native AIO (fio's libaio engine);
 *                                     the requests reaped by one wait are
 *                                     resubmitted by one io_submit, so the
 *                                     kernel can ring a doorbell per batch;
 *                                     prints the time and IOPS
 *
 *   blkio pollread DEV COUNT QD [SEED]
 *                                     the same through io_uring with
 *                                     IORING_SETUP_IOPOLL: completions are
 *                                     polled for on the driver's poll queues
 *                                     (virtio_blk poll_queues=N), so the
 *                                     device sends no interrupts
 *
 * fio would do the second, but Debian's fio pulls in Ceph, Gluster and RDMA
 * libraries: tens of MiB in an image that must stay small. */
#define _GNU_SOURCE /* O_DIRECT */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <liburing.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096u
#define MAX_QD 1024u

static int usage(void)
{
    fprintf(stderr, "usage: blkio zeroout DEV OFFSET LENGTH\n"
                    "       blkio randread DEV COUNT QD [SEED]\n"
                    "       blkio pollread DEV COUNT QD [SEED]\n");
    return 2;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;

    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

static int cmd_zeroout(int argc, char **argv)
{
    uint64_t range[2];

    if (argc != 5 || parse_u64(argv[3], &range[0]) || parse_u64(argv[4], &range[1]))
        return usage();
    int fd = open(argv[2], O_WRONLY);
    if (fd < 0) {
        fprintf(stderr, "blkio: %s: %s\n", argv[2], strerror(errno));
        return 1;
    }
    if (ioctl(fd, BLKZEROOUT, range) != 0) {
        fprintf(stderr, "blkio: BLKZEROOUT %s offset %" PRIu64 " length %" PRIu64 ": %s\n",
                argv[2], range[0], range[1], strerror(errno));
        close(fd);
        return 1;
    }
    close(fd);
    return 0;
}

/* xorshift64*: reproducible offsets without libc's rand() state. */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What both random-read commands take: DEV COUNT QD [SEED], the device
 * opened with O_DIRECT and its size in blocks. 0, or the exit status. */
struct read_job {
    uint64_t count, qd, seed, blocks;
    int fd;
};

static int read_job_setup(int argc, char **argv, struct read_job *j)
{
    uint64_t size;

    j->seed = 1;
    if ((argc != 5 && argc != 6) || parse_u64(argv[3], &j->count) || parse_u64(argv[4], &j->qd) ||
        (argc == 6 && parse_u64(argv[5], &j->seed)))
        return usage();
    if (j->qd < 1 || j->qd > MAX_QD || j->seed == 0) {
        fprintf(stderr, "blkio: QD must be 1..%u and SEED non-zero\n", MAX_QD);
        return 2;
    }
    j->fd = open(argv[2], O_RDONLY | O_DIRECT);
    if (j->fd < 0) {
        fprintf(stderr, "blkio: %s: %s\n", argv[2], strerror(errno));
        return 1;
    }
    if (ioctl(j->fd, BLKGETSIZE64, &size) != 0 || size < BLOCK) {
        fprintf(stderr, "blkio: %s: cannot read its size, or smaller than %u bytes\n", argv[2], BLOCK);
        return 1;
    }
    j->blocks = size / BLOCK;
    return 0;
}

static int cmd_randread(int argc, char **argv)
{
    struct read_job j;
    int ret = read_job_setup(argc, argv, &j);

    if (ret)
        return ret;
    uint64_t count = j.count, qd = j.qd, seed = j.seed, blocks = j.blocks;
    int fd = j.fd;

    aio_context_t ctx = 0;
    if (syscall(SYS_io_setup, (long)qd, &ctx) != 0) {
        fprintf(stderr, "blkio: io_setup(%" PRIu64 "): %s\n", qd, strerror(errno));
        return 1;
    }
    struct iocb *cbs = calloc(qd, sizeof(*cbs));
    struct iocb **batch = calloc(qd, sizeof(*batch));
    struct io_event *events = calloc(qd, sizeof(*events));
    void *bufs;
    if (!cbs || !batch || !events || posix_memalign(&bufs, BLOCK, qd * BLOCK) != 0) {
        fprintf(stderr, "blkio: out of memory\n");
        return 1;
    }

    /* Each slot owns a buffer; completed slots are refilled at once, so QD
     * requests stay in flight until fewer than QD remain to submit. */
    for (uint64_t slot = 0; slot < qd; slot++) {
        struct iocb *cb = &cbs[slot];
        cb->aio_lio_opcode = IOCB_CMD_PREAD;
        cb->aio_fildes = (uint32_t)fd;
        cb->aio_buf = (uint64_t)(uintptr_t)((char *)bufs + slot * BLOCK);
        cb->aio_nbytes = BLOCK;
        cb->aio_data = slot;
    }
    uint64_t submitted = 0, completed = 0;
    long n_batch = 0;
    double t0 = now_s();
    for (uint64_t slot = 0; slot < qd && submitted + (uint64_t)n_batch < count; slot++)
        batch[n_batch++] = &cbs[slot];
    while (completed < count) {
        for (long i = 0; i < n_batch; i++)
            batch[i]->aio_offset = (int64_t)((next_random(&seed) % blocks) * BLOCK);
        if (n_batch && syscall(SYS_io_submit, ctx, n_batch, batch) != n_batch) {
            fprintf(stderr, "blkio: io_submit of %ld: %s\n", n_batch, strerror(errno));
            return 1;
        }
        submitted += (uint64_t)n_batch;
        n_batch = 0;
        long n = syscall(SYS_io_getevents, ctx, 1L, (long)qd, events, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "blkio: io_getevents: %s\n", strerror(errno));
            return 1;
        }
        for (long i = 0; i < n; i++) {
            uint64_t slot = events[i].data;
            if (events[i].res != (int64_t)BLOCK) {
                fprintf(stderr, "blkio: read at offset %" PRId64 " returned %" PRId64 "\n",
                        (int64_t)cbs[slot].aio_offset, (int64_t)events[i].res);
                return 1;
            }
            completed++;
            if (submitted + (uint64_t)n_batch < count)
                batch[n_batch++] = &cbs[slot];
        }
    }
    double secs = now_s() - t0;
    printf("blkio: randread %" PRIu64 " x %u B at QD %" PRIu64 ": %.3f s, %.0f IOPS\n", count, BLOCK,
           qd, secs, secs > 0 ? (double)count / secs : 0.0);
    syscall(SYS_io_destroy, ctx);
    close(fd);
    return 0;
}

static int cmd_pollread(int argc, char **argv)
{
    struct io_uring ring;
    struct read_job j;
    int ret = read_job_setup(argc, argv, &j);

    if (ret)
        return ret;
    uint64_t count = j.count, qd = j.qd, seed = j.seed, blocks = j.blocks;
    int fd = j.fd;
    if ((ret = io_uring_queue_init((unsigned)qd, &ring, IORING_SETUP_IOPOLL)) < 0) {
        fprintf(stderr, "blkio: io_uring with IOPOLL: %s\n", strerror(-ret));
        return 1;
    }
    void *bufs;
    unsigned *free_slots = calloc(qd, sizeof(*free_slots));
    if (!free_slots || posix_memalign(&bufs, BLOCK, qd * BLOCK) != 0) {
        fprintf(stderr, "blkio: out of memory\n");
        return 1;
    }
    unsigned n_free = 0;
    for (unsigned slot = 0; slot < qd; slot++)
        free_slots[n_free++] = slot;

    uint64_t submitted = 0, completed = 0;
    double t0 = now_s();
    while (completed < count) {
        while (n_free && submitted < count) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            if (!sqe)
                break;
            unsigned slot = free_slots[--n_free];
            io_uring_prep_read(sqe, fd, (char *)bufs + (size_t)slot * BLOCK, BLOCK,
                               (next_random(&seed) % blocks) * BLOCK);
            io_uring_sqe_set_data64(sqe, slot);
            submitted++;
        }
        /* With IOPOLL, waiting is the kernel polling the device's queue. */
        if ((ret = io_uring_submit_and_wait(&ring, 1)) < 0 && ret != -EINTR) {
            fprintf(stderr, "blkio: io_uring_submit_and_wait: %s\n", strerror(-ret));
            return 1;
        }
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            if (cqe->res != (int)BLOCK) {
                fprintf(stderr, "blkio: polled read returned %d (%s)\n", cqe->res,
                        cqe->res < 0 ? strerror(-cqe->res) : "short");
                return 1;
            }
            free_slots[n_free++] = (unsigned)io_uring_cqe_get_data64(cqe);
            completed++;
            seen++;
        }
        io_uring_cq_advance(&ring, seen);
    }
    double secs = now_s() - t0;
    printf("blkio: pollread %" PRIu64 " x %u B at QD %" PRIu64 ": %.3f s, %.0f IOPS\n", count, BLOCK,
           qd, secs, secs > 0 ? (double)count / secs : 0.0);
    io_uring_queue_exit(&ring);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "zeroout") == 0)
        return cmd_zeroout(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "randread") == 0)
        return cmd_randread(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "pollread") == 0)
        return cmd_pollread(argc, argv);
    return usage();
}
