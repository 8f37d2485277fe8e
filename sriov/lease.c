/* The VMM's one call for `pf = ...` + `vf = N`: make VF N exist, be ready
 * (NVMe: provisioned) and sit on vfio-pci; and the reverse at exit. Each step
 * records what it changed so teardown (or a failure half-way) undoes exactly
 * that and nothing someone else set up. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sriov_internal.h"
#include "sriov_nvme.h"

struct sriov_vf_lease {
    int vf_lock_fd;       /* flock held for the lease's life: one VM per VF */
    char pf[SRIOV_BDF_LEN], vf[SRIOV_BDF_LEN];
    unsigned index;
    bool created_vfs;     /* this lease raised sriov_numvfs from prev_num_vfs */
    unsigned prev_num_vfs;
    bool prev_autoprobe;
    bool nvme;            /* nvme_vf holds what provisioning changed */
    struct sriov_nvme_vf nvme_vf;
    struct sriov_binding binding;
};

static char lock_dir[SRIOV_PATH_MAX] = "/run/iovmm-sriov";

void sriov_set_lock_dir(const char *dir)
{
    snprintf(lock_dir, sizeof(lock_dir), "%s", dir ? dir : "/run/iovmm-sriov");
}

/* Opens (creating) <lock_dir>/<name>.lock and flocks it; -EWOULDBLOCK when
 * another process holds it and wait is false. */
static int take_lock(const char *name, bool wait, char *err, size_t errlen)
{
    char path[SRIOV_PATH_MAX];
    int fd, n;

    if (mkdir(lock_dir, 0755) < 0 && errno != EEXIST) {
        sriov_errf(err, errlen, "lock folder %s: %s", lock_dir, strerror(errno));
        return -errno;
    }
    n = snprintf(path, sizeof(path), "%s/%s.lock", lock_dir, name);
    if (n < 0 || (size_t)n >= sizeof(path))
        return -ENAMETOOLONG;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        sriov_errf(err, errlen, "%s: %s", path, strerror(errno));
        return -errno;
    }
    while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
        int e = errno;
        if (e == EINTR)
            continue;
        close(fd);
        if (e != EWOULDBLOCK)
            sriov_errf(err, errlen, "%s: flock: %s", path, strerror(e));
        return -e;
    }
    return fd;
}

/* The VF's lock, with our pid in it so a refused VMM can name the holder. */
static int lock_vf(struct sriov_vf_lease *l, char *err, size_t errlen)
{
    char name[64], holder[16] = "";
    int fd;

    snprintf(name, sizeof(name), "%s-vf%u", l->pf, l->index);
    fd = take_lock(name, false, err, errlen);
    if (fd == -EWOULDBLOCK) {
        char path[SRIOV_PATH_MAX];
        int hfd;

        int len = snprintf(path, sizeof(path), "%s/%s.lock", lock_dir, name);
        hfd = len > 0 && (size_t)len < sizeof(path) ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        if (hfd >= 0) {
            ssize_t n = read(hfd, holder, sizeof(holder) - 1);
            holder[n > 0 ? n : 0] = '\0';
            holder[strcspn(holder, "\n")] = '\0';
            close(hfd);
        }
        sriov_errf(err, errlen, "VF %u of %s is in use by another VM (process %s)", l->index, l->pf,
                   holder[0] ? holder : "unknown");
        return -EBUSY;
    }
    if (fd < 0)
        return fd;
    snprintf(holder, sizeof(holder), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, holder, strlen(holder), 0) < 0) {
        /* The lock holds without the pid; only the message gets poorer. */
    }
    l->vf_lock_fd = fd;
    return 0;
}

/* First VF (other than skip) bound to any driver, or -1. */
static int busy_vf(const struct sriov_pf *pf, unsigned count, int skip, char *driver, size_t len)
{
    char bdf[SRIOV_BDF_LEN];

    for (unsigned i = 0; i < count; i++) {
        if ((int)i == skip || sriov_vf_bdf(pf, i, bdf) < 0)
            continue;
        if (sriov_current_driver(bdf, driver, len) == 0 && driver[0])
            return (int)i;
    }
    return -1;
}

/* The kernel's virtfnN link is the truth; our arithmetic must agree. */
static int check_vf_device(const char *pf_bdf, unsigned index, const char *vf_bdf, char *err, size_t errlen)
{
    char path[SRIOV_PATH_MAX], leaf[32], linked[64];

    snprintf(leaf, sizeof(leaf), "virtfn%u", index);
    if (sriov_dev_path(path, sizeof(path), pf_bdf, leaf) == 0 &&
        sriov_sysfs_link_name(path, linked, sizeof(linked)) == 0 && linked[0] && strcmp(linked, vf_bdf)) {
        sriov_errf(err, errlen, "%s: %s points at %s, but the SR-IOV capability gives %s", pf_bdf, leaf, linked,
                   vf_bdf);
        return -EIO;
    }
    if (sriov_dev_path(path, sizeof(path), vf_bdf, NULL) < 0 || !sriov_path_exists(path)) {
        sriov_errf(err, errlen, "VF %u of %s (%s) does not exist after enabling VFs", index, pf_bdf, vf_bdf);
        return -ENODEV;
    }
    return 0;
}

