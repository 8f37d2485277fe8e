/* 16550A model: register file, FIFO, interrupt logic, what Linux's 8250
 * driver probes, and hostile accesses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "serial.h"

#define THR 0
#define RBR 0
#define DLL 0
#define DLM 1
#define IER 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

struct harness {
    struct serial16550 *s;
    uint8_t txbuf[256];
    size_t ntx;
    int level;          /* last level passed to irq() */
    unsigned irq_calls;
    unsigned bad_irq_calls; /* irq() called without a level change */
};

static void on_irq(void *ctx, int level)
{
    struct harness *h = ctx;

    if (level == h->level)
        h->bad_irq_calls++;
    h->level = level;
    h->irq_calls++;
}

static void on_tx(void *ctx, uint8_t byte)
{
    struct harness *h = ctx;

    if (h->ntx < sizeof(h->txbuf))
        h->txbuf[h->ntx] = byte;
    h->ntx++;
}

static int setup(void **state)
{
    struct harness *h = calloc(1, sizeof(*h));

    assert_non_null(h);
    h->s = serial_create(on_irq, on_tx, h);
    assert_non_null(h->s);
    *state = h;
    return 0;
}

static int teardown(void **state)
{
    struct harness *h = *state;
    unsigned bad = h->bad_irq_calls;

    serial_destroy(h->s);
    free(h);
    assert_int_equal(bad, 0);
    return 0;
}

static void wr(struct harness *h, uint64_t off, uint8_t val)
{
    serial_io(h->s, off, &val, 1, true);
}

static uint8_t rd(struct harness *h, uint64_t off)
{
    uint8_t v = 0x5a;

    serial_io(h->s, off, &v, 1, false);
    return v;
}

static void test_reset_state(void **state)
{
    struct harness *h = *state;

    assert_int_equal(rd(h, IER), 0);
    assert_int_equal(rd(h, IIR), 0x01);
    assert_int_equal(rd(h, LCR), 0);
    assert_int_equal(rd(h, MCR), 0);
    assert_int_equal(rd(h, LSR), 0x60);
    assert_int_equal(rd(h, MSR), 0xb0);
    assert_int_equal(h->irq_calls, 0);
}

static void test_tx_in_order(void **state)
{
    struct harness *h = *state;
    const char *msg = "Hello, 16550\r\n";

    for (const char *p = msg; *p; p++) {
        wr(h, THR, (uint8_t)*p);
        /* transmitted at once: holding register and shifter empty */
        assert_int_equal(rd(h, LSR) & 0x60, 0x60);
    }
    assert_int_equal(h->ntx, strlen(msg));
    assert_memory_equal(h->txbuf, msg, strlen(msg));
    assert_int_equal(rd(h, LSR) & 0x01, 0); /* nothing received */
}

static void test_divisor_latch(void **state)
{
    struct harness *h = *state;

    wr(h, IER, 0x05);
    wr(h, LCR, 0x83); /* DLAB, 8N1 */
    wr(h, DLL, 0x34);
    wr(h, DLM, 0x12);
    assert_int_equal(rd(h, DLL), 0x34);
    assert_int_equal(rd(h, DLM), 0x12);
    assert_int_equal(rd(h, LCR), 0x83);
    wr(h, LCR, 0x03);
    /* the latch writes reached neither THR nor IER */
    assert_int_equal(h->ntx, 0);
    assert_int_equal(rd(h, IER), 0x05);
    /* and IER/THR traffic does not disturb the latch */
    wr(h, IER, 0x0f);
    wr(h, THR, 'x');
    assert_int_equal(h->ntx, 1);
    wr(h, LCR, 0x80);
    assert_int_equal(rd(h, DLL), 0x34);
    assert_int_equal(rd(h, DLM), 0x12);
}

static void test_scratch_and_ier_width(void **state)
{
    struct harness *h = *state;

    wr(h, SCR, 0x55);
    assert_int_equal(rd(h, SCR), 0x55);
    wr(h, SCR, 0xaa);
    assert_int_equal(rd(h, SCR), 0xaa);
    /* IER keeps 4 bits: Linux's probe writes 0x0f and expects 0x0f back */
    wr(h, IER, 0xff);
    assert_int_equal(rd(h, IER), 0x0f);
    wr(h, IER, 0);
    assert_int_equal(rd(h, IER), 0);
}

