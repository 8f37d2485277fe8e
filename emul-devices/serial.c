/* 16550A UART, modelled on QEMU's hw/char/serial.c, reduced to what a guest
 * can observe when transmission is instantaneous.
 *
 * Deliberate simplifications, all invisible to Linux's 8250 driver:
 * - Transmit is immediate: every THR write hands the byte to tx() (or, in
 *   loopback, to the receive FIFO) at once, so LSR.THRE and LSR.TEMT are
 *   always set and the THRE interrupt re-arms right after each THR write.
 *   There is no transmit FIFO to fill; FCR's "clear TX FIFO" only re-arms THRE.
 * - The receive character timeout (4 character times of line silence) is
 *   treated as already expired: host input arrives in bursts through
 *   serial_receive(), and the line is idle as soon as the call returns. So
 *   with the FIFO enabled, data below the trigger level reports IIR "character
 *   timeout" (0xCC) and data at or above it "RX data available" (0xC4); both
 *   interrupt at once, which is what the guest would see after the timeout.
 * - The host never overruns the FIFO: serial_receive() takes only what fits
 *   and the caller keeps the rest. Overrun (LSR.OE, a line status interrupt)
 *   happens only in loopback, where a byte sent into a full FIFO is lost.
 * - No modem: outside loopback the modem inputs read CTS|DSR|DCD asserted and
 *   RI clear. In loopback (MCR bit 4) they follow DTR->DSR, RTS->CTS,
 *   OUT1->RI, OUT2->DCD, with delta bits as on real parts.
 * - Interrupt line: asserted when an enabled source is pending AND MCR.OUT2
 *   is set. On PCs OUT2 gates the UART's IRQ onto the ISA bus; Linux sets it
 *   whenever it uses the IRQ. (QEMU ignores OUT2.) Loopback does not mask it.
 * - In loopback the receiver is disconnected from the host: serial_receive()
 *   takes nothing and serial_can_receive() is false until loopback ends.
 *
 * Locking: one mutex per UART serialises vCPU threads (serial_io) and the
 * host-input thread (serial_receive). irq() and tx() are called with that
 * mutex held, which keeps transmitted bytes and line levels in order across
 * threads. The price is a rule for the callbacks: they must never call back
 * into this model (they may block briefly, e.g. write(2) to a tty or file, or
 * issue KVM_IRQ_LINE). irq() is called only when the line level changes. */
#include <stdlib.h>
#include <string.h>

#include "serial.h"

#define RX_FIFO_SIZE 16

/* Register offsets */
#define REG_RBR_THR 0 /* DLL with DLAB */
#define REG_IER 1     /* DLM with DLAB */
#define REG_IIR_FCR 2
#define REG_LCR 3
#define REG_MCR 4
#define REG_LSR 5
#define REG_MSR 6
#define REG_SCR 7

#define IER_RDI 0x01  /* receive data available */
#define IER_THRI 0x02 /* transmitter holding register empty */
#define IER_RLSI 0x04 /* receiver line status */
#define IER_MSI 0x08  /* modem status */

#define IIR_NO_INT 0x01
#define IIR_MSI 0x00
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_RLSI 0x06
#define IIR_CTI 0x0c
#define IIR_FIFO_ENABLED 0xc0

#define FCR_FE 0x01
#define FCR_RFR 0x02 /* clear receive FIFO */
#define FCR_XFR 0x04 /* clear transmit FIFO */
#define FCR_KEEP 0xc9 /* bits that stick: enable, DMA mode, trigger level */

#define LCR_DLAB 0x80

#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

struct serial16550 {
    pthread_mutex_t lock;
    serial_irq_fn irq;
    serial_tx_fn tx;
    void *ctx;

    uint16_t divisor;
    uint8_t ier, lcr, mcr, fcr, scr;
    uint8_t msr_delta;   /* low nibble of MSR, cleared by reading MSR */
    uint8_t rbr;         /* last byte taken from the receiver */
    bool overrun;        /* LSR.OE, cleared by reading LSR */
    bool thr_ipending;   /* THRE interrupt armed (cleared by IIR read) */
    int irq_level;

    uint8_t rx[RX_FIFO_SIZE];
    unsigned rx_head, rx_count;
};

static unsigned rx_capacity(const struct serial16550 *s)
{
    /* Without the FIFO the receiver is the 1-byte RBR of a 16450. */
    return (s->fcr & FCR_FE) ? RX_FIFO_SIZE : 1;
}

