"""The verification QR code's fast mask choice (signer/_qr.py) gives qrcode's own matrix, mask and score."""

from __future__ import annotations

import random
import string

import pytest
import qrcode
from qrcode import util as qr_util

from signer._qr import _best_fit, _create_data, _penalty, _rows, _version_layout, qr_matrix, verification_url


def _reference(url: str) -> qrcode.QRCode:
    qr = qrcode.QRCode(border=0, error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(url)
    qr.make(fit=True)
    return qr


def _urls() -> list[str]:
    rng = random.Random(24)
    alphabet = string.ascii_letters + string.digits + "%&=-_"
    urls = [
        verification_url("https://yz.example.gov.cn", "兴江乡审字〔2026〕第000123号", "ab" * 32),
        verification_url("http://127.0.0.1:8000/", "X-1", "0" * 64),
        "https://x/verify?no=1",
    ]
    for length in (1, 7, 30, 90, 160, 200, 260, 400, 700, 1500):
        urls.append("https://x.example/verify?" + "".join(rng.choice(alphabet) for _ in range(length)))
    return urls


@pytest.mark.parametrize("url", _urls())
def test_matrix_is_qrcodes(url: str) -> None:
    ref = _reference(url)
    assert _best_fit(ref.error_correction, ref.data_list) == ref.version
    assert _create_data(ref.version, ref.error_correction, ref.data_list) == list(ref.data_cache)
    assert qr_matrix(url) == ref.get_matrix()


@pytest.mark.parametrize("url", _urls()[:6])
def test_every_masks_score_is_qrcodes(url: str) -> None:
    """Not only the winner: each mask's penalty equals qrcode's lost_point of its test matrix, so a tie or a
    near miss cannot hide a difference in one of the four rules."""
    ref = _reference(url)
    lay = _version_layout(ref.version)
    data = list(ref.data_cache)
    bits = int.from_bytes(bytes(data), "big") << (lay.count - len(data) * 8)
    src = format(bits, f"0{lay.count}b") + "01"
    unmasked_rows = int("".join(src[i] for i in lay.by_row), 2)
    scores = []
    for m in range(8):
        ref.makeImpl(True, m)
        reference_rows = ["".join("1" if x else "0" for x in row) for row in ref.modules]
        assert _rows(unmasked_rows ^ lay.row_masks[m], lay) == reference_rows
        # the reference matrix's own rows and columns, as the layout's integers (separators light)
        rows = int("".join(row + "0" for row in reference_rows), 2)
        cols = int("".join("".join(row[c] for row in reference_rows) + "0" for c in range(lay.n)), 2)
        scores.append(_penalty(rows, cols, lay))
        assert scores[-1] == qr_util.lost_point(ref.modules)
    assert len(set(scores)) > 1  # the masks differ in score: the test compares something


@pytest.mark.parametrize("box", [(72.0, 40.0, 128.0, 96.0), (0.5, 10.25, 56.5, 66.25)])
def test_cached_module_rectangles_are_the_formatted_ones(box: tuple[float, float, float, float]) -> None:
    from signer._qr import _module_rects

    matrix = qr_matrix(_urls()[0])
    n = len(matrix)
    module = (box[2] - box[0]) / n
    rects = _module_rects(n, box[0], box[3], module)
    assert [rects[r * n + c] for r, row in enumerate(matrix) for c, dark in enumerate(row) if dark] == [
        b"%.3f %.3f %.3f %.3f re" % (box[0] + c * module, box[3] - (r + 1) * module, module, module)
        for r, row in enumerate(matrix)
        for c, dark in enumerate(row)
        if dark
    ]
