/* regfuzz BDF SEED COUNT [master] [msix-only]: what a hostile guest does to
 * a PCI device. Writes COUNT random values (and reads) at random offsets of
 * every BAR of BDF (memory BARs through mmap of sysfs resourceN, I/O BARs
 * through pread/pwrite on it) and of its config space (without the command
 * register, so bus mastering stays as the guest had it, and without the
 * BARs, so the ranges stay where the kernel put them). With "master", bus
 * mastering is switched on first, so whatever the random writes start
 * (virtio queues at random addresses, say) really runs. With "msix-only",
 * of the BARs only the one holding the MSI-X table: for an assigned
 * function, what the VMM itself handles (config space and the trapped
 * table), not the device's own registers (whose state, an NVM for one, can
 * outlive every reset).
 * regfuzz ports BASE LEN SEED COUNT: the same to a range of I/O ports
 * through /dev/port.
 * Prints what it did; exits 0 unless it could not reach the device at all.
 * The point is what the VMM does meanwhile: it must stay up and keep the
 * rest of the VM working. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t rng_state;

static uint32_t rnd(void)
{
    /* xorshift64*: repeatable from the seed, so a failure can be replayed. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1dULL) >> 32);
}

/* Mostly aligned dwords, sometimes bytes and words, values biased towards
 * all-ones, zero and small numbers as well as noise. */
static uint32_t pick_value(void)
{
    switch (rnd() % 6) {
    case 0: return 0;
    case 1: return 0xffffffffu;
    case 2: return rnd() % 64;
    default: return rnd();
    }
}

static unsigned fuzz_mem_bar(const char *path, size_t size, unsigned count)
{
    int fd = open(path, O_RDWR | O_SYNC);
    volatile uint8_t *p;
    unsigned done = 0;

    if (fd < 0)
        return 0;
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return 0;
    for (unsigned i = 0; i < count; i++, done++) {
        size_t off = (rnd() % size) & ~(size_t)3;
        uint32_t v = pick_value();
        switch (rnd() % 8) {
        case 0: (void)*(volatile uint32_t *)(p + off); break;
        case 1: *(volatile uint8_t *)(p + off) = (uint8_t)v; break;
        case 2: *(volatile uint16_t *)(p + (off & ~(size_t)1)) = (uint16_t)v; break;
        default: *(volatile uint32_t *)(p + off) = v; break;
        }
    }
    munmap((void *)p, size);
    return done;
}

/* SIZE bytes of I/O space at BASE in PATH (an I/O BAR's sysfs resource
 * file from 0, or /dev/port from the range's first port). */
static unsigned fuzz_io_range(const char *path, off_t base, size_t size, unsigned count)
{
    int fd = open(path, O_RDWR);
    unsigned done = 0;

    if (fd < 0)
        return 0;
    for (unsigned i = 0; i < count; i++) {
        uint32_t v = pick_value();
        size_t len = (size_t)1 << (rnd() % 3);
        off_t off = (off_t)((rnd() % size) & ~(len - 1));
        if (off + (off_t)len > (off_t)size)
            continue;
        if (rnd() % 4 == 0 ? pread(fd, &v, len, base + off) == (ssize_t)len
                           : pwrite(fd, &v, len, base + off) == (ssize_t)len)
            done++;
    }
    close(fd);
    return done;
}

static unsigned fuzz_config(const char *dev, unsigned count)
{
    char path[256];
    unsigned done = 0;
    int fd;

    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", dev);
    fd = open(path, O_RDWR);
    if (fd < 0)
        return 0;
    for (unsigned i = 0; i < count; i++) {
        uint32_t v = pick_value();
        off_t off = (off_t)(rnd() % 256) & ~3;
        /* Keep command (0x04) and the BARs (0x10-0x27): see the header. */
        if (off == 0x04 || (off >= 0x10 && off < 0x28))
            continue;
        if (pwrite(fd, &v, 4, off) == 4)
            done++;
    }
    close(fd);
    return done;
}

