"""Documents the service centre issues, rendered from JSON data into clean A4 PDFs (CJK font embedded).

A template is a JSON file in ``signer/templates/``: a title, the fields it requires, defaults, and a list
of blocks (``number``, ``addressee``, ``para``, ``list``, ``table``, ``signature``). Text is laid out here
with the embedded font's real advances (CJK breaks between any two characters; no line starts with
closing punctuation). The issuing organ and date sit at the lower right of the last page, where the
default stamp position puts the seal over them, as on paper.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from io import BytesIO
from typing import Any

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

from core.errors import BadInput, NotFound

from ._fonts import font_engine, missing_glyphs

A4 = (595.28, 841.89)
MARGIN_X = 72.0
TOP = 841.89 - 80
BOTTOM = 90.0
_NO_LINE_START = set("，。、；：？！）》」』〕】”’,.;:?!)")
_FIELD = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class Template:
    name: str
    title: str
    document_kind: str
    required: tuple[str, ...]
    defaults: dict[str, str]
    blocks: tuple[dict[str, Any], ...]
    # The document kinds (DocumentKind member names) a document from this template can be: its own kind,
    # plus any the file lists under "document_kinds" (issue 22, leak 2: a permit is never a 受理通知书).
    document_kinds: tuple[str, ...] = ()

    def can_be(self, kind_name: str) -> bool:
        return kind_name in (self.document_kinds or (self.document_kind,))


def template_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".json")
        for p in resources.files("signer").joinpath("templates").iterdir()
        if p.name.endswith(".json")
    )


def load_template(name: str) -> Template:
    if name not in template_names():
        raise NotFound(
            "TEMPLATE_UNKNOWN",
            f"no template {name!r}; known: {', '.join(template_names())}",
            f"未知的文书模板 {name}",
        )
    raw = json.loads(resources.files("signer").joinpath("templates", f"{name}.json").read_text("utf-8"))
    return Template(
        name=name,
        title=raw["title"],
        document_kind=raw["document_kind"],
        required=tuple(raw["required"]),
        defaults=dict(raw.get("defaults", {})),
        blocks=tuple(raw["blocks"]),
        document_kinds=tuple(raw.get("document_kinds") or (raw["document_kind"],)),
    )


def check_template_request(name: str, kind_name: str) -> Template:
    """Before the decision (issue 22, leak 2): the template exists and declares ``kind_name`` (a
    DocumentKind member name) among the kinds it can be."""
    tpl = load_template(name)
    if not tpl.can_be(kind_name):
        raise BadInput(
            "TEMPLATE_KIND_MISMATCH",
            f"template {name} makes a {', '.join(tpl.document_kinds)}, not a {kind_name}: the declared "
            "document kind must be one its template can be",
            f"模板“{tpl.title}”不能作为所申报的文书种类（{kind_name}）用印：文书种类须与模板相符（依据000：专用章用于所列文书种类）",
            details={"template": name, "document_kind": kind_name, "allowed": list(tpl.document_kinds)},
        )
    return tpl


def check_template_data(name: str, data: dict[str, Any] | None) -> None:
    """Before a number is drawn (issue 22, leak 14): ``data`` fills the template and the font can draw it.
    The signer supplies the issuer, the date and the number itself, so they are stood in for here."""
    tpl = load_template(name)
    given = dict(data or {})
    values = _check_data(tpl, {"issuer": "乡", "date": "2026年1月1日", **given, "document_number": "1"})
    text = _all_text(tpl, {k: v for k, v in values.items() if k in given})
    missing = missing_glyphs(text)
    if missing:
        raise BadInput(
            "TEMPLATE_GLYPH_MISSING",
            f"the CJK font cannot draw: {missing}",
            f"字体缺少以下字符：{missing}",
            details={"characters": missing},
        )


def _check_data(tpl: Template, data: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise BadInput(
            "TEMPLATE_DATA_INVALID", "template data must be a JSON object", "模板数据须为 JSON 对象"
        )
    merged: dict[str, Any] = {**tpl.defaults, **{k: v for k, v in data.items() if v is not None}}
    missing = [f for f in tpl.required if merged.get(f) in (None, "", [])]
    if missing:
        raise BadInput(
            "TEMPLATE_DATA_INVALID",
            f"template {tpl.name} needs: {', '.join(missing)}",
            f"模板 {tpl.title} 缺少字段：{'、'.join(missing)}",
            details={"missing": missing},
        )
    for key, value in merged.items():
        if isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                raise BadInput(
                    "TEMPLATE_DATA_INVALID", f"{key}: a list of strings expected", "列表字段须为字符串"
                )
        elif not isinstance(value, str | int | float):
            raise BadInput("TEMPLATE_DATA_INVALID", f"{key}: text expected", f"字段 {key} 须为文本")
    return merged


def _fill(text: str, data: dict[str, Any]) -> str:
    return _FIELD.sub(lambda m: str(data.get(m.group(1), "")), text)


class _Page:
    def __init__(self) -> None:
        self.ops: list[bytes] = []
        self.y = TOP


class _Layout:
    """Draws lines of text on A4 pages, breaking pages as needed."""

    def __init__(self, writer: PdfFileWriter, all_text: str) -> None:
        self.writer = writer
        self.engine = font_engine(writer, all_text)
        self.pages: list[_Page] = [_Page()]

    @property
    def page(self) -> _Page:
        return self.pages[-1]

    def width(self, text: str, size: float) -> float:
        self.engine.font_size = size  # type: ignore[assignment]  # pyHanko annotates int; floats work
        return self.engine.shape(text, with_actual_text=False).x_advance * size

    def ensure(self, height: float) -> None:
        if self.page.y - height < BOTTOM:
            self.pages.append(_Page())

    def text_at(self, text: str, size: float, x: float, y: float) -> None:
        if not text:
            return
        self.engine.font_size = size  # type: ignore[assignment]  # pyHanko annotates int; floats work
        shaped = self.engine.shape(text)
        self.page.ops.append(b"BT /F1 %.2f Tf 1 0 0 1 %.2f %.2f Tm %s ET" % (size, x, y, shaped.graphics_ops))

    def wrap(self, text: str, size: float, width: float, first_indent: float = 0.0) -> list[str]:
        lines: list[str] = []
        current = ""
        limit = width - first_indent
        for ch in text:
            if ch == "\n":
                lines.append(current)
                current, limit = "", width
                continue
            if current and self.width(current + ch, size) > limit and ch not in _NO_LINE_START:
                lines.append(current)
                current, limit = "", width
            current += ch
        lines.append(current)
        return lines

    def paragraph(self, text: str, size: float = 14, indent_chars: int = 2, leading: float = 1.75) -> None:
        indent = size * indent_chars
        width = A4[0] - 2 * MARGIN_X
        for i, line in enumerate(self.wrap(text, size, width, indent)):
            self.ensure(size * leading)
            self.page.y -= size * leading
            self.text_at(line, size, MARGIN_X + (indent if i == 0 else 0), self.page.y)

    def centred(self, text: str, size: float, gap: float) -> None:
        self.ensure(size + gap)
        self.page.y -= size + gap
        self.text_at(text, size, (A4[0] - self.width(text, size)) / 2, self.page.y)

    def right(self, text: str, size: float, y: float, right_x: float) -> None:
        self.text_at(text, size, right_x - self.width(text, size), y)

    def table(self, rows: list[tuple[str, str]], size: float = 13) -> None:
        label_w = max(self.width(label, size) for label, _ in rows) + 20
        x0, x1 = MARGIN_X, A4[0] - MARGIN_X
        value_w = x1 - x0 - label_w - 20
        pad = size * 0.7
        self.page.y -= 12
        for label, value in rows:
            lines = self.wrap(value, size, value_w)
            h = max(1, len(lines)) * size * 1.5 + pad
            self.ensure(h)
            top = self.page.y
            self.page.ops.append(
                b"0.2 G 0.8 w %.2f %.2f %.2f %.2f re S %.2f %.2f m %.2f %.2f l S"
                % (x0, top - h, x1 - x0, h, x0 + label_w, top, x0 + label_w, top - h)
            )
            self.text_at(label, size, x0 + 10, top - pad / 2 - size * 1.15)
            for i, line in enumerate(lines):
                self.text_at(line, size, x0 + label_w + 10, top - pad / 2 - size * 1.15 - i * size * 1.5)
            self.page.y = top - h

    def finish(self) -> bytes:
        font_ref = self.engine.as_resource()
        for page in self.pages:
            stream = generic.StreamObject(stream_data=b"\n".join(page.ops))
            stream.compress()
            res = generic.DictionaryObject(
                {pdf_name("/Font"): generic.DictionaryObject({pdf_name("/F1"): font_ref})}
            )
            self.writer.insert_page(
                PageObject(contents=self.writer.add_object(stream), media_box=(0, 0, *A4), resources=res)
            )
        out = BytesIO()
        self.writer.write(out)
        return out.getvalue()


def _all_text(tpl: Template, data: dict[str, Any]) -> str:
    parts = [tpl.title, json.dumps(tpl.blocks, ensure_ascii=False)]
    for v in data.values():
        parts.append("".join(v) if isinstance(v, list) else str(v))
    return _fill("".join(parts), data) + "0123456789.、（）()年月日第号至"


def render_template(name: str, data: dict[str, Any]) -> bytes:
    """Render template ``name`` with ``data`` into a PDF (bytes)."""
    tpl = load_template(name)
    values = _check_data(tpl, data)
    text = _all_text(tpl, values)
    missing = missing_glyphs(text)
    if missing:
        raise BadInput(
            "TEMPLATE_GLYPH_MISSING",
            f"the CJK font cannot draw: {missing}",
            f"字体缺少以下字符：{missing}",
            details={"characters": missing},
        )
    writer = PdfFileWriter()
    lay = _Layout(writer, text)
    lay.centred(str(values.get("issuer", "")), 18, 0)
    lay.centred(tpl.title, 24, 14)
    for block in tpl.blocks:
        kind = block["type"]
        if kind == "number":
            number = str(values.get("document_number", ""))
            if number:
                lay.centred(number, 13, 12)
            lay.page.y -= 10
        elif kind == "addressee":
            lay.paragraph(_fill(block["text"], values), indent_chars=0)
        elif kind == "para":
            opt = block.get("optional")
            if opt and not values.get(opt):
                continue
            lay.paragraph(_fill(block["text"], values))
        elif kind == "list":
            items = values.get(block["field"], [])
            if isinstance(items, str):
                items = [items]
            for i, item in enumerate(items, 1):
                lay.paragraph(f"{i}. {item}")
        elif kind == "table":
            lay.table([(_fill(a, values), _fill(b, values)) for a, b in block["rows"]])
        elif kind == "signature":
            # Organ and date at the lower right of the page, under the default seal position.
            if lay.page.y < 250:
                lay.pages.append(_Page())
            right_x = A4[0] - MARGIN_X - 10
            lay.right(str(values["issuer"]), 14, 190, right_x)
            lay.right(str(values["date"]), 14, 165, right_x)
    return lay.finish()
