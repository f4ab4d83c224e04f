"""`manage.py load_demo [--reset] [--vehicles N] [--seed S]`: the demo data set.

The logic lives in `carloan.demo`; this prints its progress and the personas' credentials."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from carloan.demo import DEFAULT_SEED, DEFAULT_VEHICLES, DemoError, format_result, load_demo


class Command(BaseCommand):
    help = (
        "Load the demo data set: customer tree, roles, one user per persona (passwords printed), "
        "device catalogue, vehicles around Xi'an with trackers, device stock. Does nothing when "
        "the demo exists, unless --reset."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Delete the demo tree (customer 'platform') and all in it, then load it again.",
        )
        parser.add_argument(
            "--vehicles",
            type=int,
            default=DEFAULT_VEHICLES,
            help=f"Number of financed vehicles (default {DEFAULT_VEHICLES}).",
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=DEFAULT_SEED,
            help=f"Random seed; the same seed gives the same data (default {DEFAULT_SEED}).",
        )

    def handle(self, *args, reset: bool, vehicles: int, seed: int, verbosity: int, **options):
        progress = self.stdout if verbosity >= 1 else None
        try:
            result = load_demo(vehicles=vehicles, seed=seed, reset=reset, stdout=progress)
        except DemoError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(format_result(result))
