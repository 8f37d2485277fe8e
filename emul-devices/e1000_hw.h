/* Inside the 82540EM model: register offsets and bits (from Intel's 8254x
 * Software Developer's Manual), the device state, and the helpers that the
 * model's files (registers, EEPROM/PHY, RX, TX) share. Not for outside use:
 * the public face is e1000.h. */
#ifndef EMUL_E1000_HW_H
#define EMUL_E1000_HW_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "e1000.h"
#include "pci.h"

#define E1000_MMIO_SIZE   0x20000      /* BAR0 */
#define E1000_IO_SIZE     0x40         /* BAR1: IOADDR at 0, IODATA at 4 */
#define E1000_NREGS       (E1000_MMIO_SIZE / 4)
#define E1000_EEPROM_WORDS 64
#define E1000_EEPROM_SUM  0xBABA
#define E1000_PHY_ADDR    1
#define E1000_DESC_SIZE   16
#define E1000_MAX_PACKET  0x10000      /* one frame, or one TSO packet before segmentation */
#define E1000_MAX_RX_FRAME 16384       /* what RCTL.LPE allows */
#define E1000_MIN_FRAME   60           /* without FCS */
#define E1000_FCS_LEN     4

/* Register offsets in BAR0. */
enum {
    REG_CTRL = 0x0000, REG_STATUS = 0x0008, REG_EECD = 0x0010, REG_EERD = 0x0014,
    REG_CTRL_EXT = 0x0018, REG_FLA = 0x001c, REG_MDIC = 0x0020, REG_FCAL = 0x0028,
    REG_FCAH = 0x002c, REG_FCT = 0x0030, REG_VET = 0x0038, REG_ICR = 0x00c0, REG_ITR = 0x00c4,
    REG_ICS = 0x00c8, REG_IMS = 0x00d0, REG_IMC = 0x00d8, REG_RCTL = 0x0100,
    REG_FCTTV = 0x0170, REG_TXCW = 0x0178, REG_RXCW = 0x0180, REG_TCTL = 0x0400,
    REG_TIPG = 0x0410, REG_AIT = 0x0458, REG_LEDCTL = 0x0e00, REG_PBA = 0x1000,
    REG_FCRTL = 0x2160, REG_FCRTH = 0x2168,
    REG_RDFH = 0x2410, REG_RDFT = 0x2418, REG_RDFHS = 0x2420, REG_RDFTS = 0x2428,
    REG_RDFPC = 0x2430,
    REG_RDBAL = 0x2800, REG_RDBAH = 0x2804, REG_RDLEN = 0x2808, REG_RDH = 0x2810,
    REG_RDT = 0x2818, REG_RDTR = 0x2820, REG_RXDCTL = 0x2828, REG_RADV = 0x282c,
    REG_RSRPD = 0x2c00, REG_TXDMAC = 0x3000,
    REG_TDFH = 0x3410, REG_TDFT = 0x3418, REG_TDFHS = 0x3420, REG_TDFTS = 0x3428,
    REG_TDFPC = 0x3430,
    REG_TDBAL = 0x3800, REG_TDBAH = 0x3804, REG_TDLEN = 0x3808, REG_TDH = 0x3810,
    REG_TDT = 0x3818, REG_TIDV = 0x3820, REG_TXDCTL = 0x3828, REG_TADV = 0x382c,
    REG_TSPMT = 0x3830,
    REG_STATS_FIRST = 0x4000, REG_STATS_LAST = 0x40fc,
    REG_RXCSUM = 0x5000,
    REG_MTA = 0x5200, REG_MTA_END = 0x5400,       /* 128 registers */
    REG_RA = 0x5400, REG_RA_END = 0x5480,         /* 16 pairs RAL/RAH */
    REG_VFTA = 0x5600, REG_VFTA_END = 0x5800,     /* 128 registers */
    REG_WUC = 0x5800, REG_WUFC = 0x5808, REG_WUS = 0x5810, REG_MANC = 0x5820,
    REG_IPAV = 0x5838, REG_IP4AT = 0x5840, REG_IP4AT_END = 0x5860,
    REG_IP6AT = 0x5880, REG_IP6AT_END = 0x5890, REG_WUPL = 0x5900,
    REG_WUPM = 0x5a00, REG_WUPM_END = 0x5a80, REG_FFLT = 0x5f00, REG_FFLT_END = 0x5f20,
    REG_FFMT = 0x9000, REG_FFMT_END = 0x9400, REG_FFVT = 0x9800, REG_FFVT_END = 0x9c00,
};

