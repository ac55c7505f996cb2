"""Write the offline search corpus: a few hundred short pages about an invented world.

Every name, date and number is made up by a seeded generator, so a model can only answer a
question about this world by searching and reading the pages. Run it from anywhere::

    python assets/make_search_corpus.py            # writes assets/search/corpus.jsonl
    python assets/make_search_corpus.py --out DIR  # writes DIR/corpus.jsonl

Each line is one page: ``{"id", "title", "text", "facts"}``. ``facts`` repeats the page's
structured facts (with ``type``) so that task generators can ask questions with known answers.
Related entities are referred to by their titles.

Guarantee relied upon by the tasks: every number of four or more digits in the corpus occurs on
exactly one page, and no such number is a substring of another (so "1612" is never found inside
"41612"). Smaller numbers (city elevations) carry no such guarantee and are never asked about.
The output is byte-identical for the same seed; the script uses the standard library only.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEED = 20240611

COUNTS = {
    "country": 12,
    "city": 108,
    "mountain": 30,
    "river": 30,
    "lake": 15,
    "person": 90,
    "company": 40,
    "invention": 30,
    "festival": 30,
    "university": 15,
}

ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "gr", "kr",
          "tr", "st", "th", "h", "y", "j"]
VOWELS = ["a", "e", "i", "o", "u", "a", "e", "o", "ei", "ou"]
CODAS = ["", "n", "r", "l", "s", "k", "th", "m", "rn", "sk", "nd", "v", "x"]

# Ordinary words the templates use; invented names must never collide with them.
COMMON_WORDS = frozenset((
    "about", "above", "academy", "attend", "based", "bordering", "built", "capital", "celebrates", "climb",
    "climbed", "coast", "country", "covers", "cubic", "discharge", "employs", "every", "festival", "first",
    "flows", "founded", "heights", "invented", "known", "level", "lies", "maker", "metres", "mountains",
    "passes", "people", "population", "range", "rises", "river", "second", "shore", "square", "students",
    "through", "university", "visitors", "where", "which", "years",
))

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
OCCUPATIONS = ["painter", "composer", "poet", "mapmaker", "astronomer", "architect", "merchant",
               "physician", "sculptor", "historian", "botanist", "admiral"]
INVENTOR_JOBS = ["engineer", "inventor", "chemist", "clockmaker", "shipwright"]
CITY_FAMOUS = ["salt markets", "copper domes", "canal bridges", "bell towers", "tea houses", "wool fairs",
               "glass workshops", "stone harbour", "night markets", "river gardens", "old fortress",
               "printing houses", "spice quarter", "lighthouse", "clock tower", "rope walks"]
LAKE_FAMOUS = ["silver eels", "floating villages", "winter ice roads", "pink flamingos", "sunken forest",
               "salt flats", "reed islands", "black swans", "hot springs", "stone jetties"]
PRODUCTS = ["glass lenses", "steam pumps", "woollen cloth", "river barges", "pocket watches", "paper maps",
            "copper wire", "canned fish", "bicycles", "pianos", "rail carriages", "dyes", "sailcloth",
            "lamp oil", "porcelain", "telegraph sets", "printing presses", "ice skates", "tea blends",
            "brass instruments"]
COMPANY_KINDS = ["Ironworks", "Textiles", "Shipping", "Foods", "Glassworks", "Instruments", "Rail",
                 "Press", "Optics", "Mills", "Trading", "Foundry"]
INVENTION_KINDS = {
    "Loom": "weaving loom", "Compass": "magnetic compass", "Lamp": "safety lamp", "Engine": "steam engine",
    "Kiln": "brick kiln", "Telescope": "reflecting telescope", "Pump": "water pump", "Clock": "tide clock",
    "Sextant": "brass sextant", "Press": "printing press", "Bridge": "folding bridge", "Still": "copper still",
}
INVENTION_USES = ["measure the tides", "light mine shafts", "drain flooded fields", "map the night sky",
                  "weave patterned cloth", "guide ships in fog", "print newspapers", "bake roof tiles",
                  "cross narrow canals", "keep time at sea", "distil lamp oil", "lift river water"]
FESTIVAL_KINDS = ["Lantern", "Harvest", "Music", "Kite", "Boat", "Bread", "Flower", "Ice", "Fire", "Mask"]
FESTIVAL_THEMES = ["the end of the rainy season", "the first salt harvest", "the founding of the city",
                   "the return of the fishing fleet", "the longest night", "the spring floods",
                   "the old river gods", "the vineyard pickers", "a famous siege", "the winter market"]
SUBJECTS = ["astronomy", "medicine", "law", "shipbuilding", "music", "mathematics", "botany", "mining",
            "architecture", "chemistry", "history", "painting"]
RANGE_KINDS = ["Range", "Mountains", "Heights"]


def invented_word(rng: random.Random) -> str:
    """One pronounceable made-up word of two or three syllables, capitalised."""
    syllables = rng.choice([2, 2, 2, 3])
    word = "".join(rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(syllables)) + rng.choice(CODAS)
    return word.capitalize()


class Names:
    """Hands out invented words that are unique across the whole world (so names never clash)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def take(self) -> str:
        while True:
            word = invented_word(self.rng)
            low = word.lower()
            if 5 <= len(word) <= 8 and low not in self.used and low not in COMMON_WORDS:
                self.used.add(low)
                return word


