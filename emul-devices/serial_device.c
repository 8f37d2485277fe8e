#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <termios.h>
#include <unistd.h>

#include "device.h"
#include "eventloop.h"
#include "irq.h"
#include "registry.h"
#include "serial.h"
#include "serial_device.h"
#include "vm.h"

static const char *const serial_models[] = { "16550", NULL };
static const char *const serial_inputs[] = { "stdio", "none", NULL };

const struct cfg_key serial_device_keys[] = {
    { .name = "model", .type = CFG_ENUM, .required = true, .choices = serial_models,
      .expected = "16550" },
    { .name = "output", .type = CFG_STRING, .default_value = "stdio",
      .expected = "stdio, none or a file path" },
    { .name = "input", .type = CFG_ENUM, .default_value = "none", .choices = serial_inputs,
      .expected = "stdio or none" },
    { .name = "port", .type = CFG_UINT, .default_value = "0x3f8", .min = 0x100, .max = 0xfff8,
      .expected = "an I/O port base such as 0x3f8 (COM1) or 0x2f8 (COM2)" },
    { .name = "irq", .type = CFG_UINT, .default_value = "4", .min = 1, .max = 15,
      .expected = "an ISA IRQ, 1..15 (COM1 uses 4, COM2 3)" },
    { .name = NULL },
};

/* Linux prints the first when it panics and the second once it has said
 * everything (stack, "end Kernel panic" trailer). The VMM stops at the second
 * so the whole report reaches the console. */
static const char panic_start[] = "Kernel panic - not syncing";
static const char panic_end[] = "[ end Kernel panic";

#define CTRL_A 0x01

struct serial_console {
    struct device dev;
    struct vm *vm;
    struct serial16550 *uart;
    uint32_t gsi;
    int out_fd;              /* -1: output discarded */
    int in_fd;               /* -1: no input */
    int retry_fd;            /* timerfd: retry input the full FIFO refused */
    uint8_t pending[64];
    size_t pending_len, pending_off;
    size_t panic_start_pos, panic_end_pos;
    bool escape;             /* Ctrl-A seen on input */
    char *id, *out_path;
};

static struct termios saved_termios;
static bool termios_saved;

static void restore_terminal(void)
{
    if (termios_saved)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
}

/* Raw mode so that keys reach the guest as typed; Ctrl-A x quits. */
static void make_terminal_raw(void)
{
    struct termios t;

    if (termios_saved || !isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_termios) < 0)
        return;
    termios_saved = true;
    atexit(restore_terminal);
    t = saved_termios;
    cfmakeraw(&t);
    t.c_oflag |= OPOST;   /* keep \n -> \r\n for the VMM's own messages */
    tcsetattr(STDIN_FILENO, TCSANOW, &t);
}

static bool match_step(const char *pattern, size_t *pos, uint8_t byte)
{
    if ((char)byte == pattern[*pos]) {
        if (pattern[++*pos] == '\0') {
            *pos = 0;
            return true;
        }
    } else {
        *pos = (char)byte == pattern[0] ? 1 : 0;
    }
    return false;
}

static void console_tx(void *ctx, uint8_t byte)
{
    struct serial_console *c = ctx;

    if (c->out_fd >= 0) {
        ssize_t n;
        do {
            n = write(c->out_fd, &byte, 1);
        } while (n < 0 && errno == EINTR);
    }
    if (match_step(panic_start, &c->panic_start_pos, byte) &&
        !atomic_exchange(&c->vm->panic_seen, true))
        c->panic_end_pos = 0;
    if (atomic_load(&c->vm->panic_seen) && match_step(panic_end, &c->panic_end_pos, byte)) {
        fprintf(stderr, "\nvmm: guest kernel panic (console %s)\n", c->dev.id);
        vm_request_stop(c->vm, VM_STOP_PANIC, VMM_EXIT_GUEST_PANIC);
    }
}

static void console_irq(void *ctx, int level)
{
    struct serial_console *c = ctx;

    if (level)
        device_count_irq(&c->dev);
    irq_line_set(c->vm->irq, c->gsi, level);
}

static void arm_retry(struct serial_console *c, bool on)
{
    struct itimerspec its = { .it_interval = { 0, on ? 10000000 : 0 },
                              .it_value = { 0, on ? 10000000 : 0 } };

    timerfd_settime(c->retry_fd, 0, &its, NULL);
    eventloop_mod_fd(c->vm->loop, c->in_fd, on ? 0 : EPOLLIN);
}

static void push_pending(struct serial_console *c)
{
    c->pending_off += serial_receive(c->uart, c->pending + c->pending_off,
                                     c->pending_len - c->pending_off);
    if (c->pending_off == c->pending_len) {
        c->pending_off = c->pending_len = 0;
        arm_retry(c, false);
    } else {
        arm_retry(c, true);
    }
}

