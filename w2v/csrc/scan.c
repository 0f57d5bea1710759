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
 * Speed: a token's end is found 8 bytes at a time (a bit trick flags bytes < 0x21 or >= 0x80);
 * a plain ASCII token of up to 16 bytes is hashed straight from the read block, lowercased as
 * two 64-bit words, and found with one cache line: a slot holds the key's first 16 bytes, so only
 * longer keys are compared in the arena. Counts live in an array by word id, and ids are given in
 * order of first sight, so the frequent words' counts share a few cache lines.
 *
 * Count mode: every token is written to the ids file as its word id (a provisional id) and
 * every sentence end as the number of tokens so far; w2v maps them to final ids afterwards
 * (w2v_remap). When the table holds more than `max_distinct` words after a sentence, either
 * (prune=1) the words with count <= min_reduce are dropped and min_reduce grows, as word2vec.c's
 * ReduceVocab does (provisional ids then stop being written: they no longer name one word), or
 * (prune=0) the scan stops with `overflow` set. Encode mode: the table holds a fixed vocabulary;
 * each token is written as its word's id or -1 (not in the vocabulary).
 */
#define _FILE_OFFSET_BITS 64
#define _DEFAULT_SOURCE
#define _XOPEN_SOURCE 700
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef int64_t (*normalize_fn)(const char *raw, int64_t len, char *out, int64_t cap, int64_t *replaced);

/* A slot: the key's first 16 bytes (zero-padded), its length (0 = empty slot), its word id and
 * value (the count; in encode mode the vocabulary id). 32 bytes: two per cache line, and a token
 * needs no other line. */
typedef struct { uint64_t k0, k1; uint32_t len, id; int64_t val; } Slot;

typedef struct {
    Slot *slots; int64_t mask;           /* mask + 1 slots, a power of two, at most half full */
    int64_t n, cap;                      /* words, and the room of the arrays by id */
    int64_t *off, *slot_of, *aux;        /* by id: key offset in the arena, slot, an extra value */
    unsigned char *arena; int64_t alen, acap;   /* the keys back to back, SLACK bytes after */
} Table;

#define VAL(t, id) ((t)->slots[(t)->slot_of[id]].val)

enum { TOK = 0, SPACE = 1, NL = 2, HIGH = 3 };
enum { OK = 0, E_NOMEM = 2, E_IO = 3, E_CALLBACK = 4, E_ID = 5 };
#define ALIAS_MAX (1 << 20)   /* raw spellings cached; the cache is emptied when it is full */
#define BUF_N (1 << 16)
#define BATCH 32              /* tokens hashed (and their slots prefetched) before they are looked up */

typedef struct { uint64_t k0, k1, h; int64_t n; } Pending;

/* Every key buffer has SLACK readable bytes after it, so a key's last word is read whole and masked. */
#define SLACK 16

typedef struct {
    Table words, alias;
    int mode, lower, prune;
    int64_t max_len, max_distinct, min_reduce;
    int pruned, overflow, err;
    normalize_fn norm;
    unsigned char *tok; int64_t tlen, tcap;     /* a run of token bytes cut by a block's end */
    unsigned char *key; int64_t kcap;           /* a key copied (and lowercased) for lookup */
    unsigned char *nbuf; int64_t ncap;          /* the callback's answer */
    int64_t sent_n, tokens, kept, replaced;
    FILE *ids_f, *ends_f;
    int32_t ibuf[BUF_N]; int64_t ni;
    int64_t ebuf[BUF_N]; int64_t ne;
    Pending q[BATCH]; int nq;
} Scanner;

static unsigned char CLS[256];

static void init_classes(void) {
    for (int c = 0; c < 256; c++)
        CLS[c] = c >= 0x80 ? HIGH : ((c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20)) ? SPACE : TOK;
    CLS['\n'] = NL;
}

/* --- 64-bit words of key bytes --- */

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

static inline uint64_t load8(const unsigned char *p) { uint64_t w; memcpy(&w, p, 8); return w; }

