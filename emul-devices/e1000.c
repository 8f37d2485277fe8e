/* 82540EM register file: BAR0/BAR1 dispatch, reset, interrupt causes and the
 * INTx line, statistics. EEPROM and PHY are in e1000_nvm_phy.c, the rings in
 * e1000_rx.c and e1000_tx.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "e1000_hw.h"
#include "memory.h"
#include "net_backend.h"

#define PCI_VENDOR_INTEL   0x8086
#define PCI_DEVICE_82540EM 0x100e
#define PCI_SUBSYS_82540EM 0x001e
#define PCI_CLASS_ETHERNET 0x020000
#define PCI_INTERRUPT_PIN_REG 0x3d
#define PCI_COMMAND_REG    0x04

void e1000_warn_once(struct e1000 *e, enum e1000_warning w, const char *fmt, ...)
{
    va_list ap;

    if (e->warned & (1u << w))
        return;
    e->warned |= 1u << w;
    fprintf(stderr, "vmm: e1000 %s: ", e->host.name ? e->host.name : "?");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (reported once)\n", stderr);
}

void e1000_update_irq(struct e1000 *e)
{
    bool level = (reg(e, REG_ICR) & reg(e, REG_IMS)) != 0;

    /* Only changes reach the PCI layer: each one may be a KVM ioctl. */
    if (level != e->irq_level) {
        e->irq_level = level;
        pci_intx_set(&e->pdev, level);
    }
}

void e1000_raise(struct e1000 *e, uint32_t causes)
{
    reg_set(e, REG_ICR, reg(e, REG_ICR) | (causes & ICR_CAUSES));
    e1000_update_irq(e);
}

void e1000_kick(struct e1000 *e)
{
    if (e->tx_kicked || !e->host.kick)
        return;
    e->tx_kicked = true;
    e->host.kick(e->host.kick_opaque);
}

/* Counters saturate rather than wrap, as the hardware's do. */
void e1000_stat_add(struct e1000 *e, uint32_t off, uint32_t n)
{
    uint32_t v = reg(e, off);

    reg_set(e, off, v + n < v ? UINT32_MAX : v + n);
}

void e1000_stat_add64(struct e1000 *e, uint32_t off_low, uint64_t n)
{
    uint64_t v = (uint64_t)reg(e, off_low + 4) << 32 | reg(e, off_low);

    v = v + n < v ? UINT64_MAX : v + n;
    reg_set(e, off_low, (uint32_t)v);
    reg_set(e, off_low + 4, (uint32_t)(v >> 32));
}

bool e1000_ring_get(struct e1000 *e, uint32_t bal_reg, struct e1000_ring *r,
                    enum e1000_warning w, const char *what)
{
    uint64_t base = (uint64_t)reg(e, bal_reg + 4) << 32 | reg(e, bal_reg);
    uint32_t len = reg(e, bal_reg + 8);

    if (len == 0)
        return false;   /* not configured yet */
    r->count = len / E1000_DESC_SIZE;
    r->head = reg(e, bal_reg + 0x10);
    r->tail = reg(e, bal_reg + 0x18);
    if (len % 128) {
        e1000_warn_once(e, w, "%s ring length %u is not a multiple of 128: ring disabled",
                        what, len);
        return false;
    }
    if (r->head >= r->count || r->tail >= r->count) {
        e1000_warn_once(e, w, "%s ring head %u or tail %u beyond its %u descriptors: ring "
                        "disabled", what, r->head, r->tail, r->count);
        return false;
    }
    r->base = pci_dma_ptr(&e->pdev, e->host.mem, base, len);
    if (!r->base) {
        e1000_warn_once(e, w, "%s ring at 0x%llx+%u is not in guest RAM: ring disabled", what,
                        (unsigned long long)base, len);
        return false;
    }
    return true;
}

static bool is_stat_low64(uint32_t off)
{
    return off == STAT_GORCL || off == STAT_GOTCL || off == STAT_TORL || off == STAT_TOTL;
}

/* Reading the low half of a 64-bit counter clears it; reading the high half
 * (which the driver does next) clears the rest. */
static uint32_t stat_read(struct e1000 *e, uint32_t off)
{
    uint32_t v = reg(e, off);

    reg_set(e, off, 0);
    if (is_stat_low64(off - 4))
        reg_set(e, off - 4, 0);
    return v;
}

/* Registers that simply hold what the guest writes (the driver reads some
 * back, configures others that have no effect here). */
