"""The catalogs shipped with the package (``policies/catalogs/``, see its README for their sources).

The demo county loads them and the tests read them; nothing outside the installed package is needed.
Standard library only.
"""

from __future__ import annotations

from enum import StrEnum
from importlib import resources


class BundledCatalog(StrEnum):
    """The shipped tables, by file name."""

    SHANXI = "shanxi_township_catalog.csv"  # 114 matters (蒲县 plan, Attachment 1)
    XINGGUO = "xingguo_county_township_catalog.csv"  # 26 matters (兴国县 县乡同办 plan)
    XINGGUO_NO2_SEALS = "xingguo_no2_seals.csv"  # 25 townships and their No. 2 seal numbers


def bundled_catalog(which: BundledCatalog) -> bytes:
    """The bytes of a shipped catalog, as ``yizhang catalog import`` would read them from a file."""
    return resources.files("policies").joinpath("catalogs", which.value).read_bytes()
