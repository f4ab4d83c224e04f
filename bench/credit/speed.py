"""Scoring speed of the committed scorecard (target: < 50 us per application, docs/CREDIT.md).

Scores the 800 applicants of the training file with credit/scorecard/models/german_v1.json the way
the decision pipeline does: `score(artefact_dict, applicant_dict)`, the artefact compiled once and
found again by its fingerprint. Pure Python, one core, no database.

    .venv/bin/python bench/credit/speed.py [--rounds 50]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from credit.scorecard.data import read_csv  # noqa: E402
from credit.scorecard.scoring import Scorecard, score  # noqa: E402

MODEL = ROOT / "credit" / "scorecard" / "models" / "german_v1.json"
DATA = ROOT / "credit" / "data" / "german_credit_train.csv"
BUDGET_US = 50.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50, help="passes over the 800 applicants")
    args = parser.parse_args()
    artefact = json.loads(MODEL.read_text(encoding="utf-8"))
    rows = read_csv(DATA).rows
    # What an application carries: every German credit attribute, as the JSON it is stored in
    # (numbers as numbers, categories as strings), not only the model's characteristics.
    applicants = [{k: (int(v) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]

    t0 = time.perf_counter()
    Scorecard(artefact)
    compile_ms = (time.perf_counter() - t0) * 1000

    score(artefact, applicants[0])  # compile once into the cache
    per_call: list[float] = []
    for _ in range(args.rounds):
        for applicant in applicants:
            t = time.perf_counter()
            score(artefact, applicant)
            per_call.append(time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(args.rounds):
        for applicant in applicants:
            score(artefact, applicant)
    mean_us = (time.perf_counter() - t) / (args.rounds * len(applicants)) * 1e6
    per_call.sort()
    p50 = per_call[len(per_call) // 2] * 1e6
    p99 = per_call[int(len(per_call) * 0.99)] * 1e6

    print(
        f"scorecard speed, {time.strftime('%Y-%m-%d')}, Python {platform.python_version()}, "
        f"{platform.machine()}"
    )
    print("command: .venv/bin/python bench/credit/speed.py " + " ".join(sys.argv[1:]))
    print()
    print("| what | figure | budget |")
    print("|---|---:|---|")
    print(f"| characteristics in the model | {len(artefact['characteristics'])} | |")
    print(f"| compile + verify the artefact (once per fingerprint) | {compile_ms:.2f} ms | |")
    ok = mean_us < BUDGET_US
    print(
        f"| score one application, mean over {len(per_call):,} | {mean_us:.1f} us | "
        f"< {BUDGET_US:.0f} us: {'ok' if ok else 'MISSED'} |"
    )
    print(f"| per call p50 / p99 (timer included) | {p50:.1f} / {p99:.1f} us | |")
    print(f"| calls per second, one core | {1e6 / mean_us:,.0f} | |")
    print(f"(mean of the timed calls: {statistics.fmean(per_call) * 1e6:.1f} us)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
