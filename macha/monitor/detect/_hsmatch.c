/* Per-line pattern sets for a batch of log lines, with Hyperscan, without a Python call per match.
 *
 * The Python matcher (macha/monitor/detect/matcher.py) works without this module; it only makes batches fast. When
 * half the lines of a batch match (an SSH brute force, say), a Python callback per match costs more than all
 * the regex work, so the whole batch is scanned here and each line comes back as one shared tuple of the
 * patterns it matched (one tuple per distinct set: a line costs a reference, not an allocation).
 *
 * How: the lines are joined by newlines and scanned in one pass (newline-anchored). A match flags the line it
 * ends in. For a pattern that cannot consume a newline (the caller works that out from the regex), every match
 * lies inside one line, so the flag is the answer. A line flagged by a pattern that can (a match may have come
 * from the line before) is scanned again alone.
 *
 * Exactness: a line is scanned here only when Hyperscan and RE2 agree on it by construction: pure ASCII (no
 * Unicode case folding, no multi-byte '.'), no vertical tab ('\s' has it in PCRE, not in RE2) and no newline
 * of its own (the batch's '^' and '$' are those of lines; PCRE's '$' also matches before a final newline, RE2's
 * does not). Any other line, and any line flagged by a pattern that Hyperscan could only compile as a
 * prefilter, is handed back by index for the exact matcher.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <hs/hs.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS 256
#define MAX_SETS 4096

enum { LINE_NONE = 0, LINE_HIT = 1, LINE_EXACT = 2 };

typedef struct {
    PyObject_HEAD
    hs_database_t *db;       /* one line at a time, each pattern reported once */
    hs_database_t *batch_db; /* the joined batch; NULL when a pattern can match the empty string */
    hs_scratch_t *scratch;   /* big enough for both */
    Py_ssize_t count;        /* patterns */
    Py_ssize_t words;        /* 64-bit words in a pattern mask */
    uint64_t *prefilter;     /* patterns compiled as prefilters only: the exact matcher decides */
    uint64_t *crossing;      /* patterns that can consume a newline: a flag from them means "scan alone" */
    uint64_t *mask;          /* one line's mask, for the single-line scan */
    uint64_t *masks;         /* per line of the batch */
    unsigned char *state;    /* per line: LINE_* */
    size_t *starts;          /* where each line starts in buf */
    Py_ssize_t lines_cap;
    char *buf;
    size_t buf_cap;
    PyObject *values;        /* tuple: what stands for each pattern in a result */
    PyObject *sets;          /* dict: mask bytes -> tuple of values */
    PyObject *empty;         /* the result for a line without a match */
    /* A direct-mapped cache in front of the dict, for masks of any number of words: a line costs a hash and a
     * compare, not a bytes object and a dict lookup (with more than 64 patterns that lookup was most of it). */
    uint64_t *cache_keys;             /* CACHE_SLOTS masks of ``words`` words */
    PyObject *cache_val[CACHE_SLOTS]; /* borrowed from ``sets`` */
} Scanner;

static PyObject *HsError;

static inline void set_bit(uint64_t *mask, unsigned int id) { mask[id >> 6] |= (uint64_t)1 << (id & 63); }

static int on_line_match(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags,
                         void *ctx) {
    (void)from; (void)to; (void)flags;
    set_bit((uint64_t *)ctx, id);
    return 0;
}

typedef struct {
    Scanner *self;
    Py_ssize_t n, cur;
} BatchCtx;

static int on_batch_match(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags,
                          void *ctx) {
    (void)from; (void)flags;
    BatchCtx *c = (BatchCtx *)ctx;
    const size_t *starts = c->self->starts;
    size_t at = to ? (size_t)to - 1 : 0; /* the last byte of the match */
    Py_ssize_t i = c->cur;
    if (starts[i] > at) { /* matches arrive mostly in end order; otherwise search back */
        Py_ssize_t lo = 0, hi = i;
        while (lo < hi) {
            Py_ssize_t mid = (lo + hi + 1) / 2;
            if (starts[mid] <= at) lo = mid; else hi = mid - 1;
        }
        i = lo;
    } else {
        while (i + 1 < c->n && starts[i + 1] <= at) i++;
    }
    c->cur = i;
    set_bit(c->self->masks + i * c->self->words, id);
    return 0;
}

