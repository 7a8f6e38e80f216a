"""Fictional members, generated deterministically: the sample list and the benchmark's million.

Addresses use only reserved example domains (`.example`, RFC 2606). The mix
of sectors, regions, topics and shared domains follows the Health Equity
Network: councils and NHS bodies share a handful of domains, as in life.
`python bench/members.py N OUT.csv [--seed S]` writes N members.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from collections.abc import Iterator
from pathlib import Path

FIRST = [
    "Aisha",
    "Alex",
    "Amira",
    "Ben",
    "Bola",
    "Callum",
    "Chloe",
    "Daniel",
    "Deborah",
    "Elif",
    "Emma",
    "Fatima",
    "Grace",
    "Hannah",
    "Harpreet",
    "Imran",
    "Isla",
    "Jack",
    "James",
    "Jamal",
    "Kate",
    "Kevin",
    "Laura",
    "Liam",
    "Maya",
    "Mohammed",
    "Niamh",
    "Olu",
    "Priya",
    "Rhys",
    "Ruth",
    "Sam",
    "Sara",
    "Sean",
    "Siobhan",
    "Tom",
    "Uzma",
    "Yusuf",
    "Zara",
    "Gwen",
    "Dafydd",
    "Morag",
    "Ewan",
    "Aoife",
    "Tariq",
    "Nadia",
    "Chen",
    "Wei",
    "Anna",
    "Pete",
]
LAST = [
    "Ahmed",
    "Ali",
    "Begum",
    "Brown",
    "Campbell",
    "Davies",
    "Evans",
    "Gallagher",
    "Green",
    "Hughes",
    "Hussain",
    "Jones",
    "Kaur",
    "Khan",
    "Lewis",
    "Macdonald",
    "Murphy",
    "Nowak",
    "Okafor",
    "Owen",
    "Patel",
    "Price",
    "Roberts",
    "Robinson",
    "Shah",
    "Singh",
    "Smith",
    "Taylor",
    "Thomas",
    "Walker",
    "Williams",
    "Wilson",
    "Wright",
    "Young",
    "Zhang",
    "Morgan",
    "Reid",
    "Kelly",
    "O'Neill",
    "Mensah",
    "Adeyemi",
]
PLACES = {
    "north-east": ["Newcastle", "Gateshead", "Sunderland"],
    "north-west": ["Liverpool", "Manchester", "Knowsley", "Sefton", "Lancaster", "Barrow-in-Furness"],
    "yorkshire-humber": ["Leeds", "Sheffield", "Bradford", "Hull"],
    "east-midlands": ["Nottingham", "Leicester", "Derby"],
    "west-midlands": ["Birmingham", "Coventry", "Stoke-on-Trent", "Solihull"],
    "east-of-england": ["Luton", "Norwich", "Cambridge"],
    "london": ["Waltham Forest", "Hackney", "Lambeth", "Newham"],
    "south-east": ["Brighton", "Southampton", "Oxford"],
    "south-west": ["Bristol", "Taunton", "Plymouth", "Exeter"],
    "wales": ["Newport", "Caerphilly", "Blaenau Gwent", "Torfaen", "Monmouthshire", "Cardiff"],
    "scotland": ["Glasgow", "Edinburgh", "Dundee"],
    "northern-ireland": ["Belfast", "Derry"],
}
REGION_WEIGHTS = [6, 14, 10, 6, 10, 6, 16, 8, 10, 8, 4, 2]
SECTORS = ["local-government", "nhs", "voluntary", "academia", "business", "national-government", "other"]
SECTOR_WEIGHTS = [34, 24, 20, 12, 5, 3, 2]
TOPICS = [
    "health-equity",
    "housing",
    "early-years",
    "children-young-people",
    "good-work",
    "income-poverty",
    "education-skills",
    "nhs-integrated-care",
    "local-government",
    "racial-health-equity",
    "climate",
    "communities",
    "marmot-places",
    "international",
    "evidence-data",
    "network-events",
]
SECTOR_TOPICS = {
    "local-government": ["local-government", "marmot-places", "housing", "early-years"],
    "nhs": ["nhs-integrated-care", "health-equity", "racial-health-equity"],
    "voluntary": ["communities", "income-poverty", "children-young-people"],
    "academia": ["evidence-data", "international", "health-equity"],
    "business": ["good-work", "housing"],
}
COLUMNS = ["email", "name", "organisation", "sector", "region", "place", "topics", "lists", "joined"]


def _slug(text: str) -> str:
    return "".join(ch for ch in text.lower().replace(" ", "-") if ch.isalnum() or ch == "-")


def _organisation(rng: random.Random, sector: str, place: str) -> tuple[str, str]:
    """An organisation and its mail domain; many members share the big ones."""
    if sector == "local-government":
        return f"{place} Council", f"{_slug(place)}.gov.example"
    if sector == "nhs":
        body = rng.choice(["Integrated Care Board", "Foundation Trust", "Primary Care Network"])
        return f"NHS {place} {body}", "nhs.example"
    if sector == "voluntary":
        kind = rng.choice(["Community Trust", "Citizens Advice", "Food Network", "Youth Partnership"])
        return f"{place} {kind}", f"{_slug(place)}-{_slug(kind)}.org.example"
    if sector == "academia":
        return f"University of {place}", f"{_slug(place)}.ac.example"
    if sector == "business":
        kind = rng.choice(["Homes", "Developments", "Consulting", "Foods"])
        return f"{place} {kind} Ltd", f"{_slug(place)}{_slug(kind)}.co.example"
    if sector == "national-government":
        return "Department for Health Equity", "dhe.gov.example"
    return "", rng.choice(["mail.example", "post.example"])


def generate(count: int, seed: int = 2023) -> Iterator[dict[str, str]]:
    """`count` members as CSV rows; the same seed always gives the same rows."""
    rng = random.Random(seed)
    regions = list(PLACES)
    used: set[str] = set()
    for number in range(count):
        region = rng.choices(regions, REGION_WEIGHTS)[0]
        place = rng.choice(PLACES[region])
        sector = rng.choices(SECTORS, SECTOR_WEIGHTS)[0]
        first, last = rng.choice(FIRST), rng.choice(LAST)
        organisation, domain = _organisation(rng, sector, place)
        local = f"{first}.{last}".lower().replace("'", "")
        topics = set(rng.sample(SECTOR_TOPICS.get(sector, TOPICS), k=rng.randint(0, 2)))
        if rng.random() < 0.5:
            topics.add(rng.choice(TOPICS))
        lists = (
            ["newsletter"]
            + (["network"] if rng.random() < 0.7 else [])
            + (["events"] if rng.random() < 0.3 else [])
        )
        joined = f"{rng.randint(2019, 2023)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        email = f"{local}@{domain}"
        if email in used or count > 5000:  # big lists: numbered, so that no set of used addresses is kept
            email = f"{local}.{number}@{domain}"
        if count <= 5000:
            used.add(email)
        yield {
            "email": email,
            "name": f"{first} {last}",
            "organisation": organisation,
            "sector": sector,
            "region": region,
            "place": place,
            "topics": ";".join(sorted(topics)),
            "lists": ";".join(lists),
            "joined": joined,
        }


def write_csv(path: Path, count: int, seed: int = 2023) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, COLUMNS)
        writer.writeheader()
        writer.writerows(generate(count, seed))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=2023)
    args = parser.parse_args(argv)
    write_csv(args.out, args.count, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
