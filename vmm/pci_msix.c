#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "irq.h"
#include "pci.h"
#include "pci_msix.h"

#define PCI_CAP_ID_MSIX      0x11
#define MSIX_CTRL_ENABLE     0x8000
#define MSIX_CTRL_FN_MASK    0x4000
#define MSIX_ENTRY_MASKED    0x1
#define MSIX_ENTRY_SIZE      16

static uint16_t msix_control(const struct pci_msix *m)
{
    return (uint16_t)(m->pdev->config[m->cap + 2] | m->pdev->config[m->cap + 3] << 8);
}

int pci_msix_init(struct pci_msix *m, struct pci_device *pdev, struct irq_router *irq,
                  uint16_t nvec, int bar, uint32_t table_offset, uint32_t pba_offset)
{
    uint32_t table_bir = table_offset | (uint32_t)bar, pba_bir = pba_offset | (uint32_t)bar;

    memset(m, 0, sizeof(*m));
    if (nvec == 0 || nvec > PCI_MSIX_MAX_VECTORS || (table_offset | pba_offset) & 7 || bar < 0 ||
        bar >= PCI_NUM_BARS)
        return -EINVAL;
    m->cap = pci_add_capability(pdev, PCI_CAP_ID_MSIX, 12);
    if (!m->cap)
        return -ENOSPC;
    m->table = calloc(nvec, sizeof(*m->table));
    m->pba = calloc((nvec + 63) / 64, sizeof(*m->pba));
    if (!m->table || !m->pba) {
        pci_msix_destroy(m);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < nvec; i++)
        m->table[i].ctrl = MSIX_ENTRY_MASKED;
    m->pdev = pdev;
    m->irq = irq;
    m->nvec = nvec;
    m->bar = bar;
    m->table_offset = table_offset;
    m->pba_offset = pba_offset;
    pthread_mutex_init(&m->lock, NULL);
    pdev->msix = m;

    pdev->config[m->cap + 2] = (uint8_t)(nvec - 1);
    pdev->config[m->cap + 3] = (uint8_t)((nvec - 1) >> 8);
    memcpy(&pdev->config[m->cap + 4], &table_bir, 4);
    memcpy(&pdev->config[m->cap + 8], &pba_bir, 4);
    pdev->wmask[m->cap + 3] = (MSIX_CTRL_ENABLE | MSIX_CTRL_FN_MASK) >> 8;
    return 0;
}

void pci_msix_destroy(struct pci_msix *m)
{
    if (m->pdev)
        pthread_mutex_destroy(&m->lock);
    free(m->table);
    free(m->pba);
    m->table = NULL;
    m->pba = NULL;
}

static bool vector_blocked(const struct pci_msix *m, uint16_t v)
{
    return (msix_control(m) & MSIX_CTRL_FN_MASK) || (m->table[v].ctrl & MSIX_ENTRY_MASKED);
}

static void deliver(struct pci_msix *m, uint16_t v)
{
    const struct pci_msix_entry *e = &m->table[v];

    device_count_irq(m->pdev->dev);
    if (m->irq)   /* unit tests run devices without KVM */
        irq_msi_signal(m->irq, (uint64_t)e->addr_hi << 32 | e->addr_lo, e->data);
}

/* Sends what is pending and no longer masked. Lock held. */
static void deliver_released(struct pci_msix *m)
{
    if (!(msix_control(m) & MSIX_CTRL_ENABLE))
        return;
    for (uint16_t v = 0; v < m->nvec; v++) {
        if ((m->pba[v / 64] >> (v % 64) & 1) && !vector_blocked(m, v)) {
            m->pba[v / 64] &= ~(1ULL << (v % 64));
            deliver(m, v);
        }
    }
}

void pci_msix_notify(struct pci_msix *m, uint16_t vector)
{
    if (vector >= m->nvec)
        return;
    pthread_mutex_lock(&m->lock);
    if (msix_control(m) & MSIX_CTRL_ENABLE) {
        if (vector_blocked(m, vector))
            m->pba[vector / 64] |= 1ULL << (vector % 64);
        else
            deliver(m, vector);
    }
    pthread_mutex_unlock(&m->lock);
}

bool pci_msix_enabled(struct pci_msix *m)
{
    return (msix_control(m) & MSIX_CTRL_ENABLE) != 0;
}

void pci_msix_set_notifier(struct pci_msix *m, void (*fn)(void *opaque), void *opaque)
{
    m->changed = fn;
    m->changed_opaque = opaque;
}

static void notify_changed(struct pci_msix *m)
{
    if (m->changed)
        m->changed(m->changed_opaque);
}

bool pci_msix_vector_message(struct pci_msix *m, uint16_t vector, uint64_t *addr, uint32_t *data)
{
    bool usable;

    if (vector >= m->nvec)
        return false;
    pthread_mutex_lock(&m->lock);
    usable = (msix_control(m) & MSIX_CTRL_ENABLE) && !vector_blocked(m, vector);
    *addr = (uint64_t)m->table[vector].addr_hi << 32 | m->table[vector].addr_lo;
    *data = m->table[vector].data;
    pthread_mutex_unlock(&m->lock);
    return usable;
}

void pci_msix_config_written(struct pci_msix *m, uint32_t offset, uint32_t len)
{
    if (offset + len <= m->cap + 2u || offset > m->cap + 3u)
        return;
    pthread_mutex_lock(&m->lock);
    deliver_released(m);
    pthread_mutex_unlock(&m->lock);
    notify_changed(m);
}

bool pci_msix_bar_access(struct pci_msix *m, int bar, uint64_t offset, void *data, uint32_t len,
                         bool is_write)
{
    uint64_t table_end = m->table_offset + (uint64_t)m->nvec * MSIX_ENTRY_SIZE;
    uint64_t pba_end = m->pba_offset + (uint64_t)(m->nvec + 63) / 64 * 8;

    if (bar != m->bar)
        return false;
    if (offset >= m->table_offset && offset < table_end) {
        uint64_t rel = offset - m->table_offset;
        uint8_t *entry;
        /* The spec allows aligned dword and qword accesses; anything else
         * is dropped (reads as all ones). */
        if ((len != 4 && len != 8) || (rel & (len - 1)) || offset + len > table_end) {
            if (!is_write)
                memset(data, 0xff, len);
            return true;
        }
        pthread_mutex_lock(&m->lock);
        entry = (uint8_t *)&m->table[rel / MSIX_ENTRY_SIZE] + rel % MSIX_ENTRY_SIZE;
        if (is_write) {
            memcpy(entry, data, len);
            m->table[rel / MSIX_ENTRY_SIZE].ctrl &= MSIX_ENTRY_MASKED;   /* other bits reserved */
            deliver_released(m);
        } else {
            memcpy(data, entry, len);
        }
        pthread_mutex_unlock(&m->lock);
        if (is_write)
            notify_changed(m);
        return true;
    }
    if (offset >= m->pba_offset && offset < pba_end) {
        if (!is_write) {
            uint64_t rel = offset - m->pba_offset;
            pthread_mutex_lock(&m->lock);
            for (uint32_t i = 0; i < len; i++)
                ((uint8_t *)data)[i] = rel + i < pba_end - m->pba_offset
                                           ? (uint8_t)(m->pba[(rel + i) / 8] >> ((rel + i) % 8 * 8))
                                           : 0;
            pthread_mutex_unlock(&m->lock);
        }
        return true;   /* the PBA is read-only */
    }
    return false;
}
