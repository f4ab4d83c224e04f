"""The configured map provider, as the pages' and admin's Leaflet maps need it.

`MAP_PROVIDER` picks a provider of `carloan.geo.PROVIDERS` (tiles, datum, tile grid);
`MAP_TILE_URL` replaces its tile URL (an intranet tile server or cache with the same grid). An
unknown provider stops every command at start-up (system check carloan.E001) instead of quietly
drawing another provider's tiles under markers in the wrong datum."""

from __future__ import annotations

from django.conf import settings
from django.core import checks

from carloan import geo

# Where the maps open (WGS-84): Xi'an, where the demo fleet drives.
DEFAULT_CENTER = (34.26, 108.94)


def provider_name() -> str:
    return getattr(settings, "MAP_PROVIDER", "") or geo.DEFAULT_PROVIDER


def map_config(*, zoom: int = 11, **extra) -> dict:
    """The JSON the front end's `CarloanGeo.createMap` reads (static/pages/geo.js). `center` is
    WGS-84; the page converts it, like every position, to the provider's datum."""
    name = provider_name()
    provider = geo.get_provider(name)
    return {
        "provider": name,
        "tiles": getattr(settings, "MAP_TILE_URL", "") or provider.tiles,
        "attribution": provider.attribution,
        "subdomains": provider.subdomains,
        "crs": provider.datum,
        "grid": provider.grid,
        "min_zoom": provider.min_zoom,
        "max_zoom": provider.max_zoom,
        "center": list(DEFAULT_CENTER),
        "zoom": zoom,
        **extra,
    }


@checks.register(checks.Tags.compatibility)
def check_map_provider(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    name = provider_name()
    if name in geo.PROVIDERS:
        return []
    return [
        checks.Error(
            f"MAP_PROVIDER={name!r} is not a map provider.",
            hint="One of: " + ", ".join(geo.PROVIDERS),
            id="carloan.E001",
        )
    ]
