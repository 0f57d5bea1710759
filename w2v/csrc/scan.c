/* Tokenise, count and encode text in one pass: the native half of w2v/scan.py.
 *
 * Compiled on the user's machine by w2v/native.py and called through ctypes (which releases the
 * GIL, so one scanner per thread runs in parallel). The tokenisation is the one README
 * "Tokenisation" defines, and equals Python's on every input:
 *   - a '\n' byte ends a sentence; a sentence is also cut every `max_len` tokens;
 *   - tokens are split by Python's whitespace (str.split()): the ASCII bytes 0x09-0x0D, 0x1C-0x20,
 *     and the UTF-8 sequences of U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F,
 *     U+205F, U+3000 (a lead byte never continues another sequence, so matching their bytes is
 *     exact whatever precedes them, even invalid UTF-8);
 *   - an all-ASCII token is lowercased here (A-Z only, as str.lower() does for ASCII); a token with
 *     any byte >= 0x80 is handed once per distinct spelling to a Python callback that decodes it
 *     (errors="replace") and lowercases it with str.lower(), and the answer is cached.
 * Words are counted in an open-addressing hash table keyed by the final (decoded, lowercased)
 * word, so counts and ReduceVocab pruning see exactly the words Python would.
 *
 * Count mode: every token is written to the ids file as its table index (a provisional id) and
 * every sentence end as the number of tokens so far; w2v maps them to final ids afterwards. When
 * the table holds more than `max_distinct` words after a sentence, either (prune=1) the words
 * with count <= min_reduce are dropped and min_reduce grows, as word2vec.c's ReduceVocab does
 * (provisional ids then stop being written: they no longer name one word), or (prune=0) the scan
 * stops with `overflow` set. Encode mode: the table holds a fixed vocabulary; each token is
 * written as its word's id or -1 (not in the vocabulary).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int64_t (*normalize_fn)(const char *raw, int64_t len, char *out, int64_t cap, int64_t *replaced);

/* A word: its first 8 bytes inline (most words need nothing else, and no second cache miss), the
 * rest at arena[off + 8 ...]; val is its count (or id), aux a second value. */
typedef struct { uint64_t head; int64_t off, val, aux; uint64_t hash; int64_t len; } Entry;

/* A slot holds (the hash's high 32 bits << 32) | (entry index + 1); 0 = empty. The tag skips most
 * entries that are not the word without reading them. */
typedef struct {
    uint64_t *slots; int64_t nslots;     /* power of two */
    Entry *e; int64_t n, cap;
    char *arena; int64_t alen, acap;
} Table;

enum { TOK = 0, SPACE = 1, NL = 2, HIGH = 3 };
enum { OK = 0, E_NOMEM = 2, E_IO = 3, E_CALLBACK = 4 };
#define ALIAS_MAX (1 << 20)   /* raw spellings cached; the cache is emptied when it is full */
#define BUF_N (1 << 16)
#define HOT_N 16384            /* a direct-mapped cache of recent words: the frequent ones stay in it */

typedef struct { uint64_t hash; int64_t idx; } Hot;

typedef struct {
    Table words, alias;
    int mode, lower, prune;
    int64_t max_len, max_distinct, min_reduce;
    int pruned, overflow, err;
    normalize_fn norm;
    unsigned char *tok; int64_t tlen, tcap; int high;
    int64_t sent_n, tokens, replaced;
    FILE *ids_f, *ends_f;
    int32_t ibuf[BUF_N]; int64_t ni;
    int64_t ebuf[BUF_N]; int64_t ne;
    char *nbuf; int64_t ncap;
    Hot hot[HOT_N];   /* idx -1 = empty; emptied when the table is compacted */
} Scanner;

static unsigned char CLS[256];

static void init_classes(void) {
    for (int c = 0; c < 256; c++)
        CLS[c] = c >= 0x80 ? HIGH : ((c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20)) ? SPACE : TOK;
    CLS['\n'] = NL;
}

/* Every key buffer has SLACK readable bytes after it, so a key's last word is read whole and
 * masked (a byte-by-byte copy would stall the load that follows it). */
