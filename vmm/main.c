/* vmm: run or check a VM described by a VM file and its device files. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "config.h"
#include "eventloop.h"
#include "stats.h"
#include "vm.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vmm run VM.conf [--stats FILE]   boot the VM; exit status as in README\n"
            "       vmm check VM.conf                validate the VM file and its device files\n"
            "                                        (needs no /dev/kvm; exit 2 on any error)\n");
}

struct signal_watch {
    struct vm *vm;
    int fd;
};

static void on_signal(void *opaque, uint32_t events)
{
    struct signal_watch *w = opaque;
    struct signalfd_siginfo si;

    (void)events;
    if (read(w->fd, &si, sizeof(si)) != sizeof(si))
        return;
    fprintf(stderr, "\nvmm: %s: stopping the VM\n", strsignal((int)si.ssi_signo));
    vm_request_stop(w->vm, VM_STOP_SIGNAL, 128 + (int)si.ssi_signo);
}

static void print_summary(struct vm *vm)
{
    long long exits = stats_kvm_vcpu_sum(vm, "exits");
    long long io = stats_kvm_vcpu_sum(vm, "io_exits");
    long long mmio = stats_kvm_vcpu_sum(vm, "mmio_exits");
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    fprintf(stderr, "vmm: %s: %s, exit status %d, after %.2f s; %lld KVM exits (%lld PIO, %lld MMIO)\n",
            vm->cfg->name, vm_stop_reason_name(vm->stop_reason), vm->exit_status,
            (double)(now.tv_sec - vm->started.tv_sec) +
                (double)(now.tv_nsec - vm->started.tv_nsec) / 1e9,
            exits, io, mmio);
}

static int cmd_run(const char *file, const char *stats_path)
{
    struct vm_config cfg;
    struct vm vm;
    struct signal_watch sw = { .vm = &vm };
    sigset_t stop_signals;
    int status;

    if (config_load(file, &cfg, stderr) < 0)
        return VMM_EXIT_CONFIG;

    /* A console whose reader went away must not kill the VM. */
    signal(SIGPIPE, SIG_IGN);

    /* Every thread inherits this mask; the signals arrive through a
     * signalfd on the event loop instead of interrupting a vCPU. */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    if (vm_create(&vm, &cfg) < 0) {
        config_free(&cfg);
        return VMM_EXIT_ERROR;
    }
    sw.fd = signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sw.fd < 0 || eventloop_add_fd(vm.loop, sw.fd, EPOLLIN, on_signal, &sw) < 0) {
        fprintf(stderr, "vmm: signalfd: %s\n", strerror(errno));
        vm_destroy(&vm);
        config_free(&cfg);
        return VMM_EXIT_ERROR;
    }

    status = vm_run(&vm);
    print_summary(&vm);
    if (stats_path && stats_write_json(&vm, stats_path) < 0 && status == 0)
        status = VMM_EXIT_ERROR;
    vm_destroy(&vm);
    close(sw.fd);
    config_free(&cfg);
    return status;
}

static int cmd_check(const char *file)
{
    struct vm_config cfg;

    if (config_load(file, &cfg, stderr) < 0)
        return VMM_EXIT_CONFIG;
    printf("%s: ok (%zu device%s)\n", file, cfg.n_devices, cfg.n_devices == 1 ? "" : "s");
    config_free(&cfg);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "stats", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *stats_path = NULL;
    const char *cmd;
    int opt;

    if (argc < 2) {
        usage(stderr);
        return VMM_EXIT_CONFIG;
    }
    cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    optind = 2;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 's':
            stats_path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return VMM_EXIT_CONFIG;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "vmm %s: expected exactly one VM file\n", cmd);
        usage(stderr);
        return VMM_EXIT_CONFIG;
    }
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argv[optind], stats_path);
    if (strcmp(cmd, "check") == 0) {
        if (stats_path) {
            fprintf(stderr, "vmm check: --stats only applies to run\n");
            return VMM_EXIT_CONFIG;
        }
        return cmd_check(argv[optind]);
    }
    fprintf(stderr, "vmm: unknown command '%s'\n", cmd);
    usage(stderr);
    return VMM_EXIT_CONFIG;
}
