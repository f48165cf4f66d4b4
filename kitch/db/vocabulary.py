"""The text rules of discovery: tags, category names and slugs, and search terms.

Pure functions (no I/O), shared by the API, the CLI and the queries. Each ``normalise_*``
returns ``(value, None)`` or ``(None, reason)``; the reason reads after the field's name
("tag 2 is too long").

Search text never reaches SQLite's FTS5 query parser as typed: :func:`search_terms` cuts it into
words the way the index's ``unicode61`` tokenizer does (runs of letters, numbers and private-use
characters; everything else separates), and :func:`match_expression` quotes each word, so
operators (``AND``, ``OR``, ``NOT``, ``NEAR``), ``*``, ``^``, ``:``, column filters,
parentheses and quotes in the input are just separators or text.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from kitch.auth.names import text_problem

#: Tags per channel.
MAX_TAGS = 10
#: Characters per tag (after normalisation).
MAX_TAG_LENGTH = 25
#: What a tag may hold besides letters, numbers and combining marks ("c++", "c#", "node.js",
#: "r&b", "rock 'n' roll", "speed-run", "low_spec").
TAG_PUNCTUATION = frozenset(" -_+#.&'")
TAG_RULE = "letters, numbers, spaces and - _ + # . & '"

MAX_CATEGORY_NAME = 50
MAX_SLUG = 50
SLUG_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

#: Longest search text accepted (characters), and the words of it used.
MAX_QUERY_LENGTH = 200
MAX_QUERY_TERMS = 8
#: Characters per search word (longer words are cut: no real word is this long).
MAX_TERM_LENGTH = 64


def _squeeze(raw: str) -> str:
    """NFKC, then runs of white space (any kind) become one space; trimmed."""
    return " ".join(unicodedata.normalize("NFKC", raw).split())


def _word_char(ch: str) -> bool:
    """A character the ``unicode61`` tokenizer keeps in a token (categories L*, N*, Co)."""
    category = unicodedata.category(ch)
    return category[0] in "LN" or category == "Co"


def _squeezed_text(raw: str, max_length: int) -> tuple[str | None, str | None]:
    """``raw`` with its white space squeezed, or why not: characters free text may never hold,
    nothing left, or longer than ``max_length``."""
    problem = text_problem(raw)
    if problem is not None:
        return None, problem
    text = _squeeze(raw)
    if not text:
        return None, "is empty"
    if len(text) > max_length:
        return None, f"is longer than {max_length} characters"
    return text, None


def normalise_tag(raw: str) -> tuple[str | None, str | None]:
    """A tag as stored and shown: NFKC, white space trimmed and squeezed to single spaces,
    1-25 characters of :data:`TAG_RULE`, with at least one letter or number. Case is kept (its
    matching key, :func:`tag_key`, folds it). What free text may never hold (controls, line
    separators, bidirectional controls: :func:`kitch.auth.names.text_problem`) is refused
    before any squeezing; a zero-width (non-)joiner is kept between two letters (Persian,
    Indic scripts)."""
    tag, problem = _squeezed_text(raw, MAX_TAG_LENGTH)
    if tag is None:
        return None, problem
    for i, ch in enumerate(tag):
        between_letters = 0 < i < len(tag) - 1 and _word_char(tag[i - 1]) and _word_char(tag[i + 1])
        if ch in "\u200c\u200d" and between_letters:
            continue
        if not (_word_char(ch) or unicodedata.category(ch)[0] == "M" or ch in TAG_PUNCTUATION):
            return None, f"may only use {TAG_RULE}"
    if not any(_word_char(ch) for ch in tag):
        return None, "needs a letter or a number"
    return tag, None


def tag_key(tag: str) -> str:
    """What tags are matched by: NFKC, squeezed, case-folded ("Speed  Run" -> "speed run")."""
    return unicodedata.normalize("NFKC", _squeeze(tag).casefold())


def normalise_category_name(raw: str) -> tuple[str | None, str | None]:
    """A category name: NFKC, white space squeezed, 1-50 characters with a letter or number and
    no control, format or unassigned characters (a name is shown as it is written)."""
    name, problem = _squeezed_text(raw, MAX_CATEGORY_NAME)
    if name is None:
        return None, problem
    if any(unicodedata.category(ch)[0] == "C" for ch in name):
        return None, "must not contain control, format or invisible characters"
    if not any(_word_char(ch) for ch in name):
        return None, "needs a letter or a number"
    return name, None


def name_key(name: str) -> str:
    """Category names are unique by this key (case and compatibility forms folded)."""
    return unicodedata.normalize("NFKC", _squeeze(name).casefold())


def default_hue(slug: str) -> int:
    """The colour of a new category's art when none is given: spread by a hash of the slug."""
    return int.from_bytes(hashlib.sha256(slug.encode()).digest()[:2], "big") % 360


