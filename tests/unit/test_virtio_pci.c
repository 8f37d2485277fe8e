/* virtio-pci against a fake device class, without KVM: identity and
 * capabilities in config space, feature negotiation (FEATURES_OK refused
 * for features nobody offered), queue setup and start, status reset, the
 * ISR and config interrupts, and hostile offsets, widths and values. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "device.h"
#include "pci.h"
#include "virtio.h"
#include "vm.h"

#define FAKE_FEATURES ((1ULL << 1) | (1ULL << VIRTIO_F_EVENT_IDX) | (1ULL << 30) | \
                       (1ULL << VIRTIO_F_ACCESS_PLATFORM))
#define FAKE_QUEUES   2
#define FAKE_QMAX     256

struct fake {
    struct virtio_device vdev;
    uint8_t config[16];
    int starts, stops, start_ret;
    uint64_t features;
    struct virtio_queue_setup q[VIRTIO_MAX_QUEUES];
    unsigned nq;
};

struct fixture {
    struct vm vm;
    struct device bridge_dev, dev;
    struct fake fake;
    struct virtio_pci *vp;
    struct pci_device *pdev;
};

static uint64_t fake_features(struct virtio_device *v) { (void)v; return FAKE_FEATURES; }
static uint16_t fake_num_queues(struct virtio_device *v) { (void)v; return FAKE_QUEUES; }
static uint16_t fake_qmax(struct virtio_device *v, uint16_t q) { (void)v; (void)q; return FAKE_QMAX; }
static uint32_t fake_config_size(struct virtio_device *v) { (void)v; return 16; }

static void fake_config_read(struct virtio_device *v, uint32_t off, void *data, uint32_t len)
{
    struct fake *f = v->opaque;
    assert_true(off + len <= sizeof(f->config));
    memcpy(data, f->config + off, len);
}

static void fake_config_write(struct virtio_device *v, uint32_t off, const void *data,
                              uint32_t len)
{
    struct fake *f = v->opaque;
    assert_true(off + len <= sizeof(f->config));
    memcpy(f->config + off, data, len);
}

static int fake_start(struct virtio_device *v, uint64_t features,
                      const struct virtio_queue_setup *q, unsigned n)
{
    struct fake *f = v->opaque;
    f->starts++;
    f->features = features;
    f->nq = n;
    memcpy(f->q, q, n * sizeof(*q));
    return f->start_ret;
}

static void fake_stop(struct virtio_device *v)
{
    ((struct fake *)v->opaque)->stops++;
}

static const struct virtio_device_ops fake_ops = {
    .device_id = VIRTIO_ID_BLOCK,
    .features = fake_features,
    .num_queues = fake_num_queues,
    .queue_max_size = fake_qmax,
    .config_size = fake_config_size,
    .config_read = fake_config_read,
    .config_write = fake_config_write,
    .start = fake_start,
    .stop = fake_stop,
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    iobus_init(&f->vm.pio, IOBUS_PIO);
    iobus_init(&f->vm.mmio, IOBUS_MMIO);
    f->vm.pci = pci_bus_create(&f->vm, &f->bridge_dev);
    assert_non_null(f->vm.pci);
    f->dev.id = "vblk0";
    f->fake.vdev.ops = &fake_ops;
    f->fake.vdev.opaque = &f->fake;
    for (unsigned i = 0; i < sizeof(f->fake.config); i++)
        f->fake.config[i] = (uint8_t)(0xa0 + i);
    f->vp = virtio_pci_create(&f->vm, &f->dev, &f->fake.vdev,
                              &(struct virtio_pci_params){ .class_code = 0x010000,
                                                           .subsys_id = 2 });
    assert_non_null(f->vp);
    assert_int_equal(virtio_pci_plug(f->vp), 0);
    f->pdev = virtio_pci_pdev(f->vp);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    virtio_pci_destroy(f->vp);
    pci_bus_destroy(f->vm.pci);
    iobus_destroy(&f->vm.pio);
    iobus_destroy(&f->vm.mmio);
    free(f);
    return 0;
}

static uint64_t rd(struct fixture *f, uint64_t off, uint32_t len)
{
    uint64_t v = 0;
    f->pdev->ops->bar_io(f->pdev, VIRTIO_PCI_BAR, off, &v, len, false);
    return v;
}

static void wr(struct fixture *f, uint64_t off, uint64_t v, uint32_t len)
{
    f->pdev->ops->bar_io(f->pdev, VIRTIO_PCI_BAR, off, &v, len, true);
}

static uint32_t cfg_read(struct fixture *f, uint32_t reg, uint32_t len)
{
    uint32_t v = 0;
    pci_config_access(f->vm.pci, 0, (uint8_t)(f->pdev->slot << 3), reg, &v, len, false);
    return v;
}

static uint64_t host_features(struct fixture *f)
{
    wr(f, VIRTIO_PCI_DFSELECT, 0, 4);
    uint64_t lo = rd(f, VIRTIO_PCI_DF, 4);
    wr(f, VIRTIO_PCI_DFSELECT, 1, 4);
    return lo | rd(f, VIRTIO_PCI_DF, 4) << 32;
}

static void set_guest_features(struct fixture *f, uint64_t g)
{
    wr(f, VIRTIO_PCI_GFSELECT, 0, 4);
    wr(f, VIRTIO_PCI_GF, (uint32_t)g, 4);
    wr(f, VIRTIO_PCI_GFSELECT, 1, 4);
    wr(f, VIRTIO_PCI_GF, g >> 32, 4);
}

static uint8_t status(struct fixture *f)
{
    return (uint8_t)rd(f, VIRTIO_PCI_STATUS, 1);
}

static void test_identity_and_capabilities(void **state)
{
    struct fixture *f = *state;
    unsigned seen = 0;

    assert_int_equal(cfg_read(f, 0, 2), 0x1af4);
    assert_int_equal(cfg_read(f, 2, 2), 0x1042);
    assert_int_equal(cfg_read(f, 8, 1), 1);          /* revision */
    assert_int_equal(cfg_read(f, 8, 4) >> 8, 0x010000);          /* mass storage, SCSI */
    assert_int_equal(cfg_read(f, 0x2c, 2), 0x1af4);
    for (uint32_t at = cfg_read(f, 0x34, 1); at; at = cfg_read(f, at + 1, 1)) {
        if (cfg_read(f, at, 1) != 0x09)
            continue;
        unsigned type = cfg_read(f, at + 3, 1);
        seen |= 1u << type;
        if (type == 5)
            continue;
        assert_int_equal(cfg_read(f, at + 4, 1), VIRTIO_PCI_BAR);
        if (type == 1)
            assert_int_equal(cfg_read(f, at + 8, 4), VIRTIO_PCI_COMMON_OFF);
        if (type == 2) {
            assert_int_equal(cfg_read(f, at + 8, 4), VIRTIO_PCI_NOTIFY_OFF);
            assert_int_equal(cfg_read(f, at + 16, 4), VIRTIO_PCI_NOTIFY_MULT);
        }
        if (type == 4)
            assert_int_equal(cfg_read(f, at + 12, 4), 16);
    }
    assert_int_equal(seen, 0x3e);   /* types 1..5 */
    assert_int_equal(rd(f, VIRTIO_PCI_NUM_QUEUES, 2), FAKE_QUEUES);
    assert_int_equal(rd(f, VIRTIO_PCI_DEVICE_OFF + 4, 4), 0xa7a6a5a4);
}