class Numbers:
    """Draws numbers of four or more digits, each unique and never a substring of another one."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: list[str] = []

    def _free(self, text: str) -> bool:
        return all(text not in other and other not in text for other in self.used)

    def draw(self, low: int, high: int) -> int:
        """A free number in [low, high]; falls back to any free year-sized number if the range is full."""
        for _ in range(2000):
            value = self.rng.randint(low, high)
            if self._free(str(value)):
                self.used.append(str(value))
                return value
        return self.draw(1100, 1999)

    def year(self, low: int, high: int) -> int:
        """A free year, clamped to the range of years this world uses (1100-1999)."""
        low, high = max(1100, low), min(1999, high)
        return self.draw(low, high) if low <= high else self.draw(1100, 1999)


@dataclass
class Page:
    """One page of the corpus while it is being built."""

    id: str
    title: str
    facts: dict[str, Any]
    sentences: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "text": " ".join(self.sentences), "facts": self.facts}


def slug(title: str) -> str:
    """The page id: the title in lower case with words joined by hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def article(word: str) -> str:
    return "an" if word[0].lower() in "aeiou" else "a"


class World:
    """Builds the invented world entity by entity, so later entities can refer to earlier ones."""

    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.names = Names(self.rng)
        self.numbers = Numbers(self.rng)
        self.pages: dict[str, list[Page]] = {kind: [] for kind in COUNTS}
        self.seas = [f"the {self.names.take()} Sea" for _ in range(5)]
        self.ranges = [f"the {self.names.take()} {self.rng.choice(RANGE_KINDS)}" for _ in range(6)]

    def add(self, kind: str, title: str, facts: dict[str, Any]) -> Page:
        page = Page(slug(title), title, {"type": kind, **facts})
        self.pages[kind].append(page)
        return page

    def build(self) -> list[dict[str, Any]]:
        """Create every entity, then write the sentences that mention the links between them."""
        self.make_countries()
        self.make_cities()
        self.make_people()
        self.make_mountains()
        self.make_rivers()
        self.make_lakes()
        self.make_inventions()
        self.make_companies()
        self.make_festivals()
        self.make_universities()
        self.write_people()
        order = [page for kind in COUNTS for page in self.pages[kind]]
        self.check_names(order)
        self.rng.shuffle(order)
        return [page.record() for page in order]

    def check_names(self, pages: list[Page]) -> None:
        """Fail loudly if an invented name is also an ordinary word of some page's text.

        Search ranking relies on a name's words being found only where that entity is meant.
        """
        names = [p.title for p in pages] + self.seas + self.ranges
        names += [p.facts["currency"] for p in self.pages["country"]]
        names += [p.title.split()[1] for p in self.pages["person"]]
        pattern = re.compile("|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)))
        for page in pages:
            plain = pattern.sub(" ", " ".join(page.sentences))
            clash = set(re.findall(r"[a-z]+", plain.lower())) & self.names.used
            if clash:
                raise ValueError(f"invented name(s) {sorted(clash)} clash with words on page {page.id}")

    def make_countries(self) -> None:
        for _ in range(COUNTS["country"]):
            name = self.names.take()
            self.add("country", name, {
                "sea": self.rng.choice(self.seas),
                "population": self.numbers.draw(1_200_000, 48_000_000),
                "area_km2": self.numbers.draw(21_000, 880_000),
                "founded": self.numbers.year(1100, 1850),
                "currency": self.names.take().lower(),
            })

    def make_cities(self) -> None:
        countries = self.pages["country"]
        for index in range(COUNTS["city"]):
            country = countries[index % len(countries)]
            name = self.names.take()
            page = self.add("city", name, {
                "country": country.title,
                "population": self.numbers.draw(5_000, 2_400_000),
                "founded": self.numbers.year(1100, 1900),
                "elevation_m": self.rng.randint(3, 990),
                "known_for": self.rng.choice(CITY_FAMOUS),
            })
            if index < len(countries):
                country.facts["capital"] = name
                page.facts["capital_of"] = country.title
        for country in countries:
            c = country.facts
            country.sentences = [
                f"{country.title} is a country on the shore of {c['sea']}.",
                f"Its capital is {c['capital']}.",
                f"{country.title} has a population of {c['population']} and covers {c['area_km2']} square kilometres.",
                f"It was founded in {c['founded']}, and its currency is the {c['currency']}.",
            ]

    def make_people(self) -> None:
        cities = self.pages["city"]
        for _ in range(COUNTS["person"]):
            name = f"{self.names.take()} {self.names.take()}"
            born = self.numbers.year(1100, 1920)
            died = self.numbers.year(born + 35, born + 95)
            self.add("person", name, {
                "born": born,
                "died": died,
                "birthplace": self.rng.choice(cities).title,
                "occupation": self.rng.choice(OCCUPATIONS),
            })

    def _person(self, job: str | None = None) -> Page:
        """A person with no role yet (so each invention, company or ascent has its own person)."""
        free = [p for p in self.pages["person"] if "role" not in p.facts]
        person = self.rng.choice(free)
        person.facts["role"] = True
        if job:
            person.facts["occupation"] = job
        return person

    def _active_year(self, person: Page, start: int = 20) -> int:
        return self.numbers.year(person.facts["born"] + start, person.facts["died"] - 2)

    def make_mountains(self) -> None:
        countries = self.pages["country"]
        for index in range(COUNTS["mountain"]):
            climber = self._person("mountaineer") if index % 3 == 0 else None
            facts: dict[str, Any] = {
                "range": self.rng.choice(self.ranges),
                "country": self.rng.choice(countries).title,
                "height_m": self.numbers.draw(2_000, 8_900),
                "first_ascent": self._active_year(climber) if climber else self.numbers.year(1500, 1990),
            }
            if climber:
                facts["first_climber"] = climber.title
            page = self.add("mountain", f"Mount {self.names.take()}", facts)
            if climber:
                climber.facts["climbed"] = page.title
            page.sentences = [
                f"{page.title} is a peak of {facts['range']} in {facts['country']}.",
                f"It rises to {facts['height_m']} metres.",
                f"It was first climbed in {facts['first_ascent']}"
                + (f" by {climber.title}." if climber else " by an unknown party."),
            ]

    def make_rivers(self) -> None:
        countries = self.pages["country"]
        for _ in range(COUNTS["river"]):
            through = self.rng.sample(countries, self.rng.choice([1, 1, 2]))
            source = self.rng.choice(self.pages["mountain"])
            facts = {
                "source": source.title,
                "mouth": self.rng.choice(self.seas),
                "length_km": self.numbers.draw(2_000, 6_900),
                "discharge_m3s": self.numbers.draw(10_000, 99_000),
                "countries": [c.title for c in through],
            }
            page = self.add("river", f"{self.names.take()} River", facts)
            page.sentences = [
                f"The {page.title} rises on {source.title} and flows into {facts['mouth']}.",
                f"It is {facts['length_km']} kilometres long.",
                f"Its mean discharge is {facts['discharge_m3s']} cubic metres per second.",
                f"It passes through {' and '.join(facts['countries'])}.",
            ]
        for city in self.pages["city"]:
            rivers = [r for r in self.pages["river"] if city.facts["country"] in r.facts["countries"]]
            if rivers and self.rng.random() < 0.6:
                city.facts["river"] = self.rng.choice(rivers).title
            self.write_city(city)

    def write_city(self, city: Page) -> None:
        f = city.facts
        where = f"{city.title} is the capital of {f['country']}" if "capital_of" in f else f"{city.title} is a city in {f['country']}"
        where += f" on the {f['river']}." if "river" in f else "."
        city.sentences = [
            where,
            f"It has a population of {f['population']} and was founded in {f['founded']}.",
            f"The city lies {f['elevation_m']} metres above sea level.",
            f"It is known for its {f['known_for']}.",
        ]
        if self.rng.random() < 0.4:
            del city.sentences[2]

    def make_lakes(self) -> None:
        for _ in range(COUNTS["lake"]):
            river = self.rng.choice(self.pages["river"])
            facts = {
                "country": self.rng.choice(river.facts["countries"]),
                "area_km2": self.numbers.draw(2_000, 9_900),
                "fed_by": river.title,
                "known_for": self.rng.choice(LAKE_FAMOUS),
            }
            page = self.add("lake", f"Lake {self.names.take()}", facts)
            page.sentences = [
                f"{page.title} is a lake in {facts['country']} fed by the {river.title}.",
                f"It covers {facts['area_km2']} square kilometres.",
                f"It is known for its {facts['known_for']}.",
            ]

    def make_inventions(self) -> None:
        kinds = list(INVENTION_KINDS)
        for index in range(COUNTS["invention"]):
            inventor = self._person(self.rng.choice(INVENTOR_JOBS))
            kind = kinds[index % len(kinds)]
            facts = {
                "year": self._active_year(inventor),
                "inventor": inventor.title,
                "first_built_in": self.rng.choice(self.pages["city"]).title,
                "use": self.rng.choice(INVENTION_USES),
            }
            page = self.add("invention", f"{self.names.take()} {kind}", facts)
            inventor.facts["invented"] = page.title
            desc = INVENTION_KINDS[kind]
            page.sentences = [
                f"The {page.title} is {article(desc)} {desc} invented by {inventor.title} in {facts['year']}.",
                f"It was first built in {facts['first_built_in']}.",
                f"It was used to {facts['use']}.",
            ]

    def make_companies(self) -> None:
        for _ in range(COUNTS["company"]):
            founder = self._person()
            facts = {
                "founded": self._active_year(founder, 18),
                "founder": founder.title,
                "headquarters": self.rng.choice(self.pages["city"]).title,
                "employees": self.numbers.draw(2_000, 90_000),
                "product": self.rng.choice(PRODUCTS),
            }
            page = self.add("company", f"{self.names.take()} {self.rng.choice(COMPANY_KINDS)}", facts)
            founder.facts["founded_company"] = page.title
            page.sentences = [
                f"{page.title} is a maker of {facts['product']} based in {facts['headquarters']}.",
                f"It was founded in {facts['founded']} by {founder.title}.",
                f"It employs {facts['employees']} people.",
            ]

    def make_festivals(self) -> None:
        for _ in range(COUNTS["festival"]):
            facts = {
                "city": self.rng.choice(self.pages["city"]).title,
                "month": self.rng.choice(MONTHS),
                "first_held": self.numbers.year(1100, 1990),
                "attendance": self.numbers.draw(2_000, 900_000),
                "theme": self.rng.choice(FESTIVAL_THEMES),
            }
            page = self.add("festival", f"{self.names.take()} {self.rng.choice(FESTIVAL_KINDS)} Festival", facts)
            page.sentences = [
                f"The {page.title} is held in {facts['city']} every {facts['month']}.",
                f"It was first held in {facts['first_held']} and celebrates {facts['theme']}.",
                f"About {facts['attendance']} visitors attend each year.",
            ]

    def make_universities(self) -> None:
        for _ in range(COUNTS["university"]):
            facts = {
                "city": self.rng.choice(self.pages["city"]).title,
                "founded": self.numbers.year(1100, 1960),
                "students": self.numbers.draw(2_000, 95_000),
                "subject": self.rng.choice(SUBJECTS),
            }
            page = self.add("university", f"{self.names.take()} University", facts)
            page.sentences = [
                f"{page.title} is a university in {facts['city']}.",
                f"It was founded in {facts['founded']} and has {facts['students']} students.",
                f"It is best known for {facts['subject']}.",
            ]

    def write_people(self) -> None:
        for person in self.pages["person"]:
            f = person.facts
            f.pop("role", None)
            surname = person.title.split()[1]
            job = f["occupation"]
            person.sentences = [
                f"{person.title} was {article(job)} {job} born in {f['birthplace']} in {f['born']}.",
                f"{surname} died in {f['died']}.",
            ]
            if "invented" in f:
                person.sentences.append(f"{surname} invented the {f['invented']}.")
            if "founded_company" in f:
                person.sentences.append(f"{surname} founded {f['founded_company']}.")
            if "climbed" in f:
                person.sentences.append(f"{surname} was the first to climb {f['climbed']}.")


def render(records: list[dict[str, Any]]) -> str:
    """The JSON Lines text of the corpus (ASCII, one page per line, stable key order)."""
    return "".join(json.dumps(record, ensure_ascii=True) + "\n" for record in records)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "search")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "corpus.jsonl"
    target.write_bytes(render(World(args.seed).build()).encode("ascii"))
    return target


if __name__ == "__main__":
    print(main())