#define SLACK 8

static uint64_t load_masked(const unsigned char *p, int64_t n) {   /* 0 <= n <= 8 */
    uint64_t k; memcpy(&k, p, 8);
    return n >= 8 ? k : k & ((1ull << (8 * n)) - 1);
}

static uint64_t hash_bytes(const unsigned char *p, int64_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n * 0xC2B2AE3D27D4EB4Full;
    while (n > 8) {
        uint64_t k; memcpy(&k, p, 8);
        h = (h ^ k) * 0xFF51AFD7ED558CCDull; h ^= h >> 32;
        p += 8; n -= 8;
    }
    h = (h ^ load_masked(p, n)) * 0xC4CEB9FE1A85EC53ull; h ^= h >> 29; h *= 0xFF51AFD7ED558CCDull; h ^= h >> 32;
    return h;
}

static int table_init(Table *t, int64_t nslots) {
    memset(t, 0, sizeof *t);
    t->nslots = nslots;
    t->slots = calloc((size_t)nslots, sizeof(uint64_t));
    t->cap = nslots / 2; t->e = malloc((size_t)t->cap * sizeof(Entry));
    t->acap = nslots * 8; t->arena = malloc((size_t)t->acap + SLACK);
    if (!t->slots || !t->e || !t->arena) return E_NOMEM;
    return OK;
}

static uint64_t head_of(const unsigned char *k, int64_t n) { return load_masked(k, n < 8 ? n : 8); }

static const unsigned char *key_of(const Table *t, const Entry *e) { return (const unsigned char *)t->arena + e->off; }

static void table_free(Table *t) { free(t->slots); free(t->e); free(t->arena); memset(t, 0, sizeof *t); }

static int entry_is(const Table *t, const Entry *e, const unsigned char *k, int64_t n, uint64_t head) {
    return e->head == head && e->len == n && (n <= 8 || memcmp(key_of(t, e) + 8, k + 8, (size_t)(n - 8)) == 0);
}

static int64_t table_find(const Table *t, const unsigned char *k, int64_t n, uint64_t h) {
    int64_t mask = t->nslots - 1, i = (int64_t)(h & (uint64_t)mask);
    uint64_t tag = h >> 32, head = head_of(k, n);
    for (;;) {
        uint64_t s = t->slots[i];
        if (!s) return -1;
        if ((s >> 32) == tag && entry_is(t, &t->e[(s & 0xFFFFFFFFu) - 1], k, n, head))
            return (int64_t)(s & 0xFFFFFFFFu) - 1;
        i = (i + 1) & mask;
    }
}

static void table_place(Table *t, int64_t idx) {
    uint64_t h = t->e[idx].hash;
    int64_t mask = t->nslots - 1, i = (int64_t)(h & (uint64_t)mask);
    while (t->slots[i]) i = (i + 1) & mask;
    t->slots[i] = ((h >> 32) << 32) | (uint64_t)(idx + 1);
}

static int table_rehash(Table *t, int64_t nslots) {
    uint64_t *slots = calloc((size_t)nslots, sizeof(uint64_t));
    if (!slots) return E_NOMEM;
    free(t->slots);
    t->slots = slots; t->nslots = nslots;
    for (int64_t i = 0; i < t->n; i++) table_place(t, i);
    return OK;
}

/* Insert a key known to be absent; returns its index, or -1 when out of memory. */
static int64_t table_insert(Table *t, const unsigned char *k, int64_t n, uint64_t h, int64_t val, int64_t aux) {
    if (t->n == t->cap) {
        int64_t cap = t->cap * 2;
        Entry *e = realloc(t->e, (size_t)cap * sizeof(Entry));
        if (!e) return -1;
        t->e = e; t->cap = cap;
    }
    if (t->alen + n > t->acap) {
        int64_t acap = t->acap * 2;
        while (acap < t->alen + n) acap *= 2;
        char *a = realloc(t->arena, (size_t)acap + SLACK);
        if (!a) return -1;
        t->arena = a; t->acap = acap;
    }
    memcpy(t->arena + t->alen, k, (size_t)n);
    Entry *e = &t->e[t->n];
    e->off = t->alen; e->len = n; e->hash = h; e->val = val; e->aux = aux; e->head = head_of(k, n);
    t->alen += n;
    int64_t idx = t->n++;
    if (t->n * 2 > t->nslots) {
        if (table_rehash(t, t->nslots * 2) != OK) return -1;
    } else {
        table_place(t, idx);
    }
    return idx;
}

