"""Scorecard comparison by repeated stratified k-fold cross-validation inside the training file.

Models, each fitted on the training part of every split and judged on the held-out part:
  ours      credit.scorecard.train with its defaults (its own inner CV picks binning modes,
            characteristics and L2 inside the training part only), judged on the integer scores
  optbin    optbinning.Scorecard(BinningProcess(all 20 characteristics, the 13 categorical ones
            declared), LogisticRegression()): the defaults of both libraries
  onehot    one-hot categorical + standardised numeric columns, LogisticRegression(max_iter=1000)

    .venv/bin/python bench/credit/compare.py [--folds 5] [--repeats 5] [--seed 0]

Needs requirements-bench.txt (optbinning, scikit-learn): `make bench` installs it.
Prints the machine, date, command, then a Markdown table of mean +- sd AUC / KS / Gini over the
folds, and the paired difference of ours against each baseline (mean, sd, folds won).
Exit status 1 when ours is worse than a baseline on mean AUC. `--ablation` adds rows for our
model with one of its choices undone (forward stepwise selection, the protected characteristics
back in, chi-square merging of bins).
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import sys
import time
import warnings
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from credit.scorecard.binning import BinningConfig  # noqa: E402
from credit.scorecard.data import CATEGORICAL, GERMAN_CREDIT_KINDS, NUMERIC, read_csv  # noqa: E402
from credit.scorecard.metrics import auc, gini, ks  # noqa: E402
from credit.scorecard.scoring import Scorecard  # noqa: E402
from credit.scorecard.train import FORWARD, TrainConfig, train  # noqa: E402

DATA = ROOT / "credit" / "data" / "german_credit_train.csv"


def _frame(data, idx):
    import pandas as pd

    return pd.DataFrame([data.rows[i] for i in idx], columns=list(GERMAN_CREDIT_KINDS))


def fit_ours(data, train_idx, test_idx, seed, **config):
    artefact = train(data.subset(train_idx), TrainConfig(seed=seed, **config))
    card = Scorecard(artefact)
    return [card.score(data.rows[i]).score for i in test_idx]


def fit_optbin(data, train_idx, test_idx, seed):
    from optbinning import BinningProcess
    from optbinning import Scorecard as OptScorecard
    from sklearn.linear_model import LogisticRegression

    names = list(GERMAN_CREDIT_KINDS)
    cats = [n for n, k in GERMAN_CREDIT_KINDS.items() if k == CATEGORICAL]
    model = OptScorecard(
        binning_process=BinningProcess(names, categorical_variables=cats),
        estimator=LogisticRegression(),
    )
    y = [data.bad[i] for i in train_idx]
    model.fit(_frame(data, train_idx), y)
    p_bad = model.predict_proba(_frame(data, test_idx))[:, 1]
    return [-p for p in p_bad.tolist()]  # higher = better, like a score


def fit_onehot(data, train_idx, test_idx, seed):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    cats = [n for n, k in GERMAN_CREDIT_KINDS.items() if k == CATEGORICAL]
    nums = [n for n, k in GERMAN_CREDIT_KINDS.items() if k == NUMERIC]
    model = make_pipeline(
        ColumnTransformer(
            [
                ("cat", OneHotEncoder(handle_unknown="ignore"), cats),
                ("num", StandardScaler(), nums),
            ]
        ),
        LogisticRegression(max_iter=1000),
    )
    y = [data.bad[i] for i in train_idx]
    model.fit(_frame(data, train_idx), y)
    p_bad = model.predict_proba(_frame(data, test_idx))[:, 1]
    return [-p for p in p_bad.tolist()]


FITTERS = {"ours": fit_ours, "optbin": fit_optbin, "onehot": fit_onehot}
# --ablation: our choices undone one at a time (docs/CREDIT.md, "What the choices are worth").
ABLATIONS = {
    "ours, forward stepwise": partial(fit_ours, selection=FORWARD),
    "ours, with sex and foreign worker": partial(fit_ours, exclude=()),
    "ours, chi-square merging p=0.10": partial(
        fit_ours, binning=BinningConfig(chi2_threshold=2.706)
    ),
}


def _ms(values: list[float]) -> str:
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument(
        "--ablation", action="store_true", help="also run ours with each of its choices undone"
    )
    args = parser.parse_args()
    fitters = dict(FITTERS, **(ABLATIONS if args.ablation else {}))
    models = list(fitters)
    try:
        from sklearn.model_selection import RepeatedStratifiedKFold
    except ImportError:
        print("needs requirements-bench.txt: .venv/bin/pip install -r requirements-bench.txt")
        return 2
    logging.getLogger("CVXPY").setLevel(logging.ERROR)  # optbinning imports cvxpy: solver noise
    warnings.filterwarnings("ignore", category=FutureWarning)

    data = read_csv(args.data)
    print(
        f"scorecard comparison, {time.strftime('%Y-%m-%d')}, Python {platform.python_version()}, "
        f"{platform.machine()}, {len(data)} rows ({sum(data.bad)} bad)"
    )
    print("command: .venv/bin/python bench/credit/compare.py " + " ".join(sys.argv[1:]))
    splitter = RepeatedStratifiedKFold(
        n_splits=args.folds, n_repeats=args.repeats, random_state=args.seed
    )
    results: dict[str, dict[str, list[float]]] = {
        m: {"auc": [], "ks": [], "gini": []} for m in models
    }
    seconds = dict.fromkeys(models, 0.0)
    splits = list(splitter.split(data.rows, data.bad))
    for n, (train_idx, test_idx) in enumerate(splits, 1):
        bad_test = [data.bad[i] for i in test_idx]
        for model in models:
            t0 = time.perf_counter()
            scores = fitters[model](data, train_idx.tolist(), test_idx.tolist(), args.seed + n)
            seconds[model] += time.perf_counter() - t0
            results[model]["auc"].append(auc(bad_test, scores))
            results[model]["ks"].append(ks(bad_test, scores))
            results[model]["gini"].append(gini(bad_test, scores))
        print(
            f"  split {n}/{len(splits)}: AUC "
            + ", ".join(f"{m} {results[m]['auc'][-1]:.4f}" for m in models),
            file=sys.stderr,
        )

    print()
    print(f"{args.repeats} x {args.folds}-fold stratified CV (seed {args.seed}), held-out folds:")
    print()
    print("| model | AUC | KS | Gini | fit + score s / split |")
    print("|---|---|---|---|---:|")
    for model in models:
        r = results[model]
        print(
            f"| {model} | {_ms(r['auc'])} | {_ms(r['ks'])} | {_ms(r['gini'])} | "
            f"{seconds[model] / len(splits):.2f} |"
        )
    print()
    print("| ours minus | AUC diff mean ± sd | folds ours >= | KS diff mean |")
    print("|---|---|---:|---|")
    worse = False
    for other in models[1:]:
        diff = [a - b for a, b in zip(results["ours"]["auc"], results[other]["auc"], strict=True)]
        ks_diff = [a - b for a, b in zip(results["ours"]["ks"], results[other]["ks"], strict=True)]
        won = sum(d >= 0 for d in diff)
        if other in FITTERS:
            worse |= statistics.mean(diff) < 0
        print(
            f"| {other} | {statistics.mean(diff):+.4f} ± {statistics.stdev(diff):.4f} | "
            f"{won}/{len(diff)} | {statistics.mean(ks_diff):+.4f} |"
        )
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())
