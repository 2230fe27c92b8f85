/*
 * airparadis._fastpath: the optional compiled path of single-tweet serving.
 *
 * Why it exists: under load, the Python cleaner and the dict-based TF-IDF scorer cost several
 * times more per tweet (cold caches between requests) and held single-tweet serving well below
 * a trivial kserve model; `make bench` measures both paths. Installs without a C compiler skip
 * it, and airparadis/fastpath.py then picks the pure-Python twins, which give the same bits.
 *
 * - Cleaner: the ASCII case of `airparadis.text.clean_tweet`. Its tables (placeholder tokens,
 *   emoticons, contraction heads and auxiliaries) are passed in from text.py, which stays
 *   the only place that defines them. It returns None for text it does not handle (non-ASCII
 *   or containing '&', i.e. HTML entities or mojibake), and text.py then runs the regular-
 *   expression steps. Training and serving both call `clean_tweet`, so they cannot drift;
 *   tests check this path against the regular-expression one on every shared tweet and on
 *   generated text.
 * - LinearTable: TF-IDF (word n-grams, l2 norm) + logistic regression, as an open-addressing
 *   hash table over the UTF-8 bytes of each n-gram with contiguous weight arrays.
 *
 * Single calls hold the GIL (a few microseconds); `LinearTable.score_texts` releases it
 * while it cleans and scores a batch.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

/* ---------------------------------------------------------------- growable byte buffer -- */

/* Raw allocator and no Python error inside: the cores below also run without the GIL, and
 * their callers turn -1 into MemoryError once they hold it. */
typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} Buf;

static int buf_reserve(Buf *b, Py_ssize_t extra) {
    if (b->len + extra <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) cap *= 2;
    char *data = PyMem_RawRealloc(b->data, (size_t)cap);
    if (data == NULL) return -1;
    b->data = data;
    b->cap = cap;
    return 0;
}

static void buf_free(Buf *b) {
    PyMem_RawFree(b->data);
    *b = (Buf){0};
}

static inline int buf_put(Buf *b, const char *s, Py_ssize_t n) {
    if (buf_reserve(b, n) < 0) return -1;
    memcpy(b->data + b->len, s, (size_t)n);
    b->len += n;
    return 0;
}

static inline int buf_putc(Buf *b, char c) {
    if (b->len == b->cap && buf_reserve(b, 1) < 0) return -1;
    b->data[b->len++] = c;
    return 0;
}

/* Zeroed memory for the scorer's tables, on 2 MiB huge pages where the kernel agrees: a
 * request touches a few dozen random places in ~10 MiB, and with 4 KiB pages most of them
 * would also miss the TLB. */
static void *table_calloc(size_t size) {
    const size_t align = (size_t)2 << 20;
    size_t rounded = (size + align - 1) / align * align;
    void *p = NULL;
    if (rounded == 0 || posix_memalign(&p, align, rounded) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, rounded, MADV_HUGEPAGE); /* advice: 4 KiB pages work too */
#endif
    memset(p, 0, rounded);
    return p;
}

/* ------------------------------------------------------ character classes (ASCII only) -- */