static void Scanner_dealloc(Scanner *self) {
    if (self->scratch) hs_free_scratch(self->scratch);
    if (self->db) hs_free_database(self->db);
    if (self->batch_db) hs_free_database(self->batch_db);
    PyMem_Free(self->prefilter);
    PyMem_Free(self->crossing);
    PyMem_Free(self->cache_keys);
    PyMem_Free(self->mask);
    PyMem_Free(self->masks);
    PyMem_Free(self->state);
    PyMem_Free(self->starts);
    PyMem_Free(self->buf);
    Py_XDECREF(self->values);
    Py_XDECREF(self->sets);
    Py_XDECREF(self->empty);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int compile(const char **src, unsigned int *fl, unsigned int *ids, Py_ssize_t n, hs_database_t **db,
                   hs_scratch_t **scratch) {
    hs_compile_error_t *err = NULL;
    if (hs_compile_multi(src, fl, ids, (unsigned int)n, HS_MODE_BLOCK, NULL, db, &err) != HS_SUCCESS) {
        PyErr_Format(HsError, "pattern %d: %s", err ? err->expression : -1, err ? err->message : "?");
        hs_free_compile_error(err);
        *db = NULL;
        return -1;
    }
    if (hs_alloc_scratch(*db, scratch) != HS_SUCCESS) {
        PyErr_SetString(HsError, "cannot allocate Hyperscan scratch space");
        return -1;
    }
    return 0;
}

/* Scanner(expressions: list[bytes], flags: list[int], crossing: list[bool], values: sequence, empty: object)
 * ``flags`` are Hyperscan's (FLAG_PREFILTER where the exact form does not compile); ``crossing[i]`` says
 * whether pattern i can consume a newline. */
static int Scanner_init(Scanner *self, PyObject *args, PyObject *kwds) {
    PyObject *exprs, *flags, *crossing, *values, *empty;
    static char *kwlist[] = {"expressions", "flags", "crossing", "values", "empty", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!OO", kwlist, &PyList_Type, &exprs, &PyList_Type, &flags,
                                     &PyList_Type, &crossing, &values, &empty))
        return -1;
    if (self->values) {
        PyErr_SetString(PyExc_RuntimeError, "a Scanner is initialised once");
        return -1;
    }
    Py_ssize_t n = PyList_GET_SIZE(exprs);
    if (n == 0 || PyList_GET_SIZE(flags) != n || PyList_GET_SIZE(crossing) != n) {
        PyErr_SetString(PyExc_ValueError, "need one flag and one crossing per expression, and an expression");
        return -1;
    }
    PyObject *vals = PySequence_Tuple(values);
    if (!vals) return -1;
    if (PyTuple_GET_SIZE(vals) != n) {
        Py_DECREF(vals);
        PyErr_SetString(PyExc_ValueError, "need one value per expression");
        return -1;
    }
    self->values = vals;
    self->sets = PyDict_New();
    Py_INCREF(empty);
    self->empty = empty;
    self->count = n;
    self->words = (n + 63) / 64;
    self->prefilter = PyMem_Calloc(self->words, sizeof(uint64_t));
    self->crossing = PyMem_Calloc(self->words, sizeof(uint64_t));
    self->mask = PyMem_Calloc(self->words, sizeof(uint64_t));
    self->cache_keys = PyMem_Calloc((size_t)CACHE_SLOTS * self->words, sizeof(uint64_t));
    const char **src = PyMem_Calloc(n, sizeof(char *));
    unsigned int *fl = PyMem_Calloc(n, sizeof(unsigned int));
    unsigned int *ids = PyMem_Calloc(n, sizeof(unsigned int));
    int ok = self->sets && self->prefilter && self->crossing && self->mask && self->cache_keys && src && fl && ids;
    if (!ok) PyErr_NoMemory();
    int may_be_empty = 0;
    for (Py_ssize_t i = 0; ok && i < n; i++) {
        PyObject *e = PyList_GET_ITEM(exprs, i);
        if (!PyBytes_Check(e)) {
            PyErr_SetString(PyExc_TypeError, "expressions must be bytes");
            ok = 0;
            break;
        }
        src[i] = PyBytes_AS_STRING(e);
        unsigned long f = PyLong_AsUnsignedLong(PyList_GET_ITEM(flags, i));
        int cross = PyObject_IsTrue(PyList_GET_ITEM(crossing, i));
        if ((f == (unsigned long)-1 && PyErr_Occurred()) || cross < 0) { ok = 0; break; }
        fl[i] = (unsigned int)f | HS_FLAG_SINGLEMATCH;
        ids[i] = (unsigned int)i;
        if (f & HS_FLAG_PREFILTER) set_bit(self->prefilter, (unsigned int)i);
        if (cross) set_bit(self->crossing, (unsigned int)i);
        hs_expr_info_t *info = NULL;
        hs_compile_error_t *err = NULL;
        if (hs_expression_info(src[i], fl[i], &info, &err) != HS_SUCCESS) {
            hs_free_compile_error(err); /* the compile below names the problem */
        } else {
            may_be_empty |= info->min_width == 0;
            free(info);
        }
    }
    if (ok) ok = compile(src, fl, ids, n, &self->db, &self->scratch) == 0;
    /* A pattern that can match the empty string would flag every line of the batch: scan each line instead. */
    if (ok && !may_be_empty) {
        for (Py_ssize_t i = 0; i < n; i++) fl[i] = (fl[i] & ~HS_FLAG_SINGLEMATCH) | HS_FLAG_MULTILINE;
        ok = compile(src, fl, ids, n, &self->batch_db, &self->scratch) == 0;
    }
    PyMem_Free(src);
    PyMem_Free(fl);
    PyMem_Free(ids);
    return ok ? 0 : -1;
}

