/* Hogwild SGD over one chunk of word2vec examples: skip-gram (per pair or shared noise) and CBOW,
 * with negative sampling or hierarchical softmax.
 *
 * Compiled on the user's machine by w2v/ckernel.py and called through ctypes (which releases the
 * GIL). Each of T threads takes a contiguous range of the chunk's examples and updates the shared
 * float32 tables in place without locks, as word2vec.c's threads do. One example is exactly the
 * PyTorch step of w2v/model.py with batch size 1: every gradient of an example is computed from
 * the tables as they were before that example, and the sigmoid is exact (no table, no clipping).
 *
 * An example scores output rows with labels: negative sampling, the centre word's row (label 1)
 * and K noise rows (label 0, skipped where equal to the centre); hierarchical softmax, the inner
 * nodes on the centre word's Huffman path (label 1 - code bit), read from the tree by the centre id.
 *
 * With subwords (fastText's model) a word's input rows are its own row and its n-grams' bucket
 * rows (a CSR list per word). Skip-gram's input vector is the mean of the context word's rows;
 * CBOW's hidden vector pools the rows of all its context words into one bag (their mean, or sum),
 * as fastText and gensim do. The gradient that would go to a word's row goes, unscaled, to each
 * of its rows, as fastText's Model::update does for skip-gram and CBOW (it divides by the row
 * count only for supervised models); in sum mode CBOW divides by the bag's size, as gensim does.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

enum { MODE_SG_PAIR = 0, MODE_SG_SHARED = 1, MODE_CBOW = 2 };
enum { OK = 0, ERR_BAD_ID = 1, ERR_NO_MEMORY = 2, ERR_THREAD = 3, ERR_BAD_ARGS = 4 };

typedef struct {
    int mode, cbow_mean;
    float *in, *out;                 /* [V, D] input and [R, D] output tables, row-major */
    int64_t V, R, D, C, K, N;        /* R: output rows (V for negative sampling, V - 1 for the tree) */
    const int32_t *inputs;           /* [N, C] context ids ([N] for MODE_SG_PAIR); NULL with spans */
    const int32_t *span_ids;         /* spans: the chunk's word ids, which the spans index */
    const int32_t *spans;            /* [N, 3] (lo, centre, hi): contexts are span_ids[lo..hi] but centre */
    const uint8_t *mask;             /* [N, C] valid contexts (NULL: all valid) */
    const int32_t *targets;          /* [N] centre ids (int32: half the memory of the examples) */
    const int32_t *negatives;        /* [N, K] noise ids */
    const int32_t *points;           /* hierarchical softmax (NULL: negative sampling): [V, L] inner */
    const float *labels;             /*   nodes on each word's path, root first; [V, L] 1 - code bit; */
    const int32_t *lengths;          /*   [V] path lengths */
    int64_t L;
    const int64_t *sub_offsets;      /* subwords (NULL: none): word w's input rows are */
    const int32_t *sub_rows;         /*   sub_rows[sub_offsets[w] .. sub_offsets[w + 1]], of sub_nnz */
    int64_t sub_nnz, in_rows;        /* in_rows: rows of the input table (V without subwords) */
    double lr0, lr1;
    int64_t begin, end;              /* this thread's examples */
    double loss;
    int status;
} Job;

/* The reductions may be reordered (omp simd, enabled by -fopenmp-simd without any OpenMP
 * runtime) so the compiler vectorises them without -ffast-math. */
static inline float dot(const float *a, const float *b, int64_t d) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < d; i++) s += a[i] * b[i];
    return s;
}

static inline void axpy(float a, const float *x, float *y, int64_t d) {
#pragma omp simd
    for (int64_t i = 0; i < d; i++) y[i] += a * x[i];
}

/* out[k] = h . X[k] for m rows, four rows per pass over h. */
static inline void dot_rows(const float *h, float *const *X, int64_t m, float *out, int64_t d) {
    int64_t k = 0;
    for (; k + 4 <= m; k += 4) {
        const float *x0 = X[k], *x1 = X[k + 1], *x2 = X[k + 2], *x3 = X[k + 3];
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
        for (int64_t i = 0; i < d; i++) {
            s0 += h[i] * x0[i]; s1 += h[i] * x1[i]; s2 += h[i] * x2[i]; s3 += h[i] * x3[i];
        }
        out[k] = s0; out[k + 1] = s1; out[k + 2] = s2; out[k + 3] = s3;
    }
    for (; k < m; k++) out[k] = dot(h, X[k], d);
}

/* y += sum_k coef[k * stride] * X[k] over m rows: four rows per pass over y, so y is loaded and
 * stored once per four rows instead of once per row (the updates are load/store bound). */
static inline void axpy_rows(const float *coef, int64_t stride, float *const *X, int64_t m, float *y, int64_t d) {
    int64_t k = 0;
    for (; k + 4 <= m; k += 4) {
        const float a0 = coef[k * stride], a1 = coef[(k + 1) * stride];
        const float a2 = coef[(k + 2) * stride], a3 = coef[(k + 3) * stride];
        const float *x0 = X[k], *x1 = X[k + 1], *x2 = X[k + 2], *x3 = X[k + 3];
#pragma omp simd
        for (int64_t i = 0; i < d; i++) y[i] += (a0 * x0[i] + a1 * x1[i]) + (a2 * x2[i] + a3 * x3[i]);
    }
    for (; k < m; k++)
        if (coef[k * stride] != 0.0f) axpy(coef[k * stride], X[k], y, d);
}