static void console_input(void *opaque, uint32_t events)
{
    struct serial_console *c = opaque;
    uint8_t buf[sizeof(c->pending)];
    ssize_t n = read(c->in_fd, buf, sizeof(buf));

    (void)events;
    if (n <= 0) {
        if (n == 0 || (errno != EINTR && errno != EAGAIN))
            eventloop_del_fd(c->vm->loop, c->in_fd);   /* stdin closed: no more input */
        return;
    }
    c->pending_len = c->pending_off = 0;
    for (ssize_t i = 0; i < n; i++) {
        if (c->escape) {
            c->escape = false;
            if (buf[i] == 'x') {
                fprintf(stderr, "\r\nvmm: Ctrl-A x: stopping the VM\r\n");
                vm_request_stop(c->vm, VM_STOP_SIGNAL, 130);
                return;
            }
            if (buf[i] != CTRL_A)
                c->pending[c->pending_len++] = CTRL_A;
        } else if (buf[i] == CTRL_A && c->in_fd == STDIN_FILENO && termios_saved) {
            c->escape = true;
            continue;
        }
        c->pending[c->pending_len++] = buf[i];
        if (c->pending_len == sizeof(c->pending))
            break;
    }
    push_pending(c);
}

static void console_retry(void *opaque, uint32_t events)
{
    struct serial_console *c = opaque;
    uint64_t ticks;

    (void)events;
    if (read(c->retry_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
        return;
    push_pending(c);
}

static void serial_console_teardown(struct device *dev)
{
    struct serial_console *c = (struct serial_console *)dev;

    serial_destroy(c->uart);
    if (c->out_fd >= 0)
        close(c->out_fd);
    if (c->retry_fd >= 0)
        close(c->retry_fd);
    free(c->id);
    free(c->out_path);
    free(c);
}

static const struct device_ops serial_console_ops = { .teardown = serial_console_teardown };

static int open_output(struct serial_console *c, const struct device_config *dc)
{
    const char *out = device_config_get(dc, "output");

    if (strcmp(out, "none") == 0)
        return 0;
    if (strcmp(out, "stdio") == 0) {
        c->out_fd = dup(STDOUT_FILENO);
    } else {
        if (out[0] == '/')
            c->out_path = strdup(out);
        else if (asprintf(&c->out_path, "%s/%s", dc->dir, out) < 0)
            c->out_path = NULL;
        if (!c->out_path)
            return -1;
        c->out_fd = open(c->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    }
    if (c->out_fd < 0) {
        fprintf(stderr, "vmm: console %s: output %s: %s\n", dc->id, c->out_path ? c->out_path : out,
                strerror(errno));
        return -1;
    }
    return 0;
}

int serial_device_create(struct vm *vm, const struct device_config *dc)
{
    struct serial_console *c = calloc(1, sizeof(*c));
    uint64_t port = device_config_get_uint(dc, "port");

    if (!c)
        return -1;
    c->vm = vm;
    c->out_fd = c->in_fd = c->retry_fd = -1;
    c->gsi = (uint32_t)device_config_get_uint(dc, "irq");
    c->id = strdup(dc->id);
    c->dev = (struct device){ .id = c->id, .class_name = "console", .path_name = "emulated",
                              .model = "16550", .ops = &serial_console_ops };
    c->uart = serial_create(console_irq, console_tx, c);
    if (!c->id || !c->uart || open_output(c, dc) < 0) {
        serial_console_teardown(&c->dev);
        return -1;
    }
    /* From here the VM owns c: vm_destroy tears it down. */
    vm_add_device(vm, &c->dev);
    if (iobus_register(&vm->pio, port, 8, serial_io, c->uart, &c->dev) < 0) {
        fprintf(stderr, "vmm: console %s: ports 0x%llx-0x%llx are taken by another device\n",
                dc->id, (unsigned long long)port, (unsigned long long)port + 7);
        return -1;
    }
    if (strcmp(device_config_get(dc, "input"), "stdio") == 0) {
        int ret;

        c->retry_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (c->retry_fd < 0 ||
            eventloop_add_fd(vm->loop, c->retry_fd, EPOLLIN, console_retry, c) < 0) {
            fprintf(stderr, "vmm: console %s: cannot set up input: %s\n", dc->id, strerror(errno));
            return -1;
        }
        /* Standard input that cannot be polled (/dev/null, a regular file,
         * as under CI) simply gives the guest no input. */
        ret = eventloop_add_fd(vm->loop, STDIN_FILENO, EPOLLIN, console_input, c);
        if (ret == 0) {
            c->in_fd = STDIN_FILENO;
            make_terminal_raw();
        } else if (ret != -EPERM) {
            fprintf(stderr, "vmm: console %s: cannot watch standard input: %s\n", dc->id,
                    strerror(-ret));
            return -1;
        }
    }
    return 0;
}