def slug_problem(slug: str) -> str | None:
    """Why ``slug`` is not a valid category slug (1-50 of a-z, 0-9 and single inner dashes)."""
    if len(slug) > MAX_SLUG or not SLUG_RE.fullmatch(slug):
        return f"must be 1-{MAX_SLUG} characters of a-z, 0-9 and single dashes between them"
    return None


def slugify(name: str) -> str:
    """A slug made from a name ("Science & Technology" -> "science-and-technology"); accents
    are dropped, other non-ASCII letters too: "" when nothing is left (give a slug then)."""
    text = unicodedata.normalize("NFKD", name).replace("&", " and ").replace("+", " plus ")
    ascii_text = "".join(ch for ch in text if ch.isascii()).lower().replace("'", "")
    slug = "-".join(re.findall(r"[a-z0-9]+", ascii_text))
    while len(slug) > MAX_SLUG:
        slug = slug.rsplit("-", 1)[0] if "-" in slug else slug[:MAX_SLUG]
    return slug


def search_terms(text: str) -> list[str]:
    """The words of a search: NFKC, cut like the FTS index cuts text (so an emoji, a quote or
    ``*`` separates words and never reaches the query), lower-cased, duplicates dropped, at most
    :data:`MAX_QUERY_TERMS` of at most :data:`MAX_TERM_LENGTH` characters. Combining marks stay
    in their word (the index drops diacritics); a word of marks alone is dropped."""
    words: list[str] = []
    current: list[str] = []
    for ch in unicodedata.normalize("NFKC", text) + " ":
        if _word_char(ch) or unicodedata.category(ch)[0] == "M":
            current.append(ch)
        elif current:
            word = "".join(current)[:MAX_TERM_LENGTH]
            if any(_word_char(c) for c in word):
                words.append(word.lower())
            current = []
    return list(dict.fromkeys(words))[:MAX_QUERY_TERMS]


def match_expression(terms: list[str]) -> str:
    """An FTS5 MATCH expression that finds rows holding every term, each as a whole word or as
    the start of one (type-ahead): ``("spe" OR "spe"*) AND ...``. The exact form is there for the
    ranking: a whole-word hit scores on both sides of the OR. Every term is a quoted string, so
    nothing in it is syntax. ``terms`` come from :func:`search_terms` (never empty words)."""
    parts = []
    for term in terms:
        quoted = '"' + term.replace('"', '""') + '"'
        parts.append(f"({quoted} OR {quoted}*)")
    return " AND ".join(parts)


def tsquery_expression(terms: list[str], *, whole: bool = False) -> str:
    """The same search for PostgreSQL's ``to_tsquery``: ``('spe' | 'spe':*) & ...``; with
    ``whole``, any term as a whole word (``'spe' | ...``: the ranking's whole-word part). Each
    term is a quoted value (quotes and backslashes escaped), so nothing in it is an operator."""
    parts = []
    for term in terms:
        quoted = "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"
        parts.append(quoted if whole else f"({quoted} | {quoted}:*)")
    return (" | " if whole else " & ").join(parts)