static void table_clear(Table *t) {
    memset(t->slots, 0, (size_t)t->nslots * sizeof(uint64_t));
    t->n = 0; t->alen = 0;
}

/* word2vec.c's ReduceVocab: keep the words counted more than min_reduce times. */
static int table_reduce(Table *t, int64_t min_reduce) {
    int64_t m = 0, alen = 0;
    for (int64_t i = 0; i < t->n; i++) {
        Entry e = t->e[i];
        if (e.val <= min_reduce) continue;
        memmove(t->arena + alen, t->arena + e.off, (size_t)e.len);
        e.off = alen; alen += e.len;
        t->e[m++] = e;
    }
    t->n = m; t->alen = alen;
    return table_rehash(t, t->nslots);
}

static void flush_ids(Scanner *s) {
    if (s->ni && s->ids_f && fwrite(s->ibuf, sizeof(int32_t), (size_t)s->ni, s->ids_f) != (size_t)s->ni) s->err = E_IO;
    if (s->ne && s->ends_f && fwrite(s->ebuf, sizeof(int64_t), (size_t)s->ne, s->ends_f) != (size_t)s->ne) s->err = E_IO;
    s->ni = s->ne = 0;
}

static void end_sentence(Scanner *s) {
    if (!s->sent_n) return;
    s->sent_n = 0;
    if (!s->pruned) {
        s->ebuf[s->ne++] = s->tokens;
        if (s->ne == BUF_N) flush_ids(s);
    }
    if (s->mode == 0 && s->words.n > s->max_distinct) {
        if (!s->prune) { s->overflow = 1; return; }
        if (table_reduce(&s->words, s->min_reduce) != OK) { s->err = E_NOMEM; return; }
        s->min_reduce++;
        s->pruned = 1;
        for (int i = 0; i < HOT_N; i++) s->hot[i].idx = -1;
        table_clear(&s->alias);   /* it held indices into the table just compacted */
    }
}

/* The word-table index of the word `k` spells (inserted with count 0 in count mode), or -1. */
static int64_t word_index(Scanner *s, const unsigned char *k, int64_t n) {
    uint64_t h = hash_bytes(k, n);
    Hot *c = &s->hot[h & (HOT_N - 1)];
    if (c->hash == h && c->idx >= 0 && entry_is(&s->words, &s->words.e[c->idx], k, n, head_of(k, n)))
        return c->idx;
    int64_t i = table_find(&s->words, k, n, h);
    if (i < 0 && s->mode == 0) {
        i = table_insert(&s->words, k, n, h, 0, 0);
        if (i < 0) s->err = E_NOMEM;
    }
    if (i >= 0) { c->hash = h; c->idx = i; }
    return i;
}

static int64_t non_ascii_index(Scanner *s) {
    const unsigned char *k = s->tok; int64_t n = s->tlen;
    uint64_t h = hash_bytes(k, n);
    int64_t a = table_find(&s->alias, k, n, h);
    if (a < 0) {
        int64_t rep = 0, m = s->norm((const char *)k, n, s->nbuf, s->ncap, &rep);
        if (m < -s->ncap) {   /* the buffer was too small: -m bytes are needed */
            char *b = realloc(s->nbuf, (size_t)-m + SLACK);
            if (!b) { s->err = E_NOMEM; return -1; }
            s->nbuf = b; s->ncap = -m;
            m = s->norm((const char *)k, n, s->nbuf, s->ncap, &rep);
        }
        if (m < 0) { s->err = E_CALLBACK; return -1; }
        int64_t i = word_index(s, (const unsigned char *)s->nbuf, m);
        if (s->err) return -1;
        if (s->alias.n >= ALIAS_MAX) table_clear(&s->alias);
        a = table_insert(&s->alias, k, n, h, i, rep);
        if (a < 0) { s->err = E_NOMEM; return -1; }
    }
    s->replaced += s->alias.e[a].aux;
    return s->alias.e[a].val;
}