static bool reg_is_storage(uint32_t off)
{
    static const uint32_t plain[] = {
        REG_CTRL_EXT, REG_FLA, REG_FCAL, REG_FCAH, REG_FCT, REG_ITR, REG_FCTTV, REG_TXCW,
        REG_RXCW, REG_TIPG, REG_AIT, REG_LEDCTL, REG_PBA, REG_FCRTL, REG_FCRTH, REG_RDFH,
        REG_RDFT, REG_RDFHS, REG_RDFTS, REG_RDFPC, REG_RDBAH, REG_RDTR, REG_RXDCTL, REG_RADV,
        REG_RSRPD, REG_TXDMAC, REG_TDFH, REG_TDFT, REG_TDFHS, REG_TDFTS, REG_TDFPC, REG_TDBAH,
        REG_TIDV, REG_TXDCTL, REG_TADV, REG_TSPMT, REG_RXCSUM, REG_WUC, REG_WUFC, REG_WUS,
        REG_MANC, REG_IPAV, REG_WUPL,
    };
    static const struct { uint32_t start, end; } ranges[] = {
        { REG_MTA, REG_MTA_END }, { REG_RA, REG_RA_END }, { REG_VFTA, REG_VFTA_END },
        { REG_IP4AT, REG_IP4AT_END }, { REG_IP6AT, REG_IP6AT_END },
        { REG_WUPM, REG_WUPM_END }, { REG_FFLT, REG_FFLT_END }, { REG_FFMT, REG_FFMT_END },
        { REG_FFVT, REG_FFVT_END },
    };

    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        if (plain[i] == off)
            return true;
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
        if (off >= ranges[i].start && off < ranges[i].end)
            return true;
    return false;
}

static uint32_t status_value(struct e1000 *e)
{
    /* Copper, link up at 1000 Mb/s full duplex once the driver set SLU. */
    uint32_t v = STATUS_FD | STATUS_SPEED_1000 | STATUS_ASDV_1000;

    if (reg(e, REG_CTRL) & CTRL_SLU)
        v |= STATUS_LU;
    return v;
}

static void load_receive_address(struct e1000 *e)
{
    reg_set(e, REG_RA, (uint32_t)e->mac[0] | (uint32_t)e->mac[1] << 8 |
                           (uint32_t)e->mac[2] << 16 | (uint32_t)e->mac[3] << 24);
    reg_set(e, REG_RA + 4, (uint32_t)e->mac[4] | (uint32_t)e->mac[5] << 8 | RAH_AV);
}

/* Power-on and CTRL.RST: every register to its default, the EEPROM's MAC
 * into RA[0], rings stopped, whatever was in flight dropped. */
static void device_reset(struct e1000 *e)
{
    memset(e->regs, 0, sizeof(e->regs));
    reg_set(e, REG_CTRL, CTRL_FD | CTRL_ASDE | CTRL_SLU | CTRL_SPD_1000);
    reg_set(e, REG_LEDCTL, 0x07068302);
    reg_set(e, REG_PBA, 0x00100030);
    reg_set(e, REG_VET, 0x8100);
    reg_set(e, REG_RXCSUM, RXCSUM_IPOFL | RXCSUM_TUOFL);
    reg_set(e, REG_TXDCTL, 0x00010000);
    load_receive_address(e);
    memset(&e->ee, 0, sizeof(e->ee));
    e->ioaddr = 0;
    e1000_phy_reset(e);
    e1000_tx_reset(e);
    e1000_rx_reset(e);
    e1000_update_irq(e);
}

static uint32_t reg_read(struct e1000 *e, uint32_t off)
{
    uint32_t v;

    switch (off) {
    case REG_CTRL: case REG_EERD: case REG_MDIC: case REG_VET: case REG_IMS: case REG_RCTL:
    case REG_TCTL: case REG_RDBAL: case REG_RDLEN: case REG_RDH: case REG_RDT:
    case REG_TDBAL: case REG_TDLEN: case REG_TDH: case REG_TDT:
        return reg(e, off);
    case REG_STATUS:
        return status_value(e);
    case REG_EECD:
        return e1000_eecd_read(e);
    case REG_ICR:
        v = reg(e, off);
        if (v & reg(e, REG_IMS))
            v |= ICR_INT_ASSERTED;
        reg_set(e, REG_ICR, 0);
        e1000_update_irq(e);
        return v;
    case REG_ICS: case REG_IMC:
        return 0;   /* write-only */
    }
    if (off >= REG_STATS_FIRST && off <= REG_STATS_LAST)
        return stat_read(e, off);
    if (reg_is_storage(off))
        return reg(e, off);
    e1000_warn_once(e, WARN_REG_UNKNOWN, "guest read unknown register 0x%05x (reads 0)", off);
    return 0;
}

