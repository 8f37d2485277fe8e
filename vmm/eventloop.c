#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "eventloop.h"

struct watch {
    int fd;
    eventloop_fn fn;
    void *opaque;
    struct watch *next;
};

struct eventloop {
    int epfd;
    int stop_fd;            /* eventfd that ends the thread */
    pthread_t thread;
    bool running;
    pthread_mutex_t lock;   /* guards the watch list (not the callbacks) */
    struct watch *watches;
};

struct eventloop *eventloop_create(void)
{
    struct eventloop *loop = calloc(1, sizeof(*loop));
    struct epoll_event ev = { .events = EPOLLIN };

    if (!loop)
        return NULL;
    pthread_mutex_init(&loop->lock, NULL);
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    ev.data.ptr = NULL;   /* NULL marks the stop eventfd */
    if (loop->epfd < 0 || loop->stop_fd < 0 ||
        epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->stop_fd, &ev) < 0) {
        eventloop_destroy(loop);
        return NULL;
    }
    return loop;
}

static void *eventloop_thread(void *arg)
{
    struct eventloop *loop = arg;
    struct epoll_event events[32];

    pthread_setname_np(pthread_self(), "eventloop");
    for (;;) {
        int n = epoll_wait(loop->epfd, events, 32, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        for (int i = 0; i < n; i++) {
            struct watch *w = events[i].data.ptr;
            if (!w)
                return NULL;
            w->fn(w->opaque, events[i].events);
        }
    }
}

int eventloop_start(struct eventloop *loop)
{
    int ret = pthread_create(&loop->thread, NULL, eventloop_thread, loop);

    if (ret)
        return -ret;
    loop->running = true;
    return 0;
}

void eventloop_destroy(struct eventloop *loop)
{
    if (!loop)
        return;
    if (loop->running) {
        uint64_t one = 1;
        if (write(loop->stop_fd, &one, sizeof(one)) < 0) {
            /* an eventfd write only fails on overflow, impossible here */
        }
        pthread_join(loop->thread, NULL);
    }
    while (loop->watches) {
        struct watch *w = loop->watches;
        loop->watches = w->next;
        free(w);
    }
    if (loop->epfd >= 0)
        close(loop->epfd);
    if (loop->stop_fd >= 0)
        close(loop->stop_fd);
    pthread_mutex_destroy(&loop->lock);
    free(loop);
}

int eventloop_add_fd(struct eventloop *loop, int fd, uint32_t events, eventloop_fn fn,
                     void *opaque)
{
    struct watch *w = calloc(1, sizeof(*w));
    struct epoll_event ev = { .events = events };

    if (!w)
        return -ENOMEM;
    *w = (struct watch){ .fd = fd, .fn = fn, .opaque = opaque };
    ev.data.ptr = w;
    pthread_mutex_lock(&loop->lock);
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int err = errno;
        pthread_mutex_unlock(&loop->lock);
        free(w);
        return -err;
    }
    w->next = loop->watches;
    loop->watches = w;
    pthread_mutex_unlock(&loop->lock);
    return 0;
}

static struct watch *find_watch(struct eventloop *loop, int fd, struct watch ***link)
{
    for (struct watch **p = &loop->watches; *p; p = &(*p)->next) {
        if ((*p)->fd == fd) {
            if (link)
                *link = p;
            return *p;
        }
    }
    return NULL;
}

int eventloop_mod_fd(struct eventloop *loop, int fd, uint32_t events)
{
    struct epoll_event ev = { .events = events };
    int ret = -ENOENT;

    pthread_mutex_lock(&loop->lock);
    ev.data.ptr = find_watch(loop, fd, NULL);
    if (ev.data.ptr)
        ret = epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
    pthread_mutex_unlock(&loop->lock);
    return ret;
}

/* Only call from the loop thread itself or once the loop is stopped: a
 * callback already fetched by epoll_wait could otherwise run on freed memory. */
int eventloop_del_fd(struct eventloop *loop, int fd)
{
    struct watch **link = NULL, *w;
    int ret = -ENOENT;

    pthread_mutex_lock(&loop->lock);
    w = find_watch(loop, fd, &link);
    if (w) {
        epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
        *link = w->next;
        free(w);
        ret = 0;
    }
    pthread_mutex_unlock(&loop->lock);
    return ret;
}
