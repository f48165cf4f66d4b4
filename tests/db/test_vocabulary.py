"""The text rules of discovery: tags, category names, slugs, search words."""

from __future__ import annotations

import pytest

from kitch.db.vocabulary import (
    MAX_QUERY_TERMS,
    match_expression,
    name_key,
    normalise_category_name,
    normalise_tag,
    search_terms,
    slug_problem,
    slugify,
    tag_key,
)


@pytest.mark.parametrize(
    ("raw", "tag"),
    [
        ("rpg", "rpg"),
        ("  Speed   Run ", "Speed Run"),
        ("\uff32\uff30\uff27", "RPG"),  # full-width folds (NFKC)
        ("c++", "c++"),
        ("C#", "C#"),
        ("node.js", "node.js"),
        ("R&B", "R&B"),
        ("rock 'n' roll", "rock 'n' roll"),
        ("low_spec", "low_spec"),
        ("Café", "Café"),
        ("Cafe\u0301", "Café"),  # composed
        ("日本語", "日本語"),
        (
            "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
            "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
        ),
        ("x" * 25, "x" * 25),
        ("a\u00a0b", "a b"),  # a no-break space is a space
    ],
)
def test_good_tags(raw: str, tag: str) -> None:
    assert normalise_tag(raw) == (tag, None)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("x" * 26, "longer than 25"),
        ("🎮", "may only use"),
        ("fun🎮", "may only use"),
        ("<b>", "may only use"),
        ("a/b", "may only use"),
        ("a,b", "may only use"),
        ("---", "needs a letter"),
        ("a\nb", "control"),
        ("a\tb", "control"),
        ("one\u2028two", "control"),
        ("\u202egnp", "bidirectional"),
        ("zero\u200bwidth", "invisible"),
        ("\u200cx", "joiner"),
        ("a\x00b", "control"),
    ],
)
def test_bad_tags(raw: str, why: str) -> None:
    tag, problem = normalise_tag(raw)
    assert tag is None and problem is not None and why in problem


def test_tag_keys_fold_case_and_forms() -> None:
    assert (
        tag_key("Speed Run")
        == tag_key("speed  run")
        == tag_key("\uff33\uff30\uff25\uff25\uff24 RUN")
    )
    assert tag_key("Straße") == tag_key("STRASSE")
    assert tag_key("rpg") != tag_key("rpgs")


def test_category_names_and_keys() -> None:
    assert normalise_category_name("  Science   &  Technology ") == ("Science & Technology", None)
    assert normalise_category_name("Pokémon")[0] == "Pokémon"
    for bad in ("", "   ", "x" * 51, "a\u200bb", "!!!", "a\nb", "\u202eabc"):
        assert normalise_category_name(bad)[0] is None, bad
    assert (
        name_key("Just Chatting")
        == name_key("JUST  chatting")
        == name_key("\uff2a\uff55\uff53\uff54 Chatting")
    )


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Just Chatting", "just-chatting"),
        ("Science & Technology", "science-and-technology"),
        ("C++", "c-plus-plus"),
        ("Pokémon Go!", "pokemon-go"),
        ("Rock 'n' Roll", "rock-n-roll"),
        ("  --Spaced--  ", "spaced"),
        ("日本語", ""),
        ("word " * 20, "-".join(["word"] * 10)),
    ],
)
def test_slugify(name: str, slug: str) -> None:
    assert slugify(name) == slug
    if slug:
        assert slug_problem(slug) is None


@pytest.mark.parametrize("bad", ["", "A", "a--b", "-a", "a-", "a b", "a_b", "é", "x" * 51])
def test_bad_slugs(bad: str) -> None:
    assert slug_problem(bad) is not None


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("Speed Run", ["speed", "run"]),
        ('"NEAR(a b)" AND OR NOT', ["near", "a", "b", "and", "or", "not"]),
        ("title:chess", ["title", "chess"]),
        ("chess* ^open -close", ["chess", "open", "close"]),
        ("🎮🎮", []),
        ("", []),
        ("\x00\x01", []),
        ("\uff43\uff48\uff45\uff53\uff53", ["chess"]),
        ("Café café CAFÉ", ["café"]),
        ("x_y", ["x", "y"]),
        ("日本語 テスト", ["日本語", "テスト"]),
        ("\u0301 e\u0301", ["é"]),
    ],
)
def test_search_terms(text: str, terms: list[str]) -> None:
    assert search_terms(text) == terms


def test_search_terms_are_bounded() -> None:
    assert len(search_terms(" ".join(f"w{i}" for i in range(100)))) == MAX_QUERY_TERMS
    assert search_terms("a" * 500) == ["a" * 64]


def test_match_expression_quotes_every_word() -> None:
    assert match_expression(["speed", "run"]) == '("speed" OR "speed"*) AND ("run" OR "run"*)'
    assert match_expression([]) == ""
    # words never hold quotes (they come from search_terms), but a quote would be doubled
    assert match_expression(['a"b']) == '("a""b" OR "a""b"*)'