/* h = the sum of the m rows table[ids[k]], four rows per pass over h (a word's n-gram rows). */
static inline void sum_rows(const float *table, const int32_t *ids, int64_t m, float *h, int64_t d) {
    for (int64_t i = 0; i < d; i++) h[i] = 0.0f;
    int64_t k = 0;
    for (; k + 4 <= m; k += 4) {
        const float *x0 = table + (int64_t)ids[k] * d, *x1 = table + (int64_t)ids[k + 1] * d;
        const float *x2 = table + (int64_t)ids[k + 2] * d, *x3 = table + (int64_t)ids[k + 3] * d;
#pragma omp simd
        for (int64_t i = 0; i < d; i++) h[i] += (x0[i] + x1[i]) + (x2[i] + x3[i]);
    }
    for (; k < m; k++) axpy(1.0f, table + (int64_t)ids[k] * d, h, d);
}

/* table[ids[k]] += g for the m rows, four distinct rows per pass over g. A word's n-grams may
 * hash to the same row twice (fastText adds the gradient twice then, and so does this): four
 * rows with a repeat among them are updated one after another. */
static inline void add_to_rows(const float *g, float *table, const int32_t *ids, int64_t m, int64_t d) {
    int64_t k = 0;
    for (; k + 4 <= m; k += 4) {
        const int32_t a = ids[k], b = ids[k + 1], c = ids[k + 2], e = ids[k + 3];
        if (a == b || a == c || a == e || b == c || b == e || c == e) {
            for (int64_t q = k; q < k + 4; q++) axpy(1.0f, g, table + (int64_t)ids[q] * d, d);
            continue;
        }
        float *x0 = table + (int64_t)a * d, *x1 = table + (int64_t)b * d;
        float *x2 = table + (int64_t)c * d, *x3 = table + (int64_t)e * d;
#pragma omp simd
        for (int64_t i = 0; i < d; i++) { x0[i] += g[i]; x1[i] += g[i]; x2[i] += g[i]; x3[i] += g[i]; }
    }
    for (; k < m; k++) axpy(1.0f, g, table + (int64_t)ids[k] * d, d);
}

/* exp(x) for x <= 0 (x below -87 gives ~1e-38 instead of underflowing): 2^n * e^r with
 * r = x - n ln2 in [-ln2/2, ln2/2], e^r by its Taylor series to r^7 (error < 1e-8, under float
 * rounding). Plain arithmetic, so the loop calling it vectorises; libm's expf would not. */
static inline float exp_nonpositive(float x) {
    x = x < -87.0f ? -87.0f : x;
    float n = floorf(x * 1.44269504f + 0.5f);
    float r = x - n * 0.693145752f - n * 1.42860677e-6f;   /* ln2 split in two for precision */
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720; p = p * r + 1.0f / 120; p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6; p = p * r + 0.5f; p = p * r + 1.0f; p = p * r + 1.0f;
    union { float f; int32_t i; } scale = {.i = ((int32_t)n + 127) << 23};
    return p * scale.f;
}

/* log(1 + e) for e in [0, 1]: 2 atanh(u) with u = e / (2 + e) <= 1/3, by its odd series to u^15
 * (next term < 2e-9 of the sum). Vectorisable, like exp_nonpositive. */
static inline float log1p_unit(float e) {
    float u = e / (2.0f + e), u2 = u * u;
    float p = 1.0f / 15;
    p = p * u2 + 1.0f / 13; p = p * u2 + 1.0f / 11; p = p * u2 + 1.0f / 9; p = p * u2 + 1.0f / 7;
    p = p * u2 + 1.0f / 5; p = p * u2 + 1.0f / 3; p = p * u2 + 1.0f;
    return 2.0f * u * p;
}

/* For m scores s[k] with labels lab[k] (1: the centre word, 0: a noise word) and validity val[k]:
 * g[k] = lr (label - sigmoid(s)) val, and returns the loss sum of -log sigmoid(+-s) val. Both come
 * from one e = exp(-|s|), so nothing overflows for large |s| (as torch's logsigmoid). */
static inline double score_grads(const float *s, const float *lab, const float *val, float *g, int64_t m,
                                 float lr) {
    double loss = 0.0;
#pragma omp simd reduction(+ : loss)
    for (int64_t k = 0; k < m; k++) {
        float e = exp_nonpositive(-fabsf(s[k]));
        float inv = 1.0f / (1.0f + e);
        float sig = s[k] >= 0.0f ? inv : e * inv;
        float signed_s = lab[k] != 0.0f ? s[k] : -s[k];
        loss += (double)(val[k] * (log1p_unit(e) - fminf(signed_s, 0.0f)));
        g[k] = lr * val[k] * (lab[k] - sig);
    }
    return loss;
}

static inline int bad_id(int64_t id, int64_t V) { return (uint64_t)id >= (uint64_t)V; }

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)0)
#endif

static inline void prefetch_row(const float *row, int64_t lines) {
    for (int64_t l = 0; l < lines; l++) PREFETCH((const char *)row + 64 * l);
}

/* The input rows of context word id: its row, or with subwords each of its rows. */
static inline void prefetch_input(const Job *job, int64_t id, int64_t lines) {
    if (bad_id(id, job->V)) return;
    if (!job->sub_rows) { prefetch_row(job->in + id * job->D, lines); return; }
    int64_t lo = job->sub_offsets[id], hi = job->sub_offsets[id + 1];
    if (lo < 0 || hi > job->sub_nnz) return;
    for (int64_t p = lo; p < hi; p++)
        if (!bad_id(job->sub_rows[p], job->in_rows)) prefetch_row(job->in + (int64_t)job->sub_rows[p] * job->D, lines);
}

/* Ask for the rows of example i (its centre, noise and context words) while the previous example
 * computes: the tables are far larger than the caches, and a row miss would otherwise stall. */
