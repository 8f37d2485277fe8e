/* Checking the keys of one section against a cfg_key table: unknown,
 * duplicate and missing keys, and every value against its type. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "config_internal.h"

void cfg_fmt_choices(char *buf, size_t len, const char *const *choices)
{
    size_t n = 0, off = 0;
    while (choices && choices[n])
        n++;
    buf[0] = '\0';
    for (size_t i = 0; i < n && off < len; i++) {
        const char *sep = i == 0 ? "" : i == n - 1 ? " or " : ", ";
        int w = snprintf(buf + off, len - off, "%s%s", sep, choices[i]);
        if (w < 0)
            break;
        off += (size_t)w;
    }
}

static const char *expected_text(const struct cfg_key *k, char *buf, size_t len)
{
    if (k->expected)
        return k->expected;
    switch (k->type) {
    case CFG_STRING: return "a non-empty value";
    case CFG_PATH: return "a file path";
    case CFG_UINT: return "a number, decimal or 0x hex";
    case CFG_SIZE: return "a size in bytes with an optional K, M, G or T suffix";
    case CFG_BOOL: return "on/off, yes/no, true/false or 1/0";
    case CFG_MAC: return "a unicast MAC address such as 52:54:00:12:34:56";
    case CFG_ENUM: cfg_fmt_choices(buf, len, k->choices); return buf;
    }
    return "a valid value";
}

static void fmt_size(char *buf, size_t len, uint64_t v)
{
    static const char suffix[] = "TGMK";
    for (int i = 0; i < 4; i++) {
        unsigned shift = (unsigned)(40 - 10 * i);
        if (v && v % (1ULL << shift) == 0) {
            snprintf(buf, len, "%llu%c", (unsigned long long)(v >> shift), suffix[i]);
            return;
        }
    }
    snprintf(buf, len, "%llu", (unsigned long long)v);
}

static bool check_value(struct loader *L, const struct ini_doc *d, const struct ini_entry *e,
                        const struct cfg_key *k)
{
    char eb[256], lo[32], hi[32];
    const char *exp = expected_text(k, eb, sizeof(eb));
    const char *what = NULL;
    uint64_t v;
    bool b;
    uint8_t mac[6];

    if (e->value[0] == '\0') {
        cfg_report(L, d->seq, d->file, e->line, "%s: empty value (expected %s)", e->key, exp);
        return false;
    }
    switch (k->type) {
    case CFG_STRING:
    case CFG_PATH:
        return true;
    case CFG_BOOL:
        if (cfg_parse_bool(e->value, &b) == 0)
            return true;
        what = "not a boolean";
        break;
    case CFG_MAC:
        if (cfg_parse_mac(e->value, mac) == 0)
            return true;
        what = "not a unicast MAC address";
        break;
    case CFG_ENUM:
        if (cfg_choice_index(k->choices, e->value) >= 0)
            return true;
        cfg_report(L, d->seq, d->file, e->line, "%s: unknown %s '%s' (expected %s)", e->key, e->key,
                   e->value, exp);
        return false;
    case CFG_UINT:
    case CFG_SIZE:
        if ((k->type == CFG_UINT ? cfg_parse_uint : cfg_parse_size)(e->value, &v) < 0) {
            what = k->type == CFG_UINT ? "not a number (or too large)" : "not a size (or too large)";
            break;
        }
        if ((k->min || k->max) && (v < k->min || v > k->max)) {
            if (k->type == CFG_SIZE) {
                fmt_size(lo, sizeof(lo), k->min);
                fmt_size(hi, sizeof(hi), k->max);
            } else if (e->value[0] == '0' && (e->value[1] == 'x' || e->value[1] == 'X')) {
                snprintf(lo, sizeof(lo), "0x%llx", (unsigned long long)k->min);
                snprintf(hi, sizeof(hi), "0x%llx", (unsigned long long)k->max);
            } else {
                snprintf(lo, sizeof(lo), "%llu", (unsigned long long)k->min);
                snprintf(hi, sizeof(hi), "%llu", (unsigned long long)k->max);
            }
            cfg_report(L, d->seq, d->file, e->line, "%s: '%s' is out of range %s..%s (expected %s)",
                       e->key, e->value, lo, hi, exp);
            return false;
        }
        if (k->multiple_of && v % k->multiple_of) {
            if (k->type == CFG_SIZE)
                fmt_size(lo, sizeof(lo), k->multiple_of);
            else
                snprintf(lo, sizeof(lo), "%llu", (unsigned long long)k->multiple_of);
            cfg_report(L, d->seq, d->file, e->line, "%s: '%s' is not a multiple of %s (expected %s)",
                       e->key, e->value, lo, exp);
            return false;
        }
        return true;
    }
    cfg_report(L, d->seq, d->file, e->line, "%s: '%s': %s (expected %s)", e->key, e->value, what,
               exp);
    return false;
}

size_t cfg_count_keys(const struct cfg_key *keys)
{
    size_t n = 0;
    while (keys && keys[n].name)
        n++;
    return n;
}

int cfg_key_index(const struct cfg_key *keys, const char *name)
{
    for (size_t i = 0; keys && keys[i].name; i++)
        if (strcmp(keys[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Checks every key of [sec] against keys; missing required keys are reported
 * at missing_line. what names the schema in unknown-key messages. */
void cfg_check_keys(struct loader *L, const struct ini_doc *d, const char *sec,
                    const struct cfg_key *keys, int missing_line, const char *what,
                    struct found *out)
{
    size_t n = cfg_count_keys(keys);
    char names[512], eb[256];

    memset(out, 0, n * sizeof(*out));
    {
        const char *list[CFG_MAX_KEYS + 1];
        size_t m = n < CFG_MAX_KEYS ? n : CFG_MAX_KEYS;
        for (size_t i = 0; i < m; i++)
            list[i] = keys[i].name;
        list[m] = NULL;
        cfg_fmt_choices(names, sizeof(names), list);
    }
    for (size_t i = 0; i < d->n_ents; i++) {
        const struct ini_entry *e = &d->ents[i];
        const char *s = doc_entry_section(d, e);
        if (e->cont || !s || strcmp(s, sec) != 0)
            continue;
        int k = cfg_key_index(keys, e->key);
        if (k < 0) {
            cfg_report(L, d->seq, d->file, e->line, "%s: unknown key in [%s]%s (expected %s)",
                       e->key, sec, what, names);
            continue;
        }
        if (out[k].e) {
            cfg_report(L, d->seq, d->file, e->line,
                       "%s: duplicate key, first set at line %d (expected each key once)", e->key,
                       out[k].e->line);
            continue;
        }
        out[k].e = e;
        out[k].ok = check_value(L, d, e, &keys[k]);
    }
    for (size_t k = 0; k < n; k++)
        if (keys[k].required && !out[k].e)
            cfg_report(L, d->seq, d->file, missing_line,
                       "%s: missing required key in [%s] (expected %s)", keys[k].name, sec,
                       expected_text(&keys[k], eb, sizeof(eb)));
}

bool cfg_valid_name(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n < 1 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
            return false;
    return true;
}