/* The first n (0 <= n < 8) bytes of w, in memory order; the others zero. */
static inline uint64_t first_bytes(uint64_t w, int64_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return n ? w & ~(~0ull >> (8 * n)) : 0;
#else
    return w & ((1ull << (8 * n)) - 1);
#endif
}

/* Bit 7 set in each byte < 0x21 or >= 0x80 (the candidates for whitespace); exact up to the first. */
static inline uint64_t specials(uint64_t w) { return ((w - 0x21 * ONES) | w) & HIGHS; }

static inline int64_t first_special(uint64_t m) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return __builtin_clzll(m) >> 3;
#else
    return __builtin_ctzll(m) >> 3;
#endif
}

/* A-Z -> a-z in each byte; every other byte (>= 0x80 too) unchanged. No carries cross bytes. */
static inline uint64_t lower8(uint64_t x) {
    uint64_t h = x & ~HIGHS;
    uint64_t up = (h + (0x80 - 'A') * ONES) & ~(h + (0x80 - 'Z' - 1) * ONES) & ~x & HIGHS;
    return x | (up >> 2);
}

/* Word i (0-based) of an n-byte key at k (SLACK readable after it), masked past the key. */
static inline uint64_t key_word(const unsigned char *k, int64_t n, int64_t i) {
    uint64_t w = load8(k + 8 * i);
    return n - 8 * i >= 8 ? w : first_bytes(w, n - 8 * i);
}

#define M1 0xFF51AFD7ED558CCDull
#define M2 0xC4CEB9FE1A85EC53ull
static inline uint64_t hash_seed(int64_t n) { return 0x9E3779B97F4A7C15ull ^ (uint64_t)n * 0xC2B2AE3D27D4EB4Full; }
static inline uint64_t hash_step(uint64_t h, uint64_t w) { h = (h ^ w) * M1; return h ^ (h >> 32); }
static inline uint64_t hash_end(uint64_t h) { h *= M2; return h ^ (h >> 29); }

/* The hash of an n-byte key from its words: the same whichever way the words were read. */
static uint64_t hash_key(const unsigned char *k, int64_t n) {
    uint64_t h = hash_seed(n);
    for (int64_t i = 0; 8 * i < n; i++) h = hash_step(h, key_word(k, n, i));
    return hash_end(h);
}

static inline uint64_t hash_short(int64_t n, uint64_t k0, uint64_t k1) {   /* n <= 16 */
    uint64_t h = hash_step(hash_seed(n), k0);
    return hash_end(n > 8 ? hash_step(h, k1) : h);
}

/* --- the table --- */

/* n zeroed slots. A large table is asked for huge pages: a token's probe lands anywhere in it, and
 * with 4 KB pages most probes of a 16 MB table also missed the TLB. */
static Slot *new_slots(int64_t n) {
    size_t bytes = (size_t)n * sizeof(Slot), huge = (size_t)2 << 20;
    if (bytes < huge) return calloc((size_t)n, sizeof(Slot));
    void *p = NULL;
    if (posix_memalign(&p, huge, bytes)) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, bytes, MADV_HUGEPAGE);   /* advice only: without it the table works the same */
#endif
    memset(p, 0, bytes);
    return p;
}

static int table_init(Table *t, int64_t nslots) {
    memset(t, 0, sizeof *t);
    t->mask = nslots - 1;
    t->slots = new_slots(nslots);
    t->cap = nslots / 2;
    t->off = malloc((size_t)t->cap * sizeof(int64_t));
    t->slot_of = malloc((size_t)t->cap * sizeof(int64_t));
    t->aux = malloc((size_t)t->cap * sizeof(int64_t));
    t->acap = nslots * 8; t->arena = malloc((size_t)t->acap + SLACK);
    if (!t->slots || !t->off || !t->slot_of || !t->aux || !t->arena) return E_NOMEM;
    memset(t->arena, 0, (size_t)t->acap + SLACK);
    return OK;
}

static void table_free(Table *t) {
    free(t->slots); free(t->off); free(t->slot_of); free(t->aux); free(t->arena);
    memset(t, 0, sizeof *t);
}

static const unsigned char *key_of(const Table *t, int64_t id) { return t->arena + t->off[id]; }