static void prefetch_example(const Job *job, int64_t i) {
    if (i >= job->end) return;
    const int64_t D = job->D, C = job->C, K = job->K;
    const int64_t lines = (D * (int64_t)sizeof(float) + 63) / 64;
    int64_t id = job->targets[i];
    if (job->points) {  /* the path's rows; the rows near the root stay cached anyway */
        if (bad_id(id, job->V)) return;
        const int32_t *path = job->points + id * job->L;
        int64_t len = job->lengths[id];
        for (int64_t j = 0; j < len && j < job->L; j++)
            if (!bad_id(path[j], job->R))
                for (int64_t l = 0; l < lines; l++) PREFETCH((const char *)(job->out + path[j] * D) + 64 * l);
    } else {
        if (!bad_id(id, job->R))
            for (int64_t l = 0; l < lines; l++) PREFETCH((const char *)(job->out + id * D) + 64 * l);
        for (int64_t j = 0; j < K; j++) {
            id = job->negatives[i * K + j];
            if (!bad_id(id, job->R))
                for (int64_t l = 0; l < lines; l++) PREFETCH((const char *)(job->out + id * D) + 64 * l);
        }
    }
    if (job->spans) {
        const int32_t *sp = job->spans + 3 * i;
        for (int64_t p = sp[0]; p <= sp[2]; p++) {
            if (p == sp[1]) continue;
            prefetch_input(job, job->span_ids[p], lines);
        }
        return;
    }
    for (int64_t c = 0; c < C; c++) {
        if (job->mask && !job->mask[i * C + c]) continue;
        prefetch_input(job, job->inputs[i * C + c], lines);
    }
}

/* Per-thread scratch: row pointers and the scores, labels, validity and gradients of one example;
 * J is the most output rows an example scores (1 + K, or the longest path L). */
typedef struct {
    float **rows, **hrows;   /* [J] output rows (centre first), [C] valid context rows */
    float *lab_j, *val_j;    /* [J] labels; 0 for a noise word equal to the centre word (word2vec.c skips it) */
    float *s, *lab, *val, *g;  /* [C * J] per (context, target) */
    float *h, *gh;           /* [D] CBOW hidden vector; [C * D] input-row gradients */
    float *hsub;             /* subwords: [C * D] each valid context word's mean (or sum) of its rows */
    int64_t *hword;          /* subwords: [C] the valid context words' ids */
    int64_t bag;             /* input rows of the valid context words (without subwords: their count) */
} Scratch;

/* Fills the output rows of example i, their labels and validity; returns their count, or 0 on an
 * id outside the tables (or a path outside the tree). */
static int64_t gather_targets(const Job *job, int64_t i, Scratch *w) {
    int64_t centre = job->targets[i], K = job->K;
    if (bad_id(centre, job->V)) return 0;
    if (job->points) {
        const int32_t *path = job->points + centre * job->L;
        const float *lab = job->labels + centre * job->L;
        int64_t len = job->lengths[centre];
        if (len < 1 || len > job->L) return 0;
        for (int64_t j = 0; j < len; j++) {
            if (bad_id(path[j], job->R)) return 0;
            w->rows[j] = job->out + (int64_t)path[j] * job->D;
            w->lab_j[j] = lab[j];
            w->val_j[j] = 1.0f;
        }
        return len;
    }
    if (bad_id(centre, job->R)) return 0;
    w->rows[0] = job->out + centre * job->D;
    w->lab_j[0] = 1.0f;
    w->val_j[0] = 1.0f;
    for (int64_t j = 1; j <= K; j++) {
        int64_t t = job->negatives[i * K + j - 1];
        if (bad_id(t, job->R)) return 0;
        w->rows[j] = job->out + t * job->D;
        w->lab_j[j] = 0.0f;
        w->val_j[j] = t != centre ? 1.0f : 0.0f;
    }
    return K + 1;
}

/* Points hrows[n] at the input vector of word id: its row, or with subwords the mean (`mean`) or
 * the sum of its rows, computed into hsub (no rows: a zero vector); adds its rows to the bag.
 * Returns 0 on an id outside the tables. */
static inline int context_vector(const Job *job, int64_t id, Scratch *w, int64_t n, int mean) {
    const int64_t D = job->D;
    if (bad_id(id, job->V)) return 0;
    if (!job->sub_rows) {
        w->hrows[n] = job->in + id * D;
        w->bag++;
        return 1;
    }
    int64_t lo = job->sub_offsets[id], hi = job->sub_offsets[id + 1];
    if (lo < 0 || hi < lo || hi > job->sub_nnz) return 0;
    float *h = w->hsub + n * D;
    for (int64_t p = lo; p < hi; p++)
        if (bad_id(job->sub_rows[p], job->in_rows)) return 0;
    sum_rows(job->in, job->sub_rows + lo, hi - lo, h, D);
    if (mean && hi - lo > 1) {
        float inv = 1.0f / (float)(hi - lo);
        for (int64_t d = 0; d < D; d++) h[d] *= inv;
    }
    w->hrows[n] = h;
    w->hword[n] = id;
    w->bag += hi - lo;
    return 1;
}

/* Adds grad [D] to the input of valid context word n: its row, or with subwords each of its rows. */
static inline void add_input_grad(const Job *job, const Scratch *w, int64_t n, const float *grad) {
    if (!job->sub_rows) {
        axpy(1.0f, grad, w->hrows[n], job->D);
        return;
    }
    int64_t id = w->hword[n], lo = job->sub_offsets[id];
    add_to_rows(grad, job->in, job->sub_rows + lo, job->sub_offsets[id + 1] - lo, job->D);
}

