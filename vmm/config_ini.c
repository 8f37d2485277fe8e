/* Reading one INI file into an ini_doc.
 *
 * libinih does the key = value splitting. Our own line reader feeds it one
 * line per call, which is how we know the line number (inih 55's handler has
 * none), and classifies every line the same way inih does, so we also know
 * section header lines, continuation lines and every syntax error (inih only
 * returns the first one). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "config_internal.h"

/* Debian's libinih exports its compile-time options as variables. Where it
 * does, raise the line limit so that a 4095-character cmdline fits; with an
 * inih that does not, its own limit (200) stays and longer lines are
 * reported as too long. Either way the reader checks against the buffer size
 * inih really passes. */
#pragma weak ini_max_line
#define CFG_LINE_BUF 8192

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
    struct ini_section *v = cfg_grow(d->secs, &d->cap_secs, d->n_secs, sizeof(*v), &r->L->oom);
    char *n = cfg_strdup(r->L, name);
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
    cfg_report(r->L, r->doc->seq, r->doc->file, r->line, fmt, text);
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
            cfg_report(r->L, r->doc->seq, r->doc->file, r->line + 1, "read error: %s",
                       strerror(errno));
        return NULL;
    }
    r->line++;
    n = (size_t)len;
    if (n && r->buf[n - 1] == '\n')
        r->buf[--n] = '\0';
    if (memchr(r->buf, '\0', n)) {
        cfg_report(r->L, r->doc->seq, r->doc->file, r->line,
                   "line contains a NUL byte (expected a text file)");
        r->kind = LK_SKIP;
        str[0] = '\0';
        return str;
    }
    if (num < 1 || n >= (size_t)num) {
        cfg_report(r->L, r->doc->seq, r->doc->file, r->line,
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

    v = cfg_grow(d->ents, &d->cap_ents, d->n_ents, sizeof(*v), &r->L->oom);
    if (!v)
        return 0;
    d->ents = v;
    v[d->n_ents] = (struct ini_entry){
        .sec = r->cur_sec,
        .key = cfg_strdup(r->L, name),
        .value = cfg_strdup(r->L, value),
        .line = r->line,
        .cont = r->kind == LK_CONT,
    };
    d->n_ents++;
    return !r->L->oom;
}

void doc_free(struct ini_doc *d)
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
int doc_read(struct loader *L, struct ini_doc *d, int err_line)
{
    struct reader r = { .L = L, .doc = d, .cur_sec = -1 };
    int saved = 0, rc;

    r.f = fopen(d->file, "re");
    if (!r.f) {
        cfg_report(L, d->seq, d->file, err_line,
                   "cannot open: %s (expected a readable config file)", strerror(errno));
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
        cfg_report(L, d->seq, d->file, rc,
                   "syntax error (expected key = value, [section] or a comment)");
    else if (rc == -2)
        L->oom = true;
    return 0;
}

const char *doc_entry_section(const struct ini_doc *d, const struct ini_entry *e)
{
    return e->sec < 0 ? NULL : d->secs[e->sec].name;
}

const struct ini_section *doc_find_section(const struct ini_doc *d, const char *name)
{
    for (size_t i = 0; i < d->n_secs; i++)
        if (strcmp(d->secs[i].name, name) == 0)
            return &d->secs[i];
    return NULL;
}

const struct ini_entry *doc_find_entry(const struct ini_doc *d, const char *sec, const char *key)
{
    for (size_t i = 0; i < d->n_ents; i++) {
        const struct ini_entry *e = &d->ents[i];
        const char *s = doc_entry_section(d, e);
        if (!e->cont && s && strcmp(s, sec) == 0 && strcmp(e->key, key) == 0)
            return e;
    }
    return NULL;
}

/* Sections not in allowed, duplicate section headers, keys before any
 * section and continuation lines. */
void doc_check_structure(struct loader *L, const struct ini_doc *d, const char *const *allowed,
                         const char *allowed_text, const char *outside_text)
{
    for (size_t i = 0; i < d->n_secs; i++) {
        const struct ini_section *s = &d->secs[i];
        if (cfg_choice_index(allowed, s->name) < 0) {
            cfg_report(L, d->seq, d->file, s->line, "[%s]: unknown section (expected %s)", s->name,
                       allowed_text);
            continue;
        }
        const struct ini_section *first = doc_find_section(d, s->name);
        if (first != s)
            cfg_report(L, d->seq, d->file, s->line,
                       "[%s]: duplicate section, first at line %d (expected each section once)",
                       s->name, first->line);
    }
    for (size_t i = 0; i < d->n_ents; i++) {
        const struct ini_entry *e = &d->ents[i];
        if (e->cont)
            cfg_report(L, d->seq, d->file, e->line,
                       "%s: indented line continues the value of the key above; multi-line values "
                       "are not supported (expected key = value on one line, not indented)",
                       e->key);
        else if (e->sec < 0)
            cfg_report(L, d->seq, d->file, e->line,
                       "%s: key outside any section (expected it under %s)", e->key, outside_text);
    }
}