/* The guest may only point a tail inside the ring it configured. */
static void write_tail(struct e1000 *e, uint32_t tail_reg, uint32_t len_reg, uint32_t v)
{
    uint32_t count = reg(e, len_reg) / E1000_DESC_SIZE;

    v &= 0xffff;
    if (count && v >= count) {
        e1000_warn_once(e, WARN_TAIL, "tail 0x%x written beyond a ring of %u descriptors: ignored",
                        v, count);
        return;
    }
    reg_set(e, tail_reg, v);
}

static void reg_write(struct e1000 *e, uint32_t off, uint32_t v)
{
    switch (off) {
    case REG_CTRL:
        if (v & CTRL_RST) {
            device_reset(e);
            return;
        }
        if (v & CTRL_PHY_RST)
            e1000_phy_reset(e);
        reg_set(e, off, v);
        return;
    case REG_STATUS:
        return;
    case REG_EECD:
        e1000_eecd_write(e, v);
        return;
    case REG_EERD:
        e1000_eerd_write(e, v);
        return;
    case REG_MDIC:
        e1000_mdic_write(e, v);
        return;
    case REG_VET:
        reg_set(e, off, v & 0xffff);
        return;
    case REG_ICR:
        reg_set(e, off, reg(e, off) & ~v);
        e1000_update_irq(e);
        return;
    case REG_ICS:
        e1000_raise(e, v);
        return;
    case REG_IMS:
        reg_set(e, REG_IMS, reg(e, REG_IMS) | (v & ICR_CAUSES));
        e1000_update_irq(e);
        return;
    case REG_IMC:
        reg_set(e, REG_IMS, reg(e, REG_IMS) & ~v);
        e1000_update_irq(e);
        return;
    case REG_RCTL:
        reg_set(e, off, v);
        e1000_rx_buffers_added(e);
        return;
    case REG_TCTL:
        reg_set(e, off, v);
        if (v & TCTL_EN)
            e1000_kick(e);
        return;
    case REG_RDBAL: case REG_TDBAL:
        reg_set(e, off, v & ~0xfu);
        return;
    case REG_RDLEN: case REG_TDLEN:
        reg_set(e, off, v & 0xfffff);
        return;
    case REG_RDH: case REG_TDH:
        reg_set(e, off, v & 0xffff);
        return;
    case REG_RDT:
        write_tail(e, REG_RDT, REG_RDLEN, v);
        e1000_rx_buffers_added(e);
        return;
    case REG_TDT:
        write_tail(e, REG_TDT, REG_TDLEN, v);
        e1000_kick(e);
        return;
    }
    if (off >= REG_STATS_FIRST && off <= REG_STATS_LAST)
        return;   /* counters are read-only */
    if (off >= REG_RA && off < REG_RA_END && (off & 4)) {
        reg_set(e, off, v & (RAH_AV | RAH_AS_MASK | 0xffff));
        return;
    }
    if (reg_is_storage(off)) {
        reg_set(e, off, v);
        return;
    }
    e1000_warn_once(e, WARN_REG_UNKNOWN, "guest wrote 0x%08x to unknown register 0x%05x (ignored)",
                    v, off);
}

/* The 82540 decodes only aligned 32-bit accesses; a 64-bit one is taken as
 * two. Anything else reads as zero and is not written. */
static void mmio_access(struct e1000 *e, uint64_t offset, void *data, uint32_t len, bool is_write)
{
    for (uint32_t done = 0; done < len; done += 4) {
        uint32_t v;

        if ((len != 4 && len != 8) || (offset & 3) || offset + len > E1000_MMIO_SIZE) {
            e1000_warn_once(e, WARN_ACCESS_SIZE, "%u-byte access at 0x%llx ignored "
                            "(only aligned 32-bit accesses)", len, (unsigned long long)offset);
            if (!is_write)
                memset(data, 0, len);
            return;
        }
        if (is_write) {
            memcpy(&v, (uint8_t *)data + done, 4);
            reg_write(e, (uint32_t)offset + done, v);
        } else {
            v = reg_read(e, (uint32_t)offset + done);
            memcpy((uint8_t *)data + done, &v, 4);
        }
    }
}

/* BAR1: IOADDR (0) selects a register, IODATA (4) reads or writes it. The
 * driver resets the 82540 through here. */
