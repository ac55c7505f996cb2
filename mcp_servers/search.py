"""MCP server "search": ranked retrieval over the offline corpus of an invented world.

Two tools, shaped for a small model: ``search(query, k)`` returns the best few pages as
``[{"id", "title", "snippet"}]`` and ``fetch(id)`` returns one page ``{"id", "title", "text"}``.
The corpus (``assets/search/corpus.jsonl``, written by ``assets/make_search_corpus.py``) is made up,
so answers cannot be known without searching.

Ranking is BM25 implemented here over an inverted index built once per process, with a page's
title words counted several times and a bonus for a query that names the title, so the page about
an entity comes first when its name is searched. A query costs microseconds, far inside
``Limits.time_limit_s``. Caller input never reaches the file system: an id is only a key of an
in-memory dict, and the corpus path is fixed.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent
from pydantic import Field
from typing_extensions import TypedDict

from mcp_servers.assets import asset_path
from mcp_servers.limits import DEFAULT_LIMITS, Limits, ToolError, check_payload

MAX_QUERY_CHARS = 200
MAX_ID_CHARS = 80
MAX_K = 10
SNIPPET_CHARS = 100
TITLE_WEIGHT = 3  # a title word counts as this many occurrences in the page
TITLE_BONUS = 6.0  # added in proportion to how exactly the query names the title
BM25_K1 = 1.2
BM25_B = 0.75

STOPWORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "by", "did", "do", "does", "for", "from", "how", "in", "is",
    "it", "its", "of", "on", "or", "the", "to", "was", "what", "when", "where", "which", "who", "whom", "why",
    "with", "about", "page", "pages",
))
_WORD = re.compile(r"[a-z0-9]+")


class Hit(TypedDict):
    """One search result: the id to fetch, the page title and its first sentence."""

    id: str
    title: str
    snippet: str


class PageOut(TypedDict):
    """A fetched page."""

    id: str
    title: str
    text: str


@dataclass(frozen=True)
class Page:
    """One corpus page; ``facts`` are for task generators and are never sent to the model."""

    id: str
    title: str
    text: str
    facts: dict[str, Any]


def terms(text: str) -> list[str]:
    """Lower-case ASCII words of ``text`` without stop words; accents are folded (so 'Kársk' finds 'Karsk')."""
    folded = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).lower()
    return [word for word in _WORD.findall(folded) if word not in STOPWORDS]


def corpus_path() -> Path:
    return asset_path("search", "corpus.jsonl")


@lru_cache(maxsize=4)
def load_pages(path: Path | None = None) -> tuple[Page, ...]:
    """The corpus pages, read once per process (the file is the only thing this server reads)."""
    path = path or corpus_path()
    if not path.is_file():
        raise FileNotFoundError(f"search corpus {path} is missing; run `python assets/make_search_corpus.py`")
    pages = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                pages.append(Page(record["id"], record["title"], record["text"], record.get("facts", {})))
    return tuple(pages)


class Index:
    """A BM25 inverted index over titles and texts, immutable once built (shared by all servers)."""

    def __init__(self, pages: Iterable[Page]) -> None:
        self.pages = tuple(pages)
        self.by_id = {page.id: page for page in self.pages}
        self.postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self.title_terms = [frozenset(terms(page.title)) for page in self.pages]
        lengths = []
        for number, page in enumerate(self.pages):
            counts: dict[str, int] = defaultdict(int)
            for word in terms(page.text):
                counts[word] += 1
            for word in terms(page.title):
                counts[word] += TITLE_WEIGHT
            for word, count in counts.items():
                self.postings[word].append((number, count))
            lengths.append(sum(counts.values()))
        self.lengths = lengths
        self.average_length = sum(lengths) / max(1, len(lengths))
        total = len(self.pages)
        self.idf = {w: math.log(1 + (total - len(p) + 0.5) / (len(p) + 0.5)) for w, p in self.postings.items()}

    def rank(self, query: str, k: int) -> list[Page]:
        """The ``k`` best pages for ``query``, best first; pages sharing no word with it are left out."""
        wanted = list(dict.fromkeys(terms(query)))
        scores: dict[int, float] = defaultdict(float)
        for word in wanted:
            idf = self.idf.get(word, 0.0)
            for number, count in self.postings.get(word, ()):
                norm = BM25_K1 * (1 - BM25_B + BM25_B * self.lengths[number] / self.average_length)
                scores[number] += idf * count * (BM25_K1 + 1) / (count + norm)
        query_set = set(wanted)
        for number in scores:
            title = self.title_terms[number]
            scores[number] += TITLE_BONUS * len(title & query_set) / len(title | query_set)
        best = sorted(scores, key=lambda n: (-scores[n], self.pages[n].id))[:k]
        return [self.pages[n] for n in best]

    def closest_ids(self, guess: str, n: int = 3) -> list[str]:
        """Ids that a mistaken id probably meant: by the words in it, else by spelling."""
        found = [page.id for page in self.rank(guess.replace("-", " ").replace("_", " "), n)]
        if not found:
            found = difflib.get_close_matches(guess.lower(), list(self.by_id), n=n, cutoff=0.6)
        return found


@lru_cache(maxsize=4)
def default_index(path: Path | None = None) -> Index:
    return Index(load_pages(path))


def snippet(page: Page) -> str:
    """The page's first sentence, cut short: enough to tell which entity a hit is about."""
    first = page.text.split(". ")[0].rstrip(".") + "."
    return first if len(first) <= SNIPPET_CHARS else first[: SNIPPET_CHARS - 3].rstrip() + "..."


