"""The static HTML page: sections of typed blocks rendered by one Jinja2 template with autoescaping.

No fragment of HTML is built by hand: a section holds :class:`Block` values
(heading, paragraph, table, key/value list, figure, note, preformatted text,
collapsible details) whose every string (from a path, a config, a station
file, a file attribute, a run name) is text, escaped by the template engine
(``autoescape=True``). Inline CSS, no script, no network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import jinja2
import pandas as pd

__all__ = ["Block", "Section", "render_page", "table", "kv", "figure", "note", "pre", "heading", "para", "details"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#23415a;color:#fff;padding:14px 28px}header h1{margin:0;font-size:1.4em}
header p{margin:4px 0 0;font-size:.9em;opacity:.85}
nav{padding:8px 28px;background:#e8eef3;font-size:.9em}nav a{margin-right:14px;color:#23415a}
main{padding:8px 28px 40px;max-width:1250px}
section{background:#fff;border:1px solid #dde3e8;border-radius:6px;padding:12px 20px;margin:18px 0}
h2{font-size:1.15em;margin:4px 0 10px;color:#23415a}h3{font-size:1em;margin:14px 0 6px}
table.tbl{border-collapse:collapse;font-size:.82em;margin:6px 0}
table.tbl th,table.tbl td{border:1px solid #d5dbe0;padding:3px 7px;text-align:right}
table.tbl th{background:#eef2f5}table.tbl td:first-child,table.tbl th:first-child{text-align:left}
dl.kv{display:grid;grid-template-columns:max-content auto;gap:3px 14px;font-size:.88em}dl.kv dt{font-weight:600}
dl.kv dd{margin:0}
figure{display:inline-block;margin:8px 14px 8px 0;vertical-align:top}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.8em;color:#555;max-width:760px}
p.missing{background:#fff6e0;border-left:4px solid #e0a800;padding:6px 10px;font-size:.9em}
pre{background:#f3f5f7;padding:8px;font-size:.78em;overflow:auto;max-height:420px}
.scroll{max-height:460px;overflow:auto}
"""

