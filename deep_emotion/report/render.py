"""Report sections and their HTML: one rendering for the notebooks (`_repr_html_`) and the
self-contained report file (tables as HTML, plots as base64 PNG, a little inline CSS, no scripts)."""
import base64
import datetime
import html
import io
from dataclasses import dataclass, field
from typing import List, Sequence, Union

import pandas as pd
from matplotlib.figure import Figure

FLOAT_FORMAT = "{:.4f}".format  # report precision; tests compare at 1e-4


@dataclass
class Text:
    text: str
    kind: str = "p"   # "p", "note" (grey box) or "alert" (red box)

    def html(self) -> str:
        body = html.escape(self.text).replace("\n", "<br>")
        return f"<p>{body}</p>" if self.kind == "p" else f'<div class="{self.kind}">{body}</div>'


@dataclass
class Table:
    id: str
    frame: pd.DataFrame
    caption: str = ""
    index: bool = True
    text: bool = False  # left-aligned cells (words and paths rather than numbers)

    def html(self) -> str:
        table = self.frame.to_html(table_id=self.id, float_format=FLOAT_FORMAT, index=self.index, na_rep="–",
                                   border=0, classes="data text" if self.text else "data", escape=True)
        caption = f'<div class="caption">{html.escape(self.caption)}</div>' if self.caption else ""
        return f'<div class="table-wrap">{caption}{table}</div>'


@dataclass
class Plot:
    """A matplotlib figure, rendered to PNG once (and closed) when the block is made."""
    id: str
    png: bytes
    caption: str = ""

    @classmethod
    def of(cls, id: str, figure: Figure, caption: str = "") -> "Plot":
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        return cls(id, buffer.getvalue(), caption)

    def html(self) -> str:
        data = base64.b64encode(self.png).decode("ascii")
        alt = html.escape(self.caption or self.id)
        caption = f"<figcaption>{html.escape(self.caption)}</figcaption>" if self.caption else ""
        return f'<figure id="{self.id}"><img src="data:image/png;base64,{data}" alt="{alt}">{caption}</figure>'


@dataclass
class Markdown:
    """Markdown of our own making (the model card), rendered with the `markdown` package; raw HTML in
    it is escaped first, so the file cannot inject markup or scripts into the report."""
    id: str
    text: str

    def html(self) -> str:
        import markdown  # pylint: disable=import-outside-toplevel

        body = markdown.markdown(html.escape(self.text, quote=False), extensions=["tables"])
        return f'<div class="markdown" id="{self.id}">{body}</div>'


Block = Union[Text, Table, Plot, Markdown]


@dataclass
class Section:
    id: str
    title: str
    blocks: List[Block] = field(default_factory=list)

    def table(self, id: str) -> pd.DataFrame:
        """A table's data, for notebook users who want to dig further."""
        return next(b.frame for b in self.blocks if isinstance(b, Table) and b.id == id)

    def html(self) -> str:
        return (f'<section id="{self.id}"><h2>{html.escape(self.title)}</h2>\n'
                + "\n".join(b.html() for b in self.blocks) + "</section>")

    def _repr_html_(self) -> str:  # Jupyter displays a section as the report does
        return f'<style>{CSS}</style><div class="de-report">{self.html()}</div>'


# Scoped to .de-report, so a section shown in Jupyter styles itself and not the notebook page.
CSS = """
.de-report { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; color: #222; line-height: 1.4; }
.de-report h2 { border-bottom: 1px solid #ccc; margin-top: 2em; color: #345; }
.de-report table.data { border-collapse: collapse; font-size: 13px; margin: .5em 0 1em; }
.de-report table.data th, .de-report table.data td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
.de-report table.data th { background: #f1f3f6; }
.de-report table.data.text td, .de-report table.data.text th { text-align: left; }
.de-report table.data tbody tr:nth-child(even) { background: #fafbfc; }
.de-report .table-wrap { overflow-x: auto; }
.de-report .caption, .de-report figcaption { font-size: 13px; color: #555; margin-top: .5em; }
.de-report figure { margin: 1em 0; } .de-report figure img { max-width: 100%; }
.de-report .note { background: #f4f6f8; border-left: 4px solid #8aa; padding: .5em 1em; margin: .5em 0; }
.de-report .alert { background: #fdf0f0; border-left: 4px solid #c33; padding: .5em 1em; margin: .5em 0; }
"""
PAGE_CSS = """
body { margin: 2em auto; max-width: 1100px; padding: 0 1em; }
h1 { border-bottom: 2px solid #345; padding-bottom: .2em; }
nav ol { columns: 2; }
.meta { color: #555; font-size: 14px; }
"""


def document(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    """The whole report as one HTML page that needs nothing but itself."""
    toc = "".join(f'<li><a href="#{s.id}">{html.escape(s.title)}</a></li>' for s in sections)
    created = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{CSS}{PAGE_CSS}</style></head><body class=\"de-report\">\n"
            f"<h1>{html.escape(title)}</h1><p class=\"meta\">{html.escape(subtitle)}<br>Written {created}.</p>\n"
            f"<nav><ol>{toc}</ol></nav>\n" + "\n".join(s.html() for s in sections) + "\n</body></html>\n")