static int64_t key_len(const Table *t, int64_t id) {
    return (id + 1 < t->n ? t->off[id + 1] : t->alen) - t->off[id];
}

/* The slot holding the key (its first words k0, k1; all of it at k when n > 16), or ~(the
 * empty slot where it would go). */
static inline int64_t probe(const Table *t, uint64_t k0, uint64_t k1, int64_t n, uint64_t h, const unsigned char *k) {
    int64_t i = (int64_t)(h & (uint64_t)t->mask);
    for (;;) {
        const Slot *s = &t->slots[i];
        if (s->len == (uint64_t)n && s->k0 == k0 && s->k1 == k1 &&
            (n <= 16 || memcmp(key_of(t, s->id) + 16, k + 16, (size_t)(n - 16)) == 0))
            return i;
        if (!s->len) return ~i;
        i = (i + 1) & t->mask;
    }
}

/* Put word id (its key in the arena) with value val into an empty slot. */
static void place(Table *t, int64_t id, int64_t val) {
    const unsigned char *k = key_of(t, id); int64_t n = key_len(t, id);
    int64_t i = (int64_t)(hash_key(k, n) & (uint64_t)t->mask);
    while (t->slots[i].len) i = (i + 1) & t->mask;
    Slot s = { key_word(k, n, 0), n > 8 ? key_word(k, n, 1) : 0, (uint32_t)n, (uint32_t)id, val };
    t->slots[i] = s;
    t->slot_of[id] = i;
}

static int table_resize(Table *t, int64_t nslots) {
    Slot *old = t->slots;
    t->slots = new_slots(nslots);
    if (!t->slots) { t->slots = old; return E_NOMEM; }
    t->mask = nslots - 1;
    for (int64_t id = 0; id < t->n; id++) place(t, id, old[t->slot_of[id]].val);
    free(old);
    return OK;
}

static int grow(void **p, int64_t n, size_t size) {
    void *q = realloc(*p, (size_t)n * size);
    if (!q) return 0;
    *p = q;
    return 1;
}

/* Add a key at the empty slot ~probe() gave: its bytes are k (or, when k is NULL, the words k0 and
 * k1); val and aux start as given. Returns the new id, or -1 when out of memory. */
static int64_t table_add(Table *t, int64_t at, uint64_t k0, uint64_t k1, int64_t n, const unsigned char *k,
                         int64_t val, int64_t aux) {
    if (n > UINT32_MAX || t->n >= UINT32_MAX) return -1;
    if (t->n == t->cap) {
        int64_t cap = t->cap * 2;
        if (!grow((void **)&t->off, cap, sizeof(int64_t)) || !grow((void **)&t->slot_of, cap, sizeof(int64_t)) ||
            !grow((void **)&t->aux, cap, sizeof(int64_t)))
            return -1;
        t->cap = cap;
    }
    if (t->alen + n > t->acap) {
        int64_t acap = t->acap * 2;
        while (acap < t->alen + n) acap *= 2;
        if (!grow((void **)&t->arena, acap + SLACK, 1)) return -1;
        t->acap = acap;
    }
    unsigned char *dst = t->arena + t->alen;
    if (k) memcpy(dst, k, (size_t)n);
    else { memcpy(dst, &k0, (size_t)(n < 8 ? n : 8)); if (n > 8) memcpy(dst + 8, &k1, (size_t)(n - 8)); }
    memset(dst + n, 0, SLACK);
    int64_t id = t->n++;
    t->off[id] = t->alen; t->slot_of[id] = ~at; t->aux[id] = aux;
    t->alen += n;
    Slot s = { k0, k1, (uint32_t)n, (uint32_t)id, val };
    t->slots[~at] = s;
    if (t->n * 2 > t->mask + 1 && table_resize(t, 2 * (t->mask + 1)) != OK) return -1;
    return id;
}

/* The id of the n-byte key at k (SLACK readable after it), added with val 0 when `add`; -1 when
 * absent (or, with s->err set, out of memory). */