static inline int is_alnum(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
/* Python's \w on str patterns, for ASCII. */
static inline int is_word(unsigned char c) { return is_alnum(c) || c == '_'; }
/* Python's \s on str patterns (str.isspace), for ASCII: includes \x1c-\x1f. */
static inline int is_space(unsigned char c) {
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}
static inline unsigned char lower(unsigned char c) {
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}
static inline int word_at(const char *s, Py_ssize_t n, Py_ssize_t i) {
    return i >= 0 && i < n && is_word((unsigned char)s[i]);
}
/* \b at position i. */
static inline int boundary(const char *s, Py_ssize_t n, Py_ssize_t i) {
    return word_at(s, n, i - 1) != word_at(s, n, i);
}
/* Case-insensitive prefix test; `lit` is lowercase. */
static inline int starts_nocase(const char *s, Py_ssize_t n, Py_ssize_t i, const char *lit,
                                Py_ssize_t m) {
    if (i + m > n) return 0;
    for (Py_ssize_t k = 0; k < m; k++)
        if (lower((unsigned char)s[i + k]) != (unsigned char)lit[k]) return 0;
    return 1;
}
static inline int starts(const char *s, Py_ssize_t n, Py_ssize_t i, const char *lit,
                         Py_ssize_t m) {
    return i + m <= n && memcmp(s + i, lit, (size_t)m) == 0;
}

/* ---------------------------------------------------------------------------- Cleaner -- */

/* Tables are stored inline, so a cold call touches a few contiguous cache lines. */
#define MAX_TOKEN 23
#define MAX_KEY 7

typedef struct {
    char text[MAX_TOKEN + 1];
    Py_ssize_t len;
} Str;

typedef struct {
    char key[MAX_KEY + 1];
    uint8_t key_len;
    uint8_t token_len;
    char token[MAX_TOKEN - 1]; /* already " token " or "word not" */
} Pair;

typedef struct {
    PyObject_HEAD
    Str url_token;  /* " xxurl " */
    Str user_token; /* " xxuser " */
    Pair *emoticons; /* in matching order: longest first, as the regular expression tries */
    Py_ssize_t n_emoticons;
    unsigned char opens_emoticon[256];    /* lowercase first characters of the emoticons */
    unsigned char opens_contraction[256]; /* first characters of the heads and auxiliaries */
    Pair *heads; /* won -> "will not" */
    Py_ssize_t n_heads;
    Pair *auxiliaries; /* do -> "do not" */
    Py_ssize_t n_auxiliaries;
    int ready;
} Cleaner;

/* dst = pre + src + post, within `cap` bytes. */
static int put_fixed(char *dst, Py_ssize_t cap, Py_ssize_t *len, const char *src, Py_ssize_t n,
                     const char *pre, const char *post) {
    Py_ssize_t a = (Py_ssize_t)strlen(pre), b = (Py_ssize_t)strlen(post);
    if (a + n + b > cap) {
        PyErr_Format(PyExc_ValueError, "cleaner table entry of %zd characters is too long", n);
        return -1;
    }
    memcpy(dst, pre, (size_t)a);
    memcpy(dst + a, src, (size_t)n);
    memcpy(dst + a + n, post, (size_t)b);
    *len = a + n + b;
    return 0;
}

static int ascii_of(PyObject *obj, const char **text, Py_ssize_t *len) {
    if (!PyUnicode_Check(obj) || !PyUnicode_IS_ASCII(obj)) {
        PyErr_SetString(PyExc_ValueError, "cleaner tables must be ASCII strings");
        return -1;
    }
    *text = (const char *)PyUnicode_1BYTE_DATA(obj);
    *len = PyUnicode_GET_LENGTH(obj);
    return 0;
}

/* pairs: a sequence of (key, replacement) string pairs. */
static int load_pairs(PyObject *pairs, Pair **out, Py_ssize_t *count, const char *pre,
                      const char *post) {
    PyObject *seq = PySequence_Fast(pairs, "expected a sequence of (str, str) pairs");
    if (seq == NULL) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    *out = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Pair));
    if (*out == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    *count = n;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        const char *k, *v;
        Py_ssize_t kl, vl, key_len = 0, token_len = 0;
        Pair *pair = &(*out)[i];
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2 ||
            ascii_of(PyTuple_GET_ITEM(item, 0), &k, &kl) < 0 ||
            ascii_of(PyTuple_GET_ITEM(item, 1), &v, &vl) < 0 ||
            put_fixed(pair->key, MAX_KEY, &key_len, k, kl, "", "") < 0 ||
            put_fixed(pair->token, MAX_TOKEN - 1, &token_len, v, vl, pre, post) < 0) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "expected (str, str) pairs");
            Py_DECREF(seq);
            return -1;
        }
        if (key_len == 0) {
            PyErr_SetString(PyExc_ValueError, "empty cleaner table key");
            Py_DECREF(seq);
            return -1;
        }
        pair->key_len = (uint8_t)key_len;
        pair->token_len = (uint8_t)token_len;
    }
    Py_DECREF(seq);
    return 0;
}

