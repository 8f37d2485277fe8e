/* Telemetry: per-VM and per-device counters, and KVM's own per-vCPU
 * statistics (read through KVM_GET_STATS_FD), written as JSON. */
#ifndef VMM_STATS_H
#define VMM_STATS_H

#include <stdio.h>

struct vm;

/* Writes the JSON document to path. 0 or -1 (having said why). */
int stats_write_json(struct vm *vm, const char *path);

/* Sum of one cumulative KVM statistic over every vCPU (e.g. "exits"), or
 * -1 if this kernel has no such statistic. */
long long stats_kvm_vcpu_sum(struct vm *vm, const char *name);

#endif
