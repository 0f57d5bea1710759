/* word2vec text lines, "word v1 ... vD\n", written and read.
 *
 * Written: each value as C's and Python's "%.9g" would print it (9 significant digits, correctly
 * rounded, ties to even), but without printf: glibc's "%.9g" costs about as much as Python's
 * formatting (0.3 us a value).
 *
 * A float32 is m * 2^e exactly (m < 2^24), so its nine digits are one 128-bit integer division
 * with the remainder deciding the rounding; values under 1e-20 (whose m * 10^s would overflow
 * 128 bits) go to snprintf, which rounds the same way. Tested against Python's formatting. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef unsigned __int128 u128;

#define DIGITS 9
#define E8 100000000ull
#define E9 1000000000ull

static u128 POW10[39];   /* 10^0 .. 10^38, all below 2^128 */

/* Fills POW10: called once, before any formatting (and before threads format at once). */
void w2v_textfmt_init(void) {
    u128 r = 1;
    for (int k = 0; k < 39; k++, r *= 10) POW10[k] = r;
}

/* floor(|x| * 10^s) and whether the rest is below, at or above one half (-1, 0, 1); m * 2^e = |x|. */
static uint64_t scaled(uint64_t m, int e, int s, int *half) {
    u128 n, t, r, h;
    if (s >= 0) {
        n = (u128)m * POW10[s];
        if (e >= 0) { *half = -1; return (uint64_t)(n << e); }
        t = n >> -e; r = n - (t << -e); h = (u128)1 << (-e - 1);
    } else {
        u128 d = POW10[-s];
        n = (u128)m << e;   /* s < 0 only for |x| >= 1e9, where e >= 6 */
        t = n / d; r = n - t * d; h = d / 2;   /* d is even: d / 2 is exactly one half */
    }
    *half = r < h ? -1 : r > h;
    return (uint64_t)t;
}

/* The digits of x's "%.9g" in *digits (10^8 <= *digits < 10^9) and its decimal exponent. */
static int nine_digits(float x, uint64_t *digits) {
    uint32_t b;
    memcpy(&b, &x, 4);
    int be = (int)(b >> 23 & 0xFF);            /* normal: only values >= 1e-20 come here */
    uint64_t m = (b & 0x7FFFFF) | 0x800000;    /* |x| = m * 2^e, 2^23 <= m < 2^24 */
    int e = be - 150, half;
    /* floor(log10 |x|) is floor((e + 23) * log10(2)) or one more: the digit count decides */
    int p = (int)floor((e + 23) * 0.30102999566398120);
    uint64_t t;
    for (;;) {
        t = scaled(m, e, DIGITS - 1 - p, &half);
        if (t < E8) p--;
        else if (t >= E9) p++;
        else break;
    }
    t += half > 0 || (half == 0 && (t & 1));
    if (t == E9) { t = E8; p++; }                     /* 999999999.5 rounds up to a new digit */
    *digits = t;
    return p;
}

/* x as "%.9g" at out; returns the bytes written (at most 15). */
static int format_g9(float x, char *out) {
    char *o = out;
    if (isnan(x)) { memcpy(out, "nan", 3); return 3; }   /* Python's spelling, whatever the sign */
    if (signbit(x)) *o++ = '-';
    if (isinf(x)) { memcpy(o, "inf", 3); return (int)(o - out) + 3; }
    if (x == 0) { *o++ = '0'; return (int)(o - out); }
    if (fabsf(x) < 1e-20f) return (int)(o - out) + snprintf(o, 16, "%.9g", fabs((double)x));
    uint64_t t;
    int p = nine_digits(x, &t), n = DIGITS;
    char d[DIGITS];
    for (int i = DIGITS - 1; i >= 0; i--) { d[i] = (char)('0' + t % 10); t /= 10; }
    while (n > 1 && d[n - 1] == '0') n--;             /* %g drops trailing zeros */
    if (p < -4 || p >= DIGITS) {                      /* d.ddde+XX */
        *o++ = d[0];
        if (n > 1) { *o++ = '.'; memcpy(o, d + 1, (size_t)(n - 1)); o += n - 1; }
        *o++ = 'e'; *o++ = p < 0 ? '-' : '+';
        int a = p < 0 ? -p : p;
        if (a >= 100) *o++ = (char)('0' + a / 100);
        *o++ = (char)('0' + a / 10 % 10); *o++ = (char)('0' + a % 10);
    } else if (p < 0) {                               /* 0.000ddd */
        *o++ = '0'; *o++ = '.';
        for (int i = 0; i < -p - 1; i++) *o++ = '0';
        memcpy(o, d, (size_t)n); o += n;
    } else {                                          /* ddd.ddd */
        memcpy(o, d, (size_t)(p + 1 < n ? p + 1 : n)); o += p + 1 < n ? p + 1 : n;
        for (int i = n; i < p + 1; i++) *o++ = '0';
        if (n > p + 1) { *o++ = '.'; memcpy(o, d + p + 1, (size_t)(n - p - 1)); o += n - p - 1; }
    }
    return (int)(o - out);
}

