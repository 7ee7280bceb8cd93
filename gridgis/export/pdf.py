"""PDF boards and atlas, printed by headless Chromium from the HTML map pages.

Each page of a written map site (:func:`gridgis.maps.write_maps`) is opened in Debian's
Chromium (driven by Playwright, never a downloaded browser), printed with its own print
stylesheet (``@page``: boards A4 portrait, maps A4 landscape) and the printed pages are
joined into one PDF with pypdf.

- boards: one A4 page per grid board;
- atlas: a cover (title, date, counts and contents), the index map, then for each street
  its map followed by its communities' maps, and one board per grid.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from gridgis.errors import InputError

#: Debian's Chromium (apt-get install chromium); override with GRIDGIS_CHROMIUM.
CHROMIUM = Path(os.environ.get("GRIDGIS_CHROMIUM", "/usr/bin/chromium"))

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: Browser viewport (CSS px at 96 dpi) matching the printable area of each page kind, so
#: the map is laid out at the size it prints: A4 portrait board (186 mm wide sheet), A4
#: landscape map (297 × 210 mm less 8 mm margins).
VIEWPORTS = {"board": (794, 1000), "map": (1062, 733)}

#: Milliseconds to let a page draw (labels decluttered) before printing.
SETTLE_MS = 250

#: Boards printed by one print call: each Chromium print costs about a second whatever its
#: length, so boards (A4 sheets margins included, see ``gridgis.maps.boards``) are printed
#: as "books" of this many pages, one ``<iframe>`` per board.
BOOK_SIZE = 40

BOOK_CSS = (
    "@page{size:A4 portrait;margin:0}html,body{margin:0;padding:0}"
    "iframe{display:block;width:210mm;height:297mm;border:0;break-after:page;overflow:hidden}"
)

COVER_CSS = """
@page { size: A4 portrait; margin: 20mm; }
body { font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; color: #111; }
h1 { font-size: 30pt; text-align: center; margin-top: 50mm; letter-spacing: 4pt; }
.sub { text-align: center; font-size: 14pt; color: #333; }
table { margin: 20mm auto 0; border-collapse: collapse; font-size: 12pt; }
td, th { border: 1px solid #555; padding: 2mm 5mm; }
.toc { margin-top: 12mm; font-size: 10pt; columns: 2; }
"""


def _chromium() -> Path:
    if not CHROMIUM.exists():
        raise InputError(
            f"PDF export needs Chromium at {CHROMIUM} (Debian: apt-get install chromium; "
            "or set GRIDGIS_CHROMIUM)"
        )
    return CHROMIUM


def cover_page(title: str, rows: Sequence[tuple[str, str]], contents: Sequence[str]) -> str:
    """HTML of the atlas cover: title, date, a table of counts and the contents."""
    e = html.escape
    body = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    toc = "".join(f"<div>{e(c)}</div>" for c in contents)
    today = dt.date.today().isoformat()
    return (
        f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{e(title)}'
        f"</title><style>{COVER_CSS}</style></head><body><h1>{e(title)}</h1>"
        f'<div class="sub">制图日期 {today} · gridgis</div><table>{body}</table>'
        f'<div class="toc">{toc}</div></body></html>'
    )


def print_pages(
    pages: Sequence[tuple[Path, str]],
    out_pdf: str | Path,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Print HTML pages to one PDF, in order.

    Parameters
    ----------
    pages
        ``(html file, kind)``: kind ``board`` (A4 portrait sheets, printed in books of
        :data:`BOOK_SIZE`), ``map`` (landscape) or ``page`` (portrait, printed alone).
    out_pdf
        Target file (written to a temporary name, then renamed).

    Returns
    -------
    int
        Pages in the written PDF.
    """
    from concurrent.futures import ThreadPoolExecutor

    # in a thread of its own: Playwright's sync API refuses to start where an asyncio loop
    # (or another Playwright session) already runs, e.g. inside a notebook or a server
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(_print, pages, Path(out_pdf), progress).result()


def _print(
    pages: Sequence[tuple[Path, str]],
    out_pdf: Path,
    progress: Callable[[int, int], None] | None,
) -> int:
    from playwright.sync_api import sync_playwright
    from pypdf import PdfReader, PdfWriter

    exe = _chromium()
    writer = PdfWriter()
    jobs = _jobs(pages, out_pdf)
    done = 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(exe), args=CHROMIUM_ARGS)
        try:
            contexts = {}
            for kind, (w, h) in VIEWPORTS.items():
                contexts[kind] = browser.new_context(viewport={"width": w, "height": h})
            tabs = {kind: ctx.new_page() for kind, ctx in contexts.items()}
            for path, kind, count in jobs:
                tab = tabs[kind]
                tab.goto(Path(path).resolve().as_uri(), wait_until="load")
                tab.wait_for_timeout(SETTLE_MS)
                pdf = tab.pdf(prefer_css_page_size=True, print_background=True)
                for page in PdfReader(io.BytesIO(pdf)).pages:
                    writer.add_page(page)
                done += count
                if progress:
                    progress(done, len(pages))
        finally:
            browser.close()
            for path, _, _count in jobs:
                if path.name.startswith(".book-"):
                    path.unlink(missing_ok=True)
    out_pdf.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_pdf.with_name(out_pdf.name + ".tmp")
    with open(tmp, "wb") as fh:
        writer.write(fh)
    tmp.replace(out_pdf)
    return len(writer.pages)


def print_groups(pages: Sequence[tuple[Path, str]]) -> list[list[tuple[Path, str]]]:
    """The pages as print calls, in order: each run of boards cut into books of
    :data:`BOOK_SIZE` (from the start of the run), every other page alone. A contiguous
    range of these groups printed on its own gives the same books (how
    :mod:`gridgis.partitioned.export` cuts a PDF between workers)."""
    groups: list[list[tuple[Path, str]]] = []
    run: list[tuple[Path, str]] = []
    for path, kind in pages:
        if kind == "board":
            run.append((Path(path), kind))
            if len(run) == BOOK_SIZE:
                groups.append(run)
                run = []
            continue
        if run:
            groups.append(run)
            run = []
        groups.append([(Path(path), kind)])
    if run:
        groups.append(run)
    return groups


def _jobs(pages: Sequence[tuple[Path, str]], out_pdf: Path) -> list[tuple[Path, str, int]]:
    """Print jobs ``(html file, viewport kind, pages)``: runs of boards become books (an
    HTML file of iframes next to the PDF), other pages are printed alone."""
    jobs: list[tuple[Path, str, int]] = []
    for group in print_groups(pages):
        path, kind = group[0]
        if kind != "board":
            jobs.append((path, "board" if kind == "page" else kind, 1))
            continue
        book = out_pdf.parent / f".book-{out_pdf.stem}-{len(jobs):05d}.html"
        frames = "".join(f'<iframe src="{p.resolve().as_uri()}"></iframe>' for p, _ in group)
        book.parent.mkdir(parents=True, exist_ok=True)
        book.write_text(
            f'<!DOCTYPE html><html><head><meta charset="utf-8"><style>{BOOK_CSS}</style>'
            f"</head><body>{frames}</body></html>",
            encoding="utf-8",
        )
        jobs.append((book, "board", len(group)))
    return jobs


def board_pages(site_dir: Path, codes: Sequence[str] | None = None) -> list[tuple[Path, str]]:
    """The board pages of a written site (all, or those of ``codes``), by grid code."""
    boards = sorted((Path(site_dir) / "boards").glob("*.html"))
    if codes is not None:
        wanted = set(map(str, codes))
        boards = [b for b in boards if b.stem in wanted]
    return [(b, "board") for b in boards]


def atlas_pages(
    site_dir: Path,
    streets: Sequence[tuple[str, str]],
    communities: Sequence[tuple[str, str, str]],
    grids: Sequence[tuple[str, str]],
    title: str,
    counts: Sequence[tuple[str, str]],
) -> list[tuple[Path, str]]:
    """Pages of the atlas, in order: cover, index map, then per street its map, its
    communities' maps, and the boards of their grids.

    Parameters
    ----------
    streets
        ``(street_code, name)`` in order.
    communities
        ``(community_code, name, street_code)``.
    grids
        ``(grid_code, community_code)``.
    """
    site_dir = Path(site_dir)
    # contents lines with the page each starts on (page 1 is the cover)
    contents = ["区级网格图 (索引图) · 第 2 页"]
    order: list[tuple[Path, str]] = [(site_dir / "index.html", "map")]
    comms_of: dict[str, list[tuple[str, str]]] = {}
    for cc, cname, csc in communities:
        comms_of.setdefault(csc, []).append((cc, cname))
    grids_of: dict[str, list[str]] = {}
    for gc, gcc in grids:
        grids_of.setdefault(gcc, []).append(gc)
    for sc, sname in streets:
        contents.append(f"{sname} ({sc}) · 第 {len(order) + 2} 页")
        order.append((site_dir / "streets" / f"{sc}.html", "map"))
        for cc, cname in comms_of.get(sc, []):
            contents.append(f"  {cname} ({cc}) · 第 {len(order) + 2} 页")
            order.append((site_dir / "communities" / f"{cc}.html", "map"))
            order += [(site_dir / "boards" / f"{gc}.html", "board") for gc in grids_of.get(cc, [])]
    missing = [str(p) for p, _ in order if not p.exists()]
    if missing:
        raise InputError(f"atlas: map pages missing, e.g. {missing[0]} (write the maps first)")
    cover = site_dir / "atlas_cover.html"
    cover.write_text(cover_page(title, counts, contents), encoding="utf-8")
    return [(cover, "page"), *order]
