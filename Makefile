# The one entry point. `make` builds every binary into build/; `make test`
# and `make demo` first install what is missing (`make deps`).

CC      ?= gcc
BUILD   := build
PKGS    := liburing inih
DEPS_STAMP := $(BUILD)/.deps-ok

WARN    := -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers
CPPFLAGS := -D_GNU_SOURCE -Ivmm -Iemul-devices -Ivhost-user -I.
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -pthread -MMD -MP
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LDLIBS  := $(PKG_LIBS) -pthread

SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# Everything but main.c goes into a library that the unit tests link too.
# vhost-user/*.c is the protocol and the frontend; vhost-user/blk/ is the
# backend process, which links the protocol from the same library.
CORE_SRCS := $(filter-out vmm/main.c,$(wildcard vmm/*.c emul-devices/*.c vhost-user/*.c))
VHOST_BLK_SRCS := $(wildcard vhost-user/blk/*.c)
# sriov/: SR-IOV PFs and VFs (libpci, libmnl) join the library; sriov/tool/ is
# build/sriovctl.
CORE_SRCS += $(wildcard sriov/*.c)
CPPFLAGS  += -Isriov
LDLIBS    += -lpci -lmnl
SRIOVCTL_SRCS := $(wildcard sriov/tool/*.c)
ASM_SRCS  := vmm/dsdt_blob.S
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
# iommu/ and vfio/: the passthrough path (host IOMMU, VFIO type1 container,
# VFIO PCI devices) joins the library.
CORE_SRCS += $(wildcard iommu/*.c vfio/*.c)
CPPFLAGS  += -Iiommu -Ivfio

OBJ     := $(BUILD)/obj
SAN     := $(BUILD)/san
CORE_OBJS := $(CORE_SRCS:%.c=$(OBJ)/%.o) $(ASM_SRCS:%.S=$(OBJ)/%.o)
SAN_OBJS  := $(CORE_SRCS:%.c=$(SAN)/%.o) $(ASM_SRCS:%.S=$(SAN)/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

# Keep the objects of the unit tests between runs.
.SECONDARY:

.PHONY: all deps test unit integration demo bench clean check-build-deps
BINARIES := $(BUILD)/vmm $(if $(VHOST_BLK_SRCS),$(BUILD)/vhost-user-blk)
BINARIES += $(BUILD)/sriovctl
all: check-build-deps $(BINARIES)

check-build-deps:
	@pkg-config --exists $(PKGS) || { echo "missing build dependencies: run 'make deps' (as root)" >&2; exit 1; }
	@command -v iasl >/dev/null || { echo "missing iasl (acpica-tools): run 'make deps' (as root)" >&2; exit 1; }

# --- the DSDT is compiled from ASL by iasl and linked in as a blob ---------
$(BUILD)/acpi/dsdt.aml: vmm/dsdt.asl vmm/layout.h
	@mkdir -p $(dir $@)
	iasl -p $(BUILD)/acpi/dsdt -I vmm $< >$(BUILD)/acpi/iasl.log 2>&1 || { cat $(BUILD)/acpi/iasl.log; exit 1; }

$(OBJ)/vmm/dsdt_blob.o $(SAN)/vmm/dsdt_blob.o: vmm/dsdt_blob.S $(BUILD)/acpi/dsdt.aml
	@mkdir -p $(dir $@)
	$(CC) -c -DDSDT_AML='"$(BUILD)/acpi/dsdt.aml"' $< -o $@

# --- the VMM ----------------------------------------------------------------
$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/libvmm.a: $(CORE_OBJS)
	$(AR) rcs $@ $^

$(BUILD)/vmm: $(OBJ)/vmm/main.o $(BUILD)/libvmm.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/vhost-user-blk: $(VHOST_BLK_SRCS:%.c=$(OBJ)/%.o) $(BUILD)/libvmm.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/sriovctl: $(SRIOVCTL_SRCS:%.c=$(OBJ)/%.o) $(BUILD)/libvmm.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# --- build/vhost-user-net: the DPDK (rte_vhost) net backend -----------------
# Its own objects with DPDK's flags (headers as -isystem, so our -W set
# judges our code, not DPDK's); never part of libvmm.a (the VMM does not
# link DPDK). options.c has no DPDK in it, so test_vunet_options links it.
DPDK_CFLAGS := $(patsubst -I%,-isystem%,$(shell pkg-config --cflags libdpdk 2>/dev/null))
DPDK_LIBS   := $(shell pkg-config --libs libdpdk 2>/dev/null)
VHOST_NET_SRCS := $(wildcard vhost-user/net/*.c)
VHOST_NET_OBJS := $(VHOST_NET_SRCS:%.c=$(OBJ)/%.o)
ifneq ($(DPDK_LIBS),)
all: $(BUILD)/vhost-user-net
endif
.PHONY: clean-vhost-net
clean: clean-vhost-net
clean-vhost-net:
	rm -f $(BUILD)/vhost-user-net
$(VHOST_NET_OBJS): PKG_CFLAGS += $(DPDK_CFLAGS)
$(BUILD)/vhost-user-net: $(VHOST_NET_OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(DPDK_LIBS) -pthread
$(BUILD)/tests/test_vunet_options: $(SAN)/vhost-user/net/options.o
-include $(VHOST_NET_OBJS:.o=.d)

# --- unit tests: cmocka, built with AddressSanitizer and UBSan --------------
$(SAN)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -O1 $(SAN_FLAGS) -c $< -o $@

$(BUILD)/libvmm-san.a: $(SAN_OBJS)
	$(AR) rcs $@ $^

$(BUILD)/tests/%: $(SAN)/tests/unit/%.o $(BUILD)/libvmm-san.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# The sanitized vmm runs the config-rejection suite.
$(BUILD)/vmm-san: $(SAN)/vmm/main.o $(BUILD)/libvmm-san.a
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

unit: check-build-deps $(UNIT_BINS)
	@tests/run-unit $(UNIT_BINS)

# --- set-up -----------------------------------------------------------------
deps:
	scripts/deps.sh

$(DEPS_STAMP):
	scripts/deps.sh

# --- tests, demo, benchmarks ------------------------------------------------
test: $(DEPS_STAMP)
	$(MAKE) all $(BUILD)/vmm-san
	$(MAKE) unit
	tests/run-integration

integration: $(DEPS_STAMP) all
	tests/run-integration

# The main job: one disk through the three I/O paths (perf/three-paths).
demo: $(DEPS_STAMP)
	$(MAKE) all
	THREE_PATHS_COMMAND="make demo" perf/three-paths

# Every benchmark, one after the other (about an hour here).
bench: $(DEPS_STAMP) perf-tools
	$(MAKE) all
	perf/boot
	perf/emulated
	perf/virtio-blk
	perf/vhost-blk
	perf/vhost-net
	perf/net-exits
	THREE_PATHS_COMMAND="make bench" perf/three-paths

# --- perf tools (not part of `all`) -----------------------------------------
# build/perf/vhost-blk-driver: a userspace virtio-blk driver speaking vhost-user
# as the frontend (protocol from libvmm.a), used by perf/vhost-blk.
PERF_DRIVER_SRCS := $(wildcard perf/vhost-blk-driver/*.c)
.PHONY: perf-tools
perf-tools: check-build-deps $(BUILD)/perf/vhost-blk-driver

$(BUILD)/perf/vhost-blk-driver: $(PERF_DRIVER_SRCS:%.c=$(OBJ)/%.o) $(BUILD)/libvmm.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

-include $(PERF_DRIVER_SRCS:%.c=$(OBJ)/%.d)

# --- fuzzing (not part of `make test`) ---------------------------------------
# libFuzzer targets, tests/fuzz/fuzz_*.c, each linked against the few sources
# it exercises (not the whole library): clang with the fuzzer, ASan and UBSan.
# Needs clang and libFuzzer (Debian: libclang-rt-14-dev). `make fuzz` builds
# and runs each target for FUZZ_SECONDS; crashes land in build/fuzz/.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_FLAGS   := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -fno-omit-frame-pointer -std=gnu11 $(WARN)
FUZZ_SRCS    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS    := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
# What each target links besides itself.
FUZZ_DEPS_fuzz_vhost_user_msg := vhost-user/protocol.c
FUZZ_DEPS_fuzz_virtq_walk     := vhost-user/virtq.c

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)

$(BUILD)/fuzz/fuzz_vhost_user_msg: $(FUZZ_DEPS_fuzz_vhost_user_msg) vhost-user/vhost_user.h
$(BUILD)/fuzz/fuzz_virtq_walk: $(FUZZ_DEPS_fuzz_virtq_walk) vhost-user/virtq.h vhost-user/vhost_user.h
$(BUILD)/fuzz/%: tests/fuzz/%.c
	@mkdir -p $(@D)/corpus-$*
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_FLAGS) -o $@ $< $(FUZZ_DEPS_$*)

fuzz: $(FUZZ_BINS)
	@set -e; for f in $(FUZZ_BINS); do \
	    echo "fuzz: $$f for $(FUZZ_SECONDS) s"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -print_final_stats=1 \
	        -artifact_prefix=$(BUILD)/fuzz/ $(BUILD)/fuzz/corpus-$$(basename $$f); \
	done

clean:
	rm -rf $(OBJ) $(SAN) $(BUILD)/tests $(BUILD)/acpi $(BUILD)/*.a $(BUILD)/vmm $(BUILD)/vmm-san \
	    $(BUILD)/vhost-user-blk $(BUILD)/fuzz $(BUILD)/sriovctl

-include $(CORE_OBJS:.o=.d) $(SAN_OBJS:.o=.d) $(OBJ)/vmm/main.d $(SAN)/vmm/main.d \
         $(UNIT_SRCS:%.c=$(SAN)/%.d) $(VHOST_BLK_SRCS:%.c=$(OBJ)/%.d) \
         $(SRIOVCTL_SRCS:%.c=$(OBJ)/%.d)
