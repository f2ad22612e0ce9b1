"""The seal picture on the public verification page: the stamp area of the signed page, rendered to PNG.

The picture is what the document shows, not a drawing of what it should show: ``pdftoppm`` renders the
page the seal's widget sits on and crops it to the widget's rectangle. It runs in a subprocess with a
timeout and a memory cap, on a file that the strict verifier has already read (an unreadable or failed
document gets no picture: a stamp image next to 未通过 would mislead).
"""

from __future__ import annotations

import logging
import resource
import subprocess
import tempfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

log = logging.getLogger("yizhang.console")

DPI = 100
MAX_PAGES_SCANNED = 500
RENDER_TIMEOUT_S = 10.0
RENDER_MEMORY_BYTES = 512 * 1024 * 1024
MAX_PNG_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class StampArea:
    page: int  # 1-based, as pdftoppm counts
    x: int  # pixels at DPI, from the left
    y: int  # pixels at DPI, from the top
    width: int
    height: int


def stamp_area(unverified_pdf: bytes, field_name: str | None = None) -> StampArea | None:
    """Where the first visible seal widget (or the named one) is drawn; None when there is none."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.fields import enumerate_sig_fields

    try:
        reader = PdfFileReader(BytesIO(unverified_pdf), strict=False)
        pages = int(reader.root["/Pages"]["/Count"])
        for name, _value, ref in enumerate_sig_fields(reader, filled_status=True):
            if field_name is not None and name != field_name:
                continue
            widget = ref.get_object()
            if "/Rect" not in widget and "/Kids" in widget:
                widget = widget["/Kids"][0].get_object()
            x1, y1, x2, y2 = (float(v) for v in widget["/Rect"])
            if abs(x2 - x1) < 8 or abs(y2 - y1) < 8:
                continue  # invisible (document timestamps, hidden signatures)
            page_ref = widget.raw_get("/P")
            for i in range(min(pages, MAX_PAGES_SCANNED)):
                page_obj_ref, _ = reader.find_page_for_modification(i)
                if page_obj_ref.idnum != getattr(page_ref, "idnum", None):
                    continue
                box = [float(v) for v in page_obj_ref.get_object()["/MediaBox"]]
                top = box[3]
                scale = DPI / 72.0
                return StampArea(
                    page=i + 1,
                    x=max(0, int((min(x1, x2) - box[0]) * scale)),
                    y=max(0, int((top - max(y1, y2)) * scale)),
                    width=int(abs(x2 - x1) * scale) + 1,
                    height=int(abs(y2 - y1) * scale) + 1,
                )
    except Exception:  # noqa: BLE001 - hostile structure: no picture, the verdict stands on its own
        log.info("no stamp area found", exc_info=True)
    return None


def _limit_memory() -> None:  # pragma: no cover - runs in the child
    resource.setrlimit(resource.RLIMIT_AS, (RENDER_MEMORY_BYTES, RENDER_MEMORY_BYTES))


def render_stamp_png(unverified_pdf: bytes, area: StampArea) -> bytes | None:
    """The stamp area as PNG bytes (pdftoppm), or None if rendering fails or takes too long."""
    with tempfile.TemporaryDirectory(prefix="yz-seal-") as tmp:
        src = Path(tmp) / "in.pdf"
        src.write_bytes(unverified_pdf)
        out = Path(tmp) / "stamp"
        cmd = [
            "pdftoppm",
            "-png",
            "-r", str(DPI),
            "-f", str(area.page),
            "-l", str(area.page),
            "-x", str(area.x),
            "-y", str(area.y),
            "-W", str(area.width),
            "-H", str(area.height),
            "-singlefile",
            str(src),
            str(out),
        ]  # fmt: skip
        try:
            subprocess.run(
                cmd,
                check=True,
                capture_output=True,
                timeout=RENDER_TIMEOUT_S,
                preexec_fn=_limit_memory,  # noqa: PLW1509 - no threads touched between fork and exec
            )
        except (OSError, subprocess.SubprocessError):
            log.info("pdftoppm failed on the stamp area", exc_info=True)
            return None
        png = out.with_suffix(".png")
        if not png.is_file() or png.stat().st_size > MAX_PNG_BYTES:
            return None
        return png.read_bytes()


def seal_picture(unverified_pdf: bytes, field_name: str | None = None) -> bytes | None:
    area = stamp_area(unverified_pdf, field_name)
    return render_stamp_png(unverified_pdf, area) if area is not None else None