/* One value, for the tests. */
int w2v_format_g9(float x, char *out) { return format_g9(x, out); }

/* Lines for `rows` rows of `dim` values: words[off[i]..off[i+1]) then the values. `out` holds
 * (off[rows] - off[0]) + rows * (16 * dim + 2) bytes; returns the bytes written. */
int64_t w2v_format_rows(const float *v, int64_t dim, int64_t rows, const char *words, const int64_t *off,
                        char *out) {
    char *o = out;
    for (int64_t i = 0; i < rows; i++) {
        int64_t w = off[i + 1] - off[i];
        memcpy(o, words + off[i] - off[0], (size_t)w); o += w;
        const float *r = v + i * dim;
        for (int64_t j = 0; j < dim; j++) { *o++ = ' '; o += format_g9(r[j], o); }
        *o++ = '\n';
    }
    return (int64_t)(o - out);
}

/* --- reading --- */

/* Python's str.split() and str.strip() whitespace, as far as ASCII goes. */
static int py_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1C && c <= 0x1F); }

static const double EXACT10[23] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
                                   1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A decimal [+-]digits[.digits][e[+-]digits] of at most 15 significant digits and a power of ten
 * within 1e+-22 at p..end, as float(text) then float32 gives it: the digits and the power are
 * exact doubles, so one multiplication or division rounds once, as a correct strtod does
 * (Clinger's fast path), and the cast to float32 is numpy's. 0 for anything else (inf, nan, hex,
 * underscores, more digits): the caller's Python reads those. No locale is involved. */
static int parse_value(const unsigned char *p, const unsigned char *end, float *out) {
    int neg = 0, digits = 0, sig = 0, frac = 0;
    uint64_t m = 0;
    if (p < end && (*p == '+' || *p == '-')) neg = *p++ == '-';
    for (; p < end && *p >= '0' && *p <= '9'; p++, digits++)
        if (m || *p != '0') { m = m * 10 + (uint64_t)(*p - '0'); if (++sig > 15) return 0; }
    if (p < end && *p == '.')
        for (p++; p < end && *p >= '0' && *p <= '9'; p++, digits++, frac++)
            if (m || *p != '0') { m = m * 10 + (uint64_t)(*p - '0'); if (++sig > 15) return 0; }
    if (!digits) return 0;
    int e10 = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        int eneg = 0, ed = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) eneg = *p++ == '-';
        for (; p < end && *p >= '0' && *p <= '9'; p++, ed++) { e10 = e10 * 10 + (*p - '0'); if (e10 > 400) return 0; }
        if (!ed) return 0;
        if (eneg) e10 = -e10;
    }
    if (p != end) return 0;
    e10 -= frac;
    double v = (double)m;
    if (m && (e10 > 22 || e10 < -22)) return 0;
    if (m) v = e10 >= 0 ? v * EXACT10[e10] : v / EXACT10[-e10];
    *out = (float)(neg ? -v : v);
    return 1;
}

/* The rows of buf[0..len), whole lines (the last may lack its '\n'), read as export.py's Python
 * reads them: a line blank to str.strip() is skipped; the word is what follows the leading spaces
 * up to the next space; then exactly `dim` values split at whitespace. Row r gets its values at
 * out[r * dim..] and its line (0-based) at lines[r]; the words go to `words` one after another,
 * each followed by '\n' (which no word holds; room for len + max_rows bytes; *words_len says how
 * many were written); at most
 * max_rows rows. Returns the rows, or -1 at the first line it does not take (malformed,
 * not ASCII after the word, or a value outside parse_value's grammar): the caller's Python then
 * reads the block, with its errors. */
int64_t w2v_parse_rows(const char *text, int64_t len, int64_t dim, int64_t max_rows, float *out,
                       char *words, int64_t *words_len, int64_t *lines) {
    const unsigned char *buf = (const unsigned char *)text, *p = buf, *end = buf + len;
    int64_t rows = 0;
    char *wo = words;
    for (int64_t line = 0; p < end; line++) {
        const unsigned char *nl = memchr(p, '\n', (size_t)(end - p)), *stop = nl ? nl : end, *q = p;
        while (q < stop && py_space(*q)) q++;
        if (q == stop) { p = stop + 1; continue; }    /* blank */
        if (rows == max_rows) return -1;
        q = p;
        while (q < stop && *q == ' ') q++;
        const unsigned char *w = q;
        while (q < stop && *q != ' ') q++;
        if (q == stop) return -1;                     /* no values: Python names the error */
        memcpy(wo, w, (size_t)(q - w)); wo += q - w; *wo++ = '\n';
        float *row = out + rows * dim;
        int64_t k = 0;
        for (;;) {
            while (q < stop && py_space(*q)) q++;
            if (q == stop) break;
            const unsigned char *f = q;
            while (q < stop && !py_space(*q)) { if (*q >= 0x80) return -1; q++; }
            if (k == dim || !parse_value(f, q, row + k)) return -1;
            k++;
        }
        if (k != dim) return -1;
        lines[rows++] = line;
        p = stop + 1;
    }
    *words_len = wo - words;
    return rows;
}