static int64_t find_key(Table *t, const unsigned char *k, int64_t n, int add, int *err) {
    uint64_t k0 = key_word(k, n, 0), k1 = n > 8 ? key_word(k, n, 1) : 0, h = hash_key(k, n);
    int64_t i = probe(t, k0, k1, n, h, k);
    if (i >= 0) return t->slots[i].id;
    if (!add) return -1;
    int64_t id = table_add(t, i, k0, k1, n, k, 0, 0);
    if (id < 0) *err = E_NOMEM;
    return id;
}

static void table_clear(Table *t) {
    memset(t->slots, 0, (size_t)(t->mask + 1) * sizeof(Slot));
    t->n = 0; t->alen = 0;
}

/* word2vec.c's ReduceVocab: keep the words counted more than min_reduce times (in id order). */
static int table_reduce(Table *t, int64_t min_reduce) {
    int64_t *vals = malloc((size_t)(t->n ? t->n : 1) * sizeof(int64_t)), m = 0, alen = 0;
    if (!vals) return E_NOMEM;
    for (int64_t i = 0; i < t->n; i++) {
        int64_t v = VAL(t, i);
        if (v <= min_reduce) continue;
        int64_t len = key_len(t, i);
        memmove(t->arena + alen, t->arena + t->off[i], (size_t)len);
        t->off[m] = alen; vals[m] = v; t->aux[m] = t->aux[i];
        alen += len; m++;
    }
    memset(t->arena + alen, 0, SLACK);
    memset(t->slots, 0, (size_t)(t->mask + 1) * sizeof(Slot));
    t->n = m; t->alen = alen;
    for (int64_t i = 0; i < m; i++) place(t, i, vals[i]);
    free(vals);
    return OK;
}

/* --- the scanner --- */

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
        table_clear(&s->alias);   /* it held ids of the table just compacted */
    }
}

/* One token of the word in slot `sl` (NULL: not in the vocabulary, encode mode). */
static inline void emit_slot(Scanner *s, Slot *sl) {
    int32_t out;
    if (s->mode == 0) { sl->val++; out = (int32_t)sl->id; }
    else { out = sl ? (int32_t)sl->val : -1; s->kept += sl != NULL; }
    if (!s->pruned) {
        s->ibuf[s->ni++] = out;
        if (s->ni == BUF_N) flush_ids(s);
    }
    s->tokens++;
    if (++s->sent_n == s->max_len) end_sentence(s);
}

static void emit(Scanner *s, int64_t id) { emit_slot(s, id < 0 ? NULL : &s->words.slots[s->words.slot_of[id]]); }

static int reserve(unsigned char **buf, int64_t *cap, int64_t need) {
    if (need <= *cap) return 1;
    int64_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    unsigned char *b = realloc(*buf, (size_t)c + SLACK);
    if (!b) return 0;
    *buf = b; *cap = c;
    return 1;
}

/* A token that is all ASCII, of any length, anywhere: copied (and lowercased) to be looked up. */
static void ascii_token(Scanner *s, const unsigned char *p, int64_t n) {
    if (!reserve(&s->key, &s->kcap, n)) { s->err = E_NOMEM; return; }
    unsigned char *k = s->key;
    if (s->lower)
        for (int64_t i = 0; i < n; i++) k[i] = (unsigned char)(p[i] + (((unsigned)(p[i] - 'A') < 26u) << 5));
    else
        memcpy(k, p, (size_t)n);
    memset(k + n, 0, SLACK);
    int64_t id = find_key(&s->words, k, n, s->mode == 0, &s->err);
    if (!s->err) emit(s, id);
}

/* The short tokens hashed so far, looked up in order (their slots were prefetched meanwhile). */
static void drain(Scanner *s) {
    Table *t = &s->words;
    for (int j = 0; j < s->nq && !s->err && !s->overflow; j++) {
        const Pending *q = &s->q[j];
        int64_t i = probe(t, q->k0, q->k1, q->n, q->h, NULL);
        if (i >= 0) emit_slot(s, &t->slots[i]);
        else if (s->mode == 0) {
            int64_t id = table_add(t, i, q->k0, q->k1, q->n, NULL, 0, 0);
            if (id < 0) s->err = E_NOMEM;
            else emit(s, id);
        } else emit_slot(s, NULL);
    }
    s->nq = 0;
}

