"""`manage.py evaluate_scorecard --model FILE.json --data CSV [--json]`: scores a labelled CSV with
a model artefact and reports AUC, KS, Gini, the score PSI against the training scores and the band
table (with `--json`: one object with exactly the keys auc, ks, gini, psi, bands)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from credit.scorecard import artefact as artefacts
from credit.scorecard.data import CATEGORICAL, read_csv
from credit.scorecard.errors import ScorecardError
from credit.scorecard.metrics import auc, band_table, gini, ks, psi_band
from credit.scorecard.monitoring import characteristic_psi, score_psi
from credit.scorecard.scoring import Scorecard


class Command(BaseCommand):
    @property
    def help(self) -> str:
        return _(
            "Evaluate a scorecard artefact on a labelled CSV: AUC, KS, Gini, PSI against the "
            "training scores and the table of bands."
        )

    def add_arguments(self, parser):
        parser.add_argument("--model", required=True, metavar="FILE.json", help=_("The artefact."))
        parser.add_argument("--data", required=True, metavar="CSV", help=_("Labelled data."))
        parser.add_argument(
            "--json",
            action="store_true",
            help=_("Print one JSON object with the keys auc, ks, gini, psi, bands."),
        )

    def handle(self, *args, model, data, json=False, **options):
        try:
            card = Scorecard(artefacts.load(model))
            dataset = read_csv(data, kinds=card.kinds())
            results = [card.score(row) for row in dataset.rows]
        except ScorecardError as exc:
            raise CommandError(exc.render(_)) from exc
        scores = [r.score for r in results]
        bad = dataset.bad
        if not 0 < sum(bad) < len(bad):
            raise CommandError(_("The data need at least one good and one bad row."))
        report = {
            "auc": auc(bad, scores),
            "ks": ks(bad, scores),
            "gini": gini(bad, scores),
            "psi": score_psi(card, scores),
            "bands": band_table(scores, card.bands, bad),
        }
        if json:
            self.stdout.write(_json_dumps(report))
            return
        self._print(card, dataset, report)

    def _print(self, card, dataset, report) -> None:
        w = self.stdout.write
        w(
            _("%(model)s on %(rows)d rows (%(bads)d bad):")
            % {"model": card.label, "rows": len(dataset), "bads": sum(dataset.bad)}
        )
        w(f"  AUC  {report['auc']:.4f}")
        w(f"  KS   {report['ks']:.4f}")
        w(f"  Gini {report['gini']:.4f}")
        w(f"  PSI  {report['psi']:.4f}  ({_band_label(psi_band(report['psi']))})")
        w("")
        headers = [
            _("band"),
            _("scores"),
            _("count"),
            _("share"),
            _("bad rate"),
            _("approval rate at this cut-off"),
            _("bad rate of those approved"),
        ]
        w("| " + " | ".join(str(h) for h in headers) + " |")
        w("|---|---|---:|---:|---:|---:|---:|")
        for row in report["bands"]:
            upper = row["max_score"] - 1 if row["max_score"] is not None else card.max_score
            cells = [
                _band_label(row["band"]),
                f"{row['min_score']}-{upper}",
                str(row["count"]),
                _pct(row["share"]),
                _pct(row["bad_rate"]),
                _pct(row["approval_rate"]),
                _pct(row["approved_bad_rate"]),
            ]
            w("| " + " | ".join(cells) + " |")
        w("")
        w(_("Characteristic stability against training (PSI):"))
        for name, value in characteristic_psi(card, dataset.rows).items():
            w(f"  {name:<58} {value:.4f}  {_band_label(psi_band(value))}")
        unseen = sum(
            1
            for row in dataset.rows
            for c in card.characteristics
            if c.kind == CATEGORICAL
            and row[c.name] is not None
            and c.bin_of(row[c.name]) == c.missing
        )
        if unseen:
            w(
                _("%d categorical values were not seen in training and scored as missing/other.")
                % unseen
            )


def _band_label(band: str) -> str:
    labels = {
        "reject": _("reject"),
        "review": _("review"),
        "approve": _("approve"),
        "stable": _("stable"),
        "watch": _("watch"),
        "rebuild": _("rebuild"),
    }
    return labels.get(band, band)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _json_dumps(report: dict) -> str:
    return json.dumps(report, ensure_ascii=False)