_TEMPLATE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<style>{{ css | safe }}</style></head><body><header><h1>{{ title }}</h1><p>{{ subtitle }}</p></header>
<nav>{% for s in sections %}<a href="#{{ s.id }}">{{ s.title }}</a>{% endfor %}</nav><main>
{%- macro render(b) -%}
{%- if b.kind == "h3" %}<h3>{{ b.text }}</h3>
{%- elif b.kind == "p" %}<p>{% for part in b.parts %}{% if part.tag == "a" %}<a href="#{{ part.anchor }}">{{ part.text }}</a>
{%- elif part.tag %}<{{ part.tag }}>{{ part.text }}</{{ part.tag }}>{% else %}{{ part.text }}{% endif %}{% endfor %}</p>
{%- elif b.kind == "note" %}<p class="missing">{{ b.text }}</p>
{%- elif b.kind == "pre" %}<pre>{{ b.text }}</pre>
{%- elif b.kind == "kv" %}<dl class="kv">{% for k, v in b.items %}<dt>{{ k }}</dt><dd>{{ v }}</dd>{% endfor %}</dl>
{%- elif b.kind == "figure" %}<figure><img src="{{ b.src }}" alt="{{ b.caption }}"{% if b.width %} width="{{ b.width }}"{% endif %}><figcaption>{{ b.caption }}</figcaption></figure>
{%- elif b.kind == "table" %}{% if b.scroll %}<div class="scroll">{% endif %}<table class="tbl"><thead><tr>
{%- for h in b.header %}<th>{{ h }}</th>{% endfor %}</tr></thead><tbody>
{%- for row in b.rows %}<tr>{% for v in row %}{% if loop.index0 < b.n_index %}<th>{{ v }}</th>{% else %}<td>{{ v }}</td>
{%- endif %}{% endfor %}</tr>{% endfor %}</tbody></table>
{%- if b.scroll %}</div>{% endif %}
{%- elif b.kind == "details" %}<details><summary>{{ b.text }}</summary>{% for c in b.children %}{{ render(c) }}{% endfor %}</details>
{%- endif %}
{%- endmacro %}
{%- for s in sections %}<section id="{{ s.id }}"><h2>{{ s.title }}</h2>{% for b in s.body %}{{ render(b) }}{% endfor %}</section>
{% endfor %}</main></body></html>
"""

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
_PAGE = _ENV.from_string(_TEMPLATE)
_TAGS = ("em", "code", "a")


@dataclass
class Block:
    """One piece of a section; every string in it is text (the template escapes it)."""

    kind: str
    text: str = ""
    parts: list = field(default_factory=list)
    items: list = field(default_factory=list)
    header: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    children: list = field(default_factory=list)
    src: str = ""
    caption: str = ""
    width: int | None = None
    scroll: bool = False
    n_index: int = 0  # leading table columns that label the row (header cells)


@dataclass
class Section:
    """One report section: anchor id, title, blocks."""

    id: str
    title: str
    body: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block | None) -> "Section":
        for b in blocks:
            if b is None:
                continue
            if not isinstance(b, Block):
                raise TypeError(f"a report section takes Blocks, not {type(b).__name__} (no hand-built HTML)")
            self.body.append(b)
        return self


def _cell(v: Any, digits: int) -> str:
    if isinstance(v, float):
        return "NaN" if math.isnan(v) else f"{v:.{digits}f}"
    return str(v)


def table(df: pd.DataFrame, digits: int = 4, index: bool = True, scroll: bool = False) -> Block:
    """A DataFrame as a table (floats to ``digits`` decimals, NaN as 'NaN'; index levels as first columns)."""
    frame = df.reset_index() if index else df
    if index and isinstance(df.index, pd.RangeIndex) and df.index.name is None:
        frame = frame.rename(columns={"index": ""})
    header = [" ".join(str(p) for p in c) if isinstance(c, tuple) else str(c) for c in frame.columns]
    rows = [[_cell(v.item() if hasattr(v, "item") else v, digits) for v in row]
            for row in frame.itertuples(index=False, name=None)]
    return Block("table", header=header, rows=rows, scroll=scroll, n_index=df.index.nlevels if index else 0)


def kv(items: Mapping) -> Block:
    """Key/value pairs as a definition list (values as text)."""
    def text(v) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    return Block("kv", items=[(str(k), text(v)) for k, v in items.items()])


def figure(src: str, caption: str, width: int | None = None) -> Block:
    """An image of the report's own ``img/`` folder with its caption."""
    return Block("figure", src=str(src), caption=str(caption), width=int(width) if width else None)


def note(text: str) -> Block:
    """A plain note that a part is missing and why."""
    return Block("note", text=str(text))


def pre(text: str) -> Block:
    return Block("pre", text=str(text))


def heading(text: str) -> Block:
    return Block("h3", text=str(text))


def para(*parts: str | tuple) -> Block:
    """A paragraph of text parts; ``("em", text)``, ``("code", text)`` or ``("a", text, "#anchor")``."""
    out = []
    for p in parts:
        if isinstance(p, tuple):
            if p[0] not in _TAGS:
                raise ValueError(f"paragraph part tag {p[0]!r}: one of {_TAGS}")
            anchor = p[2].lstrip("#") if p[0] == "a" else ""
            out.append({"tag": p[0], "text": str(p[1]), "anchor": anchor})
        else:
            out.append({"tag": "", "text": str(p), "anchor": ""})
    return Block("p", parts=out)


def details(summary: str, *children: Block) -> Block:
    """A collapsed part: ``summary`` shown, ``children`` on click."""
    return Block("details", text=str(summary), children=list(children))


def render_page(title: str, subtitle: str, sections: list[Section]) -> str:
    """The whole page: header, section links, sections (one template, autoescaped)."""
    return _PAGE.render(title=str(title), subtitle=str(subtitle), sections=sections, css=_CSS)