static void remove_created_vfs(struct sriov_vf_lease *l)
{
    struct sriov_pf pf;
    char driver[64], err[256];
    int busy;

    if (!l->created_vfs)
        return;
    l->created_vfs = false;
    if (sriov_pf_read(l->pf, &pf, err, sizeof(err)) < 0) {
        fprintf(stderr, "sriov: %s: VFs left in place: %s\n", l->pf, err);
        return;
    }
    /* Another VM may have leased a sibling VF since: its VFs stay. */
    busy = busy_vf(&pf, pf.num_vfs, -1, driver, sizeof(driver));
    if (busy >= 0) {
        fprintf(stderr, "sriov: %s: leaving its %u VFs: VF %d is bound to %s\n", l->pf, pf.num_vfs, busy, driver);
        return;
    }
    if (sriov_set_num_vfs(l->pf, l->prev_num_vfs, err, sizeof(err)) < 0)
        fprintf(stderr, "sriov: %s\n", err);
    if (!l->prev_num_vfs && l->prev_autoprobe && sriov_set_autoprobe(l->pf, true, err, sizeof(err)) < 0)
        fprintf(stderr, "sriov: %s\n", err);
}

void sriov_vf_release(struct sriov_vf_lease *l)
{
    char err[256];
    int pf_lock;

    if (!l)
        return;
    /* Serialised with other leases' set-up and teardown on this PF. */
    pf_lock = l->pf[0] ? take_lock(l->pf, true, NULL, 0) : -1;
    if (sriov_restore_binding(&l->binding) < 0)
        fprintf(stderr, "sriov: %s: could not restore its driver binding (driver was '%s')\n", l->vf,
                l->binding.driver);
    if (l->nvme && sriov_nvme_vf_unprovision(&l->nvme_vf, err, sizeof(err)) < 0)
        fprintf(stderr, "sriov: %s VF %u: %s\n", l->pf, l->index, err);
    remove_created_vfs(l);
    if (pf_lock >= 0)
        close(pf_lock);
    if (l->vf_lock_fd >= 0)
        close(l->vf_lock_fd);
    free(l);
}

static int ensure_vfs(struct sriov_vf_lease *l, struct sriov_pf *pf, char *err, size_t errlen)
{
    char driver[64];
    int busy, r;

    if (sriov_get_autoprobe(l->pf, &l->prev_autoprobe, NULL, 0) < 0)
        l->prev_autoprobe = true; /* the kernel's default */
    if (l->index < pf->num_vfs)
        return 0;
    /* Going from N to M VFs passes through 0: every existing VF goes away. */
    busy = busy_vf(pf, pf->num_vfs, -1, driver, sizeof(driver));
    if (busy >= 0) {
        sriov_errf(err, errlen,
                   "%s has %u VFs and VF %u needs %u, but changing the count would remove VF %d, which is bound to %s",
                   l->pf, pf->num_vfs, l->index, l->index + 1, busy, driver);
        return -EBUSY;
    }
    if ((r = sriov_set_num_vfs(l->pf, l->index + 1, err, errlen)) < 0)
        return r;
    l->created_vfs = true;
    l->prev_num_vfs = pf->num_vfs;
    /* First VF Offset and VF Stride may change with NumVFs. */
    return sriov_pf_read(l->pf, pf, err, errlen);
}

struct sriov_vf_lease *sriov_vf_acquire(const char *pf_bdf, unsigned vf_index, char vf_bdf[SRIOV_BDF_LEN],
                                        char *err, size_t errlen)
{
    struct sriov_vf_lease *l = calloc(1, sizeof(*l));
    struct sriov_pf pf;
    char nvme_dev[64];
    int r, pf_lock = -1;

    if (!l) {
        sriov_errf(err, errlen, "out of memory");
        return NULL;
    }
    l->index = vf_index;
    l->vf_lock_fd = -1;
    if (sriov_pf_read(pf_bdf, &pf, err, errlen) < 0)
        goto fail;
    if (vf_index >= pf.total_vfs) {
        sriov_errf(err, errlen, "VF index %u is out of range: %s has %u VFs at most (indexes 0..%u)", vf_index,
                   pf.bdf, pf.total_vfs, pf.total_vfs ? pf.total_vfs - 1 : 0);
        goto fail;
    }
    snprintf(l->pf, sizeof(l->pf), "%s", pf.bdf);
    /* Two VMMs setting up VFs of one PF at once would both change its VF count. */
    if ((pf_lock = take_lock(l->pf, true, err, errlen)) < 0)
        goto fail_unlocked;
    if (lock_vf(l, err, errlen) < 0) {
        close(pf_lock);
        goto fail_unlocked;
    }
    if (sriov_pf_read(l->pf, &pf, err, errlen) < 0) /* fresh, under the lock */
        goto fail;
    if (ensure_vfs(l, &pf, err, errlen) < 0)
        goto fail;
    r = sriov_vf_bdf(&pf, vf_index, l->vf);
    if (r < 0) {
        sriov_errf(err, errlen, "%s: VF %u has no valid address (offset %u, stride %u)", pf.bdf, vf_index,
                   pf.vf_offset, pf.vf_stride);
        goto fail;
    }
    if (check_vf_device(l->pf, vf_index, l->vf, err, errlen) < 0)
        goto fail;
    if (sriov_nvme_ctrl_dev(l->pf, nvme_dev, sizeof(nvme_dev)) == 0) {
        if (sriov_nvme_vf_provision(l->pf, vf_index, SRIOV_NVME_DEFAULT_VQ, SRIOV_NVME_DEFAULT_VI, &l->nvme_vf,
                                    err, errlen) < 0)
            goto fail;
        l->nvme = true;
    }
    if (sriov_bind_vfio(l->vf, &l->binding, err, errlen) < 0)
        goto fail;
    if (vf_bdf)
        snprintf(vf_bdf, SRIOV_BDF_LEN, "%s", l->vf);
    close(pf_lock);
    return l;
fail:
    if (pf_lock >= 0)
        close(pf_lock); /* release takes it again */
fail_unlocked:
    if (l->vf_lock_fd < 0)
        l->pf[0] = '\0'; /* nothing of ours to undo: do not touch the PF lock either */
    sriov_vf_release(l);
    return NULL;
}