/* Fills the vectors of example i's valid context words (with subwords: for skip-gram with shared
 * noise each word's mean, for CBOW and per-pair skip-gram the sums that run_cbow pools) and the
 * bag's size; returns their count, or -1 on a bad id. */
static int64_t gather_contexts(const Job *job, int64_t i, Scratch *w) {
    const int mean = job->mode == MODE_SG_SHARED;
    int64_t n = 0;
    w->bag = 0;
    if (job->spans) {  /* the same rows, in the same order, as the [N, C] form with its mask */
        const int32_t *sp = job->spans + 3 * i;
        if (sp[0] < 0 || sp[1] < sp[0] || sp[2] < sp[1] || sp[2] - sp[0] > job->C) return -1;
        for (int64_t p = sp[0]; p <= sp[2]; p++) {
            if (p == sp[1]) continue;
            if (!context_vector(job, job->span_ids[p], w, n++, mean)) return -1;
        }
        return n;
    }
    for (int64_t c = 0; c < job->C; c++) {
        if (job->mask && !job->mask[i * job->C + c]) continue;
        if (!context_vector(job, job->inputs[i * job->C + c], w, n++, mean)) return -1;
    }
    return n;
}

/* Labels and validity of n rows of J targets, the same for every context row. */
static void fill_labels(Scratch *w, int64_t n, int64_t J) {
    for (int64_t c = 0; c < n; c++)
        for (int64_t j = 0; j < J; j++) {
            w->lab[c * J + j] = w->lab_j[j];
            w->val[c * J + j] = w->val_j[j];
        }
}

static inline float example_lr(const Job *job, int64_t i) {
    return (float)(job->lr0 + (job->lr1 - job->lr0) * (double)i / (double)job->N);
}

/* Skip-gram sharing K noise words across the window: every valid context word c is paired with
 * the centre and the same noise words. All g[c][j] come first, then both tables are updated from
 * the old rows, as the batched step's matrix products are. */
static void run_sg_shared(Job *job, Scratch *w) {
    const int64_t D = job->D;
    prefetch_example(job, job->begin);
    for (int64_t i = job->begin; i < job->end; i++) {
        int64_t n = gather_contexts(job, i, w), J = gather_targets(job, i, w);
        if (n < 0 || J == 0) { job->status = ERR_BAD_ID; return; }
        prefetch_example(job, i + 1);
        for (int64_t c = 0; c < n; c++) dot_rows(w->hrows[c], w->rows, J, w->s + c * J, D);
        fill_labels(w, n, J);
        job->loss += score_grads(w->s, w->lab, w->val, w->g, n * J, example_lr(job, i));
        const float *g = w->g;
        for (int64_t c = 0; c < n; c++) {  /* input gradients from the old output rows */
            float *ghc = w->gh + c * D;
            for (int64_t d = 0; d < D; d++) ghc[d] = 0.0f;
            axpy_rows(g + c * J, 1, w->rows, J, ghc, D);
        }
        for (int64_t j = 0; j < J; j++)    /* output rows from the old input rows */
            axpy_rows(g + j, J, w->hrows, n, w->rows[j], D);
        for (int64_t c = 0; c < n; c++) add_input_grad(job, w, c, w->gh + c * D);
    }
}

/* CBOW: hidden vector = mean (or sum) of the valid context rows; every valid context row gets the
 * hidden-vector gradient (divided by the context count in sum mode, as gensim does). With
 * subwords the context rows are all the rows of the context words (the bag). Skip-gram with one
 * noise draw per pair is this with a single, always valid, context word (its mean). */
static void run_cbow(Job *job, Scratch *w) {
    const int64_t D = job->D;
    const int mean = job->cbow_mean || job->mode == MODE_SG_PAIR;
    float *h = w->h, *gh = w->gh;
    prefetch_example(job, job->begin);
    for (int64_t i = job->begin; i < job->end; i++) {
        int64_t n = gather_contexts(job, i, w), J = gather_targets(job, i, w);
        if (n < 0 || J == 0) { job->status = ERR_BAD_ID; return; }
        prefetch_example(job, i + 1);
        for (int64_t d = 0; d < D; d++) { h[d] = 0.0f; gh[d] = 0.0f; }
        for (int64_t c = 0; c < n; c++) axpy(1.0f, w->hrows[c], h, D);
        if (mean && w->bag > 1)
            for (int64_t d = 0; d < D; d++) h[d] /= (float)w->bag;
        dot_rows(h, w->rows, J, w->s, D);
        fill_labels(w, 1, J);
        job->loss += score_grads(w->s, w->lab, w->val, w->g, J, example_lr(job, i));
        axpy_rows(w->g, 1, w->rows, J, gh, D);
        for (int64_t j = 0; j < J; j++)
            if (w->g[j] != 0.0f) axpy(w->g[j], h, w->rows[j], D);
        if (!mean && w->bag > 1)
            for (int64_t d = 0; d < D; d++) gh[d] /= (float)w->bag;
        for (int64_t c = 0; c < n; c++) add_input_grad(job, w, c, gh);
    }
}

