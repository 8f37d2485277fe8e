/* The VMM's event loop thread: host-side I/O of devices (console input, and
 * later tap devices and io_uring completions) runs here, never on a vCPU. */
#ifndef VMM_EVENTLOOP_H
#define VMM_EVENTLOOP_H

#include <stdint.h>

struct eventloop;

/* events: EPOLLIN/EPOLLOUT... as returned by epoll. */
typedef void (*eventloop_fn)(void *opaque, uint32_t events);

struct eventloop *eventloop_create(void);
/* Starts the thread. 0 or -errno. */
int eventloop_start(struct eventloop *loop);
/* Stops and joins the thread, then frees everything. */
void eventloop_destroy(struct eventloop *loop);

/* Watches fd for events; fn runs on the loop thread. 0 or -errno. */
int eventloop_add_fd(struct eventloop *loop, int fd, uint32_t events, eventloop_fn fn,
                     void *opaque);
int eventloop_mod_fd(struct eventloop *loop, int fd, uint32_t events);
int eventloop_del_fd(struct eventloop *loop, int fd);

#endif