static void flush_token(Scanner *s) {
    int64_t i = s->high ? non_ascii_index(s) : word_index(s, s->tok, s->tlen);
    s->tlen = 0; s->high = 0;
    if (s->err) return;
    int32_t id;
    if (s->mode == 0) { s->words.e[i].val++; id = (int32_t)i; }
    else id = i < 0 ? -1 : (int32_t)s->words.e[i].val;
    if (!s->pruned) {
        s->ibuf[s->ni++] = id;
        if (s->ni == BUF_N) flush_ids(s);
    }
    s->tokens++;
    if (++s->sent_n == s->max_len) end_sentence(s);
}

/* Room for `need` bytes of token (doubling, so a token of any length costs linear time). */
static int reserve(Scanner *s, int64_t need) {
    int64_t cap = s->tcap;
    while (cap < need) cap *= 2;
    unsigned char *t = realloc(s->tok, (size_t)cap + SLACK);
    if (!t) { s->err = E_NOMEM; return 0; }
    s->tok = t; s->tcap = cap;
    return 1;
}

static int push(Scanner *s, unsigned char c) {
    if (s->tlen == s->tcap && !reserve(s, s->tlen + 1)) return 0;
    s->tok[s->tlen++] = c;
    return 1;
}

/* Bytes a whitespace character ends the token with, after `c` (a continuation byte) was pushed. */
static int whitespace_tail(const Scanner *s, unsigned char c) {
    const unsigned char *t = s->tok; int64_t n = s->tlen;
    if (n >= 2 && t[n - 2] == 0xC2 && (c == 0x85 || c == 0xA0)) return 2;
    if (n < 3) return 0;
    unsigned char b0 = t[n - 3], b1 = t[n - 2];
    if (b0 == 0xE1 && b1 == 0x9A && c == 0x80) return 3;
    if (b0 == 0xE2 && b1 == 0x80 && (c <= 0x8A || c == 0xA8 || c == 0xA9 || c == 0xAF)) return 3;
    if (b0 == 0xE2 && b1 == 0x81 && c == 0x9F) return 3;
    if (b0 == 0xE3 && b1 == 0x80 && c == 0x80) return 3;
    return 0;
}

Scanner *w2v_scan_new(int mode, int lower, int64_t max_len, int64_t max_distinct, int prune,
                      normalize_fn norm, const char *ids_path, const char *ends_path) {
    static int ready = 0;
    if (!ready) { init_classes(); ready = 1; }
    Scanner *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->mode = mode; s->lower = lower; s->max_len = max_len; s->max_distinct = max_distinct;
    s->prune = prune; s->min_reduce = 1; s->norm = norm;
    for (int i = 0; i < HOT_N; i++) s->hot[i].idx = -1;
    s->tcap = 256; s->tok = malloc((size_t)s->tcap + SLACK);
    s->ncap = 1024; s->nbuf = malloc((size_t)s->ncap + SLACK);
    if (!s->tok || !s->nbuf || table_init(&s->words, 1 << 16) != OK || table_init(&s->alias, 1 << 10) != OK)
        s->err = E_NOMEM;
    if (ids_path && !(s->ids_f = fopen(ids_path, "wb"))) s->err = E_IO;
    if (ends_path && !(s->ends_f = fopen(ends_path, "wb"))) s->err = E_IO;
    return s;
}

void w2v_scan_free(Scanner *s) {
    if (!s) return;
    if (s->ids_f) fclose(s->ids_f);
    if (s->ends_f) fclose(s->ends_f);
    table_free(&s->words); table_free(&s->alias);
    free(s->tok); free(s->nbuf); free(s);
}

