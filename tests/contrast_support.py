"""WCAG 2 contrast for the theme tests (no tests of its own): colours as the stylesheets write them
(`#0b5563`) or as a browser computes them (`rgb(11, 85, 99)`), and a stylesheet's light and dark
palettes (its `:root { --name: #rrggbb; }` blocks, the second inside `prefers-color-scheme: dark`).
"""

from __future__ import annotations

import re

AA_TEXT = 4.5  # WCAG 1.4.3: text and images of text
AA_NON_TEXT = 3.0  # WCAG 1.4.11: focus rings, field borders, the edges of buttons


def channels(colour: str) -> tuple[int, int, int]:
    """(r, g, b) of `#rrggbb`, `rgb(r, g, b)` or an opaque `rgba(...)`."""
    if colour.startswith("#"):
        r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
        return r, g, b
    r, g, b = (int(float(part)) for part in re.findall(r"[\d.]+", colour)[:3])
    return r, g, b


def luminance(colour: str) -> float:
    """Relative luminance: 0 for black, 1 for white."""
    linear = []
    for value in channels(colour):
        c = value / 255
        linear.append(c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4)
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(one: str, two: str) -> float:
    """The contrast ratio of two colours, from 1 (the same) to 21 (black on white)."""
    light, dark = sorted((luminance(one), luminance(two)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def palettes(css: str) -> dict[str, dict[str, str]]:
    """{"light": {name: colour}, "dark": {name: colour}} from a stylesheet's two `:root` blocks;
    the dark palette is the light one with the dark block's values over it."""
    blocks = re.findall(r":root \{([^}]*)\}", css)
    assert len(blocks) == 2, "expected a light :root and a dark :root"
    light, dark = (dict(re.findall(r"--([a-z-]+): (#[0-9a-f]{6});", block)) for block in blocks)
    assert 0 <= css.find("@media (prefers-color-scheme: dark)") < css.index(blocks[1]), "no dark media query"
    return {"light": light, "dark": {**light, **dark}}