static unsigned rx_trigger(const struct serial16550 *s)
{
    static const unsigned levels[4] = { 1, 4, 8, 14 };
    return levels[s->fcr >> 6];
}

static void rx_clear(struct serial16550 *s)
{
    s->rx_head = 0;
    s->rx_count = 0;
}

/* Byte arriving at the receiver: from the host or, in loopback, from THR. */
static void rx_put(struct serial16550 *s, uint8_t byte)
{
    unsigned cap = rx_capacity(s);

    if (s->rx_count < cap) {
        s->rx[(s->rx_head + s->rx_count) % RX_FIFO_SIZE] = byte;
        s->rx_count++;
        return;
    }
    s->overrun = true;
    /* 16450 mode: the new character overwrites the unread one. FIFO mode:
     * the character in the shift register is lost, the FIFO is kept. */
    if (cap == 1)
        s->rx[s->rx_head] = byte;
}

static uint8_t modem_status_bits(const struct serial16550 *s)
{
    uint8_t m = s->mcr, v = 0;

    if (!(m & MCR_LOOP))
        return MSR_DCD | MSR_DSR | MSR_CTS;
    if (m & MCR_DTR)
        v |= MSR_DSR;
    if (m & MCR_RTS)
        v |= MSR_CTS;
    if (m & MCR_OUT1)
        v |= MSR_RI;
    if (m & MCR_OUT2)
        v |= MSR_DCD;
    return v;
}

static uint8_t lsr_value(const struct serial16550 *s)
{
    uint8_t lsr = LSR_THRE | LSR_TEMT;

    if (s->rx_count)
        lsr |= LSR_DR;
    if (s->overrun)
        lsr |= LSR_OE;
    return lsr;
}

/* Highest-priority pending, enabled source, as the IIR's low nibble. */
static uint8_t iir_id(const struct serial16550 *s)
{
    if ((s->ier & IER_RLSI) && s->overrun)
        return IIR_RLSI;
    if ((s->ier & IER_RDI) && s->rx_count) {
        if ((s->fcr & FCR_FE) && s->rx_count < rx_trigger(s))
            return IIR_CTI;
        return IIR_RDI;
    }
    if ((s->ier & IER_THRI) && s->thr_ipending)
        return IIR_THRI;
    if ((s->ier & IER_MSI) && s->msr_delta)
        return IIR_MSI;
    return IIR_NO_INT;
}

static uint8_t iir_value(const struct serial16550 *s)
{
    return iir_id(s) | ((s->fcr & FCR_FE) ? IIR_FIFO_ENABLED : 0);
}

/* Called after every state change, with the lock held. */
static void update_irq(struct serial16550 *s)
{
    int level = iir_id(s) != IIR_NO_INT && (s->mcr & MCR_OUT2);

    if (level != s->irq_level) {
        s->irq_level = level;
        if (s->irq)
            s->irq(s->ctx, level);
    }
}

static void write_mcr(struct serial16550 *s, uint8_t val)
{
    uint8_t before = modem_status_bits(s), after, changed;

    s->mcr = val & 0x1f;
    after = modem_status_bits(s);
    changed = before ^ after;
    if (changed & MSR_CTS)
        s->msr_delta |= MSR_DCTS;
    if (changed & MSR_DSR)
        s->msr_delta |= MSR_DDSR;
    if (changed & MSR_DCD)
        s->msr_delta |= MSR_DDCD;
    if ((before & MSR_RI) && !(after & MSR_RI)) /* trailing edge only */
        s->msr_delta |= MSR_TERI;
}

static void write_fcr(struct serial16550 *s, uint8_t val)
{
    /* Toggling the enable bit flushes both FIFOs. */
    if ((val ^ s->fcr) & FCR_FE)
        val |= FCR_RFR | FCR_XFR;
    if (val & FCR_RFR)
        rx_clear(s);
    if (val & FCR_XFR)
        s->thr_ipending = true; /* the (empty) transmitter is idle again */
    s->fcr = val & FCR_KEEP;
}

static void write_thr(struct serial16550 *s, uint8_t val)
{
    s->thr_ipending = false;
    if (s->mcr & MCR_LOOP)
        rx_put(s, val);
    else if (s->tx)
        s->tx(s->ctx, val);
    /* Sent at once: THR is empty again and THRE re-arms. */
    s->thr_ipending = true;
}

