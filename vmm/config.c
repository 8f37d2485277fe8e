/* Loading and validating the VM file and its device files (see
 * configs/README.md for the format).
 *
 * libinih does the key = value splitting. Our own line reader feeds it one
 * line per call, which is how we know the line number (inih 55's handler has
 * none), and classifies every line the same way inih does, so we also know
 * section header lines, continuation lines and every syntax error (inih only
 * returns the first one). Each file is read into an ini_doc first; all the
 * checks run on those docs, errors are collected, sorted by file and line and
 * printed together. Only a config without a single error is handed out. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "config.h"
#include "registry.h"

/* Debian's libinih exports its compile-time options as variables. Where it
 * does, raise the line limit so that a 4095-character cmdline fits; with an
 * inih that does not, its own limit (200) stays and longer lines are
 * reported as too long. Either way the reader checks against the buffer size
 * inih really passes. */
#pragma weak ini_max_line
#define CFG_LINE_BUF 8192

#define CMDLINE_MAX 4095
#define MIB (1024ULL * 1024)

/* ------------------------------------------------------------------------ */
/* names                                                                     */

static const char *const class_names[] = { "console", "net", "block", NULL };
static const char *const path_names[] = { "emulated", "virtio", "passthrough", NULL };

const char *dev_class_name(enum dev_class c)
{
    return (unsigned)c < DEV_CLASS_COUNT ? class_names[c] : "?";
}

const char *io_path_name(enum io_path p)
{
    return (unsigned)p < IO_PATH_COUNT ? path_names[p] : "?";
}

static int choice_index(const char *const *choices, const char *s)
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
/* errors                                                                    */

struct cfg_err {
    int seq;        /* which file: 0 the VM file, 1.. the device files */
    int line;
    size_t idx;     /* order of discovery, to keep the sort stable */
    char *text;
};

struct loader {
    struct cfg_err *errs;
    size_t n_errs, cap_errs;
    bool oom;
};

static void *grow(void *p, size_t *cap, size_t n, size_t size, bool *oom)
{
    if (n < *cap)
        return p;
    size_t ncap = *cap ? *cap * 2 : 8;
    void *q = reallocarray(p, ncap, size);
    if (!q) {
        *oom = true;
        return NULL;
    }
    *cap = ncap;
    return q;
}

static char *xstrdup(struct loader *L, const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        L->oom = true;
    return d;
}

__attribute__((format(printf, 5, 6)))
static void report(struct loader *L, int seq, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    char *body = NULL, *text = NULL;
    struct cfg_err *v;

    va_start(ap, fmt);
    if (vasprintf(&body, fmt, ap) < 0)
        body = NULL;
    va_end(ap);
    if (!body || asprintf(&text, "%s:%d: %s", file, line, body) < 0) {
        free(body);
        L->oom = true;
        return;
    }
    free(body);
    v = grow(L->errs, &L->cap_errs, L->n_errs, sizeof(*v), &L->oom);
    if (!v) {
        free(text);
        return;
    }
    L->errs = v;
    v[L->n_errs] = (struct cfg_err){ .seq = seq, .line = line, .idx = L->n_errs, .text = text };
    L->n_errs++;
}