static void Cleaner_dealloc(Cleaner *self) {
    PyMem_Free(self->emoticons);
    PyMem_Free(self->heads);
    PyMem_Free(self->auxiliaries);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Cleaner_init(Cleaner *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"url_token", "user_token", "emoticons", "heads", "auxiliaries",
                             NULL};
    PyObject *url, *user, *emoticons, *heads, *auxiliaries;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "UUOOO", kwlist, &url, &user, &emoticons,
                                     &heads, &auxiliaries))
        return -1;
    if (self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "Cleaner is already initialised");
        return -1;
    }
    const char *s;
    Py_ssize_t n;
    if (ascii_of(url, &s, &n) < 0 ||
        put_fixed(self->url_token.text, MAX_TOKEN, &self->url_token.len, s, n, " ", " ") < 0)
        return -1;
    if (ascii_of(user, &s, &n) < 0 ||
        put_fixed(self->user_token.text, MAX_TOKEN, &self->user_token.len, s, n, " ", " ") < 0)
        return -1;
    if (load_pairs(emoticons, &self->emoticons, &self->n_emoticons, " ", " ") < 0) return -1;
    for (Py_ssize_t k = 0; k < self->n_emoticons; k++)
        self->opens_emoticon[(unsigned char)self->emoticons[k].key[0]] = 1;
    if (load_pairs(heads, &self->heads, &self->n_heads, "", " not") < 0) return -1;
    if (load_pairs(auxiliaries, &self->auxiliaries, &self->n_auxiliaries, "", " not") < 0)
        return -1;
    for (Py_ssize_t k = 0; k < self->n_heads; k++)
        self->opens_contraction[(unsigned char)self->heads[k].key[0]] = 1;
    for (Py_ssize_t k = 0; k < self->n_auxiliaries; k++)
        self->opens_contraction[(unsigned char)self->auxiliaries[k].key[0]] = 1;
    self->ready = 1;
    return 0;
}

/* (?:https?://|www\.)\S+  (case-insensitive) -> url token */
static int step_urls(const Cleaner *c, const char *s, Py_ssize_t n, Buf *out) {
    for (Py_ssize_t i = 0; i < n;) {
        Py_ssize_t head = 0;
        unsigned char first = lower((unsigned char)s[i]);
        if (first != 'h' && first != 'w')
            head = 0;
        else if (starts_nocase(s, n, i, "https://", 8))
            head = 8;
        else if (starts_nocase(s, n, i, "http://", 7))
            head = 7;
        else if (starts_nocase(s, n, i, "www.", 4))
            head = 4;
        if (head && i + head < n && !is_space((unsigned char)s[i + head])) {
            Py_ssize_t j = i + head;
            while (j < n && !is_space((unsigned char)s[j])) j++;
            if (buf_put(out, c->url_token.text, c->url_token.len) < 0) return -1;
            i = j;
            continue;
        }
        if (buf_putc(out, s[i++]) < 0) return -1;
    }
    return 0;
}

/* @\w+ -> user token */
static int step_users(const Cleaner *c, const char *s, Py_ssize_t n, Buf *out) {
    for (Py_ssize_t i = 0; i < n;) {
        if (s[i] == '@' && word_at(s, n, i + 1)) {
            Py_ssize_t j = i + 1;
            while (j < n && is_word((unsigned char)s[j])) j++;
            if (buf_put(out, c->user_token.text, c->user_token.len) < 0) return -1;
            i = j;
            continue;
        }
        if (buf_putc(out, s[i++]) < 0) return -1;
    }
    return 0;
}

/* (?<![\w/])(?:emoticons, longest first)(?!\w)  (case-insensitive) -> emoticon token */
static int step_emoticons(const Cleaner *c, const char *s, Py_ssize_t n, Buf *out) {
    for (Py_ssize_t i = 0; i < n;) {
        int free_left = i == 0 || !(is_word((unsigned char)s[i - 1]) || s[i - 1] == '/');
        if (free_left && c->opens_emoticon[lower((unsigned char)s[i])]) {
            const Pair *hit = NULL;
            for (Py_ssize_t k = 0; k < c->n_emoticons; k++) {
                const Pair *e = &c->emoticons[k];
                if (starts_nocase(s, n, i, e->key, e->key_len) && !word_at(s, n, i + e->key_len)) {
                    hit = e;
                    break;
                }
            }
            if (hit != NULL) {
                if (buf_put(out, hit->token, hit->token_len) < 0) return -1;
                i += hit->key_len;
                continue;
            }
        }
        if (buf_putc(out, s[i++]) < 0) return -1;
    }
    return 0;
}

/* Lowercase, and ` as an apostrophe. */
static void step_lower(char *s, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char ch = lower((unsigned char)s[i]);
        s[i] = ch == '`' ? '\'' : (char)ch;
    }
}

