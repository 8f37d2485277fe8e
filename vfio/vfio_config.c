/* The config space an assigned function shows the guest. The header and each
 * capability follow a permission table: some parts are ours (BARs, ROM, the
 * capability list, MSI and MSI-X), the rest is the device's, read once and
 * written through only where the table's masks allow. Every guest write is
 * first applied to our copy through the write mask (pci.c); here the
 * written-through bits go to the device and are read back from it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vfio_pci_internal.h"
#include "vm.h"

#define CFG_COMMAND        0x04
#define CFG_STATUS         0x06
#define CFG_REVISION       0x08
#define CFG_HEADER_TYPE    0x0e
#define CFG_CAP_PTR        0x34
#define CFG_INTERRUPT_PIN  0x3d
#define CFG_HEADER_END     0x40
#define CMD_WRITE_THROUGH  0x0547  /* I/O, memory, bus master, parity, SERR, INTx disable */
#define STATUS_CAP_LIST    0x10
#define STATUS_INTX        0x08

#define CAP_ID_PM     0x01
#define CAP_ID_MSI    0x05
#define CAP_ID_VENDOR 0x09
#define CAP_ID_EXP    0x10
#define CAP_ID_MSIX   0x11
#define CAP_ID_AF     0x13

#define MSI_CAP_SIZE  14           /* control, 64-bit address, data; no per-vector mask */
#define MSIX_CAP_SIZE 12

enum cap_how {
    CAP_PASS,      /* the device's bytes, written through where writable[] says */
    CAP_EMULATE,   /* ours entirely (MSI, MSI-X) */
    CAP_HIDE,      /* left out of the guest's list */
};

struct vfio_cap_perm {
    uint8_t id;
    const char *name;
    enum cap_how how;
    uint8_t size;                      /* 0: up to the next capability */
    /* mask: what the guest may change in its view; of that, the bits of
     * virt stay in the view only (never reach the device). */
    struct { uint8_t off, len; uint32_t mask, virt; } writable[3];
};

static const struct vfio_cap_perm cap_table[] = {
    /* PMCSR: power state, PME enable, PME status (write 1 to clear). The
     * power state is the guest's view only: in D3hot vfio-pci revokes the
     * BARs' mappings, and a guest access through the memory slot that maps
     * them would fail KVM_RUN itself (EFAULT), taking the whole VM down. */
    { CAP_ID_PM, "power management", CAP_PASS, 8, { { 4, 2, 0x8103, 0x0003 } } },
    { CAP_ID_MSI, "MSI", CAP_EMULATE, MSI_CAP_SIZE },
    /* Device control (vfio-pci turns a function-level reset bit into its own
     * reset) and the error bits of device status (write 1 to clear). Link,
     * slot and root registers are zeroed: the function sits on our root bus
     * as a root-complex integrated endpoint, with no link of its own. */
    { CAP_ID_EXP, "PCI Express", CAP_PASS, 0x3c, { { 0x08, 2, 0xffff }, { 0x0a, 2, 0x000f } } },
    { CAP_ID_MSIX, "MSI-X", CAP_EMULATE, MSIX_CAP_SIZE },
    /* Advanced features: its FLR would reset behind vfio-pci's back. */
    { CAP_ID_AF, "advanced features", CAP_HIDE, 6 },
};

/* Unknown capabilities (vendor-specific and the rest) are shown read-only. */
static const struct vfio_cap_perm cap_readonly = { 0, "read-only", CAP_PASS, 0 };

static const struct vfio_cap_perm *cap_perm(uint8_t id)
{
    for (size_t i = 0; i < sizeof(cap_table) / sizeof(cap_table[0]); i++)
        if (cap_table[i].id == id)
            return &cap_table[i];
    return &cap_readonly;
}