static int err_cmp(const void *a, const void *b)
{
    const struct cfg_err *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Prints everything collected; returns the number of errors. */
static size_t flush_errors(struct loader *L, FILE *err)
{
    size_t n = L->n_errs;

    if (L->n_errs)
        qsort(L->errs, L->n_errs, sizeof(*L->errs), err_cmp);
    for (size_t i = 0; i < L->n_errs; i++) {
        if (err)
            fprintf(err, "%s\n", L->errs[i].text);
        free(L->errs[i].text);
    }
    free(L->errs);
    L->errs = NULL;
    L->n_errs = L->cap_errs = 0;
    if (L->oom) {
        if (err)
            fprintf(err, "config: out of memory\n");
        n++;
    }
    return n;
}

/* ------------------------------------------------------------------------ */
/* paths                                                                     */

static char *dir_of(const char *file)
{
    const char *slash = strrchr(file, '/');
    if (!slash)
        return strdup(".");
    if (slash == file)
        return strdup("/");
    return strndup(file, (size_t)(slash - file));
}

/* rel resolved against dir ("." is left out so that messages stay short). */
static char *path_join(const char *dir, const char *rel)
{
    char *r;
    if (rel[0] == '/' || !dir || !*dir || strcmp(dir, ".") == 0)
        return strdup(rel);
    size_t dl = strlen(dir);
    if (asprintf(&r, "%s%s%s", dir, dir[dl - 1] == '/' ? "" : "/", rel) < 0)
        return NULL;
    return r;
}

/* 0 if path names a readable regular file, else an errno value. */
static int check_readable(const char *path)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int rc = fstat(fd, &st) < 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : S_ISREG(st.st_mode) ? 0 : EINVAL;
    close(fd);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* reading one INI file                                                      */

struct ini_section {
    char *name;
    int line;
};

struct ini_entry {
    int sec;        /* index into secs, -1: before any section */
    char *key;
    char *value;
    int line;
    bool cont;      /* an indented continuation line of the previous key */
};

struct ini_doc {
    char *file;     /* as given (VM file) or resolved (device files) */
    char *dir;
    int seq;
    struct ini_section *secs;
    size_t n_secs, cap_secs;
    struct ini_entry *ents;
    size_t n_ents, cap_ents;
};

enum line_kind { LK_SKIP, LK_SECTION, LK_KV, LK_CONT, LK_BAD };

struct reader {
    FILE *f;
    struct loader *L;
    struct ini_doc *doc;
    char *buf;
    size_t cap;
    int line;
    int cur_sec;
    bool has_prev;      /* mirrors inih's prev_name: a key line was seen in this section */
    enum line_kind kind;
    int first_bad;      /* first line we reported as a syntax error */
};

static char *lskip(char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    return s;
}

static char *rstrip(char *s)
{
    char *p = s + strlen(s);
    while (p > s && isspace((unsigned char)p[-1]))
        *--p = '\0';
    return s;
}

/* inih's find_chars_or_comment() with inline ';' comments enabled. */
static char *find_chars_or_comment(char *s, const char *chars)
{
    bool was_space = false;
    while (*s && !(chars && strchr(chars, *s)) && !(was_space && *s == ';')) {
        was_space = isspace((unsigned char)*s);
        s++;
    }
    return s;
}

static void add_section(struct reader *r, const char *name)
{
    struct ini_doc *d = r->doc;
    struct ini_section *v = grow(d->secs, &d->cap_secs, d->n_secs, sizeof(*v), &r->L->oom);
    char *n = xstrdup(r->L, name);
    if (!v || !n) {
        free(n);
        return;
    }
    d->secs = v;
    v[d->n_secs] = (struct ini_section){ .name = n, .line = r->line };
    r->cur_sec = (int)d->n_secs++;
}

static void bad_syntax(struct reader *r, const char *fmt, const char *text)
{
    report(r->L, r->doc->seq, r->doc->file, r->line, fmt, text);
    if (!r->first_bad)
        r->first_bad = r->line;
    r->kind = LK_BAD;
}

/* Classifies line (modifiable, no newline) the way inih will parse it. */
static void classify(struct reader *r, char *line)
{
    char *start = line, *end;

    if (r->line == 1 && (unsigned char)start[0] == 0xEF && (unsigned char)start[1] == 0xBB &&
        (unsigned char)start[2] == 0xBF)
        start += 3;
    start = lskip(rstrip(start));

    if (*start == '\0' || *start == ';' || *start == '#') {
        r->kind = LK_SKIP;
    } else if (r->has_prev && start > line) {
        r->kind = LK_CONT;
    } else if (*start == '[') {
        end = find_chars_or_comment(start + 1, "]");
        if (*end != ']') {
            bad_syntax(r, "syntax error: '%s': section header without ']' (expected [name])", start);
            return;
        }
        *end = '\0';
        add_section(r, start + 1);
        r->has_prev = false;
        r->kind = LK_SECTION;
    } else {
        end = find_chars_or_comment(start, "=:");
        if (*end != '=' && *end != ':') {
            bad_syntax(r, "syntax error: '%s' (expected key = value, [section] or a comment)", start);
            return;
        }
        *end = '\0';
        r->has_prev = *rstrip(start) != '\0';
        r->kind = LK_KV;
    }
}

static char *read_line(char *str, int num, void *stream)
{
    struct reader *r = stream;
    ssize_t len = getline(&r->buf, &r->cap, r->f);
    size_t n;

    if (len < 0) {
        if (ferror(r->f))
            report(r->L, r->doc->seq, r->doc->file, r->line + 1, "read error: %s", strerror(errno));
        return NULL;
    }
    r->line++;
    n = (size_t)len;
    if (n && r->buf[n - 1] == '\n')
        r->buf[--n] = '\0';
    if (memchr(r->buf, '\0', n)) {
        report(r->L, r->doc->seq, r->doc->file, r->line,
               "line contains a NUL byte (expected a text file)");
        r->kind = LK_SKIP;
        str[0] = '\0';
        return str;
    }
    if (num < 1 || n >= (size_t)num) {
        report(r->L, r->doc->seq, r->doc->file, r->line,
               "line too long: %zu characters (expected at most %d)", n, num - 1);
        r->kind = LK_SKIP;
        str[0] = '\0'; /* inih sees an empty line: numbering stays in step */
        return str;
    }
    memcpy(str, r->buf, n + 1);
    classify(r, r->buf);
    return str;
}

static int on_pair(void *user, const char *section, const char *name, const char *value)
{
    struct reader *r = user;
    struct ini_doc *d = r->doc;
    struct ini_entry *v;
    (void)section; /* ours is not truncated to 50 characters */

    v = grow(d->ents, &d->cap_ents, d->n_ents, sizeof(*v), &r->L->oom);
    if (!v)
        return 0;
    d->ents = v;
    v[d->n_ents] = (struct ini_entry){
        .sec = r->cur_sec,
        .key = xstrdup(r->L, name),
        .value = xstrdup(r->L, value),
        .line = r->line,
        .cont = r->kind == LK_CONT,
    };
    d->n_ents++;
    return !r->L->oom;
}

static void doc_free(struct ini_doc *d)
{
    for (size_t i = 0; i < d->n_secs; i++)
        free(d->secs[i].name);
    for (size_t i = 0; i < d->n_ents; i++) {
        free(d->ents[i].key);
        free(d->ents[i].value);
    }
    free(d->secs);
    free(d->ents);
    free(d->file);
    free(d->dir);
    memset(d, 0, sizeof(*d));
}

/* Reads file into d (d->file, d->dir and d->seq are set by the caller).
 * Problems are reported; -1 if the file could not be opened at all. */
static int doc_read(struct loader *L, struct ini_doc *d, int err_line)
{
    struct reader r = { .L = L, .doc = d, .cur_sec = -1 };
    int saved = 0, rc;

    r.f = fopen(d->file, "re");
    if (!r.f) {
        report(L, d->seq, d->file, err_line, "cannot open: %s (expected a readable config file)",
               strerror(errno));
        return -1;
    }
    if (&ini_max_line) {
        saved = ini_max_line;
        ini_max_line = CFG_LINE_BUF;
    }
    rc = ini_parse_stream(read_line, &r, on_pair, &r);
    if (&ini_max_line)
        ini_max_line = saved;
    fclose(r.f);
    free(r.buf);
    /* We report every syntax error ourselves; should inih disagree about
     * the first one, say so rather than lose it. */
    if (rc > 0 && rc != r.first_bad && !L->oom)
        report(L, d->seq, d->file, rc, "syntax error (expected key = value, [section] or a comment)");
    else if (rc == -2)
        L->oom = true;
    return 0;
}

static const char *sec_name(const struct ini_doc *d, const struct ini_entry *e)
{
    return e->sec < 0 ? NULL : d->secs[e->sec].name;
}

static const struct ini_section *find_section(const struct ini_doc *d, const char *name)
{
    for (size_t i = 0; i < d->n_secs; i++)
        if (strcmp(d->secs[i].name, name) == 0)
            return &d->secs[i];
    return NULL;
}

static const struct ini_entry *find_entry(const struct ini_doc *d, const char *sec, const char *key)
{
    for (size_t i = 0; i < d->n_ents; i++) {
        const struct ini_entry *e = &d->ents[i];
        const char *s = sec_name(d, e);
        if (!e->cont && s && strcmp(s, sec) == 0 && strcmp(e->key, key) == 0)
            return e;
    }
    return NULL;
}

/* Sections not in allowed, duplicate section headers, keys before any
 * section and continuation lines. */
static void check_structure(struct loader *L, const struct ini_doc *d, const char *const *allowed,
                            const char *allowed_text, const char *outside_text)
{
    for (size_t i = 0; i < d->n_secs; i++) {
        const struct ini_section *s = &d->secs[i];
        if (choice_index(allowed, s->name) < 0) {
            report(L, d->seq, d->file, s->line, "[%s]: unknown section (expected %s)", s->name,
                   allowed_text);
            continue;
        }
        const struct ini_section *first = find_section(d, s->name);
        if (first != s)
            report(L, d->seq, d->file, s->line,
                   "[%s]: duplicate section, first at line %d (expected each section once)",
                   s->name, first->line);
    }
    for (size_t i = 0; i < d->n_ents; i++) {
        const struct ini_entry *e = &d->ents[i];
        if (e->cont)
            report(L, d->seq, d->file, e->line,
                   "%s: indented line continues the value of the key above; multi-line values "
                   "are not supported (expected key = value on one line, not indented)",
                   e->key);
        else if (e->sec < 0)
            report(L, d->seq, d->file, e->line, "%s: key outside any section (expected it under %s)",
                   e->key, outside_text);
    }
}

/* ------------------------------------------------------------------------ */
/* checking the keys of one section against a schema                         */

#define MAX_KEYS 64

struct found {
    const struct ini_entry *e;  /* first occurrence, NULL if absent */
    bool ok;                    /* its value passed the schema check */
};

static void fmt_choices(char *buf, size_t len, const char *const *choices)
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
    case CFG_ENUM: fmt_choices(buf, len, k->choices); return buf;
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
        report(L, d->seq, d->file, e->line, "%s: empty value (expected %s)", e->key, exp);
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
        if (choice_index(k->choices, e->value) >= 0)
            return true;
        report(L, d->seq, d->file, e->line, "%s: unknown %s '%s' (expected %s)", e->key, e->key,
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
            report(L, d->seq, d->file, e->line, "%s: '%s' is out of range %s..%s (expected %s)",
                   e->key, e->value, lo, hi, exp);
            return false;
        }
        return true;
    }
    report(L, d->seq, d->file, e->line, "%s: '%s': %s (expected %s)", e->key, e->value, what, exp);
    return false;
}