/* \b(heads)'?t\b | (?<=\w)n't\b | \b(auxiliaries)nt\b, tried in that order at each position. */
static int step_contractions(const Cleaner *c, const char *s, Py_ssize_t n, Buf *out) {
    for (Py_ssize_t i = 0; i < n;) {
        const Pair *hit = NULL;
        Py_ssize_t end = 0;
        int opens = c->opens_contraction[(unsigned char)s[i]] && boundary(s, n, i);
        if (opens) {
            for (Py_ssize_t k = 0; k < c->n_heads && hit == NULL; k++) {
                const Pair *h = &c->heads[k];
                if (!starts(s, n, i, h->key, h->key_len)) continue;
                Py_ssize_t j = i + h->key_len;
                if (starts(s, n, j, "'t", 2) && boundary(s, n, j + 2))
                    hit = h, end = j + 2;
                else if (starts(s, n, j, "t", 1) && boundary(s, n, j + 1))
                    hit = h, end = j + 1;
            }
        }
        if (hit == NULL && word_at(s, n, i - 1) && starts(s, n, i, "n't", 3) &&
            boundary(s, n, i + 3)) {
            if (buf_put(out, " not", 4) < 0) return -1;
            i += 3;
            continue;
        }
        if (hit == NULL && opens) {
            for (Py_ssize_t k = 0; k < c->n_auxiliaries && hit == NULL; k++) {
                const Pair *a = &c->auxiliaries[k];
                Py_ssize_t j = i + a->key_len;
                if (starts(s, n, i, a->key, a->key_len) && starts(s, n, j, "nt", 2) &&
                    boundary(s, n, j + 2))
                    hit = a, end = j + 2;
            }
        }
        if (hit != NULL) {
            if (buf_put(out, hit->token, hit->token_len) < 0) return -1;
            i = end;
            continue;
        }
        if (buf_putc(out, s[i++]) < 0) return -1;
    }
    return 0;
}

/* (\w)\1{2,} -> \1\1, then the tokens [^\W_]+(?:'[^\W_]+)* joined by single spaces. */
static int step_tokens(const char *s, Py_ssize_t n, Buf *tmp, Buf *out) {
    tmp->len = 0;
    for (Py_ssize_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)s[i];
        if (is_word(ch) && i + 2 < n && s[i + 1] == (char)ch && s[i + 2] == (char)ch) {
            Py_ssize_t j = i + 3;
            while (j < n && s[j] == (char)ch) j++;
            if (buf_putc(tmp, (char)ch) < 0 || buf_putc(tmp, (char)ch) < 0) return -1;
            i = j;
            continue;
        }
        if (buf_putc(tmp, (char)ch) < 0) return -1;
        i++;
    }
    const char *t = tmp->data;
    Py_ssize_t m = tmp->len;
    for (Py_ssize_t i = 0; i < m;) {
        if (!is_alnum((unsigned char)t[i])) {
            i++;
            continue;
        }
        Py_ssize_t j = i;
        while (j < m && is_alnum((unsigned char)t[j])) j++;
        while (j + 1 < m && t[j] == '\'' && is_alnum((unsigned char)t[j + 1])) {
            j++;
            while (j < m && is_alnum((unsigned char)t[j])) j++;
        }
        if (out->len > 0 && buf_putc(out, ' ') < 0) return -1;
        if (buf_put(out, t + i, j - i) < 0) return -1;
        i = j;
    }
    return 0;
}

/* Scratch buffers of one cleaning, reusable across tweets. */
typedef struct {
    Buf a, b, out;
} CleanBufs;

static void clean_bufs_free(CleanBufs *w) {
    buf_free(&w->a);
    buf_free(&w->b);
    buf_free(&w->out);
}

/* Whether the compiled path handles this text: a str of ASCII without '&'. */
static int handles(PyObject *text, const char **s, Py_ssize_t *n) {
    if (!PyUnicode_IS_ASCII(text)) return 0;
    *s = (const char *)PyUnicode_1BYTE_DATA(text);
    *n = PyUnicode_GET_LENGTH(text);
    return memchr(*s, '&', (size_t)*n) == NULL;
}

/* The cleaned tweet in w->out; -1 when out of memory. Needs no GIL. */
static int clean_core(const Cleaner *c, const char *s, Py_ssize_t n, CleanBufs *w) {
    w->a.len = w->b.len = w->out.len = 0;
    if (step_urls(c, s, n, &w->a) < 0 || step_users(c, w->a.data, w->a.len, &w->b) < 0)
        return -1;
    w->a.len = 0;
    if (step_emoticons(c, w->b.data, w->b.len, &w->a) < 0) return -1;
    step_lower(w->a.data, w->a.len);
    w->b.len = 0;
    if (step_contractions(c, w->a.data, w->a.len, &w->b) < 0) return -1;
    return step_tokens(w->b.data, w->b.len, &w->a, &w->out);
}

