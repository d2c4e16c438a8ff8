"""Sparse cost matrices for the compiled graph: one entry per (row, column) pair, the minimum
over parallel pairs, zero costs kept as explicit entries (a zero-cost edge is an edge)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def min_cost_csr(rows: np.ndarray, cols: np.ndarray, w: np.ndarray, n: int) -> sp.csr_matrix:
    """``n × n`` CSR of directed costs, the minimum over parallel pairs, zero costs kept."""
    rows, cols, w = min_pairs(rows, cols, w, n)
    return csr_keep_zeros(rows, cols, w, (n, n))


def min_pairs(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n_cols: int):
    """Keep the minimum value of each (row, col) pair."""
    if len(rows) == 0:
        return rows.astype(np.int64), cols.astype(np.int64), vals.astype(float)
    key = rows.astype(np.int64) * np.int64(n_cols) + cols.astype(np.int64)
    order = np.argsort(key, kind="stable")
    key = key[order]
    dup = key[1:] == key[:-1]
    if dup.any():  # parallel pairs: order each run of equal keys by value
        order = order[np.lexsort((vals[order], key))]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    sel = order[first]
    return rows[sel].astype(np.int64), cols[sel].astype(np.int64), vals[sel].astype(float)


def csr_keep_zeros(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape) -> sp.csr_matrix:
    """CSR from unique (row, col) pairs, keeping explicit zero entries (zero-cost edges)."""
    order = np.lexsort((cols, rows)) if len(rows) < 1_000_000 else _row_col_order(rows, cols)
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    m = sp.csr_matrix(
        (vals[order].astype(float), cols[order].astype(np.int32 if shape[1] < 2**31 else np.int64),
         indptr),
        shape=shape,
    )  # fmt: skip
    return m


def _row_col_order(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Order by (row, col) for large arrays: one int64 key sort is faster than lexsort."""
    key = rows.astype(np.int64) * np.int64(cols.max() + 1) + cols.astype(np.int64)
    return np.argsort(key, kind="stable")