static size_t count_keys(const struct cfg_key *keys)
{
    size_t n = 0;
    while (keys && keys[n].name)
        n++;
    return n;
}

static int key_index(const struct cfg_key *keys, const char *name)
{
    for (size_t i = 0; keys && keys[i].name; i++)
        if (strcmp(keys[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Checks every key of [sec] against keys; missing required keys are reported
 * at missing_line. what names the schema in unknown-key messages. */
static void check_keys(struct loader *L, const struct ini_doc *d, const char *sec,
                       const struct cfg_key *keys, int missing_line, const char *what,
                       struct found *out)
{
    size_t n = count_keys(keys);
    char names[512], eb[256];

    memset(out, 0, n * sizeof(*out));
    {
        const char *list[MAX_KEYS + 1];
        size_t m = n < MAX_KEYS ? n : MAX_KEYS;
        for (size_t i = 0; i < m; i++)
            list[i] = keys[i].name;
        list[m] = NULL;
        fmt_choices(names, sizeof(names), list);
    }
    for (size_t i = 0; i < d->n_ents; i++) {
        const struct ini_entry *e = &d->ents[i];
        const char *s = sec_name(d, e);
        if (e->cont || !s || strcmp(s, sec) != 0)
            continue;
        int k = key_index(keys, e->key);
        if (k < 0) {
            report(L, d->seq, d->file, e->line, "%s: unknown key in [%s]%s (expected %s)", e->key,
                   sec, what, names);
            continue;
        }
        if (out[k].e) {
            report(L, d->seq, d->file, e->line,
                   "%s: duplicate key, first set at line %d (expected each key once)", e->key,
                   out[k].e->line);
            continue;
        }
        out[k].e = e;
        out[k].ok = check_value(L, d, e, &keys[k]);
    }
    for (size_t k = 0; k < n; k++)
        if (keys[k].required && !out[k].e)
            report(L, d->seq, d->file, missing_line, "%s: missing required key in [%s] (expected %s)",
                   keys[k].name, sec, expected_text(&keys[k], eb, sizeof(eb)));
}

static bool valid_name(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n < 1 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
            return false;
    return true;
}

/* ------------------------------------------------------------------------ */
/* the VM file                                                               */

enum { VK_NAME, VK_MEMORY, VK_VCPUS, VK_KERNEL, VK_INITRD, VK_CMDLINE, VK_HUGEPAGES, VK_DEVICES };

static const char *const hugepage_choices[] = { "off", "2M", "1G", NULL };

static const struct cfg_key vm_keys[] = {
    [VK_NAME] = { .name = "name", .type = CFG_STRING, .required = true,
                  .expected = "1..64 characters from A-Z a-z 0-9 _ . -" },
    [VK_MEMORY] = { .name = "memory", .type = CFG_SIZE, .required = true,
                    .min = 32 * MIB, .max = 1024ULL * 1024 * MIB,
                    .expected = "a size with K/M/G/T suffix, a multiple of 2M from 32M to 1T, e.g. 256M" },
    [VK_VCPUS] = { .name = "vcpus", .type = CFG_UINT, .default_value = "1", .min = 1, .max = 64,
                   .expected = "a number of vCPUs, 1..64" },
    [VK_KERNEL] = { .name = "kernel", .type = CFG_PATH, .required = true,
                    .expected = "a readable kernel image (bzImage); relative paths are relative to the VM file's folder" },
    [VK_INITRD] = { .name = "initrd", .type = CFG_PATH,
                    .expected = "a readable initrd; relative paths are relative to the VM file's folder" },
    [VK_CMDLINE] = { .name = "cmdline", .type = CFG_STRING, .default_value = "console=ttyS0",
                     .expected = "a kernel command line of at most 4095 characters" },
    [VK_HUGEPAGES] = { .name = "hugepages", .type = CFG_ENUM, .default_value = "off",
                       .choices = hugepage_choices, .expected = "off, 2M or 1G" },
    [VK_DEVICES] = { .name = "devices", .type = CFG_STRING,
                     .expected = "device files or glob patterns separated by spaces, relative to the VM file's folder" },
    { .name = NULL },
};

static void check_file_key(struct loader *L, const struct ini_doc *d, const struct found *f,
                           const struct cfg_key *k)
{
    if (!f->e || !f->ok)
        return;
    char *p = path_join(d->dir, f->e->value);
    if (!p) {
        L->oom = true;
        return;
    }
    int rc = check_readable(p);
    if (rc)
        report(L, d->seq, d->file, f->e->line, "%s: '%s': %s (expected %s)", k->name, p,
               strerror(rc), k->expected);
    free(p);
}

struct dev_file {
    char *path;
    dev_t dev;
    ino_t ino;
};

struct dev_list {
    struct dev_file *v;
    size_t n, cap;
};

static void add_device_file(struct loader *L, const struct ini_doc *d, const struct ini_entry *e,
                            struct dev_list *list, const char *path)
{
    struct stat st;
    int rc = check_readable(path);

    if (rc) {
        report(L, d->seq, d->file, e->line, "devices: '%s': %s (expected a readable device file)",
               path, strerror(rc));
        return;
    }
    if (stat(path, &st) < 0) {
        report(L, d->seq, d->file, e->line, "devices: '%s': %s (expected a readable device file)",
               path, strerror(errno));
        return;
    }
    for (size_t i = 0; i < list->n; i++) {
        if (list->v[i].dev == st.st_dev && list->v[i].ino == st.st_ino) {
            if (strcmp(path, list->v[i].path) == 0)
                report(L, d->seq, d->file, e->line,
                       "devices: '%s' is listed twice (expected each device file once)", path);
            else
                report(L, d->seq, d->file, e->line,
                       "devices: '%s' is listed twice, also as '%s' (expected each device file once)",
                       path, list->v[i].path);
            return;
        }
    }
    struct dev_file *v = grow(list->v, &list->cap, list->n, sizeof(*v), &L->oom);
    char *p = xstrdup(L, path);
    if (!v || !p) {
        free(p);
        return;
    }
    list->v = v;
    v[list->n++] = (struct dev_file){ .path = p, .dev = st.st_dev, .ino = st.st_ino };
}

/* The folder with glob's special characters escaped, so that only the
 * pattern itself is a pattern. */
static char *glob_escape(const char *s)
{
    char *r = malloc(2 * strlen(s) + 1), *p = r;
    if (!r)
        return NULL;
    for (; *s; s++) {
        if (strchr("*?[\\", *s))
            *p++ = '\\';
        *p++ = *s;
    }
    *p = '\0';
    return r;
}

static void expand_devices(struct loader *L, const struct ini_doc *d, const struct ini_entry *e,
                           struct dev_list *list)
{
    char *copy = xstrdup(L, e->value), *save = NULL;
    if (!copy)
        return;
    for (char *tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        if (!strpbrk(tok, "*?[")) {
            char *p = path_join(d->dir, tok);
            if (!p)
                L->oom = true;
            else
                add_device_file(L, d, e, list, p);
            free(p);
            continue;
        }
        char *edir = glob_escape(d->dir);
        char *pat = edir ? path_join(edir, tok) : NULL;
        free(edir);
        if (!pat) {
            L->oom = true;
            continue;
        }
        glob_t g;
        int rc = glob(pat, 0, NULL, &g);
        if (rc == GLOB_NOMATCH)
            report(L, d->seq, d->file, e->line,
                   "devices: '%s' matches no file (expected a pattern matching at least one device file)",
                   tok);
        else if (rc != 0)
            report(L, d->seq, d->file, e->line, "devices: '%s': %s (expected a readable pattern)",
                   tok, rc == GLOB_NOSPACE ? "out of memory" : "read error");
        else
            for (size_t i = 0; i < g.gl_pathc; i++)
                add_device_file(L, d, e, list, g.gl_pathv[i]);
        if (rc != GLOB_NOMATCH)
            globfree(&g);
        free(pat);
    }
    free(copy);
}

static void check_vm(struct loader *L, const struct ini_doc *d, struct found *f, struct dev_list *devs)
{
    static const char *const allowed[] = { "vm", NULL };
    const struct ini_section *s = find_section(d, "vm");
    uint64_t mem;

    check_structure(L, d, allowed, "[vm]", "[vm]");
    check_keys(L, d, "vm", vm_keys, s ? s->line : 1, "", f);

    if (f[VK_NAME].ok && !valid_name(f[VK_NAME].e->value, 64)) {
        report(L, d->seq, d->file, f[VK_NAME].e->line, "name: '%s' is not a valid name (expected %s)",
               f[VK_NAME].e->value, vm_keys[VK_NAME].expected);
        f[VK_NAME].ok = false;
    }
    if (f[VK_MEMORY].ok && cfg_parse_size(f[VK_MEMORY].e->value, &mem) == 0 && mem % (2 * MIB)) {
        report(L, d->seq, d->file, f[VK_MEMORY].e->line,
               "memory: '%s' is not a multiple of 2M (expected %s)", f[VK_MEMORY].e->value,
               vm_keys[VK_MEMORY].expected);
        f[VK_MEMORY].ok = false;
    }
    if (f[VK_CMDLINE].ok && strlen(f[VK_CMDLINE].e->value) > CMDLINE_MAX) {
        report(L, d->seq, d->file, f[VK_CMDLINE].e->line,
               "cmdline: %zu characters is too long (expected %s)", strlen(f[VK_CMDLINE].e->value),
               vm_keys[VK_CMDLINE].expected);
        f[VK_CMDLINE].ok = false;
    }
    check_file_key(L, d, &f[VK_KERNEL], &vm_keys[VK_KERNEL]);
    check_file_key(L, d, &f[VK_INITRD], &vm_keys[VK_INITRD]);
    if (f[VK_DEVICES].ok)
        expand_devices(L, d, f[VK_DEVICES].e, devs);
}

/* ------------------------------------------------------------------------ */
/* device files                                                              */

enum { DK_ID, DK_CLASS, DK_PATH };

static const struct cfg_key dev_keys[] = {
    [DK_ID] = { .name = "id", .type = CFG_STRING, .required = true,
                .expected = "1..32 characters from A-Z a-z 0-9 _ . -, unique among the VM's devices" },
    [DK_CLASS] = { .name = "class", .type = CFG_ENUM, .required = true, .choices = class_names,
                   .expected = "console, net or block" },
    [DK_PATH] = { .name = "path", .type = CFG_ENUM, .required = true, .choices = path_names,
                  .expected = "emulated, virtio or passthrough" },
    { .name = NULL },
};

struct dev_state {
    struct ini_doc doc;
    struct found f[3];
    bool cls_ok, path_ok;
    enum dev_class cls;
    enum io_path path;
    const struct device_impl *impl;
};

static void implemented_paths(enum dev_class cls, char *buf, size_t len)
{
    const char *list[IO_PATH_COUNT + 1];
    size_t n = 0;
    for (int p = 0; p < IO_PATH_COUNT; p++)
        if (registry_find_path(cls, (enum io_path)p))
            list[n++] = path_names[p];
    list[n] = NULL;
    if (n == 0)
        snprintf(buf, len, "none");
    else
        fmt_choices(buf, len, list);
}

static void models_of(enum dev_class cls, enum io_path p, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; device_registry[i]; i++) {
        const struct device_impl *im = device_registry[i];
        if (im->cls != cls || im->path != p || !im->model || off >= len)
            continue;
        int w = snprintf(buf + off, len - off, "%s%s", off ? ", " : "", im->model);
        if (w > 0)
            off += (size_t)w;
    }
    if (!buf[0])
        snprintf(buf, len, "no model key");
}

/* Validates the path section [pname] (which may be absent) against the
 * registry entry for (class, p, model). */
static const struct device_impl *check_path_section(struct loader *L, const struct ini_doc *d,
                                                    enum dev_class cls, enum io_path p,
                                                    int missing_line)
{
    const char *pname = path_names[p];
    const struct ini_entry *m = find_entry(d, pname, "model");
    const struct device_impl *impl = registry_find(cls, p, m ? m->value : NULL);
    char buf[256], what[128];
    struct found f[MAX_KEYS];

    if (!impl) {
        models_of(cls, p, buf, sizeof(buf));
        if (m)
            report(L, d->seq, d->file, m->line, "model: unknown model '%s' for %s/%s (expected %s)",
                   m->value, class_names[cls], pname, buf);
        else
            report(L, d->seq, d->file, missing_line,
                   "model: missing required key in [%s] (expected %s)", pname, buf);
        return NULL;
    }
    if (count_keys(impl->keys) > MAX_KEYS) {
        report(L, d->seq, d->file, missing_line, "[%s]: schema too large", pname);
        return NULL;
    }
    snprintf(what, sizeof(what), " for %s/%s%s%s", class_names[cls], pname,
             impl->model ? " model " : "", impl->model ? impl->model : "");
    check_keys(L, d, pname, impl->keys, missing_line, what, f);
    return impl;
}

static void check_device(struct loader *L, struct dev_state *ds)
{
    static const char *const allowed[] = { "device", "emulated", "virtio", "passthrough", NULL };
    const struct ini_doc *d = &ds->doc;
    const struct ini_section *s = find_section(d, "device");
    struct found *f = ds->f;
    char buf[128];

    check_structure(L, d, allowed, "[device], [emulated], [virtio] or [passthrough]", "[device]");
    check_keys(L, d, "device", dev_keys, s ? s->line : 1, "", f);

    if (f[DK_ID].ok && !valid_name(f[DK_ID].e->value, 32)) {
        report(L, d->seq, d->file, f[DK_ID].e->line, "id: '%s' is not a valid id (expected %s)",
               f[DK_ID].e->value, dev_keys[DK_ID].expected);
        f[DK_ID].ok = false;
    }
    if (f[DK_CLASS].ok) {
        ds->cls_ok = true;
        ds->cls = (enum dev_class)choice_index(class_names, f[DK_CLASS].e->value);
    }
    if (f[DK_PATH].ok) {
        ds->path_ok = true;
        ds->path = (enum io_path)choice_index(path_names, f[DK_PATH].e->value);
    }
    if (!ds->cls_ok)
        return; /* path sections cannot be checked without a class */

    if (ds->path_ok && !registry_find_path(ds->cls, ds->path)) {
        implemented_paths(ds->cls, buf, sizeof(buf));
        report(L, d->seq, d->file, f[DK_PATH].e->line,
               "path: '%s' is not implemented yet for %s (implemented paths for %s: %s)",
               path_names[ds->path], class_names[ds->cls], class_names[ds->cls], buf);
        ds->path_ok = false;
    } else if (ds->path_ok) {
        const struct ini_section *ps = find_section(d, path_names[ds->path]);
        ds->impl = check_path_section(L, d, ds->cls, ds->path, ps ? ps->line : f[DK_PATH].e->line);
    }
    /* The sections of the other paths are checked as well, so that
     * switching path stays a one-line change that is known to work. */
    for (int p = 0; p < IO_PATH_COUNT; p++) {
        if (f[DK_PATH].ok && (enum io_path)p == ds->path)
            continue;
        const struct ini_section *ps = find_section(d, path_names[p]);
        if (!ps)
            continue;
        if (!registry_find_path(ds->cls, (enum io_path)p)) {
            implemented_paths(ds->cls, buf, sizeof(buf));
            report(L, d->seq, d->file, ps->line,
                   "[%s]: path '%s' is not implemented yet for %s (implemented paths for %s: %s)",
                   path_names[p], path_names[p], class_names[ds->cls], class_names[ds->cls], buf);
            continue;
        }
        check_path_section(L, d, ds->cls, (enum io_path)p, ps->line);
    }
}

/* ------------------------------------------------------------------------ */
/* building the result                                                       */

static bool is_path_section(const char *s)
{
    return s && choice_index(path_names, s) >= 0;
}

static int fill_device(struct loader *L, struct device_config *dc, struct dev_state *ds)
{
    const struct ini_doc *d = &ds->doc;
    size_t n = 0;

    dc->file = xstrdup(L, d->file);
    dc->dir = xstrdup(L, d->dir);
    dc->id = xstrdup(L, ds->f[DK_ID].e->value);
    dc->id_line = ds->f[DK_ID].e->line;
    dc->cls = ds->cls;
    dc->path = ds->path;
    dc->path_line = ds->f[DK_PATH].e->line;
    dc->impl = ds->impl;
    for (size_t i = 0; i < d->n_ents; i++)
        n += !d->ents[i].cont && is_path_section(sec_name(d, &d->ents[i]));
    if (n) {
        dc->values = calloc(n, sizeof(*dc->values));
        if (!dc->values)
            L->oom = true;
    }
    for (size_t i = 0; dc->values && i < d->n_ents; i++) {
        const struct ini_entry *e = &d->ents[i];
        if (e->cont || !is_path_section(sec_name(d, e)))
            continue;
        struct cfg_value *v = &dc->values[dc->n_values++];
        v->section = xstrdup(L, sec_name(d, e));
        v->key = xstrdup(L, e->key);
        v->value = xstrdup(L, e->value);
        v->line = e->line;
    }
    return L->oom ? -1 : 0;
}

static int fill_vm(struct loader *L, struct vm_config *out, const struct ini_doc *d,
                   const struct found *f)
{
    uint64_t v;

    out->file = xstrdup(L, d->file);
    out->dir = xstrdup(L, d->dir);
    out->name = xstrdup(L, f[VK_NAME].e->value);
    cfg_parse_size(f[VK_MEMORY].e->value, &out->memory);
    out->vcpus = 1;
    if (f[VK_VCPUS].e && cfg_parse_uint(f[VK_VCPUS].e->value, &v) == 0)
        out->vcpus = (unsigned)v;
    out->kernel = path_join(d->dir, f[VK_KERNEL].e->value);
    if (!out->kernel)
        L->oom = true;
    if (f[VK_INITRD].e) {
        out->initrd = path_join(d->dir, f[VK_INITRD].e->value);
        if (!out->initrd)
            L->oom = true;
    }
    out->cmdline = xstrdup(L, f[VK_CMDLINE].e ? f[VK_CMDLINE].e->value : vm_keys[VK_CMDLINE].default_value);
    out->hugepages = HUGEPAGES_OFF;
    if (f[VK_HUGEPAGES].e)
        out->hugepages = (enum hugepages_mode)choice_index(hugepage_choices, f[VK_HUGEPAGES].e->value);
    return L->oom ? -1 : 0;
}

int config_load(const char *vm_file, struct vm_config *out, FILE *err)
{
    struct loader L = { 0 };
    struct ini_doc vm = { 0 };
    struct found vf[8];
    struct dev_list files = { 0 };
    struct dev_state *devs = NULL;
    size_t n_devs = 0;
    int rc = -1;

    if (!out)
        return -1;
    memset(out, 0, sizeof(*out));
    if (!vm_file) {
        if (err)
            fprintf(err, "config: no VM file given\n");
        return -1;
    }

    vm.file = xstrdup(&L, vm_file);
    vm.dir = dir_of(vm_file);
    if (!vm.file || !vm.dir) {
        L.oom = true;
        goto done;
    }
    if (doc_read(&L, &vm, 0) < 0)
        goto done;
    check_vm(&L, &vm, vf, &files);

    if (files.n) {
        devs = calloc(files.n, sizeof(*devs));
        if (!devs) {
            L.oom = true;
            goto done;
        }
    }
    for (size_t i = 0; i < files.n; i++) {
        struct dev_state *ds = &devs[n_devs++];
        ds->doc.seq = (int)n_devs;
        ds->doc.file = xstrdup(&L, files.v[i].path);
        ds->doc.dir = dir_of(files.v[i].path);
        if (!ds->doc.file || !ds->doc.dir) {
            L.oom = true;
            goto done;
        }
        if (doc_read(&L, &ds->doc, 0) < 0)
            continue;
        check_device(&L, ds);
    }
    /* ids must be unique across the VM */
    for (size_t j = 0; j < n_devs; j++) {
        if (!devs[j].f[DK_ID].ok)
            continue;
        for (size_t i = 0; i < j; i++) {
            if (devs[i].f[DK_ID].ok &&
                strcmp(devs[i].f[DK_ID].e->value, devs[j].f[DK_ID].e->value) == 0) {
                report(&L, devs[j].doc.seq, devs[j].doc.file, devs[j].f[DK_ID].e->line,
                       "id: duplicate device id '%s', also used in %s:%d (expected ids unique "
                       "among the VM's devices)",
                       devs[j].f[DK_ID].e->value, devs[i].doc.file, devs[i].f[DK_ID].e->line);
                break;
            }
        }
    }
    if (L.n_errs || L.oom)
        goto done;

    if (fill_vm(&L, out, &vm, vf) < 0)
        goto done;
    if (n_devs) {
        out->devices = calloc(n_devs, sizeof(*out->devices));
        if (!out->devices) {
            L.oom = true;
            goto done;
        }
    }
    for (size_t i = 0; i < n_devs; i++) {
        out->n_devices++;
        if (fill_device(&L, &out->devices[i], &devs[i]) < 0)
            goto done;
    }
    rc = 0;

done:
    doc_free(&vm);
    for (size_t i = 0; i < n_devs; i++)
        doc_free(&devs[i].doc);
    free(devs);
    for (size_t i = 0; i < files.n; i++)
        free(files.v[i].path);
    free(files.v);
    if (flush_errors(&L, err) || rc < 0) {
        config_free(out);
        return -1;
    }
    return 0;
}

void config_free(struct vm_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; cfg->devices && i < cfg->n_devices; i++) {
        struct device_config *dc = &cfg->devices[i];
        for (size_t j = 0; j < dc->n_values; j++) {
            free(dc->values[j].section);
            free(dc->values[j].key);
            free(dc->values[j].value);
        }
        free(dc->values);
        free(dc->file);
        free(dc->dir);
        free(dc->id);
    }
    free(cfg->devices);
    free(cfg->file);
    free(cfg->dir);
    free(cfg->name);
    free(cfg->kernel);
    free(cfg->initrd);
    free(cfg->cmdline);
    memset(cfg, 0, sizeof(*cfg));
}

/* ------------------------------------------------------------------------ */
/* getters                                                                   */

static const struct cfg_key *schema_key(const struct device_config *dc, const char *key)
{
    if (!dc || !dc->impl)
        return NULL;
    int k = key_index(dc->impl->keys, key);
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
    return path_join(dc->dir, s);
}