/* A plain ASCII token of at most 16 bytes with 16 bytes readable at p: hashed from the block,
 * queued, and its slot prefetched. */
static inline void short_token(Scanner *s, const unsigned char *p, int64_t n) {
    uint64_t k0 = load8(p), k1 = load8(p + 8);
    if (n < 8) { k0 = first_bytes(k0, n); k1 = 0; }
    else if (n < 16) k1 = first_bytes(k1, n - 8);
    if (s->lower) { k0 = lower8(k0); k1 = lower8(k1); }
    uint64_t h = hash_short(n, k0, k1);
    __builtin_prefetch(&s->words.slots[h & (uint64_t)s->words.mask]);
    Pending *q = &s->q[s->nq++];
    q->k0 = k0; q->k1 = k1; q->h = h; q->n = n;
    if (s->nq == BATCH) drain(s);
}

/* A token with a byte >= 0x80: its word through the alias cache, else the callback. */
static void high_token(Scanner *s, const unsigned char *p, int64_t n) {
    if (!reserve(&s->key, &s->kcap, n)) { s->err = E_NOMEM; return; }
    memcpy(s->key, p, (size_t)n);
    memset(s->key + n, 0, SLACK);
    const unsigned char *k = s->key;
    Table *a = &s->alias;
    uint64_t k0 = key_word(k, n, 0), k1 = n > 8 ? key_word(k, n, 1) : 0, h = hash_key(k, n);
    int64_t i = probe(a, k0, k1, n, h, k), id;
    if (i >= 0) {
        id = a->slots[i].val;
        s->replaced += a->aux[a->slots[i].id];
    } else {
        int64_t rep = 0, m = s->norm((const char *)k, n, (char *)s->nbuf, s->ncap, &rep);
        if (m < -s->ncap) {   /* the buffer was too small: -m bytes are needed */
            if (!reserve(&s->nbuf, &s->ncap, -m)) { s->err = E_NOMEM; return; }
            m = s->norm((const char *)k, n, (char *)s->nbuf, s->ncap, &rep);
        }
        if (m < 0) { s->err = E_CALLBACK; return; }
        memset(s->nbuf + m, 0, SLACK);
        id = find_key(&s->words, s->nbuf, m, s->mode == 0, &s->err);
        if (s->err) return;
        if (a->n >= ALIAS_MAX) { table_clear(a); i = probe(a, k0, k1, n, h, k); }
        if (table_add(a, i, k0, k1, n, k, id, rep) < 0) { s->err = E_NOMEM; return; }
        s->replaced += rep;
    }
    emit(s, id);
}

/* Bytes of the Unicode whitespace character starting at q (left bytes there), or 0. */
static inline int unicode_space(const unsigned char *q, int64_t left) {
    if (q[0] == 0xC2) return left >= 2 && (q[1] == 0x85 || q[1] == 0xA0) ? 2 : 0;
    if (left < 3 || q[0] < 0xE1 || q[0] > 0xE3) return 0;
    unsigned char b = q[1], c = q[2];
    if (q[0] == 0xE1) return b == 0x9A && c == 0x80 ? 3 : 0;
    if (q[0] == 0xE3) return b == 0x80 && c == 0x80 ? 3 : 0;
    if (b == 0x80) return (c >= 0x80 && c <= 0x8A) || c == 0xA8 || c == 0xA9 || c == 0xAF ? 3 : 0;
    return b == 0x81 && c == 0x9F ? 3 : 0;
}

static void piece(Scanner *s, const unsigned char *p, int64_t n) {
    int high = 0;
    for (int64_t i = 0; i < n; i++) high |= p[i] >= 0x80;
    if (high) high_token(s, p, n);
    else ascii_token(s, p, n);
}

/* A run of bytes between ASCII whitespace: its tokens, split at Unicode whitespace. */
static void run_tokens(Scanner *s, const unsigned char *p, int64_t n) {
    int64_t start = 0;
    for (int64_t i = 0; i < n && !s->err && !s->overflow;) {
        int w = p[i] >= 0xC2 ? unicode_space(p + i, n - i) : 0;
        if (!w) { i++; continue; }
        if (i > start) piece(s, p + start, i - start);
        i += w; start = i;
    }
    if (n > start && !s->err && !s->overflow) piece(s, p + start, n - start);
}