static void io_access(struct e1000 *e, uint64_t offset, void *data, uint32_t len, bool is_write)
{
    uint32_t v = 0;

    if (len != 4 || (offset != 0 && offset != 4)) {
        if (!is_write)
            memset(data, 0, len);
        return;
    }
    if (is_write)
        memcpy(&v, data, 4);
    if (offset == 0) {
        if (is_write)
            e->ioaddr = v & (E1000_MMIO_SIZE - 4);
        else
            memcpy(data, &e->ioaddr, 4);
        return;
    }
    mmio_access(e, e->ioaddr, data, 4, is_write);
}

static void e1000_bar_io(struct pci_device *pdev, int bar, uint64_t offset, void *data,
                         uint32_t len, bool is_write)
{
    struct e1000 *e = pdev->opaque;

    pthread_mutex_lock(&e->lock);
    if (bar == 0)
        mmio_access(e, offset, data, len, is_write);
    else if (bar == 1)
        io_access(e, offset, data, len, is_write);
    else if (!is_write)
        memset(data, 0, len);
    pthread_mutex_unlock(&e->lock);
}

bool e1000_bus_master(struct e1000 *e)
{
    return pci_bus_master(&e->pdev);
}

/* Called with the bus lock held, so it only asks the event loop to look
 * again: turning bus mastering back on resumes stalled rings. */
static void e1000_config_written(struct pci_device *pdev, uint32_t offset, uint32_t len)
{
    struct e1000 *e = pdev->opaque;

    if (offset <= PCI_COMMAND_REG && offset + len > PCI_COMMAND_REG && e->host.kick)
        e->host.kick(e->host.kick_opaque);
}

static const struct pci_dev_ops e1000_pci_ops = {
    .bar_io = e1000_bar_io,
    .config_written = e1000_config_written,
};

struct e1000 *e1000_create(const uint8_t mac[6], const struct e1000_host *host,
                           struct device *dev)
{
    struct e1000 *e = calloc(1, sizeof(*e));

    if (!e)
        return NULL;
    pthread_mutex_init(&e->lock, NULL);
    /* Room for the largest packet, a VLAN tag in front, and the padding
     * and FCS the NIC may add behind. */
    e->txbuf = malloc(E1000_HEADROOM + E1000_MAX_PACKET + 64);
    e->txseg = malloc(E1000_HEADROOM + E1000_MAX_PACKET + 64);
    e->rxbuf = malloc(E1000_MAX_PACKET + 64);
    if (!e->txbuf || !e->txseg || !e->rxbuf) {
        e1000_destroy(e);
        return NULL;
    }
    e->host = *host;
    memcpy(e->mac, mac, 6);
    e1000_eeprom_init(e);

    e->pdev.dev = dev;
    e->pdev.ops = &e1000_pci_ops;
    e->pdev.opaque = e;
    pci_device_init(&e->pdev, PCI_VENDOR_INTEL, PCI_DEVICE_82540EM, PCI_CLASS_ETHERNET,
                    PCI_VENDOR_INTEL, PCI_SUBSYS_82540EM);
    e->pdev.config[PCI_INTERRUPT_PIN_REG] = 1;   /* INTA */
    pci_device_set_bar(&e->pdev, 0, PCI_BAR_MEM32, E1000_MMIO_SIZE, false);
    pci_device_set_bar(&e->pdev, 1, PCI_BAR_IO, E1000_IO_SIZE, false);

    pthread_mutex_lock(&e->lock);
    device_reset(e);
    pthread_mutex_unlock(&e->lock);
    return e;
}

int e1000_attach(struct e1000 *e, struct pci_bus *bus, int slot)
{
    return pci_device_add(bus, &e->pdev, slot);
}

struct pci_device *e1000_pci(struct e1000 *e)
{
    return &e->pdev;
}

void e1000_destroy(struct e1000 *e)
{
    if (!e)
        return;
    pthread_mutex_destroy(&e->lock);
    free(e->txbuf);
    free(e->txseg);
    free(e->rxbuf);
    free(e);
}

void e1000_service(struct e1000 *e)
{
    pthread_mutex_lock(&e->lock);
    e->tx_kicked = false;
    if (e1000_bus_master(e) && e1000_tx_run(e, 256))
        e1000_kick(e);   /* let vCPUs in between long bursts */
    if (e->rx_stalled)
        e1000_rx_run(e, 64);
    pthread_mutex_unlock(&e->lock);
}

void e1000_rx_ready(struct e1000 *e)
{
    pthread_mutex_lock(&e->lock);
    e1000_rx_run(e, 64);
    pthread_mutex_unlock(&e->lock);
}