/* Statistics (0x4000-0x40ff), all clear on read. */
enum {
    STAT_CRCERRS = 0x4000, STAT_MPC = 0x4010, STAT_RLEC = 0x4040,
    STAT_PRC64 = 0x405c, STAT_PRC127 = 0x4060, STAT_PRC255 = 0x4064, STAT_PRC511 = 0x4068,
    STAT_PRC1023 = 0x406c, STAT_PRC1522 = 0x4070,
    STAT_GPRC = 0x4074, STAT_BPRC = 0x4078, STAT_MPRC = 0x407c, STAT_GPTC = 0x4080,
    STAT_GORCL = 0x4088, STAT_GORCH = 0x408c, STAT_GOTCL = 0x4090, STAT_GOTCH = 0x4094,
    STAT_RNBC = 0x40a0, STAT_RUC = 0x40a4, STAT_RFC = 0x40a8, STAT_ROC = 0x40ac,
    STAT_RJC = 0x40b0,
    STAT_TORL = 0x40c0, STAT_TORH = 0x40c4, STAT_TOTL = 0x40c8, STAT_TOTH = 0x40cc,
    STAT_TPR = 0x40d0, STAT_TPT = 0x40d4,
    STAT_PTC64 = 0x40d8, STAT_PTC127 = 0x40dc, STAT_PTC255 = 0x40e0, STAT_PTC511 = 0x40e4,
    STAT_PTC1023 = 0x40e8, STAT_PTC1522 = 0x40ec,
    STAT_MPTC = 0x40f0, STAT_BPTC = 0x40f4, STAT_TSCTC = 0x40f8, STAT_TSCTFC = 0x40fc,
};

#define CTRL_FD         (1u << 0)
#define CTRL_ASDE       (1u << 5)
#define CTRL_SLU        (1u << 6)
#define CTRL_SPD_1000   (2u << 8)
#define CTRL_RST        (1u << 26)
#define CTRL_VME        (1u << 30)
#define CTRL_PHY_RST    (1u << 31)

#define STATUS_FD       (1u << 0)
#define STATUS_LU       (1u << 1)
#define STATUS_SPEED_1000 (2u << 6)
#define STATUS_ASDV_1000 (2u << 8)

#define EECD_SK         (1u << 0)
#define EECD_CS         (1u << 1)
#define EECD_DI         (1u << 2)
#define EECD_DO         (1u << 3)
#define EECD_FWE_MASK   (3u << 4)
#define EECD_REQ        (1u << 6)
#define EECD_GNT        (1u << 7)
#define EECD_PRES       (1u << 8)

#define EERD_START      (1u << 0)
#define EERD_DONE       (1u << 4)
#define EERD_ADDR_SHIFT 8
#define EERD_DATA_SHIFT 16

#define MDIC_DATA_MASK  0xffffu
#define MDIC_REG_SHIFT  16
#define MDIC_PHY_SHIFT  21
#define MDIC_OP_WRITE   (1u << 26)
#define MDIC_OP_READ    (2u << 26)
#define MDIC_READY      (1u << 28)
#define MDIC_INT_EN     (1u << 29)
#define MDIC_ERROR      (1u << 30)

#define ICR_TXDW        (1u << 0)
#define ICR_TXQE        (1u << 1)
#define ICR_LSC         (1u << 2)
#define ICR_RXDMT0      (1u << 4)
#define ICR_RXO         (1u << 6)
#define ICR_RXT0        (1u << 7)
#define ICR_MDAC        (1u << 9)
#define ICR_INT_ASSERTED (1u << 31)
#define ICR_CAUSES      0x0001fedfu   /* interrupt causes an 82540 can have */

