"""report.html: the markdown report as one offline page (Python-Markdown with its tables extension); the plots are
the PNG files next to it, or embedded as base64 data when ``embed`` is set."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import markdown as md

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 110em; padding: 0 1em; line-height: 1.4; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; vertical-align: top; text-align: left; }
th { background: #f3f3f3; position: sticky; top: 0; }
tr:nth-child(even) td { background: #fafafa; }
code { font-size: 0.95em; }
img { max-width: 100%; display: block; margin: 1em 0; }
"""


def _embed(page: str, folder: Path) -> str:
    def inline(match: re.Match) -> str:
        path = folder / html.unescape(match.group(1))
        if not path.is_file():
            return match.group(0)
        return f'src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}"'

    return re.sub(r'src="([^":]+\.png)"', inline, page)


def write_html(markdown_text: str, path: Path, title: str = "Stability report", embed: bool = False) -> Path:
    body = md.markdown(markdown_text, extensions=["tables"], output_format="html")
    if embed:
        body = _embed(body, path.parent)
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")
    path.write_text(page, encoding="utf-8")
    return path