static inline size_t cache_slot(const uint64_t *mask, Py_ssize_t words) {
    uint64_t h = 0;
    for (Py_ssize_t w = 0; w < words; w++) h = (h ^ mask[w]) * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h >> 56) % CACHE_SLOTS;
}

/* The shared tuple of values for ``mask`` (borrowed). */
static PyObject *set_for_mask(Scanner *self, const uint64_t *mask) {
    size_t bytes = (size_t)self->words * sizeof(uint64_t);
    size_t slot = cache_slot(mask, self->words);
    uint64_t *cached = self->cache_keys + slot * (size_t)self->words;
    if (self->cache_val[slot] && memcmp(cached, mask, bytes) == 0) return self->cache_val[slot];
    PyObject *key = PyBytes_FromStringAndSize((const char *)mask, self->words * sizeof(uint64_t));
    if (!key) return NULL;
    PyObject *found = PyDict_GetItemWithError(self->sets, key);
    if (!found && !PyErr_Occurred()) {
        /* A bound on memory should the sets be many; results already handed out keep their tuples alive. */
        if (PyDict_GET_SIZE(self->sets) >= MAX_SETS) {
            PyDict_Clear(self->sets);
            memset(self->cache_val, 0, sizeof(self->cache_val));
        }
        Py_ssize_t k = 0;
        for (Py_ssize_t w = 0; w < self->words; w++) k += __builtin_popcountll(mask[w]);
        PyObject *tuple = PyTuple_New(k);
        if (tuple) {
            Py_ssize_t j = 0;
            for (Py_ssize_t i = 0; i < self->count; i++) {
                if (mask[i >> 6] & ((uint64_t)1 << (i & 63))) {
                    PyObject *v = PyTuple_GET_ITEM(self->values, i);
                    Py_INCREF(v);
                    PyTuple_SET_ITEM(tuple, j++, v);
                }
            }
            if (PyDict_SetItem(self->sets, key, tuple) == 0) found = tuple; /* the dict holds it */
            Py_DECREF(tuple);
        }
    }
    Py_DECREF(key);
    if (found) {
        memcpy(cached, mask, bytes);
        self->cache_val[slot] = found;
    }
    return found;
}

