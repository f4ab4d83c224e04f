"""L2-regularised logistic regression by Newton's method (numpy; training only).

Minimises   sum_i logloss(y_i, sigmoid(a + x_i . beta)) + l2 / 2 * |beta|^2
(the intercept `a` is not penalised; `l2` plays the part of scikit-learn's 1 / C).
"""

from __future__ import annotations

import numpy as np


def _loss(X1: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float) -> float:
    z = X1 @ w
    # log(1 + exp(z)) - y z, computed without overflow
    return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * np.sum(w[1:] ** 2))


def fit_logistic(
    X: np.ndarray, y: np.ndarray, *, l2: float, max_iter: int = 50, tol: float = 1e-10
) -> tuple[float, np.ndarray]:
    """Returns (intercept, coefficients). `y` is 1 for the modelled outcome, 0 otherwise."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise ValueError("X must be (rows, features) and y must have one value per row")
    if l2 < 0:
        raise ValueError("l2 must not be negative")
    n, k = X.shape
    X1 = np.hstack([np.ones((n, 1)), X])
    w = np.zeros(k + 1)
    mean = np.clip(y.mean(), 1e-6, 1 - 1e-6)
    w[0] = np.log(mean / (1 - mean))
    penalty = np.full(k + 1, l2)
    penalty[0] = 0.0
    loss = _loss(X1, y, w, l2)
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-(X1 @ w)))
        grad = X1.T @ (p - y) + penalty * w
        hess = (X1 * (p * (1 - p))[:, None]).T @ X1 + np.diag(penalty) + 1e-9 * np.eye(k + 1)
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while True:  # backtracking: Newton can overshoot on (nearly) separable data
            candidate = w - t * step
            new_loss = _loss(X1, y, candidate, l2)
            if new_loss <= loss or t < 1e-6:
                break
            t /= 2
        w, improvement, loss = candidate, loss - new_loss, new_loss
        if improvement < tol * max(1.0, abs(loss)):
            break
    return float(w[0]), w[1:].copy()


def predict_logit(intercept: float, coef: np.ndarray, X: np.ndarray) -> np.ndarray:
    return intercept + np.asarray(X, dtype=float) @ coef