static void test_fifo_bits_in_iir(void **state)
{
    struct harness *h = *state;

    assert_int_equal(rd(h, IIR), 0x01);
    wr(h, FCR, 0x01);
    assert_int_equal(rd(h, IIR), 0xc1);
    /* no 16750 64-byte bit (IIR bit 5) even if FCR bit 5 is written */
    wr(h, FCR, 0x21);
    assert_int_equal(rd(h, IIR), 0xc1);
    wr(h, FCR, 0x00);
    assert_int_equal(rd(h, IIR), 0x01);
}

static void test_thre_irq_with_out2(void **state)
{
    struct harness *h = *state;

    wr(h, MCR, 0x08); /* OUT2 */
    assert_int_equal(h->irq_calls, 0);
    wr(h, IER, 0x02);
    assert_int_equal(h->level, 1);
    assert_int_equal(h->irq_calls, 1);
    /* reading IIR reports THRE and acknowledges it */
    assert_int_equal(rd(h, IIR), 0x02);
    assert_int_equal(h->level, 0);
    assert_int_equal(rd(h, IIR), 0x01);
    /* writing THR: sent at once, so THRE is pending again */
    wr(h, THR, 'a');
    assert_int_equal(h->level, 1);
    assert_int_equal(rd(h, IIR), 0x02);
    assert_int_equal(h->level, 0);
    /* disabling THRI drops a pending THRE */
    wr(h, THR, 'b');
    assert_int_equal(h->level, 1);
    wr(h, IER, 0);
    assert_int_equal(h->level, 0);
    assert_int_equal(rd(h, IIR), 0x01);
}

static void test_thre_irq_gated_by_out2(void **state)
{
    struct harness *h = *state;

    wr(h, MCR, 0x03); /* DTR|RTS, OUT2 clear */
    wr(h, IER, 0x02);
    wr(h, THR, 'z');
    assert_int_equal(h->irq_calls, 0);
    assert_int_equal(h->level, 0);
    /* the UART itself has the interrupt pending... */
    wr(h, MCR, 0x0b); /* ...and OUT2 puts it on the line */
    assert_int_equal(h->level, 1);
    wr(h, MCR, 0x03);
    assert_int_equal(h->level, 0);
    assert_int_equal(rd(h, IIR), 0x02);
    wr(h, MCR, 0x0b);
    assert_int_equal(h->level, 0); /* acknowledged meanwhile */
    assert_int_equal(h->irq_calls, 2);
}

/* serial8250_do_startup's UART_BUG_THRE probe: re-enabling THRI must raise
 * THRE again after an IIR read cleared it. */
static void test_thre_reasserted_on_ier_toggle(void **state)
{
    struct harness *h = *state;
    uint8_t iir1, iir2;

    wr(h, MCR, 0x0b);
    wr(h, IER, 0x02);
    iir1 = rd(h, IIR);
    wr(h, IER, 0);
    wr(h, IER, 0x02);
    iir2 = rd(h, IIR);
    wr(h, IER, 0);
    assert_int_equal(iir1 & 0x01, 0);
    assert_int_equal(iir2 & 0x01, 0);
    assert_int_equal(iir2 & 0x0f, 0x02);
    assert_int_equal(h->level, 0);
}

static void test_rx_fifo(void **state)
{
    struct harness *h = *state;
    const uint8_t in[] = "abc";

    wr(h, FCR, 0x07); /* enable, clear both, trigger 1 */
    wr(h, MCR, 0x0b);
    wr(h, IER, 0x01);
    assert_int_equal(h->level, 0);
    assert_true(serial_can_receive(h->s));
    assert_int_equal(serial_receive(h->s, in, 3), 3);
    assert_int_equal(h->level, 1);
    assert_int_equal(rd(h, LSR) & 0x01, 0x01);
    assert_int_equal(rd(h, IIR), 0xc4);
    assert_int_equal(rd(h, RBR), 'a');
    assert_int_equal(rd(h, RBR), 'b');
    assert_int_equal(h->level, 1);
    assert_int_equal(rd(h, RBR), 'c');
    assert_int_equal(rd(h, LSR) & 0x01, 0);
    assert_int_equal(rd(h, IIR), 0xc1);
    assert_int_equal(h->level, 0);
    assert_int_equal(rd(h, RBR), 0); /* empty FIFO reads 0 */
}

/* Below the trigger level the (immediately expired) character timeout is
 * reported; at the trigger level, RX data available. */