static PyObject *Cleaner_clean(Cleaner *self, PyObject *arg) {
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "clean() takes a str");
        return NULL;
    }
    const char *s;
    Py_ssize_t n;
    if (!handles(arg, &s, &n)) Py_RETURN_NONE;
    CleanBufs w = {0};
    PyObject *result = clean_core(self, s, n, &w) < 0
                           ? PyErr_NoMemory()
                           : PyUnicode_DecodeASCII(w.out.data ? w.out.data : "", w.out.len,
                                                   "strict");
    clean_bufs_free(&w);
    return result;
}

static PyMethodDef Cleaner_methods[] = {
    {"clean", (PyCFunction)Cleaner_clean, METH_O,
     "The cleaned tweet, or None when the text is not ASCII or holds '&'."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CleanerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "airparadis._fastpath.Cleaner",
    .tp_basicsize = sizeof(Cleaner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The ASCII case of clean_tweet, with tables given by airparadis.text.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Cleaner_init,
    .tp_dealloc = (destructor)Cleaner_dealloc,
    .tp_methods = Cleaner_methods,
};

/* ------------------------------------------------------------------------- LinearTable -- */

typedef struct {
    uint32_t tag;    /* high hash bits, never 0; 0 means empty */
    int32_t index;   /* term index */
    uint32_t offset; /* the term's bytes: arena[offset:offset + len] */
    uint32_t len;
} Slot;

typedef struct {
    double weighted; /* coef * idf */
    double idf;
} Weights;

/* Open addressing with linear probing over 16-byte slots (four to a cache line). A tweet's
 * n-grams are looked up together, in passes that prefetch the next level of the table for
 * every n-gram before touching any: slots, then term bytes and weights. */
typedef struct {
    PyObject_HEAD
    Slot *slots;
    uint64_t mask;
    char *arena; /* UTF-8 bytes of every term */
    Weights *weights;
    Py_ssize_t n_terms;
    double intercept;
    int min_n, max_n, sublinear;
} LinearTable;

static inline uint64_t hash_bytes(const char *s, Py_ssize_t n) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (Py_ssize_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 33; /* spread the low bits used by the mask */
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static inline uint32_t tag_of(uint64_t h) { return (uint32_t)(h >> 32) | 1u; }

static inline int slot_holds(const LinearTable *t, const Slot *slot, const char *s,
                             Py_ssize_t n) {
    return slot->len == (uint32_t)n && memcmp(t->arena + slot->offset, s, (size_t)n) == 0;
}

/* The term's index, or -1; starts probing at `from` (a slot index). */
static Py_ssize_t table_find_from(const LinearTable *t, const char *s, Py_ssize_t n,
                                  uint32_t tag, uint64_t from) {
    for (uint64_t i = from;; i = (i + 1) & t->mask) {
        const Slot *slot = &t->slots[i];
        if (slot->tag == 0) return -1;
        if (slot->tag == tag && slot_holds(t, slot, s, n)) return slot->index;
    }
}

static Py_ssize_t table_find(const LinearTable *t, const char *s, Py_ssize_t n) {
    uint64_t h = hash_bytes(s, n);
    return table_find_from(t, s, n, tag_of(h), h & t->mask);
}

static void LinearTable_dealloc(LinearTable *self) {
    free(self->slots);
    free(self->arena);
    free(self->weights);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Copies a float64 array of n values into weights[i].<field at byte offset `field`>. */
static int read_doubles(PyObject *obj, Py_ssize_t n, Weights *weights, size_t field,
                        const char *name) {
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    int ok = view.itemsize == sizeof(double) && view.format != NULL &&
             strcmp(view.format, "d") == 0 && view.len == n * (Py_ssize_t)sizeof(double);
    if (!ok) {
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_ValueError, "%s must be a contiguous float64 array of %zd values",
                     name, n);
        return -1;
    }
    const double *values = view.buf;
    for (Py_ssize_t i = 0; i < n; i++)
        memcpy((char *)&weights[i] + field, &values[i], sizeof(double));
    PyBuffer_Release(&view);
    return 0;
}

static int LinearTable_init(LinearTable *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"terms", "weighted", "idf", "intercept", "min_n", "max_n",
                             "sublinear_tf", NULL};
    PyObject *terms, *weighted, *idf;
    double intercept;
    int min_n, max_n, sublinear;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOdiip", kwlist, &terms, &weighted, &idf,
                                     &intercept, &min_n, &max_n, &sublinear))
        return -1;
    if (self->slots != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "LinearTable is already initialised");
        return -1;
    }
    if (min_n < 1 || max_n < min_n) {
        PyErr_SetString(PyExc_ValueError, "need 1 <= min_n <= max_n");
        return -1;
    }
    PyObject *seq = PySequence_Fast(terms, "terms must be a sequence of str");
    if (seq == NULL) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    self->n_terms = n;
    self->intercept = intercept;
    self->min_n = min_n;
    self->max_n = max_n;
    self->sublinear = sublinear;
    uint64_t cap = 16;
    while (cap * 3 < (uint64_t)n * 4) cap *= 2; /* load factor between 3/8 and 3/4 */
    self->mask = cap - 1;
    Py_ssize_t bytes = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *term = PySequence_Fast_GET_ITEM(seq, i);
        Py_ssize_t len;
        if (!PyUnicode_Check(term) || PyUnicode_AsUTF8AndSize(term, &len) == NULL) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "terms must be str");
            goto fail;
        }
        bytes += len;
    }
    if (n >= INT32_MAX || bytes >= UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "vocabulary too large");
        goto fail;
    }
    self->slots = table_calloc((size_t)cap * sizeof(Slot));
    self->weights = table_calloc((size_t)(n ? n : 1) * sizeof(Weights));
    self->arena = table_calloc((size_t)(bytes ? bytes : 1));
    if (!self->slots || !self->weights || !self->arena) {
        PyErr_NoMemory();
        goto fail;
    }
    uint32_t offset = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *term = PySequence_Fast_GET_ITEM(seq, i);
        Py_ssize_t len;
        const char *s = PyUnicode_AsUTF8AndSize(term, &len);
        if (s == NULL) goto fail;
        if (table_find(self, s, len) >= 0) {
            PyErr_Format(PyExc_ValueError, "duplicate term %R", term);
            goto fail;
        }
        memcpy(self->arena + offset, s, (size_t)len);
        uint64_t h = hash_bytes(s, len), slot = h & self->mask;
        while (self->slots[slot].tag != 0) slot = (slot + 1) & self->mask;
        self->slots[slot] = (Slot){tag_of(h), (int32_t)i, offset, (uint32_t)len};
        offset += (uint32_t)len;
    }
    Py_DECREF(seq);
    if (read_doubles(weighted, n, self->weights, offsetof(Weights, weighted), "weighted") < 0)
        return -1;
    if (read_doubles(idf, n, self->weights, offsetof(Weights, idf), "idf") < 0) return -1;
    return 0;
