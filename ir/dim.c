/*
 * dim.c - symbolic dims as small canonical polynomials.
 *
 * Canonical form: terms sorted by degree (highest first), then by their
 * symbol lists (ascending); like terms merged; zero terms dropped.  So the
 * constant term, if any, comes last and equality is a field compare.
 */
#include "ir/dim.h"

#include <stdio.h>
#include <string.h>

/* Scratch polynomial with room for intermediate results before merging. */
#define DIM_SCRATCH 32

DlDim dl_dim_const(int64_t c) {
  DlDim d;
  memset(&d, 0, sizeof d);
  if (c != 0) {
    d.nterms = 1;
    d.t[0].coef = c;
  }
  return d;
}

DlDim dl_dim_sym(int sym_id) {
  DlDim d;
  memset(&d, 0, sizeof d);
  d.nterms = 1;
  d.t[0].coef = 1;
  d.t[0].nsym = 1;
  d.t[0].sym[0] = (uint16_t)sym_id;
  return d;
}

bool dl_dim_is_const(const DlDim *d, int64_t *value) {
  if (d->nterms == 0) {
    if (value)
      *value = 0;
    return true;
  }
  if (d->nterms == 1 && d->t[0].nsym == 0) {
    if (value)
      *value = d->t[0].coef;
    return true;
  }
  return false;
}

/* Compare monomials (symbol parts only): <0 when a sorts first. */
static int mono_cmp(const DlTerm *a, const DlTerm *b) {
  if (a->nsym != b->nsym)
    return a->nsym > b->nsym ? -1 : 1;
  for (int i = 0; i < a->nsym; i++)
    if (a->sym[i] != b->sym[i])
      return a->sym[i] < b->sym[i] ? -1 : 1;
  return 0;
}

bool dl_dim_eq(const DlDim *a, const DlDim *b) {
  if (a->nterms != b->nterms)
    return false;
  for (int i = 0; i < a->nterms; i++)
    if (a->t[i].coef != b->t[i].coef || mono_cmp(&a->t[i], &b->t[i]) != 0)
      return false;
  return true;
}

/* Sorts, merges like terms, drops zeros, and writes a canonical dim.
 * Fails on coefficient overflow or when more than DL_DIM_TERMS remain. */
static bool canon(DlTerm *t, int n, DlDim *out) {
  /* insertion sort: n is small */
  for (int i = 1; i < n; i++) {
    DlTerm x = t[i];
    int j = i - 1;
    while (j >= 0 && mono_cmp(&t[j], &x) > 0) {
      t[j + 1] = t[j];
      j--;
    }
    t[j + 1] = x;
  }
  DlDim r;
  memset(&r, 0, sizeof r);
  int i = 0;
  while (i < n) {
    DlTerm acc = t[i];
    int j = i + 1;
    while (j < n && mono_cmp(&t[j], &acc) == 0) {
      if (__builtin_add_overflow(acc.coef, t[j].coef, &acc.coef))
        return false;
      j++;
    }
    i = j;
    if (acc.coef == 0)
      continue;
    if (r.nterms == DL_DIM_TERMS)
      return false;
    /* clear unused factor slots so equal dims are byte-equal too */
    for (int k = acc.nsym; k < DL_DIM_FACTORS; k++)
      acc.sym[k] = 0;
    r.t[r.nterms++] = acc;
  }
  *out = r;
  return true;
}

bool dl_dim_add(const DlDim *a, const DlDim *b, DlDim *out) {
  DlTerm t[2 * DL_DIM_TERMS];
  int n = 0;
  for (int i = 0; i < a->nterms; i++)
    t[n++] = a->t[i];
  for (int i = 0; i < b->nterms; i++)
    t[n++] = b->t[i];
  return canon(t, n, out);
}

bool dl_dim_sub(const DlDim *a, const DlDim *b, DlDim *out) {
  DlTerm t[2 * DL_DIM_TERMS];
  int n = 0;
  for (int i = 0; i < a->nterms; i++)
    t[n++] = a->t[i];
  for (int i = 0; i < b->nterms; i++) {
    t[n] = b->t[i];
    if (t[n].coef == INT64_MIN)
      return false;
    t[n].coef = -t[n].coef;
    n++;
  }
  return canon(t, n, out);
}