/* Whether Hyperscan's answer for this line is RE2's (see the top of this file). */
static int plain_line(PyObject *line, Py_ssize_t len) {
    if (!PyUnicode_IS_ASCII(line)) return 0;
    const char *data = (const char *)PyUnicode_1BYTE_DATA(line);
    return !memchr(data, '\n', (size_t)len) && !memchr(data, '\v', (size_t)len);
}

static int reserve(Scanner *self, Py_ssize_t n, size_t bytes) {
    if (n > self->lines_cap) {
        size_t *starts = PyMem_Realloc(self->starts, (size_t)n * sizeof(size_t));
        if (starts) self->starts = starts;
        unsigned char *state = PyMem_Realloc(self->state, (size_t)n);
        if (state) self->state = state;
        uint64_t *masks = PyMem_Realloc(self->masks, (size_t)n * self->words * sizeof(uint64_t));
        if (masks) self->masks = masks;
        if (!starts || !state || !masks) return -1;
        self->lines_cap = n;
    }
    if (bytes > self->buf_cap) {
        char *buf = PyMem_Realloc(self->buf, bytes);
        if (!buf) return -1;
        self->buf = buf;
        self->buf_cap = bytes;
    }
    return 0;
}

/* Fills state[] and masks[] for the batch. */
static int batch_pass(Scanner *self, PyObject *lines, Py_ssize_t n) {
    size_t total = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *line = PyList_GET_ITEM(lines, i);
        if (!PyUnicode_Check(line)) {
            PyErr_SetString(PyExc_TypeError, "lines must be a list of str");
            return -1;
        }
        total += (size_t)PyUnicode_GET_LENGTH(line) + 1;
    }
    if (total > UINT_MAX) {
        PyErr_SetString(PyExc_ValueError, "batch too large for one scan (4 GiB)");
        return -1;
    }
    if (reserve(self, n, total) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    memset(self->masks, 0, (size_t)n * self->words * sizeof(uint64_t));
    size_t at = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *line = PyList_GET_ITEM(lines, i);
        Py_ssize_t len = PyUnicode_GET_LENGTH(line);
        self->starts[i] = at;
        if (plain_line(line, len)) {
            self->state[i] = self->batch_db ? LINE_NONE : LINE_HIT;
            memcpy(self->buf + at, PyUnicode_1BYTE_DATA(line), (size_t)len);
            at += (size_t)len;
        } else {
            self->state[i] = LINE_EXACT; /* an empty line in the buffer */
        }
        self->buf[at++] = '\n';
    }
    if (!self->batch_db || n == 0) return 0;
    BatchCtx ctx = {self, n, 0};
    if (hs_scan(self->batch_db, self->buf, (unsigned int)at, 0, self->scratch, on_batch_match, &ctx)
            != HS_SUCCESS) {
        PyErr_SetString(HsError, "Hyperscan scan failed");
        return -1;
    }
    return 0;
}

/* The result for plain line i: its tuple, ``empty``, or NULL with *exact set (a prefilter matched). */
static PyObject *line_result(Scanner *self, PyObject *line, Py_ssize_t i, int *exact) {
    uint64_t *mask = self->masks + i * self->words;
    int alone = self->state[i] != LINE_NONE; /* no batch pass: scan the line alone */
    if (!alone) {
        uint64_t any = 0, cross = 0;
        for (Py_ssize_t w = 0; w < self->words; w++) {
            any |= mask[w];
            cross |= mask[w] & self->crossing[w];
        }
        if (!any) return self->empty;
        alone = cross != 0; /* a match may have begun on an earlier line: look at this one alone */
    }
    if (alone) {
        memset(mask, 0, self->words * sizeof(uint64_t));
        if (hs_scan(self->db, (const char *)PyUnicode_1BYTE_DATA(line), (unsigned int)PyUnicode_GET_LENGTH(line),
                    0, self->scratch, on_line_match, mask) != HS_SUCCESS) {
            PyErr_SetString(HsError, "Hyperscan scan failed");
            return NULL;
        }
    }
    uint64_t any = 0, pre = 0;
    for (Py_ssize_t w = 0; w < self->words; w++) {
        any |= mask[w];
        pre |= mask[w] & self->prefilter[w];
    }
    if (pre) {
        *exact = 1;
        return self->empty;
    }
    return any ? set_for_mask(self, mask) : self->empty;
}