def shown(value: str, limit: int = 40) -> str:
    """A caller's string quoted safely for an error message (ASCII, short, no raw control chars)."""
    return ascii(value[:limit] + ("..." if len(value) > limit else ""))


def compact(structured: Any, text_value: Any) -> CallToolResult:
    """A result whose text is one line of JSON, which a small model reads more cheaply than indented JSON."""
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(text_value, ensure_ascii=True))],
        structured_content=structured,
    )


def run_search(index: Index, query: str, k: int) -> list[Hit]:
    """Validate a query and rank it; refuse queries that cannot mean anything, with the fix."""
    if not query.strip():
        raise ToolError("query is empty; pass a few words to look for, such as a name")
    if len(query) > MAX_QUERY_CHARS:
        raise ToolError(f"query has {len(query)} characters; the limit is {MAX_QUERY_CHARS}, use a name or a few words")
    if not terms(query):
        raise ToolError("query has no searchable words (letters or digits); pass a name or a few words")
    return [Hit(id=p.id, title=p.title, snippet=snippet(p)) for p in index.rank(query, k)]


def run_fetch(index: Index, page_id: str) -> PageOut:
    """Look an id up in memory; an unknown id gets the ids it most likely meant and the way to find it."""
    if len(page_id) > MAX_ID_CHARS:
        raise ToolError(f"id has {len(page_id)} characters; ids are short slugs; call search(query=...) first")
    page = index.by_id.get(page_id)
    if page is None:
        closest = index.closest_ids(page_id)
        if not closest:
            raise ToolError(f"no page has id {shown(page_id)}; call search(query=...) with a name first to get the id")
        words = " ".join(terms(page_id.replace("_", " ")))
        raise ToolError(
            f"no page has id {shown(page_id)}; call search(query='{words}') first to get the id."
            f" Closest ids: {', '.join(closest)}."
        )
    return PageOut(id=page.id, title=page.title, text=page.text)


def build_server(limits: Limits = DEFAULT_LIMITS, corpus: Path | None = None) -> MCPServer:
    """A search server over ``corpus`` (the shipped corpus by default); the index is built once and shared."""
    index = default_index(corpus)
    server = MCPServer(
        "search",
        instructions="Search an encyclopedia of an invented world, then fetch a page by its id.",
        log_level="WARNING",
    )

    @server.tool()
    def search(
        query: Annotated[str, Field(description="Words to look for, e.g. a name.")],
        k: Annotated[int, Field(ge=1, le=MAX_K, description="How many results, 1 to 10.")] = 3,
    ) -> Annotated[CallToolResult, list[Hit]]:
        """Find pages matching the query. Returns the best ids, titles and snippets."""
        check_payload({"query": query, "k": k}, limits)
        hits = run_search(index, query, k)
        return compact({"result": hits}, hits)

    @server.tool()
    def fetch(id: Annotated[str, Field(description="A page id returned by search.")]) -> Annotated[CallToolResult, PageOut]:
        """Read the full page with this id."""
        check_payload({"id": id}, limits)
        page = run_fetch(index, id)
        return compact(page, page)

    return server


def main() -> None:
    build_server().run()


if __name__ == "__main__":
    main()