bool dl_dim_mul(const DlDim *a, const DlDim *b, DlDim *out) {
  DlTerm t[DL_DIM_TERMS * DL_DIM_TERMS];
  int n = 0;
  for (int i = 0; i < a->nterms; i++) {
    for (int j = 0; j < b->nterms; j++) {
      const DlTerm *x = &a->t[i], *y = &b->t[j];
      DlTerm r;
      memset(&r, 0, sizeof r);
      if (__builtin_mul_overflow(x->coef, y->coef, &r.coef))
        return false;
      if (x->nsym + y->nsym > DL_DIM_FACTORS)
        return false;
      /* merge two sorted symbol lists */
      int p = 0, q = 0;
      while (p < x->nsym || q < y->nsym) {
        if (q >= y->nsym || (p < x->nsym && x->sym[p] <= y->sym[q]))
          r.sym[r.nsym++] = x->sym[p++];
        else
          r.sym[r.nsym++] = y->sym[q++];
      }
      t[n++] = r;
    }
  }
  return canon(t, n, out);
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0)))
    q--;
  return q;
}

bool dl_dim_div(const DlDim *a, const DlDim *b, DlDim *out) {
  if (b->nterms != 1)
    return false; /* zero or multi-term divisor */
  const DlTerm *d = &b->t[0];
  int64_t ca, cb;
  if (dl_dim_is_const(a, &ca) && dl_dim_is_const(b, &cb)) {
    if (cb == 0 || (ca == INT64_MIN && cb == -1))
      return false;
    *out = dl_dim_const(floor_div(ca, cb));
    return true;
  }
  DlTerm t[DL_DIM_TERMS];
  int n = 0;
  for (int i = 0; i < a->nterms; i++) {
    const DlTerm *x = &a->t[i];
    if (d->coef == -1 && x->coef == INT64_MIN)
      return false;
    if (x->coef % d->coef != 0)
      return false;
    DlTerm r;
    memset(&r, 0, sizeof r);
    r.coef = x->coef / d->coef;
    /* remove d's symbols (a sub-multiset) from x's */
    int q = 0;
    for (int p = 0; p < x->nsym; p++) {
      if (q < d->nsym && x->sym[p] == d->sym[q])
        q++;
      else if (q < d->nsym && x->sym[p] > d->sym[q])
        return false;
      else
        r.sym[r.nsym++] = x->sym[p];
    }
    if (q != d->nsym)
      return false;
    t[n++] = r;
  }
  return canon(t, n, out);
}

int64_t dl_dim_eval(const DlDim *d, const int64_t *syms) {
  uint64_t sum = 0; /* wrap-around arithmetic: no UB on overflow */
  for (int i = 0; i < d->nterms; i++) {
    uint64_t p = (uint64_t)d->t[i].coef;
    for (int k = 0; k < d->t[i].nsym; k++)
      p *= (uint64_t)(syms ? syms[d->t[i].sym[k]] : 0);
    sum += p;
  }
  return (int64_t)sum;
}

bool dl_dim_is_positive(const DlDim *d) {
  /* With every symbol >= 1 each term is >= its coefficient, so all
   * positive coefficients make the sum >= 1. */
  if (d->nterms == 0)
    return false;
  for (int i = 0; i < d->nterms; i++)
    if (d->t[i].coef <= 0)
      return false;
  return true;
}

/* snprintf into buf at *pos, tracking the would-be length. */
static void emit(char *buf, size_t cap, size_t *pos, const char *s) {
  size_t len = strlen(s);
  if (*pos < cap) {
    size_t room = cap - *pos;
    size_t k = len < room ? len : room - 1;
    memcpy(buf + *pos, s, k);
    buf[*pos + k] = 0;
  }
  *pos += len;
}

int dl_dim_print(char *buf, size_t cap, const DlDim *d,
                 const char *const *names) {
  size_t pos = 0;
  char tmp[64];
  if (buf && cap)
    buf[0] = 0;
  if (!buf)
    cap = 0;
  if (d->nterms == 0) {
    emit(buf, cap, &pos, "0");
    return (int)pos;
  }
  for (int i = 0; i < d->nterms; i++) {
    const DlTerm *t = &d->t[i];
    int64_t c = t->coef;
    uint64_t mag = c < 0 ? (uint64_t)0 - (uint64_t)c : (uint64_t)c;
    if (c < 0)
      emit(buf, cap, &pos, "-");
    else if (i > 0)
      emit(buf, cap, &pos, "+");
    bool need_star = false;
    if (mag != 1 || t->nsym == 0) {
      snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)mag);
      emit(buf, cap, &pos, tmp);
      need_star = true;
    }
    for (int k = 0; k < t->nsym; k++) {
      if (need_star)
        emit(buf, cap, &pos, "*");
      const char *nm = names ? names[t->sym[k]] : NULL;
      if (nm) {
        emit(buf, cap, &pos, nm);
      } else {
        snprintf(tmp, sizeof tmp, "s%d", t->sym[k]);
        emit(buf, cap, &pos, tmp);
      }
      need_star = true;
    }
  }
  return (int)pos;
}
