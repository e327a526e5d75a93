"""The static HTML page: sections with tables, figures and plain notes; inline CSS, no script, no network."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Mapping

import pandas as pd

__all__ = ["Section", "render_page", "table_html", "dict_html", "figure_html", "note_html", "pre_html"]

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


@dataclass
class Section:
    """One report section: anchor id, title, body HTML, and whether its inputs were there."""

    id: str
    title: str
    body: list[str] = field(default_factory=list)

    def add(self, fragment: str) -> "Section":
        self.body.append(fragment)
        return self


def table_html(df: pd.DataFrame, digits: int = 4, index: bool = True, scroll: bool = False) -> str:
    """A DataFrame as an escaped HTML table (floats to ``digits`` decimals)."""
    text = df.to_html(float_format=lambda v: f"{v:.{digits}f}", escape=True, classes="tbl", border=0, index=index,
                      na_rep="NaN")
    return f'<div class="scroll">{text}</div>' if scroll else text


def dict_html(items: Mapping) -> str:
    """Key/value pairs as a definition list (values as text)."""
    def text(v) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    rows = "".join(f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(text(v))}</dd>" for k, v in items.items())
    return f'<dl class="kv">{rows}</dl>'


def figure_html(src: str, caption: str, width: int | None = None) -> str:
    w = f' width="{int(width)}"' if width else ""
    cap = html.escape(caption)
    return f'<figure><img src="{html.escape(src)}" alt="{cap}"{w}><figcaption>{cap}</figcaption></figure>'


def note_html(text: str) -> str:
    """A plain note that a part is missing and why."""
    return f'<p class="missing">{html.escape(text)}</p>'


def pre_html(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"


def render_page(title: str, subtitle: str, sections: list[Section]) -> str:
    """The whole page: header, section links, sections."""
    nav = "".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in sections)
    body = "".join(f'<section id="{s.id}"><h2>{html.escape(s.title)}</h2>{"".join(s.body)}</section>'
                   for s in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
            f"<style>{_CSS}</style></head><body><header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p>"
            f"</header><nav>{nav}</nav><main>{body}</main></body></html>\n")
