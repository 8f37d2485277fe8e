/* The names of classes and paths, the value parsers (shared with the command
 * line) and the getters devices read their validated values back with. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "config_internal.h"
#include "registry.h"

/* ------------------------------------------------------------------------ */
/* names                                                                     */

const char *const dev_class_names[DEV_CLASS_COUNT + 1] = { "console", "net", "block", NULL };
const char *const io_path_names[IO_PATH_COUNT + 1] = { "emulated", "virtio", "passthrough", NULL };

const char *dev_class_name(enum dev_class c)
{
    return (unsigned)c < DEV_CLASS_COUNT ? dev_class_names[c] : "?";
}

const char *io_path_name(enum io_path p)
{
    return (unsigned)p < IO_PATH_COUNT ? io_path_names[p] : "?";
}

int cfg_choice_index(const char *const *choices, const char *s)
{
    for (int i = 0; choices && choices[i]; i++)
        if (strcmp(choices[i], s) == 0)
            return i;
    return -1;
}

/* ------------------------------------------------------------------------ */
/* value parsers                                                             */

static int parse_digits(const char *s, unsigned base, uint64_t *out, const char **end)
{
    uint64_t v = 0;
    const char *p = s;

    for (;; p++) {
        unsigned d;
        if (*p >= '0' && *p <= '9')
            d = (unsigned)(*p - '0');
        else if (base == 16 && *p >= 'a' && *p <= 'f')
            d = (unsigned)(*p - 'a' + 10);
        else if (base == 16 && *p >= 'A' && *p <= 'F')
            d = (unsigned)(*p - 'A' + 10);
        else
            break;
        if (v > (UINT64_MAX - d) / base)
            return -1; /* overflow */
        v = v * base + d;
    }
    if (p == s)
        return -1; /* no digits */
    *out = v;
    *end = p;
    return 0;
}

int cfg_parse_uint(const char *s, uint64_t *out)
{
    uint64_t v;
    const char *end;
    unsigned base = 10;

    if (!s || !out)
        return -1;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    if (parse_digits(s, base, &v, &end) < 0 || *end)
        return -1;
    *out = v;
    return 0;
}

int cfg_parse_size(const char *s, uint64_t *out)
{
    uint64_t v;
    const char *end;
    unsigned shift = 0;

    if (!s || !out || parse_digits(s, 10, &v, &end) < 0)
        return -1;
    switch (*end) {
    case '\0': break;
    case 'K': case 'k': shift = 10; break;
    case 'M': case 'm': shift = 20; break;
    case 'G': case 'g': shift = 30; break;
    case 'T': case 't': shift = 40; break;
    default: return -1;
    }
    if (shift && end[1] != '\0')
        return -1;
    if (v > (UINT64_MAX >> shift))
        return -1;
    *out = v << shift;
    return 0;
}

int cfg_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "on", "yes", "true", "1", NULL };
    static const char *const no[] = { "off", "no", "false", "0", NULL };

    if (!s || !out)
        return -1;
    for (int i = 0; yes[i]; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* xx:xx:xx:xx:xx:xx, unicast (bit 0 of the first octet clear), not all zero. */
int cfg_parse_mac(const char *s, uint8_t mac[6])
{
    uint8_t m[6];
    bool zero = true;

    if (!s || !mac)
        return -1;
    for (int i = 0; i < 6; i++) {
        int hi = hexval(s[0]), lo = hi < 0 ? -1 : hexval(s[1]);
        if (hi < 0 || lo < 0)
            return -1;
        m[i] = (uint8_t)(hi << 4 | lo);
        zero = zero && m[i] == 0;
        s += 2;
        if (i < 5 && *s++ != ':')
            return -1;
    }
    if (*s || (m[0] & 1) || zero)
        return -1;
    memcpy(mac, m, 6);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* getters                                                                   */

static const struct cfg_key *schema_key(const struct device_config *dc, const char *key)
{
    if (!dc || !dc->impl)
        return NULL;
    int k = cfg_key_index(dc->impl->keys, key);
    return k < 0 ? NULL : &dc->impl->keys[k];
}

const char *device_config_get(const struct device_config *dc, const char *key)
{
    if (!dc || !key)
        return NULL;
    const char *active = io_path_name(dc->path);
    for (size_t i = 0; i < dc->n_values; i++) {
        const struct cfg_value *v = &dc->values[i];
        if (strcmp(v->section, active) == 0 && strcmp(v->key, key) == 0)
            return v->value;
    }
    const struct cfg_key *k = schema_key(dc, key);
    return k ? k->default_value : NULL;
}

uint64_t device_config_get_uint(const struct device_config *dc, const char *key)
{
    const char *s = device_config_get(dc, key);
    const struct cfg_key *k = schema_key(dc, key);
    uint64_t v = 0;

    if (!s)
        return 0;
    if (k && k->type == CFG_SIZE ? cfg_parse_size(s, &v) : cfg_parse_uint(s, &v))
        return 0;
    return v;
}

bool device_config_get_bool(const struct device_config *dc, const char *key)
{
    const char *s = device_config_get(dc, key);
    bool b = false;

    if (!s || cfg_parse_bool(s, &b) < 0)
        return false;
    return b;
}

char *device_config_get_path(const struct device_config *dc, const char *key)
{
    const char *s = device_config_get(dc, key);
    if (!s)
        return NULL;
    return cfg_path_join(dc->dir, s);
}

void device_config_key_error(const struct device_config *dc, const char *key, const char *fmt, ...)
{
    const char *active = io_path_name(dc->path);
    int line = dc->path_line;
    va_list ap;

    for (size_t i = 0; key && i < dc->n_values; i++)
        if (strcmp(dc->values[i].section, active) == 0 && strcmp(dc->values[i].key, key) == 0)
            line = dc->values[i].line;
    fprintf(stderr, "%s:%d: %s%s", dc->file, line, key ? key : "", key ? ": " : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int device_config_serial(const struct device_config *dc, char serial[DEVICE_SERIAL_MAX + 1])
{
    const char *s = device_config_get(dc, "serial");

    if (!s) {
        snprintf(serial, DEVICE_SERIAL_MAX + 1, "%s", dc->id);
        return 0;
    }
    if (!*s || strlen(s) > DEVICE_SERIAL_MAX) {
        device_config_key_error(dc, "serial", "'%s' is not 1 to %d characters", s,
                                DEVICE_SERIAL_MAX);
        return -1;
    }
    for (const char *p = s; *p; p++) {
        if (*p < 0x20 || *p > 0x7e) {
            device_config_key_error(dc, "serial", "'%s' holds a character that is not printable "
                                    "ASCII", s);
            return -1;
        }
    }
    snprintf(serial, DEVICE_SERIAL_MAX + 1, "%s", s);
    return 0;
}