fail:
    Py_DECREF(seq); /* the tables are freed with the object */
    return -1;
}

static PyObject *LinearTable_lookup(LinearTable *self, PyObject *arg) {
    Py_ssize_t len;
    const char *s = PyUnicode_Check(arg) ? PyUnicode_AsUTF8AndSize(arg, &len) : NULL;
    if (s == NULL) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "lookup() takes a str");
        return NULL;
    }
    return PyLong_FromSsize_t(table_find(self, s, len));
}

typedef struct {
    Py_ssize_t start, len; /* in the normalised text */
    uint64_t hash;
    Py_ssize_t index; /* term index, or -1 */
} Gram;

/* P(positive) of a cleaned tweet (UTF-8, tokens separated by whitespace) in *p; -1 when out
 * of memory. Needs no GIL. */
static int score_core(const LinearTable *self, const char *s, Py_ssize_t n, double *p) {
    int status = -1;
    Buf text = {0};           /* tokens joined by single spaces: every n-gram is a substring */
    Buf starts = {0}, ends = {0}; /* token spans in `text`, as Py_ssize_t */
    Gram stack_grams[256];
    int32_t stack_hits[256], stack_counts[256], stack_set[512];
    Gram *grams = stack_grams;
    int32_t *hits = stack_hits, *counts = stack_counts, *set = stack_set;

    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < n;) {
        if (is_space((unsigned char)s[i])) {
            i++;
            continue;
        }
        Py_ssize_t j = i;
        while (j < n && !is_space((unsigned char)s[j])) j++;
        Py_ssize_t first = text.len + (count ? 1 : 0), last = first + (j - i);
        if ((count && buf_putc(&text, ' ') < 0) || buf_put(&text, s + i, j - i) < 0 ||
            buf_put(&starts, (const char *)&first, sizeof first) < 0 ||
            buf_put(&ends, (const char *)&last, sizeof last) < 0)
            goto done;
        count++;
        i = j;
    }
    const Py_ssize_t *start = (const Py_ssize_t *)starts.data, *end = (const Py_ssize_t *)ends.data;

    Py_ssize_t n_grams = 0;
    for (int g = self->min_n; g <= self->max_n; g++) n_grams += count >= g ? count - g + 1 : 0;
    Py_ssize_t set_cap = 16;
    while (set_cap < n_grams * 2) set_cap *= 2;
    if (n_grams > 256) {
        grams = PyMem_RawMalloc((size_t)n_grams * sizeof(Gram));
        hits = PyMem_RawMalloc((size_t)n_grams * sizeof(int32_t));
        counts = PyMem_RawMalloc((size_t)n_grams * sizeof(int32_t));
        set = PyMem_RawMalloc((size_t)set_cap * sizeof(int32_t));
        if (!grams || !hits || !counts || !set) goto done;
    }

    /* Pass 1: hash every n-gram (in the pipeline's order: by n, then by position) and
       prefetch its first slot. */
    Py_ssize_t k = 0;
    for (int g = self->min_n; g <= self->max_n; g++) {
        for (Py_ssize_t t = 0; t + g <= count; t++, k++) {
            Gram *gram = &grams[k];
            gram->start = start[t];
            gram->len = end[t + g - 1] - start[t];
            gram->hash = hash_bytes(text.data + gram->start, gram->len);
            __builtin_prefetch(&self->slots[gram->hash & self->mask]);
        }
    }
    /* Pass 2: find the first slot with the n-gram's tag; prefetch its bytes and weights. */
    for (k = 0; k < n_grams; k++) {
        Gram *gram = &grams[k];
        uint32_t tag = tag_of(gram->hash);
        gram->index = -1;
        for (uint64_t i = gram->hash & self->mask;; i = (i + 1) & self->mask) {
            const Slot *slot = &self->slots[i];
            if (slot->tag == 0) break;
            if (slot->tag == tag) {
                gram->index = (Py_ssize_t)i; /* a slot, checked in pass 3 */
                __builtin_prefetch(self->arena + slot->offset);
                __builtin_prefetch(&self->weights[slot->index]);
                break;
            }
        }
    }
    /* Pass 3: confirm each candidate byte for byte (a tag is 32 bits), then count distinct
       hits in first-occurrence order, the order the sums below follow. `set` maps a slot
       to a position in `hits`, -1 when empty. */
    memset(set, 0xff, (size_t)set_cap * sizeof(int32_t));
    Py_ssize_t n_hits = 0;
    for (k = 0; k < n_grams; k++) {
        Gram *gram = &grams[k];
        if (gram->index < 0) continue;
        const char *bytes = text.data + gram->start;
        const Slot *slot = &self->slots[gram->index];
        Py_ssize_t idx = slot_holds(self, slot, bytes, gram->len)
                             ? slot->index
                             : table_find_from(self, bytes, gram->len, slot->tag,
                                               ((uint64_t)gram->index + 1) & self->mask);
        if (idx < 0) continue;
        Py_ssize_t at = (Py_ssize_t)(((uint32_t)idx * 2654435761u) & (set_cap - 1));
        while (set[at] >= 0 && hits[set[at]] != idx) at = (at + 1) & (set_cap - 1);
        if (set[at] >= 0) {
            counts[set[at]]++;
        } else {
            set[at] = (int32_t)n_hits;
            hits[n_hits] = (int32_t)idx;
            counts[n_hits] = 1;
            n_hits++;
        }
    }
    double dot = 0.0, norm = 0.0;
    for (Py_ssize_t h = 0; h < n_hits; h++) {
        const Weights *w = &self->weights[hits[h]];
        if (counts[h] == 1) {
            dot += w->weighted;
            norm += w->idf * w->idf;
        } else {
            double tf = self->sublinear ? 1.0 + log((double)counts[h]) : (double)counts[h];
            double x = w->idf * tf;
            dot += w->weighted * tf;
            norm += x * x;
        }
    }
    double z = self->intercept + (norm > 0.0 ? dot / sqrt(norm) : 0.0);
    *p = z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
    status = 0;