/* The BAR that holds the MSI-X table (its BIR), or -1. */
static int msix_bar(const char *dev)
{
    char path[256];
    uint8_t cfg[256];
    int fd, n;

    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", dev);
    if ((fd = open(path, O_RDONLY)) < 0)
        return -1;
    n = (int)pread(fd, cfg, sizeof(cfg), 0);
    close(fd);
    if (n < 64 || !(cfg[0x06] & 0x10))
        return -1;
    for (unsigned pos = cfg[0x34] & 0xfc, hops = 0; pos >= 0x40 && pos + 8 <= (unsigned)n && hops < 48;
         pos = cfg[pos + 1] & 0xfc, hops++)
        if (cfg[pos] == 0x11)
            return cfg[pos + 4] & 7;
    return -1;
}

/* Memory and I/O decoding and bus mastering on in the command register. */
static int enable_bus_master(const char *dev)
{
    char path[256];
    uint16_t cmd;
    int fd, ok;

    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", dev);
    fd = open(path, O_RDWR);
    if (fd < 0) {
        perror(path);
        return 0;
    }
    ok = pread(fd, &cmd, 2, 0x04) == 2;
    cmd |= 0x7;
    ok = ok && pwrite(fd, &cmd, 2, 0x04) == 2;
    close(fd);
    if (!ok)
        fprintf(stderr, "regfuzz: cannot enable bus mastering on %s\n", dev);
    return ok;
}

int main(int argc, char **argv)
{
    char path[256];
    unsigned count, total = 0;
    FILE *res;

    if (argc == 6 && strcmp(argv[1], "ports") == 0) {
        unsigned long base = strtoul(argv[2], NULL, 0), len = strtoul(argv[3], NULL, 0);
        rng_state = strtoull(argv[4], NULL, 0) | 1;
        count = (unsigned)strtoul(argv[5], NULL, 0);
        if (!len || base + len > 0x10000) {
            fprintf(stderr, "regfuzz: ports 0x%lx+%lu: outside the I/O space\n", base, len);
            return 2;
        }
        total = fuzz_io_range("/dev/port", (off_t)base, len, count);
        printf("regfuzz: ports 0x%lx-0x%lx: %u accesses\n", base, base + len - 1, total);
        return total ? 0 : 1;
    }
    bool master = false;
    int only_bar = -1;
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "master") == 0) {
            master = true;
        } else if (strcmp(argv[i], "msix-only") == 0) {
            if ((only_bar = msix_bar(argv[1])) < 0) {
                fprintf(stderr, "regfuzz: %s has no MSI-X capability\n", argv[1]);
                return 1;
            }
        } else {
            argc = 0;
        }
    }
    if (argc < 4) {
        fprintf(stderr, "usage: regfuzz BDF SEED COUNT [master] [msix-only] | "
                        "regfuzz ports BASE LEN SEED COUNT\n");
        return 2;
    }
    if (master && !enable_bus_master(argv[1]))
        return 1;
    rng_state = strtoull(argv[2], NULL, 0) | 1;
    count = (unsigned)strtoul(argv[3], NULL, 0);

    /* sysfs "resource": one "start end flags" line per BAR. */
    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource", argv[1]);
    res = fopen(path, "r");
    if (!res) {
        perror(path);
        return 1;
    }
    for (int bar = 0; bar < 6; bar++) {
        unsigned long long start, end, flags;
        if (fscanf(res, "%llx %llx %llx", &start, &end, &flags) != 3)
            break;
        if (!start || end <= start || (only_bar >= 0 && bar != only_bar))
            continue;
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource%d", argv[1], bar);
        unsigned n = (flags & 0x100) ? fuzz_io_range(path, 0, end - start + 1, count)
                                     : fuzz_mem_bar(path, end - start + 1, count);
        printf("regfuzz: %s BAR%d (%s, %llu bytes): %u accesses\n", argv[1], bar,
               (flags & 0x100) ? "I/O" : "memory", end - start + 1, n);
        total += n;
    }
    fclose(res);
    unsigned n = fuzz_config(argv[1], count);
    printf("regfuzz: %s config space: %u writes\n", argv[1], n);
    total += n;
    return total ? 0 : 1;
}