/* The first byte at or after p that is ASCII whitespace, or end. */
static const unsigned char *run_end(const unsigned char *p, const unsigned char *end) {
    while (p < end && (CLS[*p] == TOK || CLS[*p] == HIGH)) p++;
    return p;
}

static int carry(Scanner *s, const unsigned char *p, int64_t n) {
    if (!reserve(&s->tok, &s->tcap, s->tlen + n)) { s->err = E_NOMEM; return 0; }
    memcpy(s->tok + s->tlen, p, (size_t)n);
    s->tlen += n;
    return 1;
}

static void flush_carry(Scanner *s) {
    int64_t n = s->tlen;
    s->tlen = 0;   /* before the tokens: a pruned table may follow */
    run_tokens(s, s->tok, n);
}

Scanner *w2v_scan_new(int mode, int lower, int64_t max_len, int64_t max_distinct, int prune,
                      normalize_fn norm, const char *ids_path, const char *ends_path) {
    static int ready = 0;
    if (!ready) { init_classes(); ready = 1; }
    Scanner *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->mode = mode; s->lower = lower; s->max_len = max_len; s->max_distinct = max_distinct;
    s->prune = prune; s->min_reduce = 1; s->norm = norm;
    if (!reserve(&s->tok, &s->tcap, 256) || !reserve(&s->key, &s->kcap, 256) || !reserve(&s->nbuf, &s->ncap, 1024) ||
        table_init(&s->words, 1 << 12) != OK || table_init(&s->alias, 1 << 10) != OK)
        s->err = E_NOMEM;
    if (ids_path && !(s->ids_f = fopen(ids_path, "wb"))) s->err = E_IO;
    if (ends_path && !(s->ends_f = fopen(ends_path, "wb"))) s->err = E_IO;
    if (s->ids_f) setvbuf(s->ids_f, NULL, _IONBF, 0);    /* ibuf is the buffer */
    if (s->ends_f) setvbuf(s->ends_f, NULL, _IONBF, 0);
    return s;
}

void w2v_scan_free(Scanner *s) {
    if (!s) return;
    if (s->ids_f) fclose(s->ids_f);
    if (s->ends_f) fclose(s->ends_f);
    table_free(&s->words); table_free(&s->alias);
    free(s->tok); free(s->key); free(s->nbuf); free(s);
}

/* Scan n bytes; a token or line cut by the end of `buf` continues with the next call. */
int w2v_scan_feed(Scanner *s, const unsigned char *buf, int64_t n) {
    const unsigned char *p = buf, *end = buf + n;
    if (s->err || s->overflow || !n) return s->err;
    if (s->tlen) {   /* a run cut by the previous block's end goes on */
        const unsigned char *q = run_end(p, end);
        if (!carry(s, p, q - p) || q == end) return s->err;
        p = q;
        flush_carry(s);
    }
    while (p < end && !s->err && !s->overflow) {
        unsigned char c = *p;
        if (CLS[c] == SPACE) { p++; continue; }
        if (CLS[c] == NL) { drain(s); end_sentence(s); p++; continue; }
        const unsigned char *q = p;   /* a token starts: find its end 8 bytes at a time */
        uint64_t m = 0;
        while (end - q >= 8 && !(m = specials(load8(q)))) q += 8;
        if (m) q += first_special(m);
        else while (q < end && *q >= 0x21 && *q < 0x80) q++;
        if (q < end && (CLS[*q] == SPACE || CLS[*q] == NL)) {   /* a plain ASCII token */
            if (q - p <= 16 && end - p >= 16) short_token(s, p, q - p);
            else { drain(s); ascii_token(s, p, q - p); }
            p = q;
            continue;
        }
        /* a control byte, a byte >= 0x80 or the block's end: the whole run, byte by byte */
        drain(s);
        const unsigned char *r = run_end(q, end);
        if (r == end) { carry(s, p, r - p); break; }
        run_tokens(s, p, r - p);
        p = r;
    }
    drain(s);
    return s->err;
}

