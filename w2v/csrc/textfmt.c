/* Rows of float32 as word2vec text lines, "word v1 ... vD\n", each value as C's and Python's
 * "%.9g" would print it (9 significant digits, correctly rounded, ties to even), but without
 * printf: glibc's "%.9g" costs about as much as Python's formatting (0.3 us a value).
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
