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
    for (int64_t d = 0; d < D; d++) h[d] = 0.0f;
    for (int64_t p = lo; p < hi; p++) {
        if (bad_id(job->sub_rows[p], job->in_rows)) return 0;
        axpy(1.0f, job->in + (int64_t)job->sub_rows[p] * D, h, D);
    }
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
    int64_t id = w->hword[n];
    for (int64_t p = job->sub_offsets[id]; p < job->sub_offsets[id + 1]; p++)
        axpy(1.0f, grad, job->in + (int64_t)job->sub_rows[p] * job->D, job->D);
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
        for (int64_t c = 0; c < n; c++)
            for (int64_t j = 0; j < J; j++) w->s[c * J + j] = dot(w->hrows[c], w->rows[j], D);
        fill_labels(w, n, J);
        job->loss += score_grads(w->s, w->lab, w->val, w->g, n * J, example_lr(job, i));
        const float *g = w->g;
        for (int64_t c = 0; c < n; c++) {  /* input gradients from the old output rows */
            float *ghc = w->gh + c * D;
            for (int64_t d = 0; d < D; d++) ghc[d] = 0.0f;
            for (int64_t j = 0; j < J; j++)
                if (g[c * J + j] != 0.0f) axpy(g[c * J + j], w->rows[j], ghc, D);
        }
        for (int64_t j = 0; j < J; j++)    /* output rows from the old input rows */
            for (int64_t c = 0; c < n; c++)
                if (g[c * J + j] != 0.0f) axpy(g[c * J + j], w->hrows[c], w->rows[j], D);
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
        for (int64_t j = 0; j < J; j++) w->s[j] = dot(h, w->rows[j], D);
        fill_labels(w, 1, J);
        job->loss += score_grads(w->s, w->lab, w->val, w->g, J, example_lr(job, i));
        for (int64_t j = 0; j < J; j++)
            if (w->g[j] != 0.0f) axpy(w->g[j], w->rows[j], gh, D);
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
