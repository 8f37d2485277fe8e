/* Telemetry: per-VM and per-device counters, and KVM's own per-vCPU
 * statistics (read through KVM_GET_STATS_FD), written as JSON. */
#ifndef VMM_STATS_H
#define VMM_STATS_H

#include <stdint.h>
#include <stdio.h>

struct vm;

/* Writes the JSON document to path. 0 or -1 (having said why). */
int stats_write_json(struct vm *vm, const char *path);

/* Guest-placed marks (`stats-marks = on`): a guest writes a byte N to port
 * 0x502 and the vCPU thread records, there and then, KVM's per-vCPU
 * statistics, the VMM's CPU time and the devices' counters under mark N;
 * stats_write_json lists them under "marks". Benchmarks bracket a workload
 * with two marks and take differences, with no host-side sampling delay. */
struct stats_marks;
struct stats_marks *stats_marks_create(void);
void stats_marks_destroy(struct stats_marks *m);
void stats_mark_record(struct vm *vm, uint8_t id);

/* Sum of one cumulative KVM statistic over every vCPU (e.g. "exits"), or
 * -1 if this kernel has no such statistic. */
long long stats_kvm_vcpu_sum(struct vm *vm, const char *name);

#endif