/* The end of a file (or of a byte range, which ends after a '\n'): the last token and sentence end. */
int w2v_scan_finish(Scanner *s) {
    if (!s->err && !s->overflow && s->tlen) flush_carry(s);
    if (!s->err && !s->overflow) end_sentence(s);
    flush_ids(s);
    if (s->ids_f && fflush(s->ids_f)) s->err = E_IO;
    if (s->ends_f && fflush(s->ends_f)) s->err = E_IO;
    return s->err;
}

/* stats[0..7]: tokens, replaced, words, arena bytes, pruned, overflow, min_reduce, kept (encode). */
void w2v_scan_stats(const Scanner *s, int64_t *stats) {
    stats[0] = s->tokens; stats[1] = s->replaced; stats[2] = s->words.n; stats[3] = s->words.alen;
    stats[4] = s->pruned; stats[5] = s->overflow; stats[6] = s->min_reduce; stats[7] = s->kept;
}

/* The counts (or ids) by word id. */
void w2v_scan_counts(const Scanner *s, int64_t *val) {
    for (int64_t i = 0; i < s->words.n; i++) val[i] = VAL(&s->words, i);
}

static const Table *sort_table;
static const int64_t *sort_vals;

/* Count descending, then the word's UTF-8 bytes ascending (= Python's order of str). */
static int by_count_then_word(const void *a, const void *b) {
    int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    const Table *t = sort_table;
    if (sort_vals[i] != sort_vals[j]) return sort_vals[i] > sort_vals[j] ? -1 : 1;
    int64_t ni = key_len(t, i), nj = key_len(t, j);
    int c = memcmp(key_of(t, i), key_of(t, j), (size_t)(ni < nj ? ni : nj));
    return c ? c : (ni > nj) - (ni < nj);
}

/* The ids of the words counted at least min_count times, in vocabulary order (build_vocab's);
 * returns how many. Not thread-safe (one sort at a time). */
int64_t w2v_scan_sorted(const Scanner *s, int64_t min_count, int64_t *order) {
    int64_t k = 0, *vals = malloc((size_t)(s->words.n ? s->words.n : 1) * sizeof(int64_t));
    if (!vals) return -1;
    w2v_scan_counts(s, vals);
    for (int64_t i = 0; i < s->words.n; i++)
        if (vals[i] >= min_count) order[k++] = i;
    sort_table = &s->words; sort_vals = vals;
    qsort(order, (size_t)k, sizeof(int64_t), by_count_then_word);
    free(vals);
    return k;
}

/* The words of ids[0..k) joined by '\n' into out (room: arena bytes + k); returns its length. */
int64_t w2v_scan_words(const Scanner *s, const int64_t *ids, int64_t k, char *out) {
    int64_t pos = 0;
    for (int64_t j = 0; j < k; j++) {
        int64_t n = key_len(&s->words, ids[j]);
        if (j) out[pos++] = '\n';
        memcpy(out + pos, key_of(&s->words, ids[j]), (size_t)n);
        pos += n;
    }
    return pos;
}

/* Encode mode: load n words (word i is arena[off[i]:off[i+1]], id i). */
int w2v_scan_load(Scanner *s, const unsigned char *arena, const int64_t *off, int64_t n) {
    for (int64_t i = 0; i < n && !s->err; i++) {
        int64_t len = off[i + 1] - off[i];
        if (!reserve(&s->key, &s->kcap, len)) { s->err = E_NOMEM; break; }
        memcpy(s->key, arena + off[i], (size_t)len);
        memset(s->key + len, 0, SLACK);
        int64_t before = s->words.n, id = find_key(&s->words, s->key, len, 1, &s->err);
        if (id >= before) VAL(&s->words, id) = i;   /* a word listed twice keeps its first id */
    }
    return s->err;
}

/* Add src's counts into dst (count mode); map[i] = dst's id of src's word i. */
int w2v_scan_merge(Scanner *dst, const Scanner *src, int64_t *map) {
    const Table *t = &src->words;
    for (int64_t i = 0; i < t->n && !dst->err; i++) {
        int64_t j = find_key(&dst->words, key_of(t, i), key_len(t, i), 1, &dst->err);
        if (j < 0) break;
        VAL(&dst->words, j) += VAL(t, i);
        map[i] = j;
    }
    return dst->err;
}