/* Scan n bytes; a token or line cut by the end of `buf` continues with the next call. */
int w2v_scan_feed(Scanner *s, const unsigned char *buf, int64_t n) {
    const int lower = s->lower;
    for (int64_t i = 0; i < n && !s->err && !s->overflow; i++) {
        unsigned char c = buf[i];
        switch (CLS[c]) {
        case TOK: {   /* the whole run of plain ASCII bytes at once */
            int64_t j = i + 1;
            while (j < n && CLS[buf[j]] == TOK) j++;
            int64_t len = j - i;
            if (s->tlen + len > s->tcap && !reserve(s, s->tlen + len)) break;
            unsigned char *t = s->tok + s->tlen;
            if (lower)
                for (int64_t k = 0; k < len; k++) {
                    unsigned char b = buf[i + k];
                    t[k] = (unsigned char)(b + (((unsigned)(b - 'A') < 26u) << 5));
                }
            else
                memcpy(t, buf + i, (size_t)len);
            s->tlen += len;
            i = j - 1;
            break;
        }
        case HIGH: {
            if (!push(s, c)) break;
            s->high = 1;
            int w = c < 0xC0 ? whitespace_tail(s, c) : 0;
            if (w) {
                s->tlen -= w;
                s->high = 0;
                for (int64_t j = 0; j < s->tlen; j++) s->high |= s->tok[j] >= 0x80;
                if (s->tlen) flush_token(s);
            }
            break;
        }
        case SPACE:
            if (s->tlen) flush_token(s);
            break;
        default:  /* NL */
            if (s->tlen) flush_token(s);
            end_sentence(s);
        }
    }
    return s->err;
}

/* The end of a file (or of a byte range, which ends after a '\n'): the last token and sentence end. */
int w2v_scan_finish(Scanner *s) {
    if (!s->err && !s->overflow && s->tlen) flush_token(s);
    if (!s->err && !s->overflow) end_sentence(s);
    flush_ids(s);
    if (s->ids_f && fflush(s->ids_f)) s->err = E_IO;
    if (s->ends_f && fflush(s->ends_f)) s->err = E_IO;
    return s->err;
}

/* stats[0..6]: tokens, replaced, words, arena bytes, pruned, overflow, min_reduce. */
void w2v_scan_stats(const Scanner *s, int64_t *stats) {
    stats[0] = s->tokens; stats[1] = s->replaced; stats[2] = s->words.n; stats[3] = s->words.alen;
    stats[4] = s->pruned; stats[5] = s->overflow; stats[6] = s->min_reduce;
}

/* The words (concatenated in `arena`, word i at off[i]..off[i+1]) and their counts or ids. */
void w2v_scan_export(const Scanner *s, char *arena, int64_t *off, int64_t *val) {
    int64_t pos = 0;
    for (int64_t i = 0; i < s->words.n; i++) {
        const Entry *e = &s->words.e[i];
        memcpy(arena + pos, s->words.arena + e->off, (size_t)e->len);
        off[i] = pos; pos += e->len; val[i] = e->val;
    }
    off[s->words.n] = pos;
}

/* Encode mode: load n words (word i is arena[off[i]:off[i+1]], id i). */
int w2v_scan_load(Scanner *s, const unsigned char *arena, const int64_t *off, int64_t n) {
    for (int64_t i = 0; i < n && !s->err; i++) {
        const unsigned char *k = arena + off[i]; int64_t len = off[i + 1] - off[i];
        uint64_t h = hash_bytes(k, len);
        if (table_find(&s->words, k, len, h) < 0 && table_insert(&s->words, k, len, h, i, 0) < 0) s->err = E_NOMEM;
    }
    return s->err;
}

/* Add src's counts into dst (count mode); map[i] = dst's index of src's word i. */
int w2v_scan_merge(Scanner *dst, const Scanner *src, int64_t *map) {
    for (int64_t i = 0; i < src->words.n && !dst->err; i++) {
        const Entry *e = &src->words.e[i];
        const unsigned char *k = key_of(&src->words, e);
        int64_t j = table_find(&dst->words, k, e->len, e->hash);
        if (j < 0 && (j = table_insert(&dst->words, k, e->len, e->hash, 0, 0)) < 0) { dst->err = E_NOMEM; break; }
        dst->words.e[j].val += e->val;
        map[i] = j;
    }
    return dst->err;
}
