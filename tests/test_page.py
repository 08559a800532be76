"""rolebatch report --format html, rendered by a real headless browser
(Debian's chromium: `apt-get install -y chromium`; .ci/run installs it) and
checked as a person would look at it: not blank, every role named, one
interval per role, the baseline marked, nothing fetched from elsewhere."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import pytest

from rolebatch.cli import main
from tests.helpers import browser as _browser
from tests.helpers import chromium as _chromium
from tests.helpers import write_job

ROLES = [
    {"id": "none", "role": "", "metadata": {"kind": "control"}},
    {"id": "geographer", "role": "You are a geographer.", "metadata": {"kind": "expert"}},
    {"id": "chef", "role": "You are a chef.", "metadata": {"kind": "other expert"}},
    {"id": "friend", "role": "You are my close friend.", "metadata": {"kind": "interpersonal"}},
]


def _pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the unfiltered rows of an 8-bit RGB(A) PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    at, data, width = 8, b"", 0
    while at < len(png):
        length, kind = struct.unpack(">I4s", png[at : at + 8])
        chunk = png[at + 8 : at + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and colour in (2, 6)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            data += chunk
        at += 12 + length
    raw, stride, rows, previous = (
        zlib.decompress(data),
        width * channels,
        [],
        bytes(width * channels),
    )
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                guess = left + up - corner
                pa, pb, pc = abs(guess - left), abs(guess - up), abs(guess - corner)
                best = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + best) & 255
        rows.append(bytes(line[c] for c in range(0, stride, channels)))  # the red channel
        previous = bytes(line)
    return width, height, rows


@pytest.fixture
def page(rolebatch, fake, tmp_path, capsys) -> Path:
    questions = [
        {
            "id": f"q{n}",
            "query": f"Question {n}?",
            "options": ["a", "b", "c"],
            "expected": 1 + n % 3,
        }
        for n in range(12)
    ]
    job = write_job(tmp_path / "quiz.jsonl", questions)
    roles = write_job(tmp_path / "roles.jsonl", ROLES)
    result = rolebatch(str(job), "-o", "quiz.out.jsonl", "--task", "choice", "--roles", str(roles))
    assert result.code == 0, result.err
    capsys.readouterr()
    assert main(["report", "quiz.out.jsonl", "--format", "html"]) == 0
    path = tmp_path / "report.html"
    path.write_text(capsys.readouterr().out)
    return path


def test_the_page_is_self_contained(page):
    text = page.read_text()
    assert text.startswith("<!doctype html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<script" not in text and "@import" not in text


def test_a_browser_shows_every_role_with_one_interval_and_the_baseline(page, tmp_path):
    browser = _browser()
    dom = _chromium(browser, tmp_path / "profile", "--dump-dom", page.as_uri()).stdout
    first_plot = dom.split("<svg", 2)[1]
    groups = re.findall(r'<g class="row ([^"]*)" data-group="([^"]+)"', first_plot)
    assert sorted(name for _, name in groups) == sorted(r["id"] for r in ROLES)
    assert first_plot.count('class="interval"') == len(ROLES)
    assert [name for marks, name in groups if "baseline" in marks] == ["none"]
    for role in ROLES:
        assert f">{role['id']}" in dom  # named on the page


def test_a_browser_draws_the_page_not_a_blank(page, tmp_path):
    browser = _browser()
    shot = tmp_path / "shot.png"
    _chromium(
        browser,
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=1000,800",
        page.as_uri(),
    )
    width, height, rows = _pixels(shot.read_bytes())
    assert (width, height) == (1000, 800)
    inked = [sum(1 for value in row if value < 200) for row in rows]
    assert sum(inked) > 0.01 * width * height  # text, axes, points and bars
    assert sum(1 for count in inked if count) > height // 4  # all down the page, not a line


def test_a_browser_shows_the_head_the_gate_first_and_axes_that_say_what_they_measure(
    page, tmp_path, capsys
):
    browser = _browser()
    # A gate that fails: every role must be shown no worse by a hair, on 12 questions.
    code = main(["report", "quiz.out.jsonl", "--format", "html", "--non-inferiority", "0.01"])
    assert code == 1
    gated = tmp_path / "gated.html"
    gated.write_text(capsys.readouterr().out)
    dom = _chromium(browser, tmp_path / "profile", "--dump-dom", gated.as_uri()).stdout
    top = dom.split("<h1>", 1)[1].split("<h2>", 1)[0]
    assert "12 questions" in top and "4 groups by role" in top and "scorer <b>choice" in top
    assert "newest line written" in top and "model" in top
    assert "48 calls (48 requests)" in top and "rolebatch " in top
    assert "roles none, " in top
    assert 'data-gate="failed"' in top or "data-gate='failed'" in top
    assert "non-inferiority at a margin of 0.01: FAILED" in top
    # The headline comes first, before where the figures come from.
    headline = top.split('class="headline"', 1)[1].split("data-provenance", 1)[0]
    assert "no group differs detectably from none (3 comparisons, Holm)" in headline or (
        " than none: " in headline
    )
    axes = re.findall(r'<text class="axis"[^>]*>([^<]+)</text>', dom)
    assert axes[0].startswith("share correct by role")
    assert axes[1].startswith("difference in share correct from none")
    # Chance (three options: 1/3) drawn and named in the legend; the baseline too.
    assert 'class="chance"' in dom.split("</svg>", 1)[0]
    assert "chance (0.33: an option picked at random)" in dom
    assert "none, the baseline" in dom and "the baseline's mean" in dom
    # Nothing wider than the window, no cell that wraps.
    widths = [int(w) for w in re.findall(r'<svg[^>]* width="(\d+)"', dom)]
    assert widths and max(widths) <= 1000
    assert "white-space: nowrap" in dom and "overflow-x: auto" in dom
    # The paired table in its plot's order.
    plot = dom.split("question by question")[1].split("</svg>")[0]
    plotted = re.findall(r'data-group="([^"]+)"', plot)
    table = dom.split("question by question")[1].split("</svg>", 1)[1].split("</table>")[0]
    assert [g for g in re.findall(r"<td>([^<]+)</td>", table) if g in plotted] == plotted
    # A choice's option is which option, not a quantity: no mean of it.
    assert "option: mean" not in dom and "option = 1" in dom


def test_a_head_to_head_page_draws_its_outcomes_and_says_an_unreliable_judge_first(
    rolebatch, fake, tmp_path, capsys
):
    """A judge that always picks the first answer: every pair a tie, nothing
    decided; the page still draws each role's questions (all tied), names
    the unreliable judge in the headline, and no "– to –" is left."""
    job = write_job(tmp_path / "t.jsonl", [{"query": f"Write about thing {i}."} for i in range(3)])
    roles = write_job(tmp_path / "roles.jsonl", ROLES[:3])
    assert rolebatch(str(job), "-o", "sweep.jsonl", "--roles", str(roles)).code == 0
    Path("rubric.md").write_text("5: vivid. 1: off topic.\n")
    fake.reset()
    fake.fault(answer={"reasoning": "r", "winner": "A"})
    args = ["judge", "sweep.jsonl", "--rubric", "rubric.md", "--against", "none", "-o", "h.jsonl"]
    assert main([*args, "--base-url", fake.base_url, "--progress", "none"]) == 0
    capsys.readouterr()
    assert main(["report", "h.jsonl", "--format", "html"]) == 0
    path = tmp_path / "h2h.html"
    path.write_text(capsys.readouterr().out)
    dom = _chromium(_browser(), tmp_path / "profile", "--dump-dom", path.as_uri()).stdout
    headline = dom.split('class="headline"', 1)[1].split("</div>", 1)[0]
    assert "the judge is unreliable" in headline and "0% of pairs" in headline
    assert "geographer against none: no question decided (3 tied)" in headline
    assert dom.count('class="tied"') == 2 and 'class="won"' not in dom
    assert "Nothing to plot" not in dom and "– to –" not in dom and "none decided" in dom
    assert "share of questions won, tied and lost against none" in dom


def test_at_1200_px_no_table_hides_a_column_behind_a_scrollbar(page, tmp_path):
    """A wide window shows every table whole: no scroll box overflows (the
    paired table's last column used to sit behind a scrollbar at 1,200 px).
    The browser measures; a copy of the page carries the few lines that ask."""
    browser = _browser()
    measured = tmp_path / "measured.html"
    ask = (
        "<script>document.body.dataset.overflowing = [...document.querySelectorAll('.scroll')]"
        ".filter(e => e.scrollWidth > e.clientWidth).length;</script>"
    )
    measured.write_text(page.read_text().replace("</body>", ask + "</body>"))
    for width, most in ((1200, 0), (600, None)):
        args = ["--dump-dom", f"--window-size={width},900", measured.as_uri()]
        dom = _chromium(browser, tmp_path / "profile", *args).stdout
        (found,) = re.findall(r'data-overflowing="(\d+)"', dom)
        if most is None:
            assert int(found) > 0  # a narrow window does scroll: the measure sees it
        else:
            assert int(found) == most, width