static void test_rx_trigger_and_timeout(void **state)
{
    struct harness *h = *state;
    uint8_t in[8];

    memset(in, 'q', sizeof(in));
    wr(h, FCR, 0x81); /* trigger level 8 */
    wr(h, IER, 0x01);
    assert_int_equal(serial_receive(h->s, in, 1), 1);
    assert_int_equal(rd(h, IIR), 0xcc);
    assert_int_equal(serial_receive(h->s, in, 7), 7);
    assert_int_equal(rd(h, IIR), 0xc4);
    rd(h, RBR);
    assert_int_equal(rd(h, IIR), 0xcc);
    wr(h, FCR, 0xc1); /* trigger 14 */
    assert_int_equal(rd(h, IIR), 0xcc);
    wr(h, FCR, 0x41); /* trigger 4 */
    assert_int_equal(rd(h, IIR), 0xc4);
    /* clearing the receive FIFO drops DR and the interrupt */
    wr(h, FCR, 0x43);
    assert_int_equal(rd(h, LSR) & 0x01, 0);
    assert_int_equal(rd(h, IIR), 0xc1);
}

static void test_rx_fifo_full(void **state)
{
    struct harness *h = *state;
    uint8_t in[20];

    for (unsigned i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)('A' + i);
    wr(h, FCR, 0x01);
    assert_int_equal(serial_receive(h->s, in, sizeof(in)), 16);
    assert_false(serial_can_receive(h->s));
    assert_int_equal(serial_receive(h->s, in + 16, 4), 0);
    /* the host kept the rest: nothing was lost, so no overrun */
    assert_int_equal(rd(h, LSR) & 0x02, 0);
    assert_int_equal(rd(h, RBR), 'A');
    assert_true(serial_can_receive(h->s));
    assert_int_equal(serial_receive(h->s, in + 16, 4), 1);
    for (unsigned i = 1; i <= 16; i++)
        assert_int_equal(rd(h, RBR), 'A' + i);
    assert_int_equal(rd(h, LSR) & 0x01, 0);
}

static void test_rx_without_fifo(void **state)
{
    struct harness *h = *state;
    const uint8_t in[] = "xy";

    /* 16450 mode: a single receive buffer register */
    assert_int_equal(serial_receive(h->s, in, 2), 1);
    assert_false(serial_can_receive(h->s));
    wr(h, IER, 0x01);
    assert_int_equal(rd(h, IIR), 0x04);
    assert_int_equal(rd(h, RBR), 'x');
    assert_int_equal(rd(h, RBR), 'x'); /* RBR keeps its last byte */
    assert_int_equal(rd(h, LSR) & 0x01, 0);
    assert_int_equal(serial_receive(h->s, in + 1, 1), 1);
    assert_int_equal(rd(h, RBR), 'y');
}

static void test_loopback_data(void **state)
{
    struct harness *h = *state;
    const uint8_t in[] = "h";

    wr(h, FCR, 0x01);
    wr(h, MCR, 0x10);
    wr(h, THR, 'x');
    wr(h, THR, 'y');
    wr(h, THR, 'z');
    assert_int_equal(h->ntx, 0);
    assert_int_equal(rd(h, LSR) & 0x61, 0x61);
    /* the receiver is disconnected from the host in loopback */
    assert_false(serial_can_receive(h->s));
    assert_int_equal(serial_receive(h->s, in, 1), 0);
    assert_int_equal(rd(h, RBR), 'x');
    assert_int_equal(rd(h, RBR), 'y');
    assert_int_equal(rd(h, RBR), 'z');
    assert_int_equal(rd(h, LSR) & 0x01, 0);
    wr(h, MCR, 0x00);
    wr(h, THR, 'w');
    assert_int_equal(h->ntx, 1);
    assert_int_equal(h->txbuf[0], 'w');
    assert_int_equal(rd(h, LSR) & 0x01, 0);
    assert_true(serial_can_receive(h->s));
}

static void test_loopback_overrun(void **state)
{
    struct harness *h = *state;

    wr(h, FCR, 0x01);
    wr(h, MCR, 0x18); /* loopback, OUT2 */
    wr(h, IER, 0x05); /* RX data and line status */
    for (unsigned i = 0; i < 17; i++)
        wr(h, THR, (uint8_t)i);
    assert_int_equal(h->ntx, 0);
    /* line status has priority over RX data */
    assert_int_equal(rd(h, IIR), 0xc6);
    assert_int_equal(h->level, 1);
    assert_int_equal(rd(h, LSR) & 0x03, 0x03);
    /* reading LSR cleared OE */
    assert_int_equal(rd(h, LSR) & 0x03, 0x01);
    assert_int_equal(rd(h, IIR), 0xc4);
    for (unsigned i = 0; i < 16; i++)
        assert_int_equal(rd(h, RBR), i); /* the 17th byte was lost */
    assert_int_equal(rd(h, LSR) & 0x03, 0);
    assert_int_equal(h->level, 0);
}

