"""Section fragments rendered once and reused across variants, never stale.

Delivery renders one edition per variant; `{% cache issue.slug, section %}` in the theme keeps each
section's output, so these tests check that what is reused is exactly what a fresh render gives, that a
changed section is rendered anew, and that the live preview picks up a theme edit at once.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading
import time
import urllib.request

from newsletter.content.model import Places
from newsletter.editor import Editor
from newsletter.preview import make_server, preview_url
from newsletter.settings import Settings


def _places(issue):
    return next(section for section in issue.sections if isinstance(section, Places))


def test_variants_rendered_by_one_renderer_equal_fresh_renders(settings, sample):
    issue = sample.edition.issue
    places = _places(issue)
    reordered = dataclasses.replace(places, items=tuple(reversed(places.items)))
    variant = dataclasses.replace(
        issue, sections=tuple(reordered if section is places else section for section in issue.sections)
    )
    shared = Editor(settings).renderer
    first, second, again = shared.render(issue), shared.render(variant), shared.render(issue)

    assert first.html == again.html == Editor(settings).renderer.render(issue).html
    assert second.html == Editor(settings).renderer.render(variant).html
    assert second.text == Editor(settings).renderer.render(variant).text
    first_place, last_place = places.items[0].place, places.items[-1].place
    assert first.html.index(first_place) < first.html.index(last_place)
    assert second.html.index(last_place) < second.html.index(first_place)
    assert second.text.index(last_place) < second.text.index(first_place)


def test_a_changed_item_is_never_served_from_an_earlier_render(settings, sample):
    issue = sample.edition.issue
    places = _places(issue)
    renamed = dataclasses.replace(places.items[0], place="Renamed Place For This Test")
    changed = dataclasses.replace(places, items=(renamed, *places.items[1:]))
    variant = dataclasses.replace(
        issue, sections=tuple(changed if section is places else section for section in issue.sections)
    )
    renderer = Editor(settings).renderer
    renderer.render(issue)
    edition = renderer.render(variant)
    assert "Renamed Place For This Test" in edition.html
    assert "Renamed Place For This Test" in edition.text


def test_preview_shows_a_theme_edit_at_once(tmp_path, repo_root):
    theme = tmp_path / "templates"
    shutil.copytree(repo_root / "templates", theme)
    shutil.copytree(repo_root / "issues" / "2023-10", tmp_path / "issues" / "2023-10")
    settings = Settings(
        issues_dir=tmp_path / "issues", theme_dir=theme, vocabulary_dir=repo_root / "subscribers"
    )
    server = make_server(Editor(settings), "2023-10", "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:

        def email() -> str:
            with urllib.request.urlopen(preview_url(server) + "email.html", timeout=10) as response:
                return response.read().decode("utf-8")

        assert "Marmot place news:" not in email()
        partial = theme / "email" / "sections" / "places.mjml.j2"
        edited = partial.read_text(encoding="utf-8").replace(
            "<h2>{{ section.heading | typographer }}",
            "<h2>Marmot place news: {{ section.heading | typographer }}",
            1,
        )
        partial.write_text(edited, encoding="utf-8")
        css = theme / "email" / "theme.css"
        css.write_text(
            css.read_text(encoding="utf-8") + "\nh2 { letter-spacing: 0.123em; }\n", encoding="utf-8"
        )
        later = time.time() + 5
        for path in (partial, css):
            os.utime(path, (later, later))
        html = email()
        assert "Marmot place news:" in html
        assert "letter-spacing: 0.123em" in html or "letter-spacing:0.123em" in html
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_text_only_render_is_the_same_text_without_the_html(settings, sample):
    renderer = Editor(settings).renderer
    text_only = renderer.render(sample.edition.issue, with_html=False)
    assert text_only.text == sample.edition.text
    assert text_only.html == "" and text_only.mjml == ""


def test_variants_put_together_from_inlined_pieces_equal_inlining_each_whole(settings, sample):
    """Delivery's variants reuse inlined layouts and texts; each must be exactly the whole email inlined."""
    from newsletter.delivery.variants import Personaliser

    issue = sample.edition.issue
    personaliser = Personaliser(issue)
    topics = sorted(personaliser.tagged_topics)
    regions = [*sorted(personaliser.place_regions), None]
    keys = {
        personaliser.key(topics[start : start + width], regions[(start + width) % len(regions)], False)
        for width in (0, 1, 2, 3)
        for start in range(len(topics))
    }
    renderer = Editor(settings).renderer
    editions = [renderer.render(personaliser.issue_for(key)) for key in sorted(keys, key=repr) * 2]
    assert len(keys) > 20 and renderer.pieces.texts  # pieces were kept, and then used the second time
    for edition in editions:
        assert edition.html == renderer.inliner.inline(renderer.compile_mjml(edition.mjml))