static uint32_t get_le(const uint8_t *p, unsigned len)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < len; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static void put_le(uint8_t *p, uint32_t v, unsigned len)
{
    for (unsigned i = 0; i < len; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static int phys_read(struct vfio_pci_dev *v, unsigned off, void *buf, size_t len)
{
    ssize_t n = v->io.ops->read(v->io.opaque, v->cfg_off + off, buf, len);
    return n == (ssize_t)len ? 0 : -EIO;
}

static int phys_write(struct vfio_pci_dev *v, unsigned off, const void *buf, size_t len)
{
    ssize_t n = v->io.ops->write(v->io.opaque, v->cfg_off + off, buf, len);
    return n == (ssize_t)len ? 0 : -EIO;
}

int vfio_config_phys_offset(const struct vfio_pci_dev *v, unsigned voff)
{
    if (voff < CFG_HEADER_END)
        return (int)voff;
    for (unsigned i = 0; i < v->n_caps; i++) {
        const struct vfio_vcap *c = &v->caps[i];
        if (c->perm->how == CAP_PASS && voff >= c->voff && voff < (unsigned)c->voff + c->len)
            return c->poff + (int)(voff - c->voff);
    }
    return -1;
}

/* Capabilities of the device's list, in list order, with their lengths
 * guessed from where the next one starts. Loops and bad pointers end it. */
static unsigned walk_caps(const uint8_t *phys, uint8_t ids[VFIO_MAX_CAPS],
                          uint8_t offs[VFIO_MAX_CAPS], uint8_t lens[VFIO_MAX_CAPS])
{
    unsigned n = 0;
    uint8_t off;

    if (!(phys[CFG_STATUS] & STATUS_CAP_LIST))
        return 0;
    for (off = phys[CFG_CAP_PTR] & 0xfc; off >= CFG_HEADER_END && n < VFIO_MAX_CAPS;
         off = phys[off + 1] & 0xfc) {
        bool seen = false;
        for (unsigned i = 0; i < n; i++)
            seen |= offs[i] == off;
        if (seen)
            break;
        ids[n] = phys[off];
        offs[n++] = off;
    }
    for (unsigned i = 0; i < n; i++) {
        unsigned end = 0x100;
        for (unsigned j = 0; j < n; j++)
            if (offs[j] > offs[i] && offs[j] < end)
                end = offs[j];
        lens[i] = (uint8_t)(end - offs[i] > 0xff ? 0xff : end - offs[i]);
    }
    return n;
}

static void set_writable(struct vfio_pci_dev *v, unsigned voff, unsigned len, uint32_t mask,
                         uint32_t virt)
{
    put_le(&v->pdev.wmask[voff], mask, len);
    put_le(&v->wthrough[voff], mask & ~virt, len);
}

static int add_msix(struct vfio_pci_dev *v, uint8_t poff)
{
    uint16_t ctrl = (uint16_t)get_le(&v->phys[poff + 2], 2);
    uint32_t table = get_le(&v->phys[poff + 4], 4), pba = get_le(&v->phys[poff + 8], 4);
    unsigned bar = table & 7, nvec = (ctrl & 0x7ff) + 1u;
    int ret;

    if ((pba & 7) != bar || bar >= PCI_NUM_BARS || !v->bars[bar].size ||
        (table & ~7u) + 16ULL * nvec > v->bars[bar].size ||
        (pba & ~7u) + (nvec + 63) / 64 * 8ULL > v->bars[bar].size) {
        fprintf(stderr, "vmm: %s: MSI-X table (BIR %u, 0x%x) and PBA (BIR %u, 0x%x) of %u vectors "
                "are not both inside one BAR; MSI-X hidden\n", v->name, bar, table & ~7u, pba & 7,
                pba & ~7u, nvec);
        return 0;
    }
    ret = pci_msix_init(&v->msix, &v->pdev, v->vm ? v->vm->irq : NULL, (uint16_t)nvec, (int)bar,
                        table & ~7u, pba & ~7u);
    if (ret < 0) {
        fprintf(stderr, "vmm: %s: MSI-X: %s\n", v->name, strerror(-ret));
        return ret;
    }
    v->has_msix = v->msix_ready = true;
    v->msix_nvec = (uint16_t)nvec;
    pci_msix_set_notifier(&v->msix, vfio_irq_sync, v);
    return 0;
}

static void add_msi(struct vfio_pci_dev *v)
{
    uint8_t off = pci_add_capability(&v->pdev, CAP_ID_MSI, MSI_CAP_SIZE);

    if (!off)
        return;
    v->msi_cap = off;
    put_le(&v->pdev.config[off + 2], 0x0080, 2);     /* 64-bit capable, one message */
    v->pdev.wmask[off + 2] = 0x01;                   /* enable */
    put_le(&v->pdev.wmask[off + 4], 0xfffffffc, 4);  /* address, dword aligned */
    put_le(&v->pdev.wmask[off + 8], 0xffffffff, 4);
    put_le(&v->pdev.wmask[off + 12], 0xffff, 2);     /* data */
}

/* The PCI Express capability as a root-complex integrated endpoint. */
static void fix_express(struct vfio_pci_dev *v, uint8_t off, uint8_t len)
{
    uint8_t type = v->pdev.config[off + 2] >> 4;

    if (type == 0x0 || type == 0x1)   /* endpoint, legacy endpoint */
        v->pdev.config[off + 2] = (uint8_t)((v->pdev.config[off + 2] & 0x0f) | 0x90);
    for (unsigned i = 0x0c; i < 0x24 && i < len; i++)
        v->pdev.config[off + i] = 0;
    for (unsigned i = 0x2c; i < 0x34 && i < len; i++)
        v->pdev.config[off + i] = 0;
}

static int add_passed(struct vfio_pci_dev *v, const struct vfio_cap_perm *perm, uint8_t id,
                      uint8_t poff, uint8_t len)
{
    uint8_t off;

    if (perm->size && perm->size < len)
        len = perm->size;
    if (len < 2 || v->n_caps >= VFIO_MAX_CAPS)
        return 0;
    off = pci_add_capability(&v->pdev, id, len);
    if (!off) {
        fprintf(stderr, "vmm: %s: no room for capability 0x%02x (%s); hidden\n", v->name, id,
                perm->name);
        return 0;
    }
    memcpy(&v->pdev.config[off + 2], &v->phys[poff + 2], len - 2u);
    for (unsigned i = 0; i < 3 && perm->writable[i].len; i++)
        if (perm->writable[i].off + perm->writable[i].len <= len)
            set_writable(v, off + perm->writable[i].off, perm->writable[i].len,
                         perm->writable[i].mask, perm->writable[i].virt);
    if (id == CAP_ID_EXP)
        fix_express(v, off, len);
    v->caps[v->n_caps++] = (struct vfio_vcap){ .id = id, .voff = off, .poff = poff, .len = len,
                                               .perm = perm };
    return 0;
}

int vfio_config_build(struct vfio_pci_dev *v)
{
    uint8_t ids[VFIO_MAX_CAPS], offs[VFIO_MAX_CAPS], lens[VFIO_MAX_CAPS];
    struct pci_device *p = &v->pdev;
    unsigned n;

    /* The BARs were declared by the caller; the rest of the header now. */
    pci_device_init(p, (uint16_t)get_le(&v->phys[0], 2), (uint16_t)get_le(&v->phys[2], 2),
                    get_le(&v->phys[CFG_REVISION], 4) >> 8, (uint16_t)get_le(&v->phys[0x2c], 2),
                    (uint16_t)get_le(&v->phys[0x2e], 2));
    p->config[CFG_REVISION] = v->phys[CFG_REVISION];
    p->config[CFG_STATUS] = v->phys[CFG_STATUS] & (uint8_t)~(STATUS_CAP_LIST | STATUS_INTX);
    p->config[CFG_STATUS + 1] = v->phys[CFG_STATUS + 1];
    /* ROM (0x30) stays 0 with a zero write mask: no ROM. Header type 0,
     * single function: the guest sees this function alone. */
    p->config[CFG_INTERRUPT_PIN] = v->intx_available ? v->phys[CFG_INTERRUPT_PIN] : 0;
    set_writable(v, CFG_COMMAND, 2, CMD_WRITE_THROUGH, 0);

    n = walk_caps(v->phys, ids, offs, lens);
    /* pci_add_capability links the newest first: add in reverse to keep the
     * device's order. */
    for (unsigned i = n; i-- > 0;) {
        const struct vfio_cap_perm *perm = cap_perm(ids[i]);
        int ret = 0;
        if (perm->how == CAP_HIDE)
            continue;
        if (ids[i] == CAP_ID_MSIX)
            ret = add_msix(v, offs[i]);
        else if (ids[i] == CAP_ID_MSI)
            add_msi(v);
        else
            ret = add_passed(v, perm, ids[i], offs[i], lens[i]);
        if (ret < 0)
            return ret;
    }
    return 0;
}

/* Config bytes in [off, off+len) that the table writes through go to the
 * device, merged with what the device holds, then are read back. */
static void write_through(struct vfio_pci_dev *v, uint32_t off, uint32_t len)
{
    for (uint32_t i = off; i < off + len && i < 256; i++) {
        uint8_t mask = v->wthrough[i], cur, val;
        int poff;
        if (!mask || (poff = vfio_config_phys_offset(v, i)) < 0)
            continue;
        if (phys_read(v, (unsigned)poff, &cur, 1) < 0)
            goto fail;
        val = (uint8_t)((cur & ~mask) | (v->pdev.config[i] & mask));
        if (phys_write(v, (unsigned)poff, &val, 1) < 0)
            goto fail;
        /* Header bytes stay as the guest wrote them (vfio-pci shows its own
         * view of the command register); capability bits are the device's. */
        if (i >= CFG_HEADER_END && phys_read(v, (unsigned)poff, &cur, 1) == 0)
            v->pdev.config[i] = (uint8_t)((v->pdev.config[i] & ~mask) | (cur & mask));
        continue;
fail:
        if (!v->access_warned)
            fprintf(stderr, "vmm: %s: config write to the device at 0x%x failed\n", v->name, poff);
        v->access_warned = true;
    }
}

void vfio_config_written(struct pci_device *pdev, uint32_t offset, uint32_t len)
{
    struct vfio_pci_dev *v = pdev->opaque;

    /* Slots of a BAR that stopped decoding go before the device stops
     * decoding (a vCPU touching a slot of a disabled BAR would fault), new
     * ones after it decodes. */
    vfio_bars_sync_slots(v, true);
    write_through(v, offset, len);
    vfio_bars_sync_slots(v, false);
    if (v->msi_cap && offset < v->msi_cap + (uint32_t)MSI_CAP_SIZE && offset + len > v->msi_cap)
        vfio_irq_sync(v);
}
