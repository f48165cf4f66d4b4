"""Generated cover art for categories: a small SVG (285x380, the 3:4 "box art" shape) from the
category's name and hue, made on the server so nothing is downloaded or shipped per category.

The picture is a diagonal gradient around the hue, a few soft circles placed from a hash of the
slug (so each category looks different but always the same), a large monogram and the name
wrapped over at most three lines. Every piece of text is XML-escaped; the document has no
script, link or external reference.
"""

from __future__ import annotations

import hashlib
from xml.sax.saxutils import escape

WIDTH = 285
HEIGHT = 380
#: Characters per line of the name, and lines at most.
LINE_CHARS = 14
MAX_LINES = 3


def _lines(name: str) -> list[str]:
    """``name`` wrapped at spaces into at most :data:`MAX_LINES` of about :data:`LINE_CHARS`;
    the last one ends with an ellipsis when the name does not fit."""
    lines: list[str] = []
    current = ""
    for word in name.split():
        while len(word) > LINE_CHARS:  # a long word is cut
            if current:
                lines.append(current)
                current = ""
            lines.append(word[: LINE_CHARS - 1] + "-")
            word = word[LINE_CHARS - 1 :]
        candidate = f"{current} {word}".strip()
        if len(candidate) <= LINE_CHARS:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    if len(lines) > MAX_LINES:
        lines = lines[:MAX_LINES]
        lines[-1] = lines[-1][: LINE_CHARS - 1].rstrip() + "…"
    return lines


def monogram(name: str) -> str:
    """The first letter of up to two words ("Science & Technology" -> "ST")."""
    letters = [word[0] for word in name.split() if word[0].isalnum()]
    return "".join(letters[:2]).upper() or name[:1].upper()


def category_svg(name: str, slug: str, hue: int) -> bytes:
    """The cover of a category as SVG bytes (UTF-8)."""
    seed = hashlib.sha256(slug.encode()).digest()
    second = (hue + 35 + seed[0] % 30) % 360
    circles = []
    for i in range(3):
        x = 30 + seed[1 + i] % (WIDTH - 60)
        y = 30 + seed[4 + i] % (HEIGHT // 2)
        r = 40 + seed[7 + i] % 90
        opacity = 0.10 + (seed[10 + i] % 12) / 100
        circles.append(
            f'<circle cx="{x}" cy="{y}" r="{r}" fill="#fff" fill-opacity="{opacity:.2f}"/>'
        )
    lines = _lines(name)
    size = 30 if max((len(line) for line in lines), default=0) <= 11 else 25
    first = HEIGHT - 28 - (len(lines) - 1) * (size + 4)
    text = "".join(
        f'<tspan x="20" y="{first + i * (size + 4)}">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    label = escape(name, {'"': "&quot;"})
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{label}">'
        '<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">'
        f'<stop offset="0" stop-color="hsl({hue},70%,46%)"/>'
        f'<stop offset="1" stop-color="hsl({second},75%,22%)"/>'
        "</linearGradient></defs>"
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="url(#g)"/>'
        + "".join(circles)
        + '<text x="20" y="130" font-family="system-ui, sans-serif" font-size="104" '
        f'font-weight="800" fill="#fff" fill-opacity="0.9">{escape(monogram(name))}</text>'
        f'<text font-family="system-ui, sans-serif" font-size="{size}" font-weight="700" '
        f'fill="#fff">{text}</text></svg>'
    )
    return svg.encode()
