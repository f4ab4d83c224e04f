"""The application scorecard (FEATURES.md C5, C8; docs/CREDIT.md), pure Python: no Django.

Request path (no numpy):  `score(artefact, applicant) -> ScoreResult`, `Scorecard`, the metrics and
monitoring helpers. Training (numpy) lives in `credit.scorecard.train` and is imported only by the
commands and the benchmark.
"""

from credit.scorecard.artefact import SCHEMA_VERSION
from credit.scorecard.errors import ArtefactError, DataError, InputError, ScorecardError
from credit.scorecard.scoring import ReasonCode, Scorecard, ScoreResult, compile_artefact, score

__all__ = [
    "SCHEMA_VERSION",
    "ArtefactError",
    "DataError",
    "InputError",
    "ReasonCode",
    "ScoreResult",
    "Scorecard",
    "ScorecardError",
    "compile_artefact",
    "score",
]
