/* main.c: vhost-user-blk: serves one image to one vhost-user frontend at a
 * time over a listening Unix socket; after a disconnect it listens again, so
 * a restarted VMM reconnects (and a restarted backend is reconnected to). */
#include "blk.h"
#include "blk_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: vhost-user-blk --socket PATH --file IMG [options]\n"
            "  --socket PATH      listen on this Unix socket (server mode)\n"
            "  --file IMG         image file or block device\n"
            "  --readonly         refuse writes (VIRTIO_BLK_F_RO)\n"
            "  --queues N         virtqueues offered (1..%d, default 1)\n"
            "  --queue-size N     largest queue size accepted (power of two, default 256)\n"
            "  --poll-us N        busy-poll time before sleeping on the kick eventfd (default 50)\n"
            "  --coalesce-us N    hold finished requests while the driver is still resubmitting\n"
            "                     (fewer requests here than its recent depth), at most N us,\n"
            "                     and publish them together: fewer interrupts (default 50, 0: off)\n"
            "  --direct           open the image with O_DIRECT\n"
            "  --serial S         the serial the guest reads (GET_ID): up to 20 printable\n"
            "                     ASCII characters (default " BLK_SERIAL ")\n"
            "  --publish-delay-us N  test knob: hold finished requests N us before\n"
            "                     publishing them, so a SIGKILL finds requests in flight\n"
            "  --help\n",
            BLK_MAX_QUEUES);
}

static const char *parse_serial(const char *s)
{
    bool ok = *s && strlen(s) <= VIRTIO_BLK_ID_BYTES;
    for (const char *p = s; ok && *p; p++)
        ok = *p >= 0x20 && *p <= 0x7e;
    if (!ok) {
        fprintf(stderr, "vhost-user-blk: --serial must be 1..%d printable ASCII characters, got '%s'\n",
                VIRTIO_BLK_ID_BYTES, s);
        exit(2);
    }
    return s;
}

static unsigned parse_num(const char *s, const char *what, unsigned lo, unsigned hi)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 0);
    if (errno || *end || !*s || v < lo || v > hi) {
        fprintf(stderr, "vhost-user-blk: %s must be a number in %u..%u, got '%s'\n", what, lo, hi, s);
        exit(2);
    }
    return (unsigned)v;
}

static int image_fd = -1;   /* for stop_on_signal */

static int open_image(struct blk_dev *dev)
{
    int flags = (dev->opts.readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | (dev->opts.direct ? O_DIRECT : 0);
    struct stat st;
    dev->fd = open(dev->opts.file, flags);
    if (dev->fd < 0 || fstat(dev->fd, &st) < 0) {
        fprintf(stderr, "vhost-user-blk: %s: %s\n", dev->opts.file, strerror(errno));
        return -1;
    }
    uint64_t bytes = (uint64_t)st.st_size;
    dev->blk_size = BLK_SECTOR;
    if (S_ISBLK(st.st_mode)) {
        int lbs = 0;
        if (ioctl(dev->fd, BLKGETSIZE64, &bytes) < 0 || ioctl(dev->fd, BLKSSZGET, &lbs) < 0) {
            fprintf(stderr, "vhost-user-blk: %s: %s\n", dev->opts.file, strerror(errno));
            return -1;
        }
        dev->blk_size = (uint32_t)lbs;
    }
    dev->capacity = bytes / BLK_SECTOR;
    dev->wce = 1;
    /* A backend restarted after a SIGKILL may find its predecessor not
     * quite gone: wait a little for its lock. */
    char err[160];
    if (blk_image_claim(dev->fd, dev->opts.readonly, S_ISBLK(st.st_mode), 3000, err, sizeof(err)) < 0) {
        fprintf(stderr, "vhost-user-blk: %s: %s\n", dev->opts.file, err);
        return -1;
    }
    image_fd = dev->fd;
    return 0;
}

/* SIGTERM/SIGINT: what the guest wrote but the page cache still holds goes
 * to the media before we go, so it is never written back later over what
 * another path (a VF on the same namespace) wrote since. */
static void stop_on_signal(int sig)
{
    (void)sig;
    if (image_fd >= 0)
        fdatasync(image_fd);
    _exit(0);
}

static int listen_on(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "vhost-user-blk: socket path too long: %s\n", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    unlink(path);
    if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 1) < 0) {
        fprintf(stderr, "vhost-user-blk: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return s;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "socket", required_argument, NULL, 's' }, { "file", required_argument, NULL, 'f' },
        { "readonly", no_argument, NULL, 'r' },     { "queues", required_argument, NULL, 'q' },
        { "queue-size", required_argument, NULL, 'Q' }, { "poll-us", required_argument, NULL, 'p' },
        { "direct", no_argument, NULL, 'd' },       { "help", no_argument, NULL, 'h' },
        { "publish-delay-us", required_argument, NULL, 'D' },
        { "coalesce-us", required_argument, NULL, 'C' },
        { "serial", required_argument, NULL, 'S' },
        { 0 },
    };
    struct blk_dev dev = { .fd = -1, .sock = -1, .inflight_fd = -1 };
    dev.opts = (struct blk_opts){ .queues = 1, .queue_size = 256, .poll_us = 50, .coalesce_us = 50,
                                  .serial = BLK_SERIAL };
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 's': dev.opts.socket = optarg; break;
        case 'f': dev.opts.file = optarg; break;
        case 'r': dev.opts.readonly = true; break;
        case 'd': dev.opts.direct = true; break;
        case 'S': dev.opts.serial = parse_serial(optarg); break;
        case 'q': dev.opts.queues = parse_num(optarg, "--queues", 1, BLK_MAX_QUEUES); break;
        case 'Q': dev.opts.queue_size = parse_num(optarg, "--queue-size", 1, VIRTQ_MAX_SIZE); break;
        case 'p': dev.opts.poll_us = parse_num(optarg, "--poll-us", 0, 10000000); break;
        case 'C': dev.opts.coalesce_us = parse_num(optarg, "--coalesce-us", 0, 1000000); break;
        case 'D': dev.opts.publish_delay_us = parse_num(optarg, "--publish-delay-us", 0, 1000000); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!dev.opts.socket || !dev.opts.file || optind != argc ||
        (dev.opts.queue_size & (dev.opts.queue_size - 1))) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (open_image(&dev) < 0)
        return 1;
    struct sigaction stop = { .sa_handler = stop_on_signal };
    sigaction(SIGTERM, &stop, NULL);
    sigaction(SIGINT, &stop, NULL);
    for (unsigned i = 0; i < dev.opts.queues; i++)
        if (!(dev.q[i] = blk_queue_new(&dev, i))) {
            fprintf(stderr, "vhost-user-blk: out of memory\n");
            return 1;
        }
    int lsock = listen_on(dev.opts.socket);
    if (lsock < 0)
        return 1;
    fprintf(stderr, "vhost-user-blk: serving %s (%llu sectors%s) on %s, %u queue(s)\n", dev.opts.file,
            (unsigned long long)dev.capacity, dev.opts.readonly ? ", read-only" : "", dev.opts.socket,
            dev.opts.queues);

    for (;;) {
        dev.sock = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
        if (dev.sock < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            perror("vhost-user-blk: accept");
            return 1;
        }
        fprintf(stderr, "vhost-user-blk: frontend connected\n");
        while (blk_dev_serve_one(&dev) == 0) {
        }
        blk_dev_disconnect(&dev);
        fprintf(stderr, "vhost-user-blk: frontend gone; listening again\n");
    }
}
