/* An asynchronous block backend on io_uring: a regular file or a block
 * device, read and written through the page cache, every request completed
 * later through a callback. Not thread-safe: its owner serialises every call
 * (the NVMe model holds its controller lock). The ring's eventfd is what an
 * event loop watches; blk_backend_poll() then runs the callbacks. */
#ifndef EMUL_BLK_BACKEND_H
#define EMUL_BLK_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct blk_backend;

/* result: 0 or -errno. Runs inside blk_backend_poll() (or _close()). */
typedef void (*blk_done_fn)(void *opaque, int result);

#define BLK_FUA    0x1   /* the write is durable when it completes */
#define BLK_UNMAP  0x2   /* write zeroes may deallocate the range */

/* Opens path. size > 0: the disk's size; a regular file shorter than that is
 * extended (never shrunk), a missing one is created; a block device must be
 * at least that large. size == 0: the file's or device's own size, rounded
 * down to 512 bytes. Takes an advisory lock so two VMs cannot share a
 * writable image. NULL with a message in err on failure. */
struct blk_backend *blk_backend_open(const char *path, uint64_t size, bool read_only, char *err,
                                     size_t errlen);
/* What every process serving an image does once it has it open: an
 * advisory lock (exclusive unless read_only; tried again for up to wait_ms
 * while another process holds it) so two writers never share an image, and
 * for a block device the page cache written back and dropped, so reads see
 * the media even if something that bypasses the cache (a VF on the same
 * namespace) wrote it. 0, or -1 with a message in err. */
int blk_image_claim(int fd, bool read_only, bool blockdev, unsigned wait_ms, char *err,
                    size_t errlen);
/* Waits for every request still in flight (their callbacks run), then frees. */
void blk_backend_close(struct blk_backend *b);

uint64_t blk_backend_size(const struct blk_backend *b);
bool blk_backend_read_only(const struct blk_backend *b);
bool blk_backend_is_blockdev(const struct blk_backend *b);
/* Readable when completions are waiting: watch it for EPOLLIN. */
int blk_backend_event_fd(const struct blk_backend *b);
unsigned blk_backend_inflight(const struct blk_backend *b);

/* Queue a request; 0 (done will be called exactly once, later) or -errno
 * (done is never called). The iovecs are copied; the memory they point to
 * must stay valid until done runs. Requests reach the kernel at the next
 * blk_backend_submit() or blk_backend_poll(). */
int blk_backend_readv(struct blk_backend *b, const struct iovec *iov, unsigned niov,
                      uint64_t offset, blk_done_fn done, void *opaque);
int blk_backend_writev(struct blk_backend *b, const struct iovec *iov, unsigned niov,
                       uint64_t offset, unsigned flags, blk_done_fn done, void *opaque);
int blk_backend_flush(struct blk_backend *b, blk_done_fn done, void *opaque);
/* The range reads back as zeroes afterwards, whatever the host supports. */
int blk_backend_discard(struct blk_backend *b, uint64_t offset, uint64_t len, blk_done_fn done,
                        void *opaque);
int blk_backend_write_zeroes(struct blk_backend *b, uint64_t offset, uint64_t len, unsigned flags,
                             blk_done_fn done, void *opaque);

/* Hands queued requests to the kernel. */
void blk_backend_submit(struct blk_backend *b);
/* Runs the callbacks of every completed request (resubmitting the rest of
 * short transfers), then submits. Returns how many requests finished. */
unsigned blk_backend_poll(struct blk_backend *b);
/* Blocks up to timeout_ms until a completion is waiting: 1, 0 on timeout. */
int blk_backend_wait(struct blk_backend *b, int timeout_ms);

#endif