static void *run_job(void *arg) {
    Job *job = (Job *)arg;
    const int64_t D = job->D, C = job->C, J = job->points ? job->L : job->K + 1;
    Scratch w;
    w.rows = malloc(sizeof(float *) * J);
    w.hrows = malloc(sizeof(float *) * C);
    w.lab_j = malloc(sizeof(float) * J);
    w.val_j = malloc(sizeof(float) * J);
    w.s = malloc(sizeof(float) * C * J);
    w.lab = malloc(sizeof(float) * C * J);
    w.val = malloc(sizeof(float) * C * J);
    w.g = malloc(sizeof(float) * C * J);
    w.h = malloc(sizeof(float) * D);
    w.gh = malloc(sizeof(float) * C * D);
    w.hsub = job->sub_rows ? malloc(sizeof(float) * C * D) : NULL;
    w.hword = job->sub_rows ? malloc(sizeof(int64_t) * C) : NULL;
    if (!w.rows || !w.hrows || !w.lab_j || !w.val_j || !w.s || !w.lab || !w.val || !w.g || !w.h || !w.gh
        || (job->sub_rows && (!w.hsub || !w.hword)))
        job->status = ERR_NO_MEMORY;
    else if (job->mode == MODE_SG_SHARED) run_sg_shared(job, &w);
    else run_cbow(job, &w);
    free(w.rows); free(w.hrows); free(w.lab_j); free(w.val_j); free(w.s); free(w.lab); free(w.val); free(w.g);
    free(w.h); free(w.gh); free(w.hsub); free(w.hword);
    return NULL;
}

/* Train on examples [0, N) with `threads` Hogwild threads; the learning rate of example i is
 * lr0 + (lr1 - lr0) * i / N. With `points` (hierarchical softmax; then K = 0 and the output table
 * has R = V - 1 rows) each example's output rows are its centre word's path. With `sub_offsets`
 * [V + 1] and `sub_rows` [sub_nnz] (subwords) the input table has in_rows >= V rows and an input
 * word's vector is the mean of its rows; without, in_rows is V. Writes the summed loss to
 * *loss_out; returns an ERR_* code. */
int w2v_train_chunk(int mode, float *in, float *out, int64_t V, int64_t R, int64_t D,
                    const int32_t *inputs, const uint8_t *mask, int64_t C,
                    const int32_t *span_ids, const int32_t *spans,
                    const int32_t *targets, const int32_t *negatives, int64_t K,
                    const int32_t *points, const float *labels, const int32_t *lengths, int64_t L,
                    const int64_t *sub_offsets, const int32_t *sub_rows, int64_t sub_nnz, int64_t in_rows,
                    int64_t N, double lr0, double lr1, int cbow_mean, int threads, double *loss_out) {
    if (mode < MODE_SG_PAIR || mode > MODE_CBOW || D < 1 || C < 1 || K < 0 || N < 0 || threads < 1
        || (spans != NULL) == (inputs != NULL) || (spans && (!span_ids || mode == MODE_SG_PAIR))
        || (points ? (!labels || !lengths || L < 1 || K != 0 || R != V - 1) : R != V)
        || (sub_offsets != NULL) != (sub_rows != NULL) || (sub_rows ? in_rows < V || sub_nnz < 0 : in_rows != V))
        return ERR_BAD_ARGS;
    if (threads > N) threads = N > 0 ? (int)N : 1;
    Job *jobs = calloc((size_t)threads, sizeof(Job));
    pthread_t *tids = calloc((size_t)threads, sizeof(pthread_t));
    if (!jobs || !tids) { free(jobs); free(tids); return ERR_NO_MEMORY; }
    for (int t = 0; t < threads; t++) {
        Job *j = &jobs[t];
        j->mode = mode; j->cbow_mean = cbow_mean; j->in = in; j->out = out;
        j->V = V; j->R = R; j->D = D; j->C = C; j->K = K; j->N = N;
        j->points = points; j->labels = labels; j->lengths = lengths; j->L = L;
        j->inputs = inputs; j->mask = mask; j->targets = targets; j->negatives = negatives;
        j->span_ids = span_ids; j->spans = spans;
        j->sub_offsets = sub_offsets; j->sub_rows = sub_rows; j->sub_nnz = sub_nnz; j->in_rows = in_rows;
        j->lr0 = lr0; j->lr1 = lr1;
        j->begin = N * t / threads; j->end = N * (t + 1) / threads;
    }
    int status = OK, started = 0;
    for (int t = 1; t < threads; t++, started++)  /* thread 0's range runs on the calling thread */
        if (pthread_create(&tids[t], NULL, run_job, &jobs[t]) != 0) { status = ERR_THREAD; break; }
    if (status == OK) run_job(&jobs[0]);
    for (int t = 1; t <= started; t++) pthread_join(tids[t], NULL);
    double loss = 0.0;
    for (int t = 0; t < threads; t++) {
        loss += jobs[t].loss;
        if (status == OK && jobs[t].status != OK) status = jobs[t].status;
    }
    *loss_out = loss;
    free(jobs); free(tids);
    return status;
}

/* 1 when all n floats are finite: the checkpoint guard's check without any temporary. */
int w2v_all_finite(const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* ---- Examples made in C from a chunk's encoded tokens (word2vec.c's way) ----
 *
 * w2v_train_tokens takes the chunk's word ids and sentence offsets and, per thread, subsamples the
 * tokens, shrinks each centre's window and draws its noise words itself, then trains those
 * examples in blocks through run_job, the same per-example routines as w2v_train_chunk. The draws
 * are those of w2v/batches.py's make_examples (the torch reference), from a seeded splitmix64
 * stream per thread instead of torch's generator: keep word w with probability keep[w], window b
 * uniform in 1..W, noise words from an alias table of the noise distribution. */