/* Map one part's provisional ids (ids_path, int32) through lut[0..lut_n) (NULL: final already),
 * dropping -1, and write them to out_fd from token `base` on; its sentence ends (ends_path, raw
 * token counts) become offsets base + kept tokens, a sentence left empty dropped, written to
 * off_path. Returns the tokens kept (*sentences the offsets written), or -E_IO / -E_ID. */
int64_t w2v_remap(const char *ids_path, const char *ends_path, const int32_t *lut, int64_t lut_n,
                  int out_fd, int64_t base, const char *off_path, int64_t *sentences) {
    enum { N = 1 << 18 };
    FILE *fi = fopen(ids_path, "rb"), *fe = fopen(ends_path, "rb"), *fo = fopen(off_path, "wb");
    int32_t *in = malloc(N * sizeof(int32_t)), *out = malloc(N * sizeof(int32_t));
    int64_t *ends = malloc(N * sizeof(int64_t)), *offs = malloc(N * sizeof(int64_t));
    int64_t err = 0, raw = 0, kept = 0, last = base, ne = 0, ie = 0, no = 0;
    *sentences = 0;
    if (!fi || !fe || !fo || !in || !out || !ends || !offs) { err = -E_IO; goto done; }
    setvbuf(fo, NULL, _IONBF, 0);
    int64_t next = -1;   /* the raw token count at the next sentence end */
#define NEXT_END() do { if (ie == ne) { ne = (int64_t)fread(ends, sizeof(int64_t), N, fe); ie = 0; } \
                        next = ie < ne ? ends[ie++] : -1; } while (0)
#define SENTENCE() do { int64_t o = base + kept; if (o > last) { offs[no++] = o; last = o; ++*sentences; \
                        if (no == N) { if (fwrite(offs, sizeof(int64_t), N, fo) != N) { err = -E_IO; goto done; } \
                                       no = 0; } } \
                        NEXT_END(); } while (0)
    NEXT_END();
    for (;;) {
        int64_t n = (int64_t)fread(in, sizeof(int32_t), N, fi), k = 0;
        if (n <= 0) break;
        for (int64_t i = 0; i < n;) {
            while (next == raw) SENTENCE();
            if (next >= 0 && next < raw) { err = -E_ID; goto done; }   /* ends out of order */
            int64_t stop = next < 0 || next - raw > n - i ? n : i + (next - raw), k0 = k, i0 = i;
            uint32_t bad = 0;
            if (lut)   /* up to the next sentence end, without a branch per token */
                for (; i < stop; i++) {
                    uint32_t v = (uint32_t)in[i];
                    bad |= v >= (uint64_t)lut_n;
                    int32_t w = lut[v < (uint64_t)lut_n ? v : 0];
                    out[k] = w; k += w >= 0;
                }
            else
                for (; i < stop; i++) { out[k] = in[i]; k += in[i] >= 0; }
            if (bad) { err = -E_ID; goto done; }
            kept += k - k0;
            raw += stop - i0;
        }
        int64_t at = 4 * (base + kept - k), done_b = 0, bytes = 4 * k;
        while (done_b < bytes) {
            ssize_t w = pwrite(out_fd, (const char *)out + done_b, (size_t)(bytes - done_b), (off_t)(at + done_b));
            if (w <= 0) { err = -E_IO; goto done; }
            done_b += w;
        }
    }
    while (next == raw) SENTENCE();
    if (next >= 0 || ferror(fi) || ferror(fe)) { err = -E_ID; goto done; }   /* ends past the ids */
    if (no && fwrite(offs, sizeof(int64_t), (size_t)no, fo) != (size_t)no) err = -E_IO;
#undef NEXT_END
#undef SENTENCE
done:
    if (fi) fclose(fi);
    if (fe) fclose(fe);
    if (fo && fclose(fo)) err = err ? err : -E_IO;
    free(in); free(out); free(ends); free(offs);
    return err ? err : kept;
}
