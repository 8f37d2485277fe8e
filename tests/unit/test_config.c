/* config_load(), the value parsers and the device getters. Every test writes
 * its config tree into a fresh mkdtemp() folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "registry.h"

/* ------------------------------------------------------------------------ */
/* helpers                                                                   */

struct tree {
    char dir[64];
};

static int tree_setup(void **state)
{
    struct tree *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    strcpy(t->dir, "/tmp/test_config.XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    *state = t;
    return 0;
}

static int tree_teardown(void **state)
{
    struct tree *t = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
    assert_int_equal(system(cmd), 0);
    free(t);
    return 0;
}

static char *tpath(struct tree *t, const char *rel)
{
    char *p;
    assert_true(asprintf(&p, "%s/%s", t->dir, rel) > 0);
    return p;
}

/* Writes rel (creating its folders) with the given text. */
static void put(struct tree *t, const char *rel, const char *text)
{
    char *p = tpath(t, rel);
    for (size_t i = strlen(t->dir) + 1; p[i]; i++) {
        if (p[i] == '/') {
            p[i] = '\0';
            mkdir(p, 0755);
            p[i] = '/';
        }
    }
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    free(p);
}

/* A VM file with a valid [vm] section plus extra lines (kernel exists). */
static void put_vm(struct tree *t, const char *extra)
{
    char *text;
    put(t, "bzImage", "kernel");
    assert_true(asprintf(&text, "[vm]\nname = t\nmemory = 64M\nkernel = bzImage\n%s", extra) > 0);
    put(t, "vm.conf", text);
    free(text);
}

static const char console_ok[] =
    "[device]\nid = con0\nclass = console\npath = emulated\n[emulated]\nmodel = 16550\n";

/* Loads vm.conf; returns config_load's result and the error text (caller frees). */
static int load(struct tree *t, struct vm_config *cfg, char **errs)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *err = open_memstream(&buf, &len);
    assert_non_null(err);
    char *p = tpath(t, "vm.conf");
    int rc = config_load(p, cfg, err);
    free(p);
    fclose(err);
    *errs = buf;
    return rc;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* config_load must fail and print a line containing "<dir>/<where>" + what. */
static char *expect_fail(struct tree *t, const char *where, const char *what)
{
    struct vm_config cfg;
    char *errs, *needle;
    memset(&cfg, 0xa5, sizeof(cfg));
    int rc = load(t, &cfg, &errs);
    assert_int_equal(rc, -1);
    /* nothing is handed out on failure */
    assert_null(cfg.name);
    assert_null(cfg.devices);
    assert_int_equal(cfg.n_devices, 0);
    assert_true(asprintf(&needle, "%s/%s", t->dir, where) > 0);
    char *hit = strstr(errs, needle);
    if (!hit)
        fail_msg("expected '%s' in:\n%s", needle, errs);
    /* the rest of that error line must say what */
    char *eol = strchr(hit, '\n');
    assert_non_null(eol);
    *eol = '\0';
    if (!strstr(hit, what))
        fail_msg("expected '%s' in line: %s", what, hit);
    *eol = '\n';
    free(needle);
    return errs;
}

static void fails_with(struct tree *t, const char *where, const char *what)
{
    free(expect_fail(t, where, what));
}

/* ------------------------------------------------------------------------ */
/* parsers                                                                   */

static void test_parse_uint(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_int_equal(cfg_parse_uint("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(cfg_parse_uint("1234", &v), 0);
    assert_int_equal(v, 1234);
    assert_int_equal(cfg_parse_uint("010", &v), 0); /* decimal, not octal */
    assert_int_equal(v, 10);
    assert_int_equal(cfg_parse_uint("0x3f8", &v), 0);
    assert_int_equal(v, 0x3f8);
    assert_int_equal(cfg_parse_uint("0XFFFF", &v), 0);
    assert_int_equal(v, 0xffff);
    assert_int_equal(cfg_parse_uint("18446744073709551615", &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(cfg_parse_uint("0xffffffffffffffff", &v), 0);
    assert_true(v == UINT64_MAX);

    v = 7;
    const char *bad[] = { "", "-1", "+1", " 1", "1 ", "12a", "0x", "0x0x10", "0xg",
                          "18446744073709551616", "0x10000000000000000", "99999999999999999999999",
                          "1.5", "abc", NULL };
    for (int i = 0; bad[i]; i++) {
        if (cfg_parse_uint(bad[i], &v) != -1)
            fail_msg("cfg_parse_uint accepted '%s'", bad[i]);
        assert_int_equal(v, 7); /* untouched */
    }
    assert_int_equal(cfg_parse_uint(NULL, &v), -1);
}

static void test_parse_size(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_int_equal(cfg_parse_size("4096", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(cfg_parse_size("4K", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(cfg_parse_size("256M", &v), 0);
    assert_int_equal(v, 256ULL << 20);
    assert_int_equal(cfg_parse_size("256m", &v), 0);
    assert_int_equal(v, 256ULL << 20);
    assert_int_equal(cfg_parse_size("2G", &v), 0);
    assert_int_equal(v, 2ULL << 30);
    assert_int_equal(cfg_parse_size("1T", &v), 0);
    assert_int_equal(v, 1ULL << 40);
    assert_int_equal(cfg_parse_size("16777215T", &v), 0); /* 2^64 - 2^40 */
    assert_true(v == 16777215ULL << 40);
    assert_int_equal(cfg_parse_size("0", &v), 0);
    assert_int_equal(v, 0);

    v = 7;
    const char *bad[] = { "", "M", "-1M", " 1M", "1M ", "1 M", "1MB", "1MiB", "1P", "1.5G",
                          "0x10", "16777216T", "17179869184G", "18446744073709551616",
                          "18014398509481984K", "2MM", NULL };
    for (int i = 0; bad[i]; i++) {
        if (cfg_parse_size(bad[i], &v) != -1)
            fail_msg("cfg_parse_size accepted '%s'", bad[i]);
        assert_int_equal(v, 7);
    }
}

static void test_parse_bool(void **state)
{
    (void)state;
    const char *yes[] = { "on", "yes", "true", "1", "ON", "Yes", "TRUE", NULL };
    const char *no[] = { "off", "no", "false", "0", "OFF", "No", NULL };
    const char *bad[] = { "", "2", "y", "n", "enabled", "on ", "tru", NULL };
    bool b;
    for (int i = 0; yes[i]; i++) {
        b = false;
        assert_int_equal(cfg_parse_bool(yes[i], &b), 0);
        assert_true(b);
    }
    for (int i = 0; no[i]; i++) {
        b = true;
        assert_int_equal(cfg_parse_bool(no[i], &b), 0);
        assert_false(b);
    }
    for (int i = 0; bad[i]; i++)
        if (cfg_parse_bool(bad[i], &b) != -1)
            fail_msg("cfg_parse_bool accepted '%s'", bad[i]);
}

static void test_parse_mac(void **state)
{
    (void)state;
    uint8_t m[6] = { 0 };
    assert_int_equal(cfg_parse_mac("52:54:00:12:34:56", m), 0);
    assert_memory_equal(m, ((uint8_t[]){ 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 }), 6);
    assert_int_equal(cfg_parse_mac("02:AB:cd:EF:00:ff", m), 0);
    assert_memory_equal(m, ((uint8_t[]){ 0x02, 0xab, 0xcd, 0xef, 0x00, 0xff }), 6);

    memset(m, 0x77, 6);
    const char *bad[] = { "", "52:54:00:12:34", "52:54:00:12:34:56:78", "52-54-00-12-34-56",
                          "5254.0012.3456", "52:54:00:12:34:5", "52:54:00:12:34:567",
                          "52:54:00:12:34:5g", "01:00:5e:00:00:01" /* multicast */,
                          "ff:ff:ff:ff:ff:ff" /* broadcast */, "00:00:00:00:00:00",
                          " 52:54:00:12:34:56", "52:54:00:12:34:56 ", "2:54:00:12:34:56", NULL };
    for (int i = 0; bad[i]; i++)
        if (cfg_parse_mac(bad[i], m) != -1)
            fail_msg("cfg_parse_mac accepted '%s'", bad[i]);
    for (int i = 0; i < 6; i++)
        assert_int_equal(m[i], 0x77);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(dev_class_name(DEV_CLASS_CONSOLE), "console");
    assert_string_equal(dev_class_name(DEV_CLASS_NET), "net");
    assert_string_equal(dev_class_name(DEV_CLASS_BLOCK), "block");
    assert_string_equal(io_path_name(IO_PATH_EMULATED), "emulated");
    assert_string_equal(io_path_name(IO_PATH_VIRTIO), "virtio");
    assert_string_equal(io_path_name(IO_PATH_PASSTHROUGH), "passthrough");
    assert_non_null(dev_class_name(DEV_CLASS_COUNT));
    assert_non_null(io_path_name(IO_PATH_COUNT));
}

static void test_registry(void **state)
{
    (void)state;
    const struct device_impl *im = registry_find(DEV_CLASS_CONSOLE, IO_PATH_EMULATED, "16550");
    assert_non_null(im);
    assert_int_equal(im->cls, DEV_CLASS_CONSOLE);
    assert_int_equal(im->path, IO_PATH_EMULATED);
    assert_string_equal(im->model, "16550");
    assert_non_null(im->keys);
    assert_non_null(im->create);
    assert_ptr_equal(registry_find_path(DEV_CLASS_CONSOLE, IO_PATH_EMULATED), im);
    assert_null(registry_find(DEV_CLASS_CONSOLE, IO_PATH_EMULATED, "8250"));
    assert_null(registry_find(DEV_CLASS_CONSOLE, IO_PATH_EMULATED, NULL));
    assert_non_null(registry_find(DEV_CLASS_BLOCK, IO_PATH_VIRTIO, NULL));
    assert_null(registry_find(DEV_CLASS_BLOCK, IO_PATH_VIRTIO, "nvme"));
    assert_non_null(registry_find(DEV_CLASS_BLOCK, IO_PATH_PASSTHROUGH, NULL));
    assert_non_null(registry_find(DEV_CLASS_NET, IO_PATH_PASSTHROUGH, NULL));
    assert_null(registry_find_path(DEV_CLASS_CONSOLE, IO_PATH_PASSTHROUGH));
    assert_null(registry_find_path(DEV_CLASS_CONSOLE, IO_PATH_VIRTIO));
    assert_non_null(registry_find(DEV_CLASS_NET, IO_PATH_EMULATED, "e1000"));
    assert_non_null(registry_find(DEV_CLASS_BLOCK, IO_PATH_EMULATED, "nvme"));
    assert_null(registry_find(DEV_CLASS_BLOCK, IO_PATH_EMULATED, "e1000"));
    size_t n = 0;
    while (device_registry[n])
        n++;
    assert_non_null(registry_find(DEV_CLASS_NET, IO_PATH_VIRTIO, NULL));
    assert_int_equal(n, 7);
}

/* ------------------------------------------------------------------------ */
/* good configs                                                              */

static void test_good_roundtrip(void **state)
{
    struct tree *t = *state;
    struct vm_config cfg;
    char *errs, *initrd = tpath(t, "images/initrd.img"), *text;

    put(t, "images/bzImage", "k");
    put(t, "images/initrd.img", "i");
    assert_true(asprintf(&text,
                         "# a comment\n"
                         "[vm]\n"
                         "name     = demo-1.x_y     ; inline comment\n"
                         "memory   = 1G\n"
                         "vcpus    = 4\n"
                         "kernel   = images/bzImage\n"
                         "initrd   = %s\n"
                         "cmdline  = console=ttyS0 root=/dev/vda quiet\n"
                         "hugepages = 2M\n"
                         "devices  = devices/*.conf  extra/late.conf\n",
                         initrd) > 0);
    put(t, "vm.conf", text);
    free(text);
    put(t, "devices/b.conf",
        "[device]\nid = com2\nclass = console\npath = emulated\n\n"
        "[emulated]\nmodel = 16550\nport = 0x2f8\nirq = 3\noutput = logs/com2.txt\n");
    put(t, "devices/a.conf", console_ok);
    put(t, "extra/late.conf",
        "[device]\nid = com3\nclass = console\npath = emulated\n[emulated]\nmodel=16550\n"
        "port = 1000\n");

    int rc = load(t, &cfg, &errs);
    if (rc != 0)
        fail_msg("config_load failed:\n%s", errs);
    assert_string_equal(errs, "");
    free(errs);

    char *vmfile = tpath(t, "vm.conf"), *kernel = tpath(t, "images/bzImage");
    assert_string_equal(cfg.file, vmfile);
    assert_string_equal(cfg.dir, t->dir);
    assert_string_equal(cfg.name, "demo-1.x_y");
    assert_true(cfg.memory == 1ULL << 30);
    assert_int_equal(cfg.vcpus, 4);
    assert_string_equal(cfg.kernel, kernel);
    assert_string_equal(cfg.initrd, initrd);
    assert_string_equal(cfg.cmdline, "console=ttyS0 root=/dev/vda quiet");
    assert_int_equal(cfg.hugepages, HUGEPAGES_2M);
    free(vmfile);
    free(kernel);
    free(initrd);

    /* glob matches in sorted order, then the listed file */
    assert_int_equal(cfg.n_devices, 3);
    struct device_config *a = &cfg.devices[0], *b = &cfg.devices[1], *c = &cfg.devices[2];
    char *af = tpath(t, "devices/a.conf"), *cf = tpath(t, "extra/late.conf"),
         *ddir = tpath(t, "devices"), *log = tpath(t, "devices/logs/com2.txt");
    assert_string_equal(a->file, af);
    assert_string_equal(a->dir, ddir);
    assert_string_equal(c->file, cf);
    assert_string_equal(a->id, "con0");
    assert_string_equal(b->id, "com2");
    assert_string_equal(c->id, "com3");
    assert_int_equal(a->id_line, 2);
    assert_int_equal(a->path_line, 4);
    assert_int_equal(a->cls, DEV_CLASS_CONSOLE);
    assert_int_equal(a->path, IO_PATH_EMULATED);
    assert_ptr_equal(a->impl, registry_find(DEV_CLASS_CONSOLE, IO_PATH_EMULATED, "16550"));

    /* values: set ones, schema defaults, unknown keys */
    assert_int_equal(a->n_values, 1);
    assert_string_equal(a->values[0].section, "emulated");
    assert_string_equal(a->values[0].key, "model");
    assert_string_equal(a->values[0].value, "16550");
    assert_int_equal(a->values[0].line, 6);
    assert_string_equal(device_config_get(a, "model"), "16550");
    assert_string_equal(device_config_get(a, "port"), "0x3f8");
    assert_int_equal(device_config_get_uint(a, "port"), 0x3f8);
    assert_int_equal(device_config_get_uint(a, "irq"), 4);
    assert_string_equal(device_config_get(a, "output"), "stdio");
    assert_null(device_config_get(a, "nosuchkey"));
    assert_int_equal(device_config_get_uint(a, "nosuchkey"), 0);

    assert_int_equal(b->n_values, 4);
    assert_int_equal(device_config_get_uint(b, "port"), 0x2f8);
    assert_int_equal(device_config_get_uint(b, "irq"), 3);
    char *out = device_config_get_path(b, "output");
    assert_string_equal(out, log);
    free(out);
    assert_int_equal(device_config_get_uint(c, "port"), 1000);
    assert_int_equal(device_config_get_uint(c, "irq"), 4);

    free(af);
    free(cf);
    free(ddir);
    free(log);
    config_free(&cfg);
    assert_null(cfg.devices);
    assert_null(cfg.name);
    config_free(&cfg); /* twice is harmless */
}

static void test_good_defaults(void **state)
{
    struct tree *t = *state;
    struct vm_config cfg;
    char *errs;

    put_vm(t, "");
    assert_int_equal(load(t, &cfg, &errs), 0);
    assert_string_equal(errs, "");
    free(errs);
    assert_int_equal(cfg.vcpus, 1);
    assert_true(cfg.memory == 64ULL << 20);
    assert_null(cfg.initrd);
    assert_string_equal(cfg.cmdline, "console=ttyS0");
    assert_int_equal(cfg.hugepages, HUGEPAGES_OFF);
    assert_int_equal(cfg.n_devices, 0);
    assert_null(cfg.devices);
    config_free(&cfg);
}

/* A relative VM file path: everything resolves against its folder. */
static void test_good_relative_vm_file(void **state)
{
    struct tree *t = *state;
    struct vm_config cfg;
    char cwd[4096];

    put_vm(t, "hugepages = 1G\ndevices = d/c.conf\n");
    put(t, "d/c.conf", console_ok);
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir("/tmp"), 0);
    const char *rel = t->dir + strlen("/tmp/");
    char *vm;
    assert_true(asprintf(&vm, "%s/vm.conf", rel) > 0);
    int rc = config_load(vm, &cfg, stderr);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rc, 0);
    char *k, *dfile;
    assert_true(asprintf(&k, "%s/bzImage", rel) > 0);
    assert_true(asprintf(&dfile, "%s/d/c.conf", rel) > 0);
    assert_string_equal(cfg.kernel, k);
    assert_int_equal(cfg.hugepages, HUGEPAGES_1G);
    assert_int_equal(cfg.n_devices, 1);
    assert_string_equal(cfg.devices[0].file, dfile);
    free(k);
    free(dfile);
    free(vm);
    config_free(&cfg);
}

/* A 4095-character cmdline fits (the line buffer is large enough); one more
 * character is an error. */
static void test_cmdline_limit(void **state)
{
    struct tree *t = *state;
    struct vm_config cfg;
    char *errs, *extra = malloc(4200);

    assert_non_null(extra);
    strcpy(extra, "cmdline = ");
    memset(extra + 10, 'a', 4095);
    strcpy(extra + 10 + 4095, "\n");
    put_vm(t, extra);
    int rc = load(t, &cfg, &errs);
    if (rc)
        fail_msg("%s", errs);
    free(errs);
    assert_int_equal(strlen(cfg.cmdline), 4095);
    config_free(&cfg);

    strcpy(extra + 10 + 4095, "a\n");
    put_vm(t, extra);
    fails_with(t, "vm.conf:5: cmdline:", "too long");
    free(extra);
}

/* The getters on a hand-made device_config: the active section wins over
 * other path sections, CFG_SIZE and CFG_BOOL, defaults. */
static void test_getters(void **state)
{
    (void)state;
    static const struct cfg_key keys[] = {
        { .name = "size", .type = CFG_SIZE, .default_value = "1M" },
        { .name = "count", .type = CFG_UINT, .default_value = "0x10" },
        { .name = "flag", .type = CFG_BOOL, .default_value = "on" },
        { .name = "file", .type = CFG_PATH },
        { .name = NULL },
    };
    static const struct device_impl impl = { .cls = DEV_CLASS_BLOCK, .path = IO_PATH_VIRTIO,
                                             .keys = keys };
    struct cfg_value vals[] = {
        { .section = "emulated", .key = "size", .value = "8G", .line = 6 },
        { .section = "virtio", .key = "size", .value = "2G", .line = 9 },
        { .section = "virtio", .key = "file", .value = "disk.img", .line = 10 },
        { .section = "emulated", .key = "flag", .value = "off", .line = 7 },
    };
    struct device_config dc = { .file = "/x/y/d.conf", .dir = "/x/y", .id = "d",
                                .cls = DEV_CLASS_BLOCK, .path = IO_PATH_VIRTIO, .impl = &impl,
                                .values = vals, .n_values = 4 };

    assert_true(device_config_get_uint(&dc, "size") == 2ULL << 30);
    assert_int_equal(device_config_get_uint(&dc, "count"), 16);
    assert_true(device_config_get_bool(&dc, "flag")); /* [emulated] flag=off is not active */
    char *p = device_config_get_path(&dc, "file");
    assert_string_equal(p, "/x/y/disk.img");
    free(p);
    vals[2].value = "/abs/disk.img";
    p = device_config_get_path(&dc, "file");
    assert_string_equal(p, "/abs/disk.img");
    free(p);

    dc.path = IO_PATH_EMULATED;
    assert_true(device_config_get_uint(&dc, "size") == 8ULL << 30);
    assert_false(device_config_get_bool(&dc, "flag"));
    assert_null(device_config_get_path(&dc, "file"));
    assert_null(device_config_get(&dc, "nosuch"));
    assert_false(device_config_get_bool(&dc, "nosuch"));
}

/* ------------------------------------------------------------------------ */
/* errors in the VM file                                                     */

static void test_err_vm_missing_keys(void **state)
{
    struct tree *t = *state;
    put(t, "vm.conf", "# header\n\n[vm]\nname = x\n");
    char *errs = expect_fail(t, "vm.conf:3: memory:", "missing required key");
    assert_non_null(strstr(errs, "vm.conf:3: kernel: missing required key"));
    assert_null(strstr(errs, "name:"));
    assert_null(strstr(errs, "vcpus:"));
    assert_int_equal(count_lines(errs), 2);
    free(errs);

    put(t, "vm.conf", "; no [vm] at all\n");
    errs = expect_fail(t, "vm.conf:1: name:", "missing required key");
    assert_non_null(strstr(errs, "vm.conf:1: memory: missing required key"));
    assert_non_null(strstr(errs, "vm.conf:1: kernel: missing required key"));
    assert_int_equal(count_lines(errs), 3);
    free(errs);
}

static void test_err_vm_values(void **state)
{
    struct tree *t = *state;
    struct { const char *line, *where, *what; } cases[] = {
        { "vcpus = 0", "vm.conf:5: vcpus:", "out of range 1..64 (expected" },
        { "vcpus = 65", "vm.conf:5: vcpus:", "out of range" },
        { "vcpus = 2x", "vm.conf:5: vcpus:", "'2x': not a number" },
        { "vcpus = -1", "vm.conf:5: vcpus:", "not a number" },
        { "vcpus = 99999999999999999999", "vm.conf:5: vcpus:", "not a number" },
        { "vcpus =", "vm.conf:5: vcpus:", "empty value" },
        { "hugepages = 4M", "vm.conf:5: hugepages:", "unknown hugepages '4M' (expected off, 2M or 1G)" },
        { "hugepages = on", "vm.conf:5: hugepages:", "(expected off, 2M or 1G)" },
        { "initrd = nope.img", "vm.conf:5: initrd:", "No such file or directory" },
        { "initrd = .", "vm.conf:5: initrd:", "Is a directory" },
        { "colour = red", "vm.conf:5: colour:", "unknown key in [vm] (expected name, memory" },
        { "name = again", "vm.conf:5: name:", "duplicate key, first set at line 2" },
        { "devices = nothing/*.conf", "vm.conf:5: devices:", "'nothing/*.conf' matches no file" },
        { "devices = dev.conf", "vm.conf:5: devices:", "dev.conf': No such file or directory" },
        { "  continued", "vm.conf:5: kernel:", "multi-line values are not supported" },
        { "just words", "vm.conf:5: syntax error:", "'just words'" },
        { "[broken", "vm.conf:5: syntax error:", "without ']'" },
        { "[other]", "vm.conf:5: [other]:", "unknown section (expected [vm])" },
        { "[vm]", "vm.conf:5: [vm]:", "duplicate section, first at line 1" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *extra;
        assert_true(asprintf(&extra, "%s\n", cases[i].line) > 0);
        put_vm(t, extra);
        free(extra);
        fails_with(t, cases[i].where, cases[i].what);
    }
}

static void test_err_vm_name_memory_kernel(void **state)
{
    struct tree *t = *state;
    struct { const char *text, *where, *what; } cases[] = {
        { "[vm]\nname = a b\nmemory = 64M\nkernel = /bin/true\n", "vm.conf:2: name:", "not a valid name" },
        { "[vm]\nname = 01234567890123456789012345678901234567890123456789012345678901234\n"
          "memory = 64M\nkernel = /bin/true\n", "vm.conf:2: name:", "not a valid name" },
        { "[vm]\nname = a\nmemory = 64Q\nkernel = /bin/true\n", "vm.conf:3: memory:", "'64Q': not a size" },
        { "[vm]\nname = a\nmemory = 33M\nkernel = /bin/true\n", "vm.conf:3: memory:", "not a multiple of 2M" },
        { "[vm]\nname = a\nmemory = 16M\nkernel = /bin/true\n", "vm.conf:3: memory:", "out of range 32M..1T" },
        { "[vm]\nname = a\nmemory = 2T\nkernel = /bin/true\n", "vm.conf:3: memory:", "out of range 32M..1T" },
        { "[vm]\nname = a\nmemory = 99999999999999999999\nkernel = /bin/true\n", "vm.conf:3: memory:", "not a size" },
        { "[vm]\nname = a\nmemory = 64M\nkernel = vmlinuz\n", "vm.conf:4: kernel:", "vmlinuz': No such file" },
        { "stray = 1\n[vm]\nname = a\nmemory = 64M\nkernel = /bin/true\n", "vm.conf:1: stray:", "outside any section" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        put(t, "vm.conf", cases[i].text);
        fails_with(t, cases[i].where, cases[i].what);
    }
    /* a kernel path relative to the VM file's folder, named resolved */
    put(t, "vm.conf", "[vm]\nname = a\nmemory = 64M\nkernel = sub/vmlinuz\n");
    char *where;
    assert_true(asprintf(&where, "kernel: '%s/sub/vmlinuz'", t->dir) > 0);
    fails_with(t, "vm.conf:4: kernel:", where);
    free(where);
}

static void test_err_vm_file_missing(void **state)
{
    struct tree *t = *state;
    fails_with(t, "vm.conf:0: ", "cannot open: No such file or directory");
}

static void test_err_long_line_and_nul(void **state)
{
    struct tree *t = *state;
    char *extra = malloc(9000);
    assert_non_null(extra);
    strcpy(extra, "cmdline = ");
    memset(extra + 10, 'x', 8500);
    strcpy(extra + 8510, "\nvcpus = 100\n");
    put_vm(t, extra);
    free(extra);
    /* the long line is reported, and the lines after it keep their numbers */
    char *errs = expect_fail(t, "vm.conf:5: line too long", "8510 characters");
    assert_non_null(strstr(errs, "vm.conf:6: vcpus:"));
    free(errs);

    char *p = tpath(t, "vm.conf");
    FILE *f = fopen(p, "w");
    free(p);
    assert_non_null(f);
    fputs("[vm]\nname = a\nmemory = 64M\nkernel = bzImage\ncmdline = a", f);
    fputc('\0', f);
    fputs("b\n", f);
    fclose(f);
    fails_with(t, "vm.conf:5: line contains a NUL byte", "");
}

/* All errors are reported, not just the first one, sorted by line. */
static void test_err_all_collected(void **state)
{
    struct tree *t = *state;
    put(t, "vm.conf", "[vm]\nname = -bad name-\nmemory = 1X\nvcpus = 0\nkernel = none\n"
                      "hugepages = big\nfoo = bar\nbad line\n[x]\n");
    char *errs = expect_fail(t, "vm.conf:2: name:", "not a valid name");
    assert_int_equal(count_lines(errs), 8);
    const char *order[] = { ":2: name", ":3: memory", ":4: vcpus", ":5: kernel", ":6: hugepages",
                            ":7: foo", ":8: syntax error", ":9: [x]" };
    const char *prev = errs;
    for (size_t i = 0; i < 8; i++) {
        const char *hit = strstr(prev, order[i]);
        if (!hit)
            fail_msg("'%s' missing or out of order in:\n%s", order[i], errs);
        prev = hit;
    }
    free(errs);
}

/* ------------------------------------------------------------------------ */
/* errors in device files                                                    */

static void put_vm_with_devices(struct tree *t, const char *devices)
{
    char *extra;
    assert_true(asprintf(&extra, "devices = %s\n", devices) > 0);
    put_vm(t, extra);
    free(extra);
}

static void test_err_device_sections(void **state)
{
    struct tree *t = *state;
    struct { const char *text, *where, *what; } cases[] = {
        { "[device]\nid = a\nclass = console\n", "d.conf:1: path:", "missing required key in [device]" },
        { "id = a\n", "d.conf:1: id:", "outside any section (expected it under [device])" },
        { "", "d.conf:1: class:", "missing required key" },
        { "[device]\nid = a b\nclass = console\npath = emulated\n[emulated]\nmodel = 16550\n",
          "d.conf:2: id:", "not a valid id" },
        { "[device]\nid = a\nclass = gpu\npath = emulated\n", "d.conf:3: class:",
          "unknown class 'gpu' (expected console, net or block)" },
        { "[device]\nid = a\nclass = console\npath = magic\n", "d.conf:4: path:",
          "unknown path 'magic' (expected emulated, virtio or passthrough)" },
        { "[device]\nid = a\nclass = block\npath = passthrough\n[passthrough]\nbogus = 1\n", "d.conf:6: bogus:",
          "unknown key in [passthrough] for block/passthrough (expected bdf, pf, vf or numa)" },
        { "[device]\nid = a\nclass = console\npath = passthrough\n", "d.conf:4: path:",
          "(implemented paths for console: emulated)" },
        { "[device]\nid = a\nclass = console\npath = emulated\ncolour = 1\n[emulated]\nmodel = 16550\n",
          "d.conf:5: colour:", "unknown key in [device] (expected id, class or path)" },
        { "[device]\nid = a\nclass = console\npath = emulated\n[emulated]\nmodel = 16550\nbaud = 9600\n",
          "d.conf:7: baud:", "unknown key in [emulated] for console/emulated model 16550 (expected model, output, input, port or irq)" },
        { "[device]\nid = a\nclass = console\npath = emulated\n[emulated]\nmodel = 8250\n",
          "d.conf:6: model:", "unknown model '8250' for console/emulated (expected 16550)" },
        { "[device]\nid = a\nclass = console\npath = emulated\n[emulated]\nport = 0x2f8\n",
          "d.conf:5: model:", "missing required key in [emulated] (expected 16550)" },
        /* no [emulated] section at all: reported at the path line */
        { "[device]\nid = a\nclass = console\npath = emulated\n", "d.conf:4: model:", "missing required key" },
        { "[device]\nid = a\nclass = console\npath = emulated\n[emulated]\nmodel = 16550\nport = 0x10\n",
          "d.conf:7: port:", "'0x10' is out of range 0x100..0xfff8 (expected an I/O port base" },
        { "[device]\nid = a\nclass = console\npath = emulated\n[emulated]\nmodel = 16550\nirq = 16\n",
          "d.conf:7: irq:", "out of range 1..15" },
        { "[device]\nid = a\nclass = console\npath = emulated\n[emulated]\nmodel = 16550\ninput = tty\n",
          "d.conf:7: input:", "unknown input 'tty' (expected stdio or none)" },
        { "[device]\nid = a\nclass = console\npath = emulated\n[emulated]\nmodel = 16550\noutput =\n",
          "d.conf:7: output:", "empty value" },
        { "[device]\nid = a\nclass = console\npath = emulated\n[emulated]\nmodel = 16550\nirq = 3\nirq = 4\n",
          "d.conf:8: irq:", "duplicate key, first set at line 7" },
        /* a section for another path: checked too, and refused when that
         * path is not implemented for the class */
        { "[device]\nid = a\nclass = console\npath = emulated\n[emulated]\nmodel = 16550\n[virtio]\n",
          "d.conf:7: [virtio]:", "path 'virtio' is not implemented yet for console" },
        { "[device]\nid = a\nclass = console\npath = emulated\n[emulated]\nmodel = 16550\n[pci]\n",
          "d.conf:7: [pci]:", "unknown section (expected [device], [emulated], [virtio] or [passthrough])" },
    };
    put_vm_with_devices(t, "d.conf");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        put(t, "d.conf", cases[i].text);
        fails_with(t, cases[i].where, cases[i].what);
    }
}

/* A device file whose path is invalid still has its [emulated] section
 * checked against the registry. */
static void test_err_device_other_path_checked(void **state)
{
    struct tree *t = *state;
    put_vm_with_devices(t, "d.conf");
    put(t, "d.conf", "[device]\nid = a\nclass = console\npath = virtio\n[emulated]\nmodel = 16550\nirq = 0\n");
    char *errs = expect_fail(t, "d.conf:4: path:", "not implemented yet for console");
    assert_non_null(strstr(errs, "d.conf:7: irq: '0' is out of range"));
    free(errs);
}

static void test_err_device_ids_and_files(void **state)
{
    struct tree *t = *state;
    put(t, "devices/a.conf", console_ok);
    put(t, "devices/b.conf", "[device]\n\nid = con0\nclass = console\npath = emulated\n[emulated]\nmodel = 16550\n");
    put_vm_with_devices(t, "devices/*.conf");
    char *want;
    assert_true(asprintf(&want, "duplicate device id 'con0', also used in %s/devices/a.conf:2", t->dir) > 0);
    fails_with(t, "devices/b.conf:3: id:", want);
    free(want);

    /* the same file twice, once through a glob */
    put(t, "devices/b.conf", "[device]\nid = con1\nclass = console\npath = emulated\n[emulated]\nmodel = 16550\n");
    put_vm_with_devices(t, "devices/*.conf devices/a.conf");
    fails_with(t, "vm.conf:5: devices:", "devices/a.conf' is listed twice");

    /* and through different spellings */
    put_vm_with_devices(t, "devices/a.conf ./devices/a.conf");
    fails_with(t, "vm.conf:5: devices:", "is listed twice, also as");

    /* a glob that matches nothing, next to one that does */
    put_vm_with_devices(t, "devices/*.conf net/*.conf");
    fails_with(t, "vm.conf:5: devices:", "'net/*.conf' matches no file");

    /* a directory is no device file */
    put_vm_with_devices(t, "devices");
    fails_with(t, "vm.conf:5: devices:", "Is a directory");

    /* errors in two device files: both reported, in list order */
    put(t, "devices/a.conf", "[device]\nid = a\nclass = console\npath = emulated\n[emulated]\nmodel = x\n");
    put(t, "devices/b.conf", "[device]\nid = b\nclass = console\npath = passthrough\n");
    put_vm_with_devices(t, "devices/*.conf");
    char *errs = expect_fail(t, "devices/a.conf:6: model:", "unknown model 'x'");
    char *b = strstr(errs, "devices/b.conf:4: path: 'passthrough' is not implemented yet for console");
    assert_non_null(b);
    assert_true(b > strstr(errs, "devices/a.conf:6:"));
    free(errs);
}

/* The device ok, a [vm] error: the result is still a failure. */
static void test_err_only_one(void **state)
{
    struct tree *t = *state;
    put(t, "d.conf", console_ok);
    put_vm(t, "devices = d.conf\nvcpus = 100\n");
    char *errs = expect_fail(t, "vm.conf:6: vcpus:", "out of range");
    assert_int_equal(count_lines(errs), 1);
    free(errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_uint),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_bool),
        cmocka_unit_test(test_parse_mac),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_getters),
        cmocka_unit_test_setup_teardown(test_good_roundtrip, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_good_defaults, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_good_relative_vm_file, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_cmdline_limit, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_err_vm_missing_keys, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_err_vm_values, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_err_vm_name_memory_kernel, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_err_vm_file_missing, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_err_long_line_and_nul, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_err_all_collected, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_err_device_sections, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_err_device_other_path_checked, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_err_device_ids_and_files, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_err_only_one, tree_setup, tree_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
