"""`manage.py train_scorecard --data CSV --out FILE.json [--seed N]`: fits the application
scorecard (credit.scorecard.train) on a labelled CSV and writes the model artefact (JSON).
Prints what was chosen and how it did; docs/CREDIT.md explains the method."""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from credit.scorecard import artefact as artefacts
from credit.scorecard.errors import ScorecardError


class Command(BaseCommand):
    @property
    def help(self) -> str:  # translated when asked for, not at import (argparse needs str)
        return _(
            "Train the application scorecard on a labelled CSV (the German credit columns and "
            "creditability good/bad) and write the model artefact as JSON."
        )

    def add_arguments(self, parser):
        parser.add_argument("--data", required=True, metavar="CSV", help=_("Training data."))
        parser.add_argument(
            "--out", required=True, metavar="FILE.json", help=_("Where to write the artefact.")
        )
        parser.add_argument(
            "--seed", type=int, default=0, help=_("Seed of the cross-validation folds.")
        )
        parser.add_argument("--name", default="german", help=_("Model name."))
        parser.add_argument("--model-version", default="v1", help=_("Model version."))
        parser.add_argument(
            "--selection",
            choices=["regularised", "forward"],
            default="regularised",
            help=_(
                "How characteristics are chosen: all that pass the IV floor with L2 shrinkage "
                "(default), or forward stepwise."
            ),
        )
        parser.add_argument(
            "--include-protected",
            action="store_true",
            help=_(
                "Also use sex / marital status and foreign-worker status (left out by default)."
            ),
        )

    def handle(self, *args, data, out, seed, name, model_version, selection, **options):
        # numpy is imported here only: the request path never loads the training code.
        from credit.scorecard.data import read_csv
        from credit.scorecard.train import PROTECTED, TrainConfig, train

        path = Path(data)
        out_path = Path(out)
        if not out_path.parent.is_dir():
            raise CommandError(_("No such directory: %s") % out_path.parent)
        try:
            dataset = read_csv(path)
            config = TrainConfig(
                seed=seed,
                selection=selection,
                exclude=() if options["include_protected"] else PROTECTED,
            )
            source = {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
            artefact = train(dataset, config, name=name, version=model_version, source=source)
        except ScorecardError as exc:
            raise CommandError(exc.render(_)) from exc
        artefacts.save(artefact, out_path)

        training = artefact["training"]
        metrics, cv = training["metrics"], training["cv"]
        self.stdout.write(
            _("%(rows)d rows, %(bads)d bad; %(count)d characteristics, L2 %(l2)s:")
            % {
                "rows": training["data"]["rows"],
                "bads": training["data"]["bads"],
                "count": len(artefact["characteristics"]),
                "l2": artefact["model"]["l2"],
            }
        )
        for c in artefact["characteristics"]:
            bins = len(c["bins"]) - 1
            self.stdout.write(
                f"  {c['name']:<58} IV {c['iv']:.3f}  {bins} {_('bins')}  {c['trend']}"
            )
        self.stdout.write(
            _(
                "Training AUC %(auc).3f, KS %(ks).3f, Gini %(gini).3f; cross-validated AUC "
                "%(cv).3f +- %(sd).3f over %(folds)d folds."
            )
            % {**metrics, "cv": cv["auc_mean"], "sd": cv["auc_sd"], "folds": cv["folds"]}
        )
        for row in training["bands"]:
            self.stdout.write(
                _("  %(band)-8s share %(share)5.1f %%, bad rate %(bad_rate)5.1f %%")
                % {
                    "band": row["band"],
                    "share": 100 * row["share"],
                    "bad_rate": 100 * (row["bad_rate"] or 0),
                }
            )
        self.stdout.write(
            self.style.SUCCESS(
                _("Wrote %(path)s (%(fingerprint)s).")
                % {"path": out_path, "fingerprint": artefact["fingerprint"]}
            )
        )