done:
    if (grams != stack_grams) {
        PyMem_RawFree(grams);
        PyMem_RawFree(hits);
        PyMem_RawFree(counts);
        PyMem_RawFree(set);
    }
    buf_free(&text);
    buf_free(&starts);
    buf_free(&ends);
    return status;
}

static PyObject *LinearTable_score(LinearTable *self, PyObject *arg) {
    Py_ssize_t n;
    const char *s = PyUnicode_Check(arg) ? PyUnicode_AsUTF8AndSize(arg, &n) : NULL;
    if (s == NULL) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "score() takes a str");
        return NULL;
    }
    double p;
    if (score_core(self, s, n, &p) < 0) return PyErr_NoMemory();
    return PyFloat_FromDouble(p);
}

/* P(positive) of many raw tweets: cleaned and scored without the GIL, so a batch in the
 * model thread leaves the event loop free. Returns float64 bytes; NaN marks a text the
 * compiled cleaner does not handle (see Cleaner.clean), for the caller to clean in Python. */
static PyObject *LinearTable_score_texts(LinearTable *self, PyObject *args) {
    PyObject *cleaner, *texts;
    if (!PyArg_ParseTuple(args, "O!O:score_texts", &CleanerType, &cleaner, &texts)) return NULL;
    PyObject *items = PySequence_Tuple(texts); /* holds every str while the GIL is released */
    if (items == NULL) return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(items);
    const char **data = PyMem_Calloc((size_t)(n ? n : 1), sizeof(char *));
    Py_ssize_t *lens = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Py_ssize_t));
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(double));
    if (data == NULL || lens == NULL || out == NULL) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *text = PyTuple_GET_ITEM(items, i);
        if (!PyUnicode_Check(text)) {
            PyErr_Format(PyExc_TypeError, "text %zd is not a str", i);
            goto fail;
        }
        if (!handles(text, &data[i], &lens[i])) data[i] = NULL;
    }
    double *proba = (double *)PyBytes_AS_STRING(out);
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    CleanBufs w = {0};
    for (Py_ssize_t i = 0; i < n && !failed; i++) {
        if (data[i] == NULL)
            proba[i] = NAN;
        else
            failed = clean_core((const Cleaner *)cleaner, data[i], lens[i], &w) < 0 ||
                     score_core(self, w.out.data ? w.out.data : "", w.out.len, &proba[i]) < 0;
    }
    clean_bufs_free(&w);
    Py_END_ALLOW_THREADS
    if (failed) {
        PyErr_NoMemory();
        goto fail;
    }
    PyMem_Free(data);
    PyMem_Free(lens);
    Py_DECREF(items);
    return out;
