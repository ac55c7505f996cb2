"""The "search" suite: questions about the invented world that need the search and fetch tools.

Every answer is a fact of one corpus page, and the verifier accepts only a ``fetch`` whose result
contains it. The corpus guarantees that each number of four or more digits occurs on exactly one
page, and this module asks only about facts whose answer text occurs on exactly one page, so a
fetch of any other page can never pass by accident.

Templates (weights in ``TEMPLATES``):

- single step: answer from a page whose id is given; find an id by searching; fetch a given id;
- ``multi_step``: a question naming an entity (search for it, then fetch the id found); open the
  page about an entity; a two-hop question through a linked page (search, fetch, search, fetch);
- ``recovery``: the instruction offers a plausible id that does not exist, so the obvious fetch
  fails and the model must search (the reference calls are the oracle path that succeeds).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from mcp_servers.search import Page, load_pages
from mcp_servers.tasks.model import Task, ToolCall, Verifier
from mcp_servers.tasks.suites import make_task

SUITE = "search"
SERVERS = ("search",)

# Page types whose titles read with "the" inside a sentence ("the Trejin River").
WITH_ARTICLE = frozenset({"river", "invention", "festival"})

# (page type, fact) -> ways to ask for it; {name} is the entity as written in a sentence.
QUESTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("country", "population"): ("What is the population of {name}?", "How many people live in {name}?"),
    ("country", "area_km2"): ("What is the area of {name} in square kilometres?", "How large is {name}?"),
    ("country", "founded"): ("In which year was {name} founded?", "When was {name} founded?"),
    ("country", "currency"): ("What is the currency of {name}?", "Which currency does {name} use?"),
    ("city", "population"): ("What is the population of {name}?", "How many people live in {name}?"),
    ("city", "founded"): ("In which year was {name} founded?", "When was {name} founded?"),
    ("mountain", "height_m"): ("How high is {name} in metres?", "What is the height of {name}?"),
    ("mountain", "first_ascent"): ("In which year was {name} first climbed?", "When was {name} first climbed?"),
    ("river", "length_km"): ("How long is {name} in kilometres?", "What is the length of {name}?"),
    ("river", "discharge_m3s"): ("What is the mean discharge of {name}?",),
    ("lake", "area_km2"): ("What is the area of {name} in square kilometres?", "How large is {name}?"),
    ("person", "born"): ("In which year was {name} born?", "When was {name} born?"),
    ("person", "died"): ("In which year did {name} die?", "When did {name} die?"),
    ("company", "founded"): ("In which year was {name} founded?", "When was {name} founded?"),
    ("company", "employees"): ("How many people does {name} employ?", "How many employees does {name} have?"),
    ("invention", "year"): ("In which year was {name} invented?", "When was {name} invented?"),
    ("festival", "first_held"): ("In which year was {name} first held?", "When was {name} first held?"),
    ("festival", "attendance"): ("How many visitors attend {name} each year?",),
    ("university", "founded"): ("In which year was {name} founded?", "When was {name} founded?"),
    ("university", "students"): ("How many students does {name} have?",),
}

# (page type, link fact, fact of the linked page) -> ways to ask across the link.
HOPS: dict[tuple[str, str, str], tuple[str, ...]] = {
    ("person", "birthplace", "population"): ("What is the population of the city where {name} was born?",),
    ("person", "birthplace", "founded"): ("In which year was the birthplace of {name} founded?",),
    ("company", "headquarters", "population"): ("What is the population of the city where {name} is based?",),
    ("company", "founder", "born"): ("In which year was the founder of {name} born?",),
    ("invention", "inventor", "born"): ("In which year was the inventor of {name} born?",),
    ("invention", "inventor", "died"): ("In which year did the inventor of {name} die?",),
    ("festival", "city", "population"): ("What is the population of the city that hosts {name}?",),
    ("university", "city", "founded"): ("In which year was the home city of {name} founded?",),
    ("country", "capital", "population"): ("What is the population of the capital of {name}?",),
    ("country", "capital", "founded"): ("In which year was the capital of {name} founded?",),
    ("city", "country", "population"): ("What is the population of the country where {name} lies?",),
    ("mountain", "first_climber", "born"): ("In which year was the first climber of {name} born?",),
    ("river", "source", "height_m"): ("How high is the mountain where {name} rises?",),
    ("lake", "fed_by", "length_km"): ("How long is the river that feeds {name}?",),
}

SINGLE_FETCH = ("Read page '{id}' and answer: {question}", "Fetch page '{id}'. {question}")
FIND_ID = ("Find the page id for {name}.", "Search for {name} and give its page id.",
           "Which page id belongs to {name}?")
OPEN_ID = ("Fetch the page with id '{id}'.", "Open page '{id}'.")
OPEN_NAME = ("Open the page about {name}.", "Fetch the page about {name}.")
RECOVERY = ("Read page '{guess}' and answer: {question}", "Fetch page '{guess}'. {question}",
            "{question} Try page '{guess}'.")


@dataclass(frozen=True)
class Fact:
    """One askable fact: the page it is on, which fact, and its value."""

    page: Page
    key: str
    value: Any


@dataclass(frozen=True)
class Catalog:
    """The corpus seen from the task side: askable facts and pages by title."""

    by_title: dict[str, Page]
    by_id: dict[str, Page]
    facts: tuple[Fact, ...]
    pages: tuple[Page, ...]


def fetched_text(page: Page) -> str:
    """What a fetch of ``page`` returns as text (the server's compact JSON)."""
    return json.dumps({"id": page.id, "title": page.title, "text": page.text}, ensure_ascii=True)


@lru_cache(maxsize=1)
def catalog() -> Catalog:
    """Askable facts: those with a question template whose answer text is on exactly one page."""
    pages = load_pages()
    texts = [fetched_text(page).lower() for page in pages]
    facts = []
    for page in pages:
        for key, value in page.facts.items():
            if (page.facts["type"], key) not in QUESTIONS:
                continue
            needle = str(value).lower()
            if sum(needle in text for text in texts) == 1 and needle in fetched_text(page).lower():
                facts.append(Fact(page, key, value))
    return Catalog({p.title: p for p in pages}, {p.id: p for p in pages}, tuple(facts), pages)


def name_of(page: Page) -> str:
    """The entity as written inside a sentence."""
    return f"the {page.title}" if page.facts["type"] in WITH_ARTICLE else page.title


def question(rng: random.Random, fact: Fact) -> str:
    return rng.choice(QUESTIONS[(fact.page.facts["type"], fact.key)]).format(name=name_of(fact.page))


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def search_call(page: Page) -> ToolCall:
    return ToolCall("search", {"query": page.title})


def fetch_call(page: Page) -> ToolCall:
    return ToolCall("fetch", {"id": page.id})


def answer_verifier(fact: Fact) -> Verifier:
    """Only a fetch whose page text carries the answer passes."""
    return Verifier(kind="contains", contains=str(fact.value), tool="fetch")


def fact_task(instruction: str, calls: list[ToolCall], fact: Fact, tags: tuple[str, ...] = ()) -> Task:
    return make_task(SUITE, capitalised(instruction), SERVERS, calls, answer_verifier(fact), tags=tags,
                     answer=fact.value)


def single_fetch(rng: random.Random) -> Task:
    """The id is given: one fetch answers the question."""
    fact = rng.choice(catalog().facts)
    instruction = rng.choice(SINGLE_FETCH).format(id=fact.page.id, question=question(rng, fact))
    return fact_task(instruction, [fetch_call(fact.page)], fact)


def find_id(rng: random.Random) -> Task:
    """One search whose top hit must be the page about the named entity."""
    page = rng.choice(catalog().pages)
    instruction = rng.choice(FIND_ID).format(name=name_of(page))
    verifier = Verifier(kind="value", path="$[0].id", equals=page.id, tool="search")
    return make_task(SUITE, capitalised(instruction), SERVERS, [search_call(page)], verifier, answer=page.id)


def open_id(rng: random.Random) -> Task:
    """Fetch a page whose id is given."""
    page = rng.choice(catalog().pages)
    verifier = Verifier(kind="value", path="$.id", equals=page.id, tool="fetch")
    instruction = rng.choice(OPEN_ID).format(id=page.id)
    return make_task(SUITE, instruction, SERVERS, [fetch_call(page)], verifier, answer=page.id)


def named_question(rng: random.Random) -> Task:
    """A question naming an entity: search for it, then fetch the id that search returned."""
    fact = rng.choice(catalog().facts)
    calls = [search_call(fact.page), fetch_call(fact.page)]
    return fact_task(question(rng, fact), calls, fact, ("multi_step",))


def open_name(rng: random.Random) -> Task:
    """Open the page about a named entity: search, then fetch the id found."""
    page = rng.choice(catalog().pages)
    verifier = Verifier(kind="value", path="$.id", equals=page.id, tool="fetch")
    instruction = rng.choice(OPEN_NAME).format(name=name_of(page))
    return make_task(SUITE, capitalised(instruction), SERVERS, [search_call(page), fetch_call(page)], verifier,
                     tags=("multi_step",), answer=page.id)


def two_hop(rng: random.Random) -> Task:
    """A question through a link: read one page to learn which page holds the answer."""
    cat = catalog()
    askable = {(f.page.id, f.key): f for f in cat.facts}
    for _ in range(100):
        (kind, link, key), phrasings = rng.choice(list(HOPS.items()))
        source = rng.choice([p for p in cat.pages if p.facts["type"] == kind and link in p.facts])
        target = cat.by_title.get(source.facts[link])
        fact = askable.get((target.id, key)) if target else None
        if target is not None and fact is not None:
            break
    else:  # pragma: no cover - the shipped corpus always has askable links
        return named_question(rng)
    instruction = rng.choice(phrasings).format(name=name_of(source))
    calls = [search_call(source), fetch_call(source), search_call(target), fetch_call(target)]
    return fact_task(instruction, calls, fact, ("multi_step",))


def wrong_ids(page: Page, known: dict[str, Page]) -> list[str]:
    """Plausible ids a model might guess for ``page`` that are not ids of any page."""
    kind = page.facts["type"]
    words = page.id.split("-")
    guesses = [f"{page.id}-page", page.title]
    if kind not in words:
        guesses += [f"{page.id}-{kind}", f"{kind}-{page.id}"]
    if len(words) > 1:
        guesses += ["_".join(words), "".join(words), words[0], "-".join(reversed(words))]
    return [guess for guess in dict.fromkeys(guesses) if guess not in known]


def recovery(rng: random.Random) -> Task:
    """The offered id does not exist: the fetch fails and a search finds the real one."""
    cat = catalog()
    fact = rng.choice(cat.facts)
    guess = rng.choice(wrong_ids(fact.page, cat.by_id))
    instruction = rng.choice(RECOVERY).format(guess=guess, question=question(rng, fact))
    calls = [search_call(fact.page), fetch_call(fact.page)]
    return fact_task(instruction, calls, fact, ("recovery",))


TEMPLATES: tuple[tuple[Callable[[random.Random], Task], int], ...] = (
    (single_fetch, 12),
    (find_id, 12),
    (open_id, 4),
    (named_question, 28),
    (open_name, 5),
    (two_hop, 16),
    (recovery, 23),
)


def generate(rng: random.Random) -> Task:
    """One random task of the search suite."""
    makers, weights = zip(*TEMPLATES, strict=True)
    return rng.choices(makers, weights=weights)[0](rng)