#define RCTL_EN         (1u << 1)
#define RCTL_SBP        (1u << 2)
#define RCTL_UPE        (1u << 3)
#define RCTL_MPE        (1u << 4)
#define RCTL_LPE        (1u << 5)
#define RCTL_RDMTS_SHIFT 8
#define RCTL_MO_SHIFT   12
#define RCTL_BAM        (1u << 15)
#define RCTL_BSIZE_SHIFT 16
#define RCTL_VFE        (1u << 18)
#define RCTL_CFIEN      (1u << 19)
#define RCTL_CFI        (1u << 20)
#define RCTL_BSEX       (1u << 25)
#define RCTL_SECRC      (1u << 26)

#define TCTL_EN         (1u << 1)
#define TCTL_PSP        (1u << 3)

#define RXCSUM_PCSS_MASK 0xffu
#define RXCSUM_IPOFL    (1u << 8)
#define RXCSUM_TUOFL    (1u << 9)

#define RAH_AV          (1u << 31)
#define RAH_AS_MASK     (3u << 16)

/* Receive descriptor status and errors. */
#define RXD_STAT_DD     0x01
#define RXD_STAT_EOP    0x02
#define RXD_STAT_IXSM   0x04
#define RXD_STAT_VP     0x08
#define RXD_STAT_TCPCS  0x20
#define RXD_STAT_IPCS   0x40
#define RXD_STAT_PIF    0x80
#define RXD_ERR_TCPE    0x20
#define RXD_ERR_IPE     0x40
#define RXD_ERR_RXE     0x80

/* Transmit descriptor command bits (legacy CMD, extended DCMD/TUCMD). */
#define TXD_CMD_EOP     0x01
#define TXD_CMD_IFCS    0x02
#define TXD_CMD_IC      0x04    /* legacy: insert checksum */
#define TXD_CMD_TSE     0x04    /* extended: TCP segmentation */
#define TXD_CMD_RS      0x08
#define TXD_CMD_DEXT    0x20
#define TXD_CMD_VLE     0x40
#define TXD_CMD_IDE     0x80
#define TUCMD_TCP       0x01
#define TUCMD_IP        0x02    /* IPv4 (else IPv6) for TSO */
#define TXD_DTYP_CTX    0x0
#define TXD_DTYP_DATA   0x1
#define TXD_POPTS_IXSM  0x01
#define TXD_POPTS_TXSM  0x02
#define TXD_STAT_DD     0x01

/* Things a hostile guest can do, each reported once per device. */
enum e1000_warning {
    WARN_REG_UNKNOWN, WARN_ACCESS_SIZE, WARN_RX_RING, WARN_TX_RING, WARN_RX_BUFFER,
    WARN_TX_BUFFER, WARN_TAIL, WARN_TX_TOO_BIG, WARN_TSO_BAD, WARN_TX_DTYP, WARN_TX_SEND,
    WARN_CSUM_OFFSET, WARN_RX_TOO_BIG,
};

/* The offload context a context descriptor loads (one context on 82540). */
struct e1000_tx_context {
    uint8_t ipcss, ipcso, tucss, tucso;
    uint16_t ipcse, tucse;
    uint32_t paylen;
    uint8_t tucmd;
    uint8_t hdrlen;
    uint16_t mss;
};

/* A packet being gathered from data descriptors until EOP. */
struct e1000_tx_packet {
    uint8_t *data;             /* E1000_MAX_PACKET bytes, with E1000_HEADROOM before */
    size_t len;
    bool started;              /* first descriptor seen: its options hold */
    bool dropped;              /* a descriptor was bad: drop at EOP */
    bool extended;             /* data descriptors (else legacy) */
    bool tse;
    uint8_t popts;             /* extended: POPTS of the first descriptor */
    uint8_t css;               /* legacy: checksum start, from the first descriptor */
};

/* Room before a frame for the VLAN tag the NIC may insert. */
#define E1000_HEADROOM 4

/* The microwire EEPROM's serial interface. */
struct e1000_eeprom_wire {
    bool sk, cs;
    unsigned bits_in;          /* bits shifted in since the start bit */
    uint32_t shift_in;
    bool started;              /* start bit seen */
    bool reading;              /* shifting a word out */
    uint8_t addr;
    unsigned bit_out;          /* next bit of the word to put on DO (15..0) */
    bool dout;
};

