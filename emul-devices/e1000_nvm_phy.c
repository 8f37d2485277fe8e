/* The 82540EM's 64-word microwire EEPROM (bit-banged through EECD, or read
 * a word at a time through EERD) and its Marvell M88E1011 PHY behind MDIC.
 * The PHY always has link: 1000 Mb/s full duplex, autonegotiated. */
#include <string.h>

#include "e1000_hw.h"

/* EEPROM word offsets (8254x SDM, EEPROM map). */
enum {
    EE_MAC0 = 0x00, EE_ID_LED = 0x04, EE_ICW1 = 0x0a, EE_SUBSYS_ID = 0x0b,
    EE_SUBSYS_VENDOR = 0x0c, EE_DEVICE_ID = 0x0d, EE_VENDOR_ID = 0x0e, EE_ICW2 = 0x0f,
    EE_CHECKSUM = 0x3f,
};

#define EE_OPCODE_READ 0x2   /* after the start bit: 1 10 AAAAAA */
#define EE_ADDR_BITS   6

void e1000_eeprom_init(struct e1000 *e)
{
    uint16_t sum = 0;

    memset(e->eeprom, 0, sizeof(e->eeprom));
    for (int i = 0; i < 3; i++)
        e->eeprom[EE_MAC0 + i] = (uint16_t)(e->mac[2 * i] | e->mac[2 * i + 1] << 8);
    e->eeprom[EE_ID_LED] = 0xffff;          /* the driver's default LED modes */
    e->eeprom[EE_SUBSYS_ID] = 0x001e;
    e->eeprom[EE_SUBSYS_VENDOR] = 0x8086;
    e->eeprom[EE_DEVICE_ID] = 0x100e;
    e->eeprom[EE_VENDOR_ID] = 0x8086;
    e->eeprom[EE_ICW2] = 0x0000;            /* no PAUSE advertised: no flow control */
    for (int i = 0; i < EE_CHECKSUM; i++)
        sum = (uint16_t)(sum + e->eeprom[i]);
    e->eeprom[EE_CHECKSUM] = (uint16_t)(E1000_EEPROM_SUM - sum);
}

static void wire_restart(struct e1000_eeprom_wire *w)
{
    w->started = w->reading = false;
    w->bits_in = 0;
    w->shift_in = 0;
    w->dout = false;
}

/* One rising edge of SK while CS is high. Zeros before the start bit are
 * ignored; after "1 10" and six address bits the part drives a dummy 0,
 * then the word MSB first on the following edges, then the next word. */
static void wire_clock(struct e1000 *e, bool di)
{
    struct e1000_eeprom_wire *w = &e->ee;

    if (w->reading) {
        w->dout = (e->eeprom[w->addr] >> w->bit_out) & 1;
        if (w->bit_out-- == 0) {
            w->bit_out = 15;
            w->addr = (uint8_t)((w->addr + 1) % E1000_EEPROM_WORDS);
        }
        return;
    }
    if (!w->started) {
        w->started = di;
        return;
    }
    if (w->bits_in >= 2 + EE_ADDR_BITS)
        return;   /* a command we do not implement: wait for CS to drop */
    w->shift_in = w->shift_in << 1 | di;
    if (++w->bits_in < 2 + EE_ADDR_BITS)
        return;
    if ((w->shift_in >> EE_ADDR_BITS) == EE_OPCODE_READ) {
        w->reading = true;
        w->addr = (uint8_t)(w->shift_in & (E1000_EEPROM_WORDS - 1));
        w->bit_out = 15;
        w->dout = false;
    }
    /* Writes, erases and EWEN/EWDS are not honoured: the EEPROM is the
     * VMM's, and its contents follow the device file. */
}

uint32_t e1000_eecd_read(struct e1000 *e)
{
    uint32_t v = reg(e, REG_EECD) | EECD_PRES;

    if (v & EECD_REQ)
        v |= EECD_GNT;   /* no firmware competes for the EEPROM */
    if (e->ee.cs && e->ee.dout)
        v |= EECD_DO;
    return v;
}

void e1000_eecd_write(struct e1000 *e, uint32_t v)
{
    struct e1000_eeprom_wire *w = &e->ee;
    bool sk = v & EECD_SK, cs = v & EECD_CS, di = v & EECD_DI;

    reg_set(e, REG_EECD, v & (EECD_SK | EECD_CS | EECD_DI | EECD_FWE_MASK | EECD_REQ));
    if (!cs || !w->cs)
        wire_restart(w);   /* deselected, or just selected: a new command */
    else if (sk && !w->sk)
        wire_clock(e, di);
    w->sk = sk;
    w->cs = cs;
}

