/* 16550A UART model: the register file, FIFOs and interrupt logic. Host side
 * is two file descriptors (output, optional input) owned by the caller. */
#ifndef EMUL_SERIAL_H
#define EMUL_SERIAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* level 1 raises the interrupt line, 0 lowers it. Called only on changes. */
typedef void (*serial_irq_fn)(void *ctx, int level);
/* Every byte the guest transmits, in order. */
typedef void (*serial_tx_fn)(void *ctx, uint8_t byte);

struct serial16550;

struct serial16550 *serial_create(serial_irq_fn irq, serial_tx_fn tx, void *ctx);
void serial_destroy(struct serial16550 *s);

/* The I/O handler: offset 0..7 from the base port, len 1 (wider accesses
 * touch only the first byte, as on ISA). Matches io_handler_fn. */
void serial_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write);

/* Host input: queues up to n bytes into the receive FIFO; returns how many
 * it took (0 when the FIFO is full: call again after the guest reads). */
size_t serial_receive(struct serial16550 *s, const uint8_t *buf, size_t n);
/* True while the receive FIFO has room. */
bool serial_can_receive(struct serial16550 *s);

#endif
