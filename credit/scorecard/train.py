"""Fitting a scorecard (numpy; never imported on the request path).

    artefact = train(read_csv(path), TrainConfig(seed=0), name="german", version="v1")

Every choice that could overfit is made by cross-validation inside the training data, with the
bins refitted inside each fold so the held-out rows never shape their own WOE:
1. per numeric characteristic, monotonic or free binning: the one with the lower held-out log-loss
   (free must win by `free_margin`, so monotonic is kept unless the data clearly say otherwise);
2. characteristics with IV below `min_iv` are dropped (IV on the whole file), and so are the
   protected ones (`exclude`, by default sex / marital status and foreign-worker status);
3. selection, `regularised` (default): every remaining characteristic enters an L2 logistic
   regression, a characteristic whose coefficient comes out negative (against its own WOE) is
   dropped and the rest refitted; or `forward`: stepwise on the mean cross-validated AUC, keeping
   the shortest prefix of the path within `selection_tolerance` of its best AUC (measured worse on
   the German file, docs/CREDIT.md);
4. the L2 strength from `l2_grid` with the best cross-validated AUC (ties: the stronger one).
Then the logistic regression is refitted on all rows and turned into integer points.

Scaling: score = offset + factor * ln(odds of good), factor = pdo / ln 2,
offset = base_score - factor * ln(base_odds). With the defaults (500 at even odds, 50 points to
double the odds) a score of 500 means "as likely bad as good" and 550 "twice as likely good"
(docs/CREDIT.md says why). Each characteristic's points are
round(factor * beta * WOE + (offset + factor * intercept) / number of characteristics).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from credit.scorecard.artefact import KIND, SCHEMA_VERSION, with_fingerprint
from credit.scorecard.binning import (
    FREE,
    MONOTONIC,
    Binning,
    BinningConfig,
    bin_categorical,
    bin_numeric,
    holdout_logloss,
)
from credit.scorecard.data import NUMERIC, Dataset
from credit.scorecard.errors import DataError, gettext_noop
from credit.scorecard.logistic import fit_logistic, predict_logit
from credit.scorecard.metrics import (
    auc,
    band_table,
    distribution,
    gini,
    ks,
    quantile_edges,
)
from credit.scorecard.scoring import Scorecard

MIN_ROWS = 50
MIN_PER_CLASS = 10
REGULARISED = "regularised"
FORWARD = "forward"
# Protected characteristics (sex / marital status, nationality) are left out by default: a lender
# may not price on them, and leaving them out costs nothing measurable here (docs/CREDIT.md).
PROTECTED = ("personal_status_and_sex", "foreign_worker")
DEFAULT_BANDS = (("reject", 300), ("review", 500), ("approve", 550))


@dataclass(frozen=True)
class TrainConfig:
    binning: BinningConfig = field(default_factory=BinningConfig)
    min_iv: float = 0.02
    free_margin: float = 0.002  # nats of held-out log-loss free binning must save
    selection_l2: float = 3.0
    selection_tolerance: float = 0.0
    selection: str = REGULARISED  # or FORWARD (stepwise; measured worse, docs/CREDIT.md)
    l2_grid: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0)
    cv_folds: int = 5
    cv_repeats: int = 2
    exclude: tuple[str, ...] = PROTECTED
    base_score: float = 500.0
    base_odds: float = 1.0  # odds of good at base_score
    pdo: float = 50.0
    min_score: int = 300
    max_score: int = 1000
    bands: tuple[tuple[str, int], ...] = DEFAULT_BANDS
    psi_bins: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if self.cv_folds < 2 or self.cv_repeats < 1:
            raise ValueError("cv_folds must be at least 2 and cv_repeats at least 1")
        if self.pdo <= 0 or self.base_odds <= 0:
            raise ValueError("pdo and base_odds must be positive")
        if self.min_score >= self.max_score:
            raise ValueError("min_score must be below max_score")
        lows = [low for _, low in self.bands]
        if not lows or lows[0] != self.min_score or lows != sorted(set(lows)):
            raise ValueError("bands must start at min_score and increase")
        if self.selection not in (REGULARISED, FORWARD):
            raise ValueError(f"selection must be {REGULARISED!r} or {FORWARD!r}")
        if not self.l2_grid or min(self.l2_grid) < 0:
            raise ValueError("l2_grid needs non-negative values")


def stratified_folds(
    bad: Sequence[int], k: int, repeats: int, seed: int
) -> list[tuple[list[int], list[int]]]:
    """`repeats` x `k` (train, test) index splits, each fold with about the same bad rate."""
    rng = random.Random(seed)  # noqa: S311 (reproducible folds, not security)
    out: list[tuple[list[int], list[int]]] = []
    for _ in range(repeats):
        assignment = [0] * len(bad)
        for label in (0, 1):
            idx = [i for i, y in enumerate(bad) if y == label]
            rng.shuffle(idx)
            for pos, i in enumerate(idx):
                assignment[i] = pos % k
        for fold in range(k):
            test = [i for i, a in enumerate(assignment) if a == fold]
            train = [i for i, a in enumerate(assignment) if a != fold]
            out.append((train, test))
    return out


def fit_binning(
    name: str, kind: str, values: Sequence, bad: Sequence[int], config: BinningConfig, mode: str
) -> Binning:
    if kind == NUMERIC:
        return bin_numeric(name, values, bad, config=config, mode=mode)
    return bin_categorical(name, values, bad, config=config)


def _column(data: Dataset, name: str, idx: Sequence[int] | None = None) -> list:
    rows = data.rows if idx is None else [data.rows[i] for i in idx]
    return [r[name] for r in rows]


def _woe_matrix(binnings: Sequence[Binning], data: Dataset, idx: Sequence[int]) -> np.ndarray:
    out = np.empty((len(idx), len(binnings)))
    for j, b in enumerate(binnings):
        woe = b.woe
        for r, i in enumerate(idx):
            out[r, j] = woe[b.index(data.rows[i][b.name])]
    return out


@dataclass
class _Fold:
    X_train: np.ndarray
    y_train: np.ndarray  # 1 = good (the scorecard models the odds of good)
    X_test: np.ndarray
    bad_test: list[int]


def _cv_auc(folds: Sequence[_Fold], cols: Sequence[int], l2: float) -> list[float]:
    out = []
    for f in folds:
        a, beta = fit_logistic(f.X_train[:, cols], f.y_train, l2=l2)
        out.append(auc(f.bad_test, predict_logit(a, beta, f.X_test[:, cols]).tolist()))
    return out


def _check_data(data: Dataset, config: TrainConfig) -> list[str]:
    if not data.bad:
        raise DataError(gettext_noop("Training needs the outcome column."))
    n_bad = sum(data.bad)
    n_good = len(data.bad) - n_bad
    if len(data) < MIN_ROWS or min(n_bad, n_good) < MIN_PER_CLASS:
        raise DataError(
            gettext_noop(
                "Training needs at least %(rows)s rows with %(per_class)s goods and %(per_class)s "
                "bads; the file has %(good)s goods and %(bad)s bads."
            ),
            {"rows": MIN_ROWS, "per_class": MIN_PER_CLASS, "good": n_good, "bad": n_bad},
        )
    unknown = [name for name in config.exclude if name not in data.kinds]
    if unknown:
        raise DataError(
            gettext_noop("Cannot exclude unknown characteristic(s): %(columns)s."),
            {"columns": ", ".join(unknown)},
        )
    return [name for name in data.kinds if name not in config.exclude]


def choose_modes(
    data: Dataset, names: Sequence[str], splits, config: TrainConfig
) -> dict[str, tuple[str, dict[str, float]]]:
    """Per characteristic: the binning mode and the held-out log-loss of each mode tried."""
    out: dict[str, tuple[str, dict[str, float]]] = {}
    for name in names:
        kind = data.kinds[name]
        modes = (MONOTONIC, FREE) if kind == NUMERIC else (MONOTONIC,)
        losses: dict[str, float] = {}
        for mode in modes:
            total = 0.0
            for train_idx, test_idx in splits:
                b = fit_binning(
                    name,
                    kind,
                    _column(data, name, train_idx),
                    [data.bad[i] for i in train_idx],
                    config.binning,
                    mode,
                )
                total += holdout_logloss(
                    b, _column(data, name, test_idx), [data.bad[i] for i in test_idx]
                )
            losses[mode] = total / len(splits)
        chosen = MONOTONIC
        if FREE in losses and losses[FREE] < losses[MONOTONIC] - config.free_margin:
            chosen = FREE
        out[name] = (chosen, losses)
    return out


def _best_l2(folds: Sequence[_Fold], cols: Sequence[int], grid: Sequence[float]) -> float:
    """The L2 strength with the best mean cross-validated AUC (ties: the stronger)."""
    return max(grid, key=lambda v: (round(float(np.mean(_cv_auc(folds, cols, v))), 6), v))


def _forward(
    folds: Sequence[_Fold],
    X: np.ndarray,
    good: np.ndarray,
    candidates: Sequence[str],
    config: TrainConfig,
) -> tuple[list[int], list[dict[str, Any]]]:
    """Forward stepwise selection on cross-validated AUC at `selection_l2`; keeps the shortest
    prefix of the path within `selection_tolerance` of its best AUC."""
    chosen: list[int] = []
    path: list[dict[str, Any]] = []
    remaining = list(range(len(candidates)))
    while remaining:
        best: tuple[float, int] | None = None
        for j in remaining:
            cols = [*chosen, j]
            _, beta = fit_logistic(X[:, cols], good, l2=config.selection_l2)
            if np.any(beta <= 0):
                continue  # against its WOE: collinear with what is already in
            auc_ = float(np.mean(_cv_auc(folds, cols, config.selection_l2)))
            if best is None or auc_ > best[0]:
                best = (auc_, j)
        if best is None:
            break
        chosen.append(best[1])
        remaining.remove(best[1])
        path.append({"added": candidates[best[1]], "cv_auc": round(best[0], 6)})
    top = max(step["cv_auc"] for step in path)
    keep = next(k for k, s in enumerate(path, 1) if s["cv_auc"] >= top - config.selection_tolerance)
    return chosen[:keep], path


def _regularised(
    folds: Sequence[_Fold],
    X: np.ndarray,
    good: np.ndarray,
    candidates: Sequence[str],
    config: TrainConfig,
) -> tuple[list[int], list[dict[str, Any]]]:
    """Every candidate, shrunk by L2 (strength by cross-validation). A characteristic whose
    coefficient comes out negative (points against its own WOE, from collinearity) is dropped,
    the most negative first, and the rest refitted."""
    cols = list(range(len(candidates)))
    steps: list[dict[str, Any]] = []
    while len(cols) > 1:
        l2 = _best_l2(folds, cols, config.l2_grid)
        _, beta = fit_logistic(X[:, cols], good, l2=l2)
        worst = int(np.argmin(beta))
        if beta[worst] > 0:
            break
        steps.append({"dropped": candidates[cols[worst]], "coefficient": float(beta[worst])})
        del cols[worst]
    return cols, steps


def train(
    data: Dataset,
    config: TrainConfig | None = None,
    *,
    name: str = "german",
    version: str = "v1",
    source: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fits a scorecard on `data` and returns its artefact (a JSON-ready dict with fingerprint)."""
    config = config or TrainConfig()
    names = _check_data(data, config)
    splits = stratified_folds(data.bad, config.cv_folds, config.cv_repeats, config.seed)
    bad = data.bad
    good = np.array([1 - y for y in bad], dtype=float)

    modes = choose_modes(data, names, splits, config)
    full = {
        n: fit_binning(n, data.kinds[n], _column(data, n), bad, config.binning, modes[n][0])
        for n in names
    }
    iv = {n: full[n].iv for n in names}
    candidates = [n for n in names if iv[n] >= config.min_iv]
    if not candidates:
        raise DataError(
            gettext_noop("No characteristic reaches the minimum information value %(iv)s."),
            {"iv": config.min_iv},
        )

    folds: list[_Fold] = []
    for train_idx, test_idx in splits:
        tb = [
            fit_binning(
                n,
                data.kinds[n],
                _column(data, n, train_idx),
                [bad[i] for i in train_idx],
                config.binning,
                modes[n][0],
            )
            for n in candidates
        ]
        folds.append(
            _Fold(
                X_train=_woe_matrix(tb, data, train_idx),
                y_train=good[train_idx],
                X_test=_woe_matrix(tb, data, test_idx),
                bad_test=[bad[i] for i in test_idx],
            )
        )
    X_full = _woe_matrix([full[n] for n in candidates], data, range(len(data)))

    if config.selection == FORWARD:
        cols, steps = _forward(folds, X_full, good, candidates, config)
    else:
        cols, steps = _regularised(folds, X_full, good, candidates, config)
    selected = [candidates[j] for j in cols]

    l2_scores = {l2: _cv_auc(folds, cols, l2) for l2 in config.l2_grid}
    l2 = _best_l2(folds, cols, config.l2_grid)
    cv = l2_scores[l2]

    intercept, beta = fit_logistic(X_full[:, cols], good, l2=l2)
    factor = config.pdo / math.log(2)
    offset = config.base_score - factor * math.log(config.base_odds)
    shift = (offset + factor * intercept) / len(selected)

    characteristics = []
    for name_, coef in zip(selected, beta.tolist(), strict=True):
        b = full[name_]
        labels = b.labels()
        total = len(data)
        bins = []
        for i, label in enumerate(labels):
            entry: dict[str, Any] = {"label": label}
            is_missing = i == b.missing_index
            if b.kind == NUMERIC and not is_missing:
                bounds = [None, *b.edges, None]
                entry["lower"], entry["upper"] = bounds[i], bounds[i + 1]
            elif not is_missing:
                entry["categories"] = list(b.groups[i])
            entry["missing"] = is_missing
            entry["good"] = b.good[i]
            entry["bad"] = b.bad[i]
            entry["share"] = round((b.good[i] + b.bad[i]) / total, 6)
            entry["woe"] = round(b.woe[i], 6)
            entry["points"] = round(factor * coef * b.woe[i] + shift)
            bins.append(entry)
        characteristics.append(
            {
                "name": name_,
                "kind": b.kind,
                "trend": b.trend,
                "iv": round(b.iv, 6),
                "coefficient": coef,
                "missing_has_data": b.missing_has_data,
                "bins": bins,
            }
        )

    artefact: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "name": name,
        "version": version,
        "characteristics": characteristics,
        "model": {
            "target": "logit of good on WOE",
            "intercept": intercept,
            "coefficients": dict(zip(selected, beta.tolist(), strict=True)),
            "l2": l2,
        },
        "scaling": {
            "base_score": config.base_score,
            "base_odds": config.base_odds,
            "pdo": config.pdo,
            "factor": factor,
            "offset": offset,
            "min_score": config.min_score,
            "max_score": config.max_score,
        },
        "bands": [{"band": band, "min_score": low} for band, low in config.bands],
    }
    card = Scorecard(artefact, verify=False)
    scores = [card.score(row).score for row in data.rows]
    edges = quantile_edges(scores, config.psi_bins)

    # Out-of-fold scores of the first repeat (every row scored once by a model that never saw it).
    oof = [0.0] * len(data)
    for (_, test_idx), f in zip(splits[: config.cv_folds], folds, strict=False):
        a, b_ = fit_logistic(f.X_train[:, cols], f.y_train, l2=l2)
        logits = predict_logit(a, b_, f.X_test[:, cols])
        for i, z in zip(test_idx, logits.tolist(), strict=True):
            oof[i] = min(max(round(offset + factor * z), config.min_score), config.max_score)

    artefact["baseline"] = {
        "rows": len(data),
        "score": {"edges": edges, "shares": [round(s, 6) for s in distribution(scores, edges)]},
        "characteristics": {c["name"]: [b["share"] for b in c["bins"]] for c in characteristics},
    }
    artefact["training"] = {
        "data": dict(source or {}, rows=len(data), bads=sum(bad)),
        "config": _jsonable(asdict(config)),
        "metrics": {
            "auc": round(auc(bad, scores), 6),
            "ks": round(ks(bad, scores), 6),
            "gini": round(gini(bad, scores), 6),
        },
        "cv": {
            "folds": len(cv),
            "auc_mean": round(float(np.mean(cv)), 6),
            "auc_sd": round(float(np.std(cv, ddof=1)), 6),
            "note": "the folds that chose the characteristics and L2: optimistic",
        },
        "selection": {"method": config.selection, "steps": steps},
        "selected": selected,
        "l2_cv_auc": {str(k): round(float(np.mean(v)), 6) for k, v in l2_scores.items()},
        "binning_modes": {
            n: {"mode": m, "holdout_logloss": {k: round(v, 6) for k, v in losses.items()}}
            for n, (m, losses) in modes.items()
        },
        "iv": {n: round(v, 6) for n, v in sorted(iv.items(), key=lambda kv: -kv[1])},
        "bands": band_table(scores, list(config.bands), bad),
        "bands_out_of_fold": band_table(oof, list(config.bands), bad),
    }
    return with_fingerprint(_jsonable(artefact))


def _jsonable(value: Any) -> Any:
    """Tuples to lists, numpy scalars to Python numbers, non-finite floats refused."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("non-finite number in the artefact")
    return value