void e1000_eerd_write(struct e1000 *e, uint32_t v)
{
    uint32_t addr = (v >> EERD_ADDR_SHIFT) & 0xff;

    if (!(v & EERD_START)) {
        reg_set(e, REG_EERD, v & (0xffu << EERD_ADDR_SHIFT));
        return;
    }
    /* A 64-word part latches only the low six address bits. */
    reg_set(e, REG_EERD, (uint32_t)e->eeprom[addr % E1000_EEPROM_WORDS] << EERD_DATA_SHIFT |
                             addr << EERD_ADDR_SHIFT | EERD_DONE);
}

/* PHY registers (IEEE 802.3 clause 22 plus Marvell's). */
enum {
    PHY_CTRL = 0x00, PHY_STATUS = 0x01, PHY_ID1 = 0x02, PHY_ID2 = 0x03, PHY_AUTONEG_ADV = 0x04,
    PHY_LP_ABILITY = 0x05, PHY_AUTONEG_EXP = 0x06, PHY_NEXT_PAGE_TX = 0x07,
    PHY_1000T_CTRL = 0x09, PHY_1000T_STATUS = 0x0a, PHY_EXT_STATUS = 0x0f,
    M88_PHY_SPEC_CTRL = 0x10, M88_PHY_SPEC_STATUS = 0x11, M88_INT_ENABLE = 0x12,
    M88_INT_STATUS = 0x13, M88_EXT_PHY_SPEC_CTRL = 0x14, M88_RX_ERR_CNTR = 0x15,
};

#define MII_CR_RESET        0x8000
#define MII_CR_RESTART_AN   0x0200

/* Registers the driver may write; the others are status, ids or reserved. */
static bool phy_writable(unsigned r)
{
    return r == PHY_CTRL || r == PHY_AUTONEG_ADV || r == PHY_NEXT_PAGE_TX ||
           r == PHY_1000T_CTRL || r == M88_PHY_SPEC_CTRL || r == M88_INT_ENABLE ||
           r == M88_EXT_PHY_SPEC_CTRL || r >= 0x16;
}

void e1000_phy_reset(struct e1000 *e)
{
    memset(e->phy, 0, sizeof(e->phy));
    e->phy[PHY_CTRL] = 0x1140;            /* autoneg on, full duplex, 1000 Mb/s */
    /* extended caps, link up, autoneg able and complete, preamble
     * suppression, extended status, 10/100 half/full */
    e->phy[PHY_STATUS] = 0x796d;
    e->phy[PHY_ID1] = 0x0141;             /* Marvell */
    e->phy[PHY_ID2] = 0x0c20;             /* M88E1011, revision 0 */
    e->phy[PHY_AUTONEG_ADV] = 0x01e1;
    e->phy[PHY_LP_ABILITY] = 0x45e1;      /* partner: ack, pause, 10/100 half/full */
    e->phy[PHY_AUTONEG_EXP] = 0x0001;     /* partner can autonegotiate */
    e->phy[PHY_NEXT_PAGE_TX] = 0x2001;
    e->phy[PHY_1000T_CTRL] = 0x0300;      /* advertise 1000 half/full */
    e->phy[PHY_1000T_STATUS] = 0x3c00;    /* receivers OK, partner 1000 half/full */
    e->phy[PHY_EXT_STATUS] = 0x3000;      /* 1000BASE-T half/full capable */
    e->phy[M88_PHY_SPEC_CTRL] = 0x0060;   /* automatic MDI/MDI-X */
    /* 1000 Mb/s, full duplex, page received, speed and duplex resolved, link */
    e->phy[M88_PHY_SPEC_STATUS] = 0xbc00;
    e->phy[M88_EXT_PHY_SPEC_CTRL] = 0x0c60;
}

static uint16_t phy_read(struct e1000 *e, unsigned r)
{
    uint16_t v = e->phy[r];

    if (r == M88_INT_STATUS)
        e->phy[r] = 0;
    return v;
}

static void phy_write(struct e1000 *e, unsigned r, uint16_t v)
{
    if (!phy_writable(r))
        return;
    /* Reset and restart-autonegotiation complete at once and clear. */
    if (r == PHY_CTRL)
        v &= (uint16_t)~(MII_CR_RESET | MII_CR_RESTART_AN);
    e->phy[r] = v;
}

void e1000_mdic_write(struct e1000 *e, uint32_t v)
{
    unsigned phy = (v >> MDIC_PHY_SHIFT) & 0x1f, r = (v >> MDIC_REG_SHIFT) & 0x1f;
    uint32_t op = v & (3u << 26);
    uint32_t result = v & ~(MDIC_READY | MDIC_ERROR);

    if (phy != E1000_PHY_ADDR || (op != MDIC_OP_READ && op != MDIC_OP_WRITE))
        result |= MDIC_ERROR;
    else if (op == MDIC_OP_READ)
        result = (result & ~MDIC_DATA_MASK) | phy_read(e, r);
    else
        phy_write(e, r, (uint16_t)(v & MDIC_DATA_MASK));
    reg_set(e, REG_MDIC, result | MDIC_READY);
    if (v & MDIC_INT_EN)
        e1000_raise(e, ICR_MDAC);
}