static void test_loopback_modem_status(void **state)
{
    struct harness *h = *state;

    /* Linux autoconfig: MCR = LOOP|OUT2|RTS must read DCD|CTS */
    wr(h, MCR, 0x1a);
    assert_int_equal(rd(h, MSR) & 0xf0, 0x90);
    wr(h, MCR, 0x1f);
    assert_int_equal(rd(h, MSR) & 0xf0, 0xf0);
    wr(h, MCR, 0x11); /* DTR -> DSR */
    assert_int_equal(rd(h, MSR) & 0xf0, 0x20);
    wr(h, MCR, 0x12); /* RTS -> CTS */
    assert_int_equal(rd(h, MSR) & 0xf0, 0x10);
    wr(h, MCR, 0x14); /* OUT1 -> RI */
    assert_int_equal(rd(h, MSR) & 0xf0, 0x40);
    wr(h, MCR, 0x18); /* OUT2 -> DCD */
    assert_int_equal(rd(h, MSR) & 0xf0, 0x80);
    wr(h, MCR, 0x10);
    assert_int_equal(rd(h, MSR) & 0xf0, 0x00);
    /* outside loopback, no modem: CTS, DSR, DCD asserted */
    wr(h, MCR, 0x00);
    assert_int_equal(rd(h, MSR) & 0xf0, 0xb0);
}

static void test_modem_status_deltas(void **state)
{
    struct harness *h = *state;

    wr(h, MCR, 0x10);
    rd(h, MSR); /* entering loopback dropped CTS/DSR/DCD: clear deltas */
    assert_int_equal(rd(h, MSR), 0x00);
    wr(h, MCR, 0x1f); /* CTS, DSR, DCD change; RI rises (no TERI) */
    assert_int_equal(rd(h, MSR), 0xf0 | 0x0b);
    assert_int_equal(rd(h, MSR), 0xf0); /* read clears deltas */
    wr(h, MCR, 0x1b); /* RI falls: trailing edge */
    assert_int_equal(rd(h, MSR), 0xb0 | 0x04);

    /* a delta raises the modem status interrupt when enabled */
    wr(h, IER, 0x08);
    assert_int_equal(h->level, 0);
    wr(h, MCR, 0x19); /* RTS off: DCTS; OUT2 still on */
    assert_int_equal(h->level, 1);
    assert_int_equal(rd(h, IIR), 0x00);
    assert_int_equal(rd(h, MSR), 0xa0 | 0x01);
    assert_int_equal(h->level, 0);
    assert_int_equal(rd(h, IIR), 0x01);
}

/* The sequence of Linux's autoconfig() up to the 16550A decision. */
static void test_linux_autoconfig(void **state)
{
    struct harness *h = *state;
    uint8_t scratch, scratch2, scratch3, save_mcr, status1;

    scratch = rd(h, IER);
    wr(h, IER, 0);
    scratch2 = rd(h, IER) & 0x0f;
    wr(h, IER, 0x0f);
    scratch3 = rd(h, IER) & 0x0f;
    wr(h, IER, scratch);
    assert_int_equal(scratch2, 0);
    assert_int_equal(scratch3, 0x0f);

    save_mcr = rd(h, MCR);
    wr(h, MCR, 0x10 | 0x0a);
    status1 = rd(h, MSR) & 0xf0;
    wr(h, MCR, save_mcr);
    assert_int_equal(status1, 0x90);

    wr(h, LCR, 0xbf);
    wr(h, 2, 0); /* EFR on enhanced parts, FCR here */
    wr(h, LCR, 0);
    wr(h, FCR, 0x01);
    assert_int_equal(rd(h, IIR) >> 6, 3); /* 16550A */

    /* ST16C650 EFR probes must not read 0 at offset 2 */
    wr(h, LCR, 0x80);
    assert_int_not_equal(rd(h, 2), 0);
    wr(h, LCR, 0xbf);
    assert_int_not_equal(rd(h, 2), 0);
    wr(h, LCR, 0);
    assert_int_equal(h->ntx, 0);
}