static void test_feature_negotiation(void **state)
{
    struct fixture *f = *state;
    uint64_t h = host_features(f);

    /* VERSION_1 added; the fake's legacy and IOMMU bits dropped. */
    assert_true(h & (1ULL << VIRTIO_F_VERSION_1));
    assert_true(h & (1ULL << VIRTIO_F_EVENT_IDX));
    assert_false(h & (1ULL << 30));
    assert_false(h & (1ULL << VIRTIO_F_ACCESS_PLATFORM));
    wr(f, VIRTIO_PCI_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
    set_guest_features(f, h);
    wr(f, VIRTIO_PCI_STATUS, 0x0b, 1);
    assert_int_equal(status(f), 0x0b);
    /* Features are frozen after FEATURES_OK. */
    set_guest_features(f, 0);
    wr(f, VIRTIO_PCI_GFSELECT, 1, 4);
    assert_int_equal(rd(f, VIRTIO_PCI_GF, 4), 1);
}

static void test_features_ok_refused(void **state)
{
    struct fixture *f = *state;

    set_guest_features(f, (1ULL << VIRTIO_F_VERSION_1) | (1ULL << 5));
    wr(f, VIRTIO_PCI_STATUS, 0x0b, 1);
    assert_int_equal(status(f), 0x03);
    /* DRIVER_OK without FEATURES_OK does not start anything. */
    wr(f, VIRTIO_PCI_STATUS, 0x07, 1);
    assert_int_equal(f->fake.starts, 0);
    /* Without VERSION_1 a modern device refuses as well. */
    wr(f, VIRTIO_PCI_STATUS, 0, 1);
    set_guest_features(f, 1ULL << 1);
    wr(f, VIRTIO_PCI_STATUS, 0x0b, 1);
    assert_int_equal(status(f), 0x03);
}

static void setup_queue(struct fixture *f, uint16_t q, uint16_t size, uint64_t base)
{
    wr(f, VIRTIO_PCI_Q_SELECT, q, 2);
    wr(f, VIRTIO_PCI_Q_SIZE, size, 2);
    wr(f, VIRTIO_PCI_Q_MSIX, q + 1u, 2);
    wr(f, VIRTIO_PCI_Q_DESC, base & 0xffffffff, 4);       /* by halves */
    wr(f, VIRTIO_PCI_Q_DESC + 4, base >> 32, 4);
    wr(f, VIRTIO_PCI_Q_DRIVER, base + 0x1000, 8);         /* whole */
    wr(f, VIRTIO_PCI_Q_DEVICE, base + 0x2000, 8);
    wr(f, VIRTIO_PCI_Q_ENABLE, 1, 2);
}

static void drive_to_ok(struct fixture *f)
{
    wr(f, VIRTIO_PCI_STATUS, 0x03, 1);
    set_guest_features(f, (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_EVENT_IDX));
    wr(f, VIRTIO_PCI_STATUS, 0x0b, 1);
    assert_int_equal(status(f), 0x0b);
}

static void test_queue_setup_and_start(void **state)
{
    struct fixture *f = *state;
    uint64_t v;

    wr(f, VIRTIO_PCI_Q_SELECT, 0, 2);
    assert_int_equal(rd(f, VIRTIO_PCI_Q_SIZE, 2), FAKE_QMAX);
    wr(f, VIRTIO_PCI_Q_SIZE, 300, 2);                     /* not a power of two */
    assert_int_equal(rd(f, VIRTIO_PCI_Q_SIZE, 2), FAKE_QMAX);
    wr(f, VIRTIO_PCI_Q_SIZE, 512, 2);                     /* beyond the maximum */
    assert_int_equal(rd(f, VIRTIO_PCI_Q_SIZE, 2), FAKE_QMAX);
    wr(f, VIRTIO_PCI_Q_MSIX, 77, 2);                      /* no such vector */
    assert_int_equal(rd(f, VIRTIO_PCI_Q_MSIX, 2), VIRTIO_PCI_NO_VECTOR);
    drive_to_ok(f);
    setup_queue(f, 0, 128, 0x123450000ULL);
    assert_int_equal(rd(f, VIRTIO_PCI_Q_DESC + 4, 4), 1);
    assert_int_equal(rd(f, VIRTIO_PCI_Q_NOFF, 2), 0);
    wr(f, VIRTIO_PCI_Q_SELECT, 1, 2);
    assert_int_equal(rd(f, VIRTIO_PCI_Q_NOFF, 2), 1);
    wr(f, VIRTIO_PCI_STATUS, 0x0f, 1);
    assert_int_equal(status(f), 0x0f);
    assert_int_equal(f->fake.starts, 1);
    assert_int_equal(f->fake.nq, 1);                      /* queue 1 was not enabled */
    assert_int_equal(f->fake.q[0].index, 0);
    assert_int_equal(f->fake.q[0].size, 128);
    assert_int_equal(f->fake.q[0].desc, 0x123450000ULL);
    assert_int_equal(f->fake.q[0].driver, 0x123451000ULL);
    assert_int_equal(f->fake.q[0].device, 0x123452000ULL);
    assert_true(f->fake.q[0].kick_fd >= 0 && f->fake.q[0].call_fd >= 0);
    assert_int_equal(f->fake.features, (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_EVENT_IDX));
    /* Queue registers are frozen while the device runs. */
    wr(f, VIRTIO_PCI_Q_SELECT, 0, 2);
    wr(f, VIRTIO_PCI_Q_SIZE, 64, 2);
    assert_int_equal(rd(f, VIRTIO_PCI_Q_SIZE, 2), 128);
    /* A notify that KVM did not catch still reaches the kick eventfd. */
    wr(f, VIRTIO_PCI_NOTIFY_OFF, 0, 4);
    assert_int_equal(read(f->fake.q[0].kick_fd, &v, 8), 8);
    assert_int_equal(v, 1);
}

static void test_reset(void **state)
{
    struct fixture *f = *state;

    drive_to_ok(f);
    setup_queue(f, 1, 64, 0x10000);
    wr(f, VIRTIO_PCI_MSIX_CONFIG, 0, 2);
    wr(f, VIRTIO_PCI_STATUS, 0x0f, 1);
    assert_int_equal(f->fake.starts, 1);
    wr(f, VIRTIO_PCI_STATUS, 0, 1);
    assert_int_equal(f->fake.stops, 1);
    assert_int_equal(status(f), 0);
    assert_int_equal(rd(f, VIRTIO_PCI_MSIX_CONFIG, 2), VIRTIO_PCI_NO_VECTOR);
    wr(f, VIRTIO_PCI_GFSELECT, 1, 4);
    assert_int_equal(rd(f, VIRTIO_PCI_GF, 4), 0);
    wr(f, VIRTIO_PCI_Q_SELECT, 1, 2);
    assert_int_equal(rd(f, VIRTIO_PCI_Q_SIZE, 2), FAKE_QMAX);
    assert_int_equal(rd(f, VIRTIO_PCI_Q_ENABLE, 2), 0);
    assert_int_equal(rd(f, VIRTIO_PCI_Q_DESC, 8), 0);
    /* A second reset does not stop a device that is not running. */
    wr(f, VIRTIO_PCI_STATUS, 0, 1);
    assert_int_equal(f->fake.stops, 1);
}

static void test_start_failure_needs_reset(void **state)
{
    struct fixture *f = *state;

    f->fake.start_ret = -EIO;
    drive_to_ok(f);
    setup_queue(f, 0, 256, 0x20000);
    wr(f, VIRTIO_PCI_STATUS, 0x0f, 1);
    assert_true(status(f) & VIRTIO_STATUS_NEEDS_RESET);
    assert_int_equal(rd(f, VIRTIO_PCI_ISR_OFF, 1), 2);    /* config interrupt */
    wr(f, VIRTIO_PCI_STATUS, 0, 1);
    assert_int_equal(f->fake.stops, 0);                   /* it never started */
    assert_int_equal(status(f), 0);
}

static void test_config_change_and_isr(void **state)
{
    struct fixture *f = *state;
    uint8_t gen = (uint8_t)rd(f, VIRTIO_PCI_CFG_GENERATION, 1);

    assert_int_equal(rd(f, VIRTIO_PCI_ISR_OFF, 1), 0);
    virtio_device_config_changed(&f->fake.vdev);
    assert_int_equal(rd(f, VIRTIO_PCI_CFG_GENERATION, 1), (uint8_t)(gen + 1));
    assert_int_equal(rd(f, VIRTIO_PCI_ISR_OFF, 1), 2);
    assert_int_equal(rd(f, VIRTIO_PCI_ISR_OFF, 1), 0);    /* read to clear */
    wr(f, VIRTIO_PCI_DEVICE_OFF + 2, 0x5555, 2);
    assert_int_equal(f->fake.config[2], 0x55);
    /* Beyond the device's 16 bytes: nothing reaches it. */
    wr(f, VIRTIO_PCI_DEVICE_OFF + 14, 0x11111111, 4);
    assert_int_equal(f->fake.config[14], 0xae);
}

static void test_hostile_accesses(void **state)
{
    struct fixture *f = *state;
    static const uint32_t lens[] = { 0, 1, 2, 3, 4, 5, 7, 8 };

    srand(4);
    for (int i = 0; i < 200000; i++) {
        uint64_t v = (uint64_t)rand() << 33 ^ (uint64_t)rand() << 11 ^ (uint64_t)rand();
        uint64_t off = (uint64_t)rand() % (VIRTIO_PCI_BAR_SIZE + 64);
        uint32_t len = lens[rand() % 8];
        uint8_t buf[8];
        if (i % 4 == 0)
            off = (uint64_t)rand() % 0x40;     /* mostly the common config */
        memcpy(buf, &v, 8);
        f->pdev->ops->bar_io(f->pdev, VIRTIO_PCI_BAR, off, buf, len, rand() & 1);
        if (i % 1000 == 0) {
            /* Hammer a valid start every so often, with garbage queues. */
            wr(f, VIRTIO_PCI_STATUS, 0, 1);
            drive_to_ok(f);
            setup_queue(f, (uint16_t)(rand() % 3), (uint16_t)rand(), v);
            wr(f, VIRTIO_PCI_STATUS, 0x0f, 1);
        }
    }
    f->pdev->ops->bar_io(f->pdev, 0, 0, &(uint64_t){ 0 }, 8, true);   /* another BAR */
    assert_int_equal(rd(f, VIRTIO_PCI_NUM_QUEUES, 2), FAKE_QUEUES);
    assert_true(f->fake.starts >= f->fake.stops);
    wr(f, VIRTIO_PCI_STATUS, 0, 1);
    assert_int_equal(f->fake.starts, f->fake.stops);
    assert_int_equal(status(f), 0);
    /* A queue that does not exist reads as absent and takes no writes. */
    wr(f, VIRTIO_PCI_Q_SELECT, 9, 2);
    wr(f, VIRTIO_PCI_Q_SIZE, 4, 2);
    assert_int_equal(rd(f, VIRTIO_PCI_Q_SIZE, 2), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identity_and_capabilities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feature_negotiation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_features_ok_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_setup_and_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_failure_needs_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_change_and_isr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_accesses, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