/* scan(lines: list[str]) -> (results: list, exact: list[int])
 * results[i] is the tuple of values of the patterns line i matches, in pattern order (``empty`` for none); the
 * lines listed in ``exact`` are left as ``empty`` for the exact matcher. */
static PyObject *Scanner_scan(Scanner *self, PyObject *lines) {
    if (!self->db) {
        PyErr_SetString(PyExc_RuntimeError, "scanner not initialised");
        return NULL;
    }
    if (!PyList_Check(lines)) {
        PyErr_SetString(PyExc_TypeError, "lines must be a list of str");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(lines);
    if (batch_pass(self, lines, n) < 0) return NULL;
    PyObject *out = PyList_New(n);
    PyObject *exact = PyList_New(0);
    if (!out || !exact) goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *value = self->empty;
        int need_exact = self->state[i] == LINE_EXACT;
        if (!need_exact) {
            value = line_result(self, PyList_GET_ITEM(lines, i), i, &need_exact);
            if (!value) goto fail;
        }
        if (need_exact) {
            PyObject *idx = PyLong_FromSsize_t(i);
            if (!idx || PyList_Append(exact, idx) < 0) { Py_XDECREF(idx); goto fail; }
            Py_DECREF(idx);
        }
        Py_INCREF(value);
        PyList_SET_ITEM(out, i, value);
    }
    PyObject *result = PyTuple_Pack(2, out, exact);
    Py_DECREF(out);
    Py_DECREF(exact);
    return result;
fail:
    Py_XDECREF(out);
    Py_XDECREF(exact);
    return NULL;
}

/* valid(expression: bytes, flags: int) -> None, or the reason Hyperscan rejects it */
static PyObject *hs_valid(PyObject *mod, PyObject *args) {
    const char *expr;
    unsigned int flags;
    (void)mod;
    if (!PyArg_ParseTuple(args, "yI", &expr, &flags)) return NULL;
    hs_database_t *db = NULL;
    hs_compile_error_t *err = NULL;
    if (hs_compile(expr, flags, HS_MODE_BLOCK, NULL, &db, &err) == HS_SUCCESS) {
        hs_free_database(db);
        Py_RETURN_NONE;
    }
    PyObject *msg = PyUnicode_FromString(err && err->message ? err->message : "unknown error");
    hs_free_compile_error(err);
    return msg;
}

static PyMethodDef Scanner_methods[] = {
    {"scan", (PyCFunction)Scanner_scan, METH_O, "scan(lines) -> (per-line tuples, indexes for the exact matcher)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "macha.monitor.detect._hsmatch.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A compiled pattern set giving the patterns each line of a batch matches.",
    .tp_methods = Scanner_methods,
    .tp_init = (initproc)Scanner_init,
    .tp_new = PyType_GenericNew,
};

static PyMethodDef module_methods[] = {
    {"valid", hs_valid, METH_VARARGS, "valid(expression, flags) -> None or the reason Hyperscan rejects it"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_hsmatch", NULL, -1, module_methods};

PyMODINIT_FUNC PyInit__hsmatch(void) {
    if (hs_valid_platform() != HS_SUCCESS) {
        PyErr_SetString(PyExc_ImportError, "this CPU lacks the instructions Hyperscan needs (SSSE3)");
        return NULL;
    }
    if (PyType_Ready(&ScannerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    HsError = PyErr_NewException("macha.monitor.detect._hsmatch.error", NULL, NULL);
    if (!HsError || PyModule_AddObject(m, "error", HsError) < 0) return NULL;
    Py_INCREF(&ScannerType);
    if (PyModule_AddObject(m, "Scanner", (PyObject *)&ScannerType) < 0) return NULL;
    if (PyModule_AddIntConstant(m, "FLAG_ALLOWEMPTY", HS_FLAG_ALLOWEMPTY) < 0 ||
        PyModule_AddIntConstant(m, "FLAG_PREFILTER", HS_FLAG_PREFILTER) < 0)
        return NULL;
    return m;
}
