"""Build ``assets/shop.db``, the small invented shop the ``database`` server serves.

Run ``python assets/make_shop_db.py`` (or ``--out PATH``). The data come from a fixed seed and
hand-written name lists, so every run gives the same rows; the file is rebuilt from scratch and
vacuumed, so its SQL dump is identical run after run (its bytes need not be, which is why the
tests compare dumps). All names are invented: no real person, place or brand.

Guarantees the task suite relies on: customer names and product names are unique, and every
product price is distinct, so "the most expensive X" always has exactly one answer.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
from datetime import date, timedelta
from pathlib import Path

SEED = 20240601
N_CUSTOMERS = 50
N_ORDERS = 300

FIRST_NAMES = (
    "Mara", "Tobin", "Ilsa", "Corvin", "Nadia", "Bram", "Yenna", "Osric", "Liora", "Fenn",
    "Talia", "Garrick", "Wren", "Odile", "Pascal", "Rhea", "Soren", "Elsbeth", "Quinlan", "Anouk",
    "Dario", "Mirela", "Jorin", "Saffi", "Ulric", "Zenna", "Cato", "Verena", "Hollis", "Ines",
)
LAST_NAMES = (
    "Quill", "Reeve", "Marsh", "Thorne", "Vale", "Pike", "Ashby", "Crane", "Dunmore", "Ember",
    "Fairlow", "Gale", "Hartwell", "Ivory", "Jessop", "Kestrel", "Lark", "Moss", "Nettle", "Oakes",
    "Penrose", "Rook", "Sorrel", "Tansy", "Umber", "Wick", "Yarrow", "Bellamy", "Cobb", "Dray",
)
CITIES = ("Oakmere", "Saltcombe", "Brindlewick", "Fennick", "Larkhollow", "Dunvale", "Marrowby", "Westerly")

PRODUCTS = {
    "kitchen": ("Brisk Kettle", "Mellow Mug", "Tidy Tray", "Sizzle Pan", "Crumb Board", "Zest Grater"),
    "garden": ("Sprout Trowel", "Dewdrop Can", "Thorn Gloves", "Bloom Pots", "Hedge Shears", "Moss Rake"),
    "toys": ("Wobble Top", "Puzzle Fox", "Kite Comet", "Robo Pip", "Bouncy Orb", "Marble Run"),
    "books": ("Atlas of Nowhere", "Quiet Tides", "The Clockmaker", "Salt and Ember", "Paper Moons",
              "Winter Ledger"),
    "office": ("Lumo Lamp", "Inky Pen", "Stack Tray", "Clip Kit", "Desk Dial", "Note Brick"),
}
PRICE_RANGES = {"kitchen": (6, 90), "garden": (4, 70), "toys": (5, 60), "books": (8, 40), "office": (2, 80)}

SCHEMA = """
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, city TEXT NOT NULL,
                        joined TEXT NOT NULL);
CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, category TEXT NOT NULL,
                       price REAL NOT NULL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),
                     product_id INTEGER NOT NULL REFERENCES products(id), quantity INTEGER NOT NULL,
                     order_date TEXT NOT NULL);
"""


def _customers(rng: random.Random) -> list[tuple[int, str, str, str]]:
    """Fifty unique invented names; join dates spread over 2021-2023 so 'joined' is worth asking."""
    pairs = [(f, last) for f in FIRST_NAMES for last in LAST_NAMES]
    chosen = rng.sample(pairs, N_CUSTOMERS)
    start = date(2021, 1, 1)
    rows = []
    for i, (first, last) in enumerate(chosen, start=1):
        joined = start + timedelta(days=rng.randrange(3 * 365))
        rows.append((i, f"{first} {last}", rng.choice(CITIES), joined.isoformat()))
    return rows


def _products(rng: random.Random) -> list[tuple[int, str, str, float]]:
    """Thirty products with pairwise distinct prices, so arg-max questions have one answer."""
    rows: list[tuple[int, str, str, float]] = []
    used: set[float] = set()
    for category, names in PRODUCTS.items():
        low, high = PRICE_RANGES[category]
        for name in names:
            price = round(rng.randint(low, high) + rng.choice((0.0, 0.25, 0.5, 0.99)), 2)
            while price in used:
                price = round(price + 0.5, 2)
            used.add(price)
            rows.append((len(rows) + 1, name, category, price))
    return rows


def _orders(rng: random.Random) -> list[tuple[int, int, int, int, str]]:
    """Orders over 2024 with uneven customer and product popularity; ids follow the dates."""
    customer_weights = [rng.uniform(0.2, 3.0) for _ in range(N_CUSTOMERS)]
    product_weights = [rng.uniform(0.3, 2.5) for _ in range(sum(len(v) for v in PRODUCTS.values()))]
    start = date(2024, 1, 1)
    drafts = []
    for _ in range(N_ORDERS):
        customer = rng.choices(range(1, N_CUSTOMERS + 1), customer_weights)[0]
        product = rng.choices(range(1, len(product_weights) + 1), product_weights)[0]
        quantity = rng.choices((1, 2, 3, 4, 5), (45, 25, 15, 10, 5))[0]
        day = (start + timedelta(days=rng.randrange(366))).isoformat()
        drafts.append((day, customer, product, quantity))
    drafts.sort()
    return [(i, c, p, q, d) for i, (d, c, p, q) in enumerate(drafts, start=1)]


def build(path: Path) -> None:
    """Write the shop database to ``path``, replacing any file already there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (path, path.with_name(path.name + "-journal"), path.with_name(path.name + "-wal")):
        stale.unlink(missing_ok=True)
    rng = random.Random(SEED)
    conn = sqlite3.connect(path)
    try:
        conn.executescript(SCHEMA)
        conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)", _customers(rng))
        conn.executemany("INSERT INTO products VALUES (?, ?, ?, ?)", _products(rng))
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", _orders(rng))
        conn.commit()
        conn.execute("VACUUM")
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "shop.db")
    args = parser.parse_args()
    build(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