/* splitmix64 (Steele, Lea, Flood 2014): one add and two multiply-xorshifts per 64 random bits. */
static inline uint64_t rng_next(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A uniform float in [0, 1) from 24 bits of r; an integer in [0, n) from its high 32 bits
 * (multiply-shift: bias below n / 2^32). */
static inline float unit_float(uint64_t r) { return (float)(r & 0xFFFFFF) * (1.0f / 16777216.0f); }
static inline int64_t below(uint64_t r, int64_t n) { return (int64_t)(((r >> 32) * (uint64_t)n) >> 32); }

/* One noise word from the alias table (prob, alias) of V words: column j uniform, then j itself
 * with probability prob[j], else alias[j]. */
static inline int32_t alias_draw(const float *prob, const int32_t *alias, int64_t V, uint64_t r) {
    int64_t j = below(r, V);
    return unit_float(r) < prob[j] ? (int32_t)j : alias[j];
}

/* Vose's alias table for weights w[0..V) (non-negative, positive sum): P(draw = i) = w[i] / sum.
 * Returns an ERR_* code. */
int w2v_alias_table(const double *w, int64_t V, float *prob, int32_t *alias) {
    if (V < 1 || V > INT32_MAX) return ERR_BAD_ARGS;
    double sum = 0.0;
    for (int64_t i = 0; i < V; i++) {
        if (!(w[i] >= 0.0) || !isfinite(w[i])) return ERR_BAD_ARGS;
        sum += w[i];
    }
    if (!(sum > 0.0)) return ERR_BAD_ARGS;
    double *p = malloc(sizeof(double) * V);
    int32_t *small = malloc(sizeof(int32_t) * V), *large = malloc(sizeof(int32_t) * V);
    if (!p || !small || !large) { free(p); free(small); free(large); return ERR_NO_MEMORY; }
    int64_t ns = 0, nl = 0;
    for (int64_t i = 0; i < V; i++) {
        p[i] = w[i] * (double)V / sum;
        if (p[i] < 1.0) small[ns++] = (int32_t)i; else large[nl++] = (int32_t)i;
    }
    while (ns && nl) {
        int32_t s = small[--ns], l = large[nl - 1];
        prob[s] = (float)p[s];
        alias[s] = l;
        p[l] -= 1.0 - p[s];
        if (p[l] < 1.0) { nl--; small[ns++] = l; }
    }
    while (nl) { int32_t l = large[--nl]; prob[l] = 1.0f; alias[l] = l; }
    while (ns) { int32_t s = small[--ns]; prob[s] = 1.0f; alias[s] = s; }  /* rounding leftovers */
    free(p); free(small); free(large);
    return OK;
}

enum { BLOCK_EXAMPLES = 4096, BLOCK_TOKENS = 16384 };

/* What w2v_draw_tokens writes instead of training (one thread, one block): each token's kept flag
 * and window radius (0: dropped), and every example as it would be trained, its spans indexing
 * the kept tokens in order. */
typedef struct {
    uint8_t *kept;
    int32_t *radius;                                  /* [T] */
    int32_t *spans, *inputs, *targets, *negatives;    /* [cap, 3], [cap], [cap], [cap, K] */
    int64_t cap, n;
} Record;

/* One thread's share of a chunk: sentences [s_begin, s_end), its own random stream, its tallies.
 * `job` is the template of the tables, mode, K and tree; each block of examples trains as a copy
 * of it pointing at this maker's buffers. */
typedef struct {
    Job job;
    const int32_t *ids;       /* the chunk's word ids */
    const int64_t *offsets;   /* sentence starts in ids, relative to the chunk */
    const float *keep;        /* [V] subsampling keep probability */
    const float *noise_prob;  /* [V] alias table of the noise distribution (K > 0) */
    const int32_t *noise_alias;
    int64_t window, T, s_begin, s_end;
    double lr0, lr1;          /* the chunk's learning rates at its first and one-past-last token */
    uint64_t rng;
    int64_t kept, terms;      /* tokens kept after subsampling; loss terms (pairs, or CBOW's centres) */
    double loss;
    int status;
    Record *record;           /* non-NULL: write the examples there instead of training them */
} Maker;

/* Kept ids of the current block's sentences, their chunk positions, and the block's examples. */
typedef struct {
    int32_t *ids, *pos;        /* [cap] */
    int32_t *spans, *inputs, *targets, *negatives;  /* [E, 3], [E], [E], [E, K] */
    int64_t cap, n;            /* n: examples in the block */
    int64_t first_pos;         /* chunk position of the block's first example's centre */
} Block;

static inline double chunk_lr(const Maker *m, int64_t pos) {
    return m->lr0 + (m->lr1 - m->lr0) * (double)pos / (double)(m->T > 0 ? m->T : 1);
}

/* Train the block's n examples (learning rate linear from its first centre to `next_pos`). */
static void flush_block(Maker *m, Block *b, int64_t next_pos) {
    if (b->n == 0 || m->status != OK) { b->n = 0; return; }
    Record *rec = m->record;
    if (rec) {
        const int64_t n = b->n, K = m->job.K, at = rec->n;
        if (at + n > rec->cap) { m->status = ERR_NO_MEMORY; return; }
        for (int64_t i = 0; i < n; i++) {
            if (m->job.mode == MODE_SG_PAIR) rec->inputs[at + i] = b->inputs[i];
            else for (int c = 0; c < 3; c++) rec->spans[3 * (at + i) + c] = b->spans[3 * i + c];
            rec->targets[at + i] = b->targets[i];
            for (int64_t k = 0; k < K; k++) rec->negatives[(at + i) * K + k] = b->negatives[i * K + k];
        }
        rec->n += n;
        b->n = 0;
        return;
    }
    Job j = m->job;
    j.span_ids = j.mode == MODE_SG_PAIR ? NULL : b->ids;
    j.spans = j.mode == MODE_SG_PAIR ? NULL : b->spans;
    j.inputs = j.mode == MODE_SG_PAIR ? b->inputs : NULL;
    j.targets = b->targets;
    j.negatives = b->negatives;
    j.N = b->n; j.begin = 0; j.end = b->n;
    j.lr0 = chunk_lr(m, b->first_pos); j.lr1 = chunk_lr(m, next_pos);
    j.loss = 0.0; j.status = OK;
    run_job(&j);
    m->loss += j.loss;
    if (j.status != OK) m->status = j.status;
    b->n = 0;
}

/* Append example (centre at block index p; for per-pair skip-gram, context at index q) with its
 * K noise words; trains the block first when it is full. */
static void add_example(Maker *m, Block *b, int64_t lo, int64_t p, int64_t hi, int64_t q) {
    if (b->n == BLOCK_EXAMPLES) flush_block(m, b, b->pos[p]);
    if (b->n == 0) b->first_pos = b->pos[p];
    int64_t n = b->n++, K = m->job.K;
    if (m->job.mode == MODE_SG_PAIR) b->inputs[n] = b->ids[q];
    else { b->spans[3 * n] = (int32_t)lo; b->spans[3 * n + 1] = (int32_t)p; b->spans[3 * n + 2] = (int32_t)hi; }
    b->targets[n] = b->ids[p];
    for (int64_t k = 0; k < K; k++)
        b->negatives[n * K + k] = alias_draw(m->noise_prob, m->noise_alias, m->job.V, rng_next(&m->rng));
}

static void *make_and_train(void *arg) {
    Maker *m = (Maker *)arg;
    const int64_t V = m->job.V, W = m->window, K = m->job.K;
    int64_t longest = 0;
    for (int64_t s = m->s_begin; s < m->s_end; s++)
        if (m->offsets[s + 1] - m->offsets[s] > longest) longest = m->offsets[s + 1] - m->offsets[s];
    Block b = {0};
    b.cap = longest > BLOCK_TOKENS ? longest : BLOCK_TOKENS;
    if (m->record) b.cap = m->T > 0 ? m->T : 1;  /* one block: its indices are the kept tokens' */
    b.ids = malloc(sizeof(int32_t) * b.cap);
    b.pos = malloc(sizeof(int32_t) * b.cap);
    b.spans = malloc(sizeof(int32_t) * 3 * BLOCK_EXAMPLES);
    b.inputs = malloc(sizeof(int32_t) * BLOCK_EXAMPLES);
    b.targets = malloc(sizeof(int32_t) * BLOCK_EXAMPLES);
    b.negatives = malloc(sizeof(int32_t) * (K > 0 ? K : 1) * BLOCK_EXAMPLES);
    if (!b.ids || !b.pos || !b.spans || !b.inputs || !b.targets || !b.negatives) m->status = ERR_NO_MEMORY;
    int64_t used = 0;  /* block tokens in use */
    for (int64_t s = m->s_begin; s < m->s_end && m->status == OK; s++) {
        const int64_t a = m->offsets[s], e = m->offsets[s + 1];
        if (used + (e - a) > b.cap) { flush_block(m, &b, a); used = 0; }
        const int64_t first = used;
        for (int64_t t = a; t < e; t++) {   /* subsampling: torch.rand(...) < keep_prob[ids] */
            int32_t w = m->ids[t];
            if (bad_id(w, V)) { m->status = ERR_BAD_ID; break; }
            if (unit_float(rng_next(&m->rng)) < m->keep[w]) {
                b.ids[used] = w; b.pos[used++] = (int32_t)t;
                if (m->record) m->record->kept[t] = 1;
            }
        }
        m->kept += used - first;
        for (int64_t p = first; p < used && m->status == OK; p++) {
            int64_t r = 1 + below(rng_next(&m->rng), W);   /* the shrunk window, uniform in 1..W */
            if (m->record) m->record->radius[b.pos[p]] = (int32_t)r;
            int64_t lo = p - r > first ? p - r : first, hi = p + r < used - 1 ? p + r : used - 1;
            if (hi <= lo) continue;  /* no context: word2vec.c skips the centre word */
            if (m->job.mode == MODE_SG_PAIR) {
                for (int64_t q = lo; q <= hi; q++)
                    if (q != p) add_example(m, &b, lo, p, hi, q);
                m->terms += hi - lo;
            } else {
                add_example(m, &b, lo, p, hi, 0);
                m->terms += m->job.mode == MODE_SG_SHARED ? hi - lo : 1;
            }
        }
    }
    flush_block(m, &b, m->s_end > m->s_begin ? m->offsets[m->s_end] : 0);
    free(b.ids); free(b.pos); free(b.spans); free(b.inputs); free(b.targets); free(b.negatives);
    return NULL;
}

static int run_makers(int mode, float *in, float *out, int64_t V, int64_t R, int64_t D,
                      const int32_t *ids, const int64_t *offsets, int64_t S,
                      const float *keep, int64_t window,
                      const float *noise_prob, const int32_t *noise_alias, int64_t K,
                      const int32_t *points, const float *labels, const int32_t *lengths, int64_t L,
                      const int64_t *sub_offsets, const int32_t *sub_rows, int64_t sub_nnz, int64_t in_rows,
                      double lr0, double lr1, int cbow_mean, int threads, uint64_t seed, Record *record,
                      double *loss_out, int64_t *counts_out) {
    if (mode < MODE_SG_PAIR || mode > MODE_CBOW || D < 1 || window < 1 || K < 0 || S < 0 || threads < 1
        || !keep || (K > 0 && (!noise_prob || !noise_alias)) || (record && threads != 1)
        || (points ? (!labels || !lengths || L < 1 || K != 0 || R != V - 1) : (R != V || K < 1))
        || (sub_offsets != NULL) != (sub_rows != NULL) || (sub_rows ? in_rows < V || sub_nnz < 0 : in_rows != V))
        return ERR_BAD_ARGS;
    const int64_t T = offsets[S];
    if (offsets[0] != 0 || T > INT32_MAX) return ERR_BAD_ARGS;
    for (int64_t s = 0; s < S; s++)
        if (offsets[s + 1] < offsets[s]) return ERR_BAD_ARGS;
    if (threads > S) threads = S > 0 ? (int)S : 1;
    Maker *makers = calloc((size_t)threads, sizeof(Maker));
    pthread_t *tids = calloc((size_t)threads, sizeof(pthread_t));
    if (!makers || !tids) { free(makers); free(tids); return ERR_NO_MEMORY; }
    int64_t s = 0;
    for (int t = 0; t < threads; t++) {
        Maker *m = &makers[t];
        Job *j = &m->job;
        j->mode = mode; j->cbow_mean = cbow_mean; j->in = in; j->out = out;
        j->V = V; j->R = R; j->D = D; j->K = K;
        j->sub_offsets = sub_offsets; j->sub_rows = sub_rows; j->sub_nnz = sub_nnz; j->in_rows = in_rows;
        j->C = mode == MODE_SG_PAIR ? 1 : 2 * window;
        j->points = points; j->labels = labels; j->lengths = lengths; j->L = L;
        m->ids = ids; m->offsets = offsets; m->keep = keep;
        m->noise_prob = noise_prob; m->noise_alias = noise_alias;
        m->window = window; m->T = T; m->lr0 = lr0; m->lr1 = lr1;
        m->rng = seed ^ (0xD1B54A32D192ED03ull * (uint64_t)(t + 1));
        m->record = record;
        m->s_begin = s;   /* the first sentence starting at or after t's share of the tokens */
        int64_t mark = T * (t + 1) / threads;
        while (s < S && offsets[s] < mark) s++;
        m->s_end = t + 1 == threads ? S : s;
    }
    int status = OK, started = 0;
    for (int t = 1; t < threads; t++, started++)
        if (pthread_create(&tids[t], NULL, make_and_train, &makers[t]) != 0) { status = ERR_THREAD; break; }
    if (status == OK) make_and_train(&makers[0]);
    for (int t = 1; t <= started; t++) pthread_join(tids[t], NULL);
    double loss = 0.0;
    counts_out[0] = counts_out[1] = 0;
    for (int t = 0; t < threads; t++) {
        loss += makers[t].loss;
        counts_out[0] += makers[t].kept;
        counts_out[1] += makers[t].terms;
        if (status == OK && makers[t].status != OK) status = makers[t].status;
    }
    *loss_out = loss;
    free(makers); free(tids);
    return status;
}

/* Train on the chunk's tokens ids[0..T) in sentences offsets[0..S] (offsets[0] = 0, offsets[S] = T)
 * with `threads` Hogwild threads, each taking a contiguous run of sentences (about T / threads
 * tokens) and the random stream seeded from (seed, its index): subsampling with keep[V], windows
 * of at most `window`, K noise words per example from the alias table (noise_prob, noise_alias)
 * (hierarchical softmax: K = 0 and the tree as in w2v_train_chunk; subwords, V words of an input
 * table of in_rows rows, as there). The learning rate goes linearly from lr0 at the first token to
 * lr1 past the last. Writes the summed loss to *loss_out and (tokens kept, loss terms) to
 * counts_out[0..1]; returns an ERR_* code. */
int w2v_train_tokens(int mode, float *in, float *out, int64_t V, int64_t R, int64_t D,
                     const int32_t *ids, const int64_t *offsets, int64_t S,
                     const float *keep, int64_t window,
                     const float *noise_prob, const int32_t *noise_alias, int64_t K,
                     const int32_t *points, const float *labels, const int32_t *lengths, int64_t L,
                     const int64_t *sub_offsets, const int32_t *sub_rows, int64_t sub_nnz, int64_t in_rows,
                     double lr0, double lr1, int cbow_mean, int threads, uint64_t seed,
                     double *loss_out, int64_t *counts_out) {
    return run_makers(mode, in, out, V, R, D, ids, offsets, S, keep, window, noise_prob, noise_alias, K,
                      points, labels, lengths, L, sub_offsets, sub_rows, sub_nnz, in_rows,
                      lr0, lr1, cbow_mean, threads, seed, NULL, loss_out, counts_out);
}


/* The examples w2v_train_tokens would train on one thread with this seed, written to the
 * caller's arrays instead (tests compare their draws with the torch reference's distributions):
 * kept[T] and radius[T] zeroed by the caller, spans/inputs/targets/negatives for up to `cap`
 * examples; *n_out: how many. No table is read or written. */
int w2v_draw_tokens(int mode, int64_t V, const int32_t *ids, const int64_t *offsets, int64_t S,
                    const float *keep, int64_t window, const float *noise_prob, const int32_t *noise_alias,
                    int64_t K, uint64_t seed, uint8_t *kept, int32_t *radius, int32_t *spans, int32_t *inputs,
                    int32_t *targets, int32_t *negatives, int64_t cap, int64_t *n_out, int64_t *counts_out) {
    Record rec = {kept, radius, spans, inputs, targets, negatives, cap, 0};
    double loss = 0.0;
    int status = run_makers(mode, NULL, NULL, V, V, 1, ids, offsets, S, keep, window, noise_prob, noise_alias,
                            K, NULL, NULL, NULL, 0, NULL, NULL, 0, V, 0.0, 0.0, 1, 1, seed, &rec, &loss, counts_out);
    *n_out = rec.n;
    return status;
}
