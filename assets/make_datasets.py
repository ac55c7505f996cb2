"""Build the small data sets the ``data`` server serves: ``assets/data/<name>.json``.

Run ``python assets/make_datasets.py`` (or ``--out DIR``). A fixed seed and hand-written name
lists make every run write byte-identical files. All names are invented: no real place.

Each file is one JSON object ``{"dataset": name, "columns": [...], "rows": [[...], ...]}`` with one
row per line, so a diff shows changed rows. The data sets:

- ``cities``: city, country, population, area_km2 (60 rows);
- ``stations``: station, city, month, temp_c, rain_mm (20 stations x 12 months = 240 rows);
- ``shipments``: id, origin, destination, mode, weight_kg, distance_km (200 rows).

Guarantees the task suite relies on: city and station names are unique single words; every
population, area, shipment weight and shipment distance is distinct, so "the largest X" always has
exactly one answer; every station's city is a row of ``cities``, so joining on ``city`` keeps every
station reading.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path
from typing import Any

SEED = 20240715
N_CITIES = 60
N_SHIPMENTS = 200

CITY_HEADS = (
    "Var",
    "Kel",
    "Mor",
    "Tal",
    "Bren",
    "Cor",
    "Dun",
    "Esk",
    "Fal",
    "Gar",
    "Hal",
    "Ist",
    "Jor",
    "Lun",
    "Mer",
    "Nor",
    "Ost",
    "Pel",
    "Quar",
    "Ros",
    "Sel",
    "Tor",
    "Ulm",
    "Vel",
    "Wyn",
    "Yar",
    "Zel",
)
CITY_TAILS = ("no", "dra", "wick", "holm", "stead", "ora", "vik", "gard", "mere", "by", "ton", "esse")
COUNTRIES = ("Veloria", "Cardane", "Ostrel", "Mirune", "Tavos", "Quenland")
STATIONS = (
    "Ashcrest",
    "Brackley",
    "Coldharbor",
    "Dewpoint",
    "Eastfold",
    "Fernside",
    "Greyscar",
    "Highmoor",
    "Ironbank",
    "Juniper",
    "Kettleby",
    "Longreach",
    "Millbrook",
    "Northwatch",
    "Oxbow",
    "Pinefold",
    "Quarryside",
    "Redcliff",
    "Stonegate",
    "Tidewell",
)
N_STATION_CITIES = 15  # fewer cities than stations: grouping by city differs from grouping by station
N_HUBS = 12  # shipments run between a few hub cities, so filtering by origin keeps several rows
MODES = {
    "road": (40, 1200, 200, 2500),
    "rail": (150, 2500, 500, 2500),
    "sea": (600, 4000, 800, 2500),
    "air": (300, 3800, 2, 400),
}  # mode -> distance range (km), weight range (kg)


def _unique(rng: random.Random, draw: Any, seen: set[Any]) -> Any:
    """Draw until the value is new: distinct values keep "the largest X" questions unambiguous."""
    while True:
        value = draw(rng)
        if value not in seen:
            seen.add(value)
            return value


def make_cities(rng: random.Random) -> list[list[Any]]:
    """Sixty invented cities spread over six invented countries."""
    names = sorted({h + t.lower() for h in CITY_HEADS for t in CITY_TAILS})
    chosen = rng.sample(names, N_CITIES)
    populations: set[int] = set()
    areas: set[float] = set()
    rows = []
    for name in chosen:
        population = _unique(
            rng, lambda r: int(math.exp(r.uniform(math.log(12_000), math.log(2_800_000)))), populations
        )
        area = _unique(rng, lambda r: round(r.uniform(25.0, 1400.0), 1), areas)
        rows.append([name, rng.choice(COUNTRIES), population, area])
    return rows


def make_stations(rng: random.Random, cities: list[list[Any]]) -> list[list[Any]]:
    """Monthly readings: a seasonal temperature curve per station and a noisy rainfall."""
    station_cities = rng.sample([row[0] for row in cities], N_STATION_CITIES)
    homes = station_cities + [rng.choice(station_cities) for _ in range(len(STATIONS) - N_STATION_CITIES)]
    rows = []
    for station, city in zip(STATIONS, homes, strict=True):
        mean_temp = rng.uniform(2.0, 22.0)
        swing = rng.uniform(4.0, 14.0)
        wetness = rng.uniform(20.0, 160.0)
        for month in range(1, 13):
            season = -math.cos((month - 1) / 12 * 2 * math.pi)
            temp = round(mean_temp + swing * season + rng.uniform(-2.0, 2.0), 1)
            rain = round(max(0.5, wetness * rng.uniform(0.3, 1.7)), 1)
            rows.append([station, city, month, temp, rain])
    return rows


def make_shipments(rng: random.Random, cities: list[list[Any]]) -> list[list[Any]]:
    """Two hundred shipments between hub cities; the mode shapes distance and weight."""
    hubs = rng.sample([row[0] for row in cities], N_HUBS)
    weights: set[float] = set()
    distances: set[int] = set()
    rows = []
    for number in range(N_SHIPMENTS):
        origin, destination = rng.sample(hubs, 2)
        mode = rng.choice(sorted(MODES))
        low_km, high_km, low_kg, high_kg = MODES[mode]
        distance = _unique(rng, lambda r, a=low_km, b=high_km: r.randint(a, b), distances)
        weight = _unique(rng, lambda r, a=low_kg, b=high_kg: round(r.uniform(a, b), 1), weights)
        rows.append([1001 + number, origin, destination, mode, weight, distance])
    return rows


def dataset_text(name: str, columns: list[str], rows: list[list[Any]]) -> str:
    """The file text: a JSON object with one row per line."""
    lines = [json.dumps(row, ensure_ascii=True) for row in rows]
    return (
        f'{{"dataset": {json.dumps(name)}, "columns": {json.dumps(columns)}, "rows": [\n'
        + ",\n".join(lines)
        + "\n]}\n"
    )


def build(out: Path) -> dict[str, int]:
    """Write every data set under ``out``; returns the row count of each."""
    rng = random.Random(SEED)
    cities = make_cities(rng)
    tables = {
        "cities": (["city", "country", "population", "area_km2"], cities),
        "stations": (["station", "city", "month", "temp_c", "rain_mm"], make_stations(rng, cities)),
        "shipments": (
            ["id", "origin", "destination", "mode", "weight_kg", "distance_km"],
            make_shipments(rng, cities),
        ),
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, (columns, rows) in tables.items():
        (out / f"{name}.json").write_text(dataset_text(name, columns, rows), encoding="utf-8")
    return {name: len(rows) for name, (_, rows) in tables.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "data")
    args = parser.parse_args()
    for name, count in build(args.out).items():
        print(f"{name}: {count} rows")


if __name__ == "__main__":
    main()