fail:
    PyMem_Free(data);
    PyMem_Free(lens);
    Py_XDECREF(out);
    Py_DECREF(items);
    return NULL;
}



static PyObject *LinearTable_len(LinearTable *self, PyObject *Py_UNUSED(ignored)) {
    return PyLong_FromSsize_t(self->n_terms);
}

static PyMethodDef LinearTable_methods[] = {
    {"score", (PyCFunction)LinearTable_score, METH_O, "P(positive) of a cleaned tweet."},
    {"score_texts", (PyCFunction)LinearTable_score_texts, METH_VARARGS,
     "score_texts(cleaner, texts): float64 bytes of P(positive) per raw tweet, NaN where the "
     "compiled cleaner does not apply."},
    {"lookup", (PyCFunction)LinearTable_lookup, METH_O, "The term's index, or -1."},
    {"size", (PyCFunction)LinearTable_len, METH_NOARGS, "Number of terms."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject LinearTableType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "airparadis._fastpath.LinearTable",
    .tp_basicsize = sizeof(LinearTable),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "TF-IDF n-gram vocabulary and logistic-regression weights, scored in C.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)LinearTable_init,
    .tp_dealloc = (destructor)LinearTable_dealloc,
    .tp_methods = LinearTable_methods,
};

/* ----------------------------------------------------------------------------- module -- */

static struct PyModuleDef fastpath_module = {
    PyModuleDef_HEAD_INIT, "airparadis._fastpath",
    "Compiled cleaner and TF-IDF + logistic-regression scorer for single-tweet serving.", -1,
    NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastpath(void) {
    if (PyType_Ready(&CleanerType) < 0 || PyType_Ready(&LinearTableType) < 0) return NULL;
    PyObject *m = PyModule_Create(&fastpath_module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Cleaner", (PyObject *)&CleanerType) < 0 ||
        PyModule_AddObjectRef(m, "LinearTable", (PyObject *)&LinearTableType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