static void reg_write(struct serial16550 *s, unsigned off, uint8_t val)
{
    switch (off) {
    case REG_RBR_THR:
        if (s->lcr & LCR_DLAB)
            s->divisor = (s->divisor & 0xff00) | val;
        else
            write_thr(s, val);
        break;
    case REG_IER:
        if (s->lcr & LCR_DLAB) {
            s->divisor = (uint16_t)((s->divisor & 0x00ff) | (val << 8));
        } else {
            uint8_t changed = (s->ier ^ val) & 0x0f;

            s->ier = val & 0x0f;
            /* Enabling THRI while THR is empty raises THRE again, even if an
             * IIR read had cleared it (QEMU, Bochs; Windows and Linux's
             * UART_BUG_THRE probe rely on it). */
            if (changed & IER_THRI)
                s->thr_ipending = (s->ier & IER_THRI) != 0;
        }
        break;
    case REG_IIR_FCR:
        write_fcr(s, val);
        break;
    case REG_LCR:
        s->lcr = val;
        break;
    case REG_MCR:
        write_mcr(s, val);
        break;
    case REG_SCR:
        s->scr = val;
        break;
    default: /* LSR, MSR: read-only */
        break;
    }
    update_irq(s);
}

static uint8_t reg_read(struct serial16550 *s, unsigned off)
{
    uint8_t ret = 0xff;

    switch (off) {
    case REG_RBR_THR:
        if (s->lcr & LCR_DLAB)
            return s->divisor & 0xff;
        if (s->rx_count) {
            s->rbr = s->rx[s->rx_head];
            s->rx_head = (s->rx_head + 1) % RX_FIFO_SIZE;
            s->rx_count--;
            ret = s->rbr;
        } else {
            /* Empty: a FIFO reads 0 (as QEMU), a 16450 RBR its last byte. */
            ret = (s->fcr & FCR_FE) ? 0 : s->rbr;
        }
        break;
    case REG_IER:
        return (s->lcr & LCR_DLAB) ? s->divisor >> 8 : s->ier;
    case REG_IIR_FCR:
        ret = iir_value(s);
        /* Reading IIR acknowledges THRE when it is the reported source. */
        if ((ret & 0x0f) == IIR_THRI)
            s->thr_ipending = false;
        break;
    case REG_LCR:
        return s->lcr;
    case REG_MCR:
        return s->mcr;
    case REG_LSR:
        ret = lsr_value(s);
        s->overrun = false;
        break;
    case REG_MSR:
        ret = modem_status_bits(s) | s->msr_delta;
        s->msr_delta = 0;
        break;
    case REG_SCR:
        return s->scr;
    default:
        return 0xff;
    }
    update_irq(s);
    return ret;
}

void serial_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
    struct serial16550 *s = opaque;
    uint8_t *bytes = data;

    if (!s || !bytes || len == 0)
        return;
    if (!is_write)
        memset(bytes, 0xff, len); /* bytes past the first float high */
    if (offset > REG_SCR)
        return;

    pthread_mutex_lock(&s->lock);
    if (is_write)
        reg_write(s, (unsigned)offset, bytes[0]);
    else
        bytes[0] = reg_read(s, (unsigned)offset);
    pthread_mutex_unlock(&s->lock);
}

size_t serial_receive(struct serial16550 *s, const uint8_t *buf, size_t n)
{
    size_t taken = 0;

    if (!s || !buf || n == 0)
        return 0;
    pthread_mutex_lock(&s->lock);
    if (!(s->mcr & MCR_LOOP)) {
        unsigned room = rx_capacity(s) - s->rx_count;

        taken = n < room ? n : room;
        for (size_t i = 0; i < taken; i++)
            rx_put(s, buf[i]);
        if (taken)
            update_irq(s);
    }
    pthread_mutex_unlock(&s->lock);
    return taken;
}

bool serial_can_receive(struct serial16550 *s)
{
    bool ok;

    if (!s)
        return false;
    pthread_mutex_lock(&s->lock);
    ok = !(s->mcr & MCR_LOOP) && s->rx_count < rx_capacity(s);
    pthread_mutex_unlock(&s->lock);
    return ok;
}

struct serial16550 *serial_create(serial_irq_fn irq, serial_tx_fn tx, void *ctx)
{
    struct serial16550 *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s);
        return NULL;
    }
    s->irq = irq;
    s->tx = tx;
    s->ctx = ctx;
    s->divisor = 12; /* 9600 baud from the 1.8432 MHz clock */
    /* Reset state: IER, LCR, MCR, FCR zero, no interrupt pending, line low.
     * THRE is latched but IER.THRI is clear, so nothing is reported. */
    s->thr_ipending = false;
    return s;
}

void serial_destroy(struct serial16550 *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->lock);
    free(s);
}
