/* config.c: the virtio-blk features we offer and the device config space
 * (virtio 1.2, 5.2.4), little-endian as on x86. */
#include "blk.h"

#include <linux/virtio_config.h>
#include <string.h>

uint64_t blk_device_features(const struct blk_dev *dev)
{
    uint64_t f = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX) |
                 (1ull << VIRTIO_RING_F_INDIRECT_DESC) | (1ull << VIRTIO_BLK_F_SEG_MAX) |
                 (1ull << VIRTIO_BLK_F_SIZE_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) |
                 (1ull << VIRTIO_BLK_F_FLUSH) | (1ull << VIRTIO_BLK_F_MQ) |
                 (1ull << VIRTIO_BLK_F_CONFIG_WCE) | (1ull << VHOST_USER_F_PROTOCOL_FEATURES);
    if (dev->opts.readonly)
        f |= 1ull << VIRTIO_BLK_F_RO;
    else
        f |= (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
    return f;
}

void blk_config_fill(const struct blk_dev *dev, struct virtio_blk_config *cfg)
{
    /* fallocate() ranges: at most 4 GiB - 512 per request, one range each */
    const uint32_t max_range = UINT32_MAX / BLK_SECTOR * BLK_SECTOR / BLK_SECTOR;

    memset(cfg, 0, sizeof(*cfg));
    cfg->capacity = dev->capacity;
    cfg->size_max = BLK_SIZE_MAX;
    cfg->seg_max = BLK_SEG_MAX;
    cfg->blk_size = dev->blk_size;
    cfg->wce = __atomic_load_n(&dev->wce, __ATOMIC_RELAXED);
    cfg->num_queues = (uint16_t)dev->opts.queues;
    cfg->max_discard_sectors = max_range;
    cfg->max_discard_seg = 1;
    cfg->discard_sector_alignment = dev->blk_size / BLK_SECTOR;
    cfg->max_write_zeroes_sectors = max_range;
    cfg->max_write_zeroes_seg = 1;
    cfg->write_zeroes_may_unmap = 1;
}