static void test_hostile_accesses(void **state)
{
    struct harness *h = *state;
    static const uint32_t lens[] = { 0, 1, 2, 3, 4, 8, 64 };
    uint8_t buf[64];

    wr(h, SCR, 0x42);
    for (uint64_t off = 7; off <= 100; off++) {
        for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
            memset(buf, 0x11, sizeof(buf));
            serial_io(h->s, off, buf, lens[i], false);
            if (lens[i] == 0) {
                assert_int_equal(buf[0], 0x11);
                continue;
            }
            assert_int_equal(buf[0], off == 7 ? 0x42 : 0xff);
            for (uint32_t b = 1; b < lens[i]; b++)
                assert_int_equal(buf[b], 0xff);
            memset(buf, 0x99, sizeof(buf));
            serial_io(h->s, off, buf, lens[i], true);
            assert_int_equal(rd(h, SCR), off == 7 ? 0x99 : 0x42);
            wr(h, SCR, 0x42);
        }
    }
    serial_io(h->s, UINT64_MAX, buf, 4, true);
    serial_io(h->s, UINT64_MAX, buf, 4, false);
    assert_int_equal(buf[0], 0xff);

    /* a wide write to THR transmits only the first byte */
    memcpy(buf, "WXYZ", 4);
    serial_io(h->s, THR, buf, 4, true);
    assert_int_equal(h->ntx, 1);
    assert_int_equal(h->txbuf[0], 'W');
    /* a zero-length write does nothing */
    serial_io(h->s, THR, buf, 0, true);
    assert_int_equal(h->ntx, 1);
    /* a wide read of LCR fills byte 0 only from the register */
    wr(h, LCR, 0x03);
    memset(buf, 0, sizeof(buf));
    serial_io(h->s, LCR, buf, 2, false);
    assert_int_equal(buf[0], 0x03);
    assert_int_equal(buf[1], 0xff);
    /* odd things from the host side */
    assert_int_equal(serial_receive(h->s, NULL, 5), 0);
    assert_int_equal(serial_receive(h->s, buf, 0), 0);
}

/* Every irq() call is a level change (checked by teardown); a sequence that
 * does not change the line makes no call. */
static void test_irq_only_on_change(void **state)
{
    struct harness *h = *state;
    const uint8_t in[] = "12";

    wr(h, MCR, 0x0b);
    wr(h, IER, 0x02);
    assert_int_equal(h->irq_calls, 1);
    for (int i = 0; i < 5; i++)
        wr(h, THR, 'x');     /* THRE stays pending: line stays high */
    wr(h, SCR, 1);
    rd(h, LSR);
    rd(h, MSR);
    wr(h, IER, 0x03);
    assert_int_equal(serial_receive(h->s, in, 1), 1); /* RX on top of THRE */
    assert_int_equal(h->irq_calls, 1);
    assert_int_equal(rd(h, IIR), 0x04); /* RX outranks THRE, not acked */
    rd(h, RBR);
    assert_int_equal(h->irq_calls, 1);  /* THRE still pending */
    assert_int_equal(rd(h, IIR), 0x02);
    assert_int_equal(h->irq_calls, 2);
    assert_int_equal(h->level, 0);
    wr(h, IER, 0x03);                   /* no change to THRI: no re-arm */
    assert_int_equal(h->irq_calls, 2);
    assert_int_equal(h->bad_irq_calls, 0);
}

struct thread_arg {
    struct harness *h;
    int n;
};

static void *writer(void *p)
{
    struct thread_arg *a = p;

    for (int i = 0; i < a->n; i++) {
        wr(a->h, THR, 'T');
        rd(a->h, IIR);
        rd(a->h, LSR);
    }
    return NULL;
}

static void *receiver(void *p)
{
    struct thread_arg *a = p;
    const uint8_t b = 'r';

    for (int i = 0; i < a->n; i++) {
        serial_receive(a->h->s, &b, 1);
        rd(a->h, RBR);
    }
    return NULL;
}

static void test_concurrent_use(void **state)
{
    struct harness *h = *state;
    struct thread_arg a = { h, 2000 };
    pthread_t t[3];

    wr(h, FCR, 0x01);
    wr(h, MCR, 0x0b);
    wr(h, IER, 0x03);
    pthread_create(&t[0], NULL, writer, &a);
    pthread_create(&t[1], NULL, writer, &a);
    pthread_create(&t[2], NULL, receiver, &a);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(h->ntx, 4000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reset_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_divisor_latch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scratch_and_ier_width, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_bits_in_iir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thre_irq_with_out2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thre_irq_gated_by_out2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thre_reasserted_on_ier_toggle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_trigger_and_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_fifo_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_without_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loopback_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loopback_overrun, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loopback_modem_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modem_status_deltas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_linux_autoconfig, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_accesses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_irq_only_on_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_use, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