struct e1000 {
    struct pci_device pdev;
    pthread_mutex_t lock;      /* everything below */
    struct e1000_host host;
    uint8_t mac[6];
    uint32_t regs[E1000_NREGS];
    uint16_t eeprom[E1000_EEPROM_WORDS];
    uint16_t phy[32];
    struct e1000_eeprom_wire ee;
    uint32_t ioaddr;           /* BAR1 IOADDR */
    bool irq_level;

    struct e1000_tx_context txctx;
    struct e1000_tx_packet txp;
    uint8_t *txbuf;            /* txp.data - E1000_HEADROOM */
    uint8_t *txseg;            /* one TSO segment, after E1000_HEADROOM bytes */
    bool tx_kicked;            /* a kick is on its way to the event loop */

    /* The frame read from the backend, filtered and shaped (VLAN tag
     * stripped, padded, FCS appended) but not yet in guest buffers. */
    uint8_t *rxbuf;
    size_t rx_off, rx_len;
    uint8_t rx_status, rx_errors;
    uint16_t rx_csum, rx_special;
    bool rx_pending;
    bool rx_stalled;           /* backend notifications off until the guest adds buffers */

    uint64_t tx_dropped, rx_dropped;   /* packets lost to bad descriptors or buffers */

    uint32_t warned;           /* bit per enum e1000_warning */
};

static inline uint32_t reg(const struct e1000 *e, uint32_t off)
{
    return e->regs[off >> 2];
}

static inline void reg_set(struct e1000 *e, uint32_t off, uint32_t v)
{
    e->regs[off >> 2] = v;
}

/* e1000.c */
void e1000_warn_once(struct e1000 *e, enum e1000_warning w, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sets ICR causes and updates the INTx line. Lock held. */
void e1000_raise(struct e1000 *e, uint32_t causes);
void e1000_update_irq(struct e1000 *e);
void e1000_stat_add(struct e1000 *e, uint32_t off, uint32_t n);
void e1000_stat_add64(struct e1000 *e, uint32_t off_low, uint64_t n);
/* Whether the guest lets the NIC do DMA (PCI command, bus master). */
bool e1000_bus_master(struct e1000 *e);
/* Asks the event loop to run e1000_service. Lock held. */
void e1000_kick(struct e1000 *e);

/* e1000_nvm_phy.c */
void e1000_eeprom_init(struct e1000 *e);
void e1000_phy_reset(struct e1000 *e);
uint32_t e1000_eecd_read(struct e1000 *e);
void e1000_eecd_write(struct e1000 *e, uint32_t v);
void e1000_eerd_write(struct e1000 *e, uint32_t v);
void e1000_mdic_write(struct e1000 *e, uint32_t v);

/* e1000_tx.c: lock held. */
void e1000_tx_reset(struct e1000 *e);
/* Processes at most budget descriptors; true if more are waiting. */
bool e1000_tx_run(struct e1000 *e, unsigned budget);

/* e1000_rx.c: lock held. */
void e1000_rx_reset(struct e1000 *e);
/* Delivers the pending frame and reads more from the backend, at most
 * budget frames. */
void e1000_rx_run(struct e1000 *e, unsigned budget);
/* The guest moved RDT or changed RCTL: resume a stalled receiver. */
void e1000_rx_buffers_added(struct e1000 *e);

/* A descriptor ring as the guest configured it, checked against RAM. */
struct e1000_ring {
    uint8_t *base;             /* host pointer to the whole ring */
    uint32_t count;
    uint32_t head, tail;
};
/* false (after one warning) when the ring is not usable as configured. */
bool e1000_ring_get(struct e1000 *e, uint32_t bal_reg, struct e1000_ring *r,
                    enum e1000_warning w, const char *what);

/* Internet checksum helpers (e1000_csum.c). */
uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len);
uint16_t csum_fold(uint32_t sum);
static inline uint16_t get_be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}
static inline void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
uint32_t eth_fcs(const uint8_t *p, size_t len);

#endif
