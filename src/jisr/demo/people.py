"""The demo population: a few hundred Moroccan and Qatari persons, the same on every run.

``seed_people(session, country=…, count=…)`` registers, on an idp node, the country's
documented citizen plus ``count`` generated persons (names, dates, places and identifiers drawn
from a seeded random generator, so the same ids every time) through the register service;
identifiers already registered are skipped, so seeding twice adds nothing.

The two documented citizens, for demos and tests:

* ``MA:AB123456`` — Fatima Zahra El Amrani / فاطمة الزهراء العمراني, born 1990-04-12 in Rabat;
* ``QA:28435612345`` — Mohammed Al-Kuwari / محمد الكواري, born 1984-02-03 in Doha.

``register_people(world)`` is the scenario step: it seeds both instances and finds each
documented citizen from a misspelt Arabic name.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy.orm import Session

from jisr.core.audit import CheckpointSigner
from jisr.identity import service
from jisr.identity.schemas import PersonCreate

if TYPE_CHECKING:
    from jisr.demo.scenario import World

DEMO_COUNT = 300
SEED = 2026

FATIMA: dict[str, Any] = {
    "national_id": "MA:AB123456",
    "given_name_ar": "فاطمة الزهراء",
    "family_name_ar": "العمراني",
    "given_name_latin": "Fatima Zahra",
    "family_name_latin": "El Amrani",
    "birth_date": dt.date(1990, 4, 12),
    "birth_place": "Rabat",
    "sex": "F",
    "nationality": "MA",
    "address": "12 avenue Mohammed V, Hassan, Rabat",
    "email": "fatima.elamrani@example.ma",
    "phone": "+212600123456",
}
MOHAMMED: dict[str, Any] = {
    "national_id": "QA:28435612345",
    "given_name_ar": "محمد",
    "family_name_ar": "الكواري",
    "given_name_latin": "Mohammed",
    "family_name_latin": "Al-Kuwari",
    "birth_date": dt.date(1984, 2, 3),
    "birth_place": "Doha",
    "sex": "M",
    "nationality": "QA",
    "address": "Zone 66, Street 850, Building 12, Al Dafna, Doha",
    "email": "mohammed.alkuwari@example.qa",
    "phone": "+97455123456",
}
DOCUMENTED = {"MA": FATIMA, "QA": MOHAMMED}

# (Latin, Arabic) pairs.
MA_MEN = [
    ("Mohamed", "محمد"),
    ("Ahmed", "أحمد"),
    ("Youssef", "يوسف"),
    ("Hamza", "حمزة"),
    ("Omar", "عمر"),
    ("Karim", "كريم"),
    ("Rachid", "رشيد"),
    ("Hicham", "هشام"),
    ("Abdelkader", "عبد القادر"),
    ("Abderrahim", "عبد الرحيم"),
    ("Said", "سعيد"),
    ("Mustapha", "مصطفى"),
    ("Driss", "إدريس"),
    ("Khalid", "خالد"),
    ("Anas", "أنس"),
    ("Mehdi", "المهدي"),
    ("Ayoub", "أيوب"),
    ("Ismail", "إسماعيل"),
    ("Brahim", "إبراهيم"),
    ("Yassine", "ياسين"),
    ("Othmane", "عثمان"),
    ("Noureddine", "نور الدين"),
]
MA_WOMEN = [
    ("Fatima", "فاطمة"),
    ("Fatima Zahra", "فاطمة الزهراء"),
    ("Khadija", "خديجة"),
    ("Aicha", "عائشة"),
    ("Meryem", "مريم"),
    ("Zineb", "زينب"),
    ("Salma", "سلمى"),
    ("Hajar", "هاجر"),
    ("Naima", "نعيمة"),
    ("Souad", "سعاد"),
    ("Latifa", "لطيفة"),
    ("Imane", "إيمان"),
    ("Asmae", "أسماء"),
    ("Houda", "هدى"),
    ("Nadia", "نادية"),
    ("Ghizlane", "غزلان"),
    ("Hanane", "حنان"),
    ("Loubna", "لبنى"),
    ("Wafae", "وفاء"),
]
MA_FAMILIES = [
    ("El Amrani", "العمراني"),
    ("Bennani", "بناني"),
    ("Alaoui", "العلوي"),
    ("Tazi", "التازي"),
    ("El Idrissi", "الإدريسي"),
    ("Berrada", "برادة"),
    ("Benjelloun", "بنجلون"),
    ("El Fassi", "الفاسي"),
    ("Chraibi", "الشرايبي"),
    ("Benkirane", "بنكيران"),
    ("Lahlou", "لحلو"),
    ("Sqalli", "السقلي"),
    ("El Ouazzani", "الوزاني"),
    ("Ait Benhaddou", "آيت بنحدو"),
    ("Amazigh", "أمازيغ"),
    ("El Khattabi", "الخطابي"),
    ("Benali", "بنعلي"),
    ("Ziani", "الزياني"),
    ("Filali", "الفيلالي"),
    ("Naciri", "الناصري"),
    ("Mansouri", "المنصوري"),
    ("Cherkaoui", "الشرقاوي"),
    ("Bouzidi", "البوزيدي"),
]
MA_PLACES = [
    "Rabat",
    "Casablanca",
    "Fès",
    "Marrakech",
    "Tanger",
    "Agadir",
    "Meknès",
    "Oujda",
    "Tétouan",
    "Kénitra",
    "Salé",
    "El Jadida",
    "Béni Mellal",
    "Nador",
    "Errachidia",
]
MA_STREETS = [
    "avenue Mohammed V",
    "rue Oqba",
    "boulevard Zerktouni",
    "rue Ibn Batouta",
    "avenue Hassan II",
    "rue Moulay Ismail",
    "boulevard Anfa",
    "rue Al Mansour Eddahbi",
]
MA_PREFIXES = [
    "A",
    "AB",
    "AD",
    "B",
    "BE",
    "BH",
    "BJ",
    "BK",
    "C",
    "CD",
    "D",
    "DA",
    "E",
    "EE",
    "F",
    "G",
    "GK",
    "H",
    "I",
    "J",
    "JA",
    "JB",
    "JC",
    "JE",
    "K",
    "L",
    "LA",
    "M",
    "N",
    "P",
    "PA",
    "Q",
    "R",
    "S",
    "SH",
    "T",
    "U",
    "UA",
    "V",
    "W",
    "X",
    "Y",
    "Z",
]

QA_MEN = [
    ("Mohammed", "محمد"),
    ("Abdullah", "عبد الله"),
    ("Hamad", "حمد"),
    ("Khalifa", "خليفة"),
    ("Jassim", "جاسم"),
    ("Tamim", "تميم"),
    ("Nasser", "ناصر"),
    ("Faisal", "فيصل"),
    ("Saoud", "سعود"),
    ("Ali", "علي"),
    ("Hassan", "حسن"),
    ("Khalid", "خالد"),
    ("Abdulaziz", "عبد العزيز"),
    ("Mubarak", "مبارك"),
    ("Rashid", "راشد"),
    ("Salem", "سالم"),
    ("Saad", "سعد"),
    ("Fahad", "فهد"),
    ("Majid", "ماجد"),
    ("Yousef", "يوسف"),
]
QA_WOMEN = [
    ("Moza", "موزة"),
    ("Fatima", "فاطمة"),
    ("Aisha", "عائشة"),
    ("Mariam", "مريم"),
    ("Noora", "نورة"),
    ("Hessa", "حصة"),
    ("Al Anoud", "العنود"),
    ("Sheikha", "شيخة"),
    ("Maha", "مها"),
    ("Latifa", "لطيفة"),
    ("Reem", "ريم"),
    ("Dana", "دانة"),
    ("Shaikha", "شيخة"),
    ("Alya", "علياء"),
    ("Hind", "هند"),
    ("Amna", "آمنة"),
]
QA_FAMILIES = [
    ("Al-Thani", "آل ثاني"),
    ("Al-Kuwari", "الكواري"),
    ("Al-Marri", "المري"),
    ("Al-Sulaiti", "السليطي"),
    ("Al-Kaabi", "الكعبي"),
    ("Al-Mohannadi", "المهندي"),
    ("Al-Hajri", "الهاجري"),
    ("Al-Naimi", "النعيمي"),
    ("Al-Dosari", "الدوسري"),
    ("Al-Emadi", "العمادي"),
    ("Al-Khulaifi", "الخليفي"),
    ("Al-Muftah", "المفتاح"),
    ("Al-Ansari", "الأنصاري"),
    ("Al-Sada", "السادة"),
    ("Al-Baker", "الباكر"),
    ("Al-Attiyah", "العطية"),
    ("Al-Misnad", "المسند"),
    ("Al-Jaber", "الجابر"),
]
QA_PLACES = ["Doha", "Al Rayyan", "Al Wakrah", "Al Khor", "Umm Salal", "Al Daayen", "Dukhan"]
QA_DISTRICTS = ["Al Dafna", "West Bay", "Al Sadd", "Msheireb", "Al Waab", "Lusail", "Al Gharrafa"]


def demo_people(country: str, count: int, *, seed: int = SEED) -> list[PersonCreate]:
    """The documented citizen of ``country`` then ``count`` generated persons (deterministic)."""
    rng = random.Random(f"{seed}-{country}")
    people = [PersonCreate.model_validate(DOCUMENTED[country])]
    seen = {service.person_values(people[0])["national_id"]}
    while len(people) < count + 1:
        person = _moroccan(rng) if country == "MA" else _qatari(rng)
        namesake = (person.given_name_ar, person.family_name_ar) == (
            people[0].given_name_ar,
            people[0].family_name_ar,
        )  # the documented citizen's name stays unique, so the demo search finds one person
        if not namesake and person.national_id.replace(":", "") not in seen:
            seen.add(person.national_id.replace(":", ""))
            people.append(person)
    return people


def seed_people(
    session: Session,
    *,
    country: str,
    count: int,
    seed: int = SEED,
    signer: CheckpointSigner | None = None,
) -> int:
    """Register the demo population of ``country`` on this idp node; how many were new."""
    rows = [service.person_values(person) for person in demo_people(country, count, seed=seed)]
    taken = service.existing_national_ids(session, [row["national_id"] for row in rows])
    fresh = [row for row in rows if row["national_id"] not in taken]
    return service.create_persons(session, fresh, source="demo", actor="demo", signer=signer)


def _birth(rng: random.Random, start: int = 1945, end: int = 2006) -> dt.date:
    first = dt.date(start, 1, 1).toordinal()
    return dt.date.fromordinal(rng.randint(first, dt.date(end, 12, 31).toordinal()))


def _moroccan(rng: random.Random) -> PersonCreate:
    sex = rng.choice("MF")
    given = rng.choice(MA_MEN if sex == "M" else MA_WOMEN)
    family = rng.choice(MA_FAMILIES)
    city = rng.choice(MA_PLACES)
    number = f"{rng.choice(MA_PREFIXES)}{rng.randint(10000, 999999):06d}"
    return PersonCreate(
        national_id=f"MA:{number}",
        given_name_latin=given[0],
        given_name_ar=given[1],
        family_name_latin=family[0],
        family_name_ar=family[1],
        birth_date=_birth(rng),
        birth_place=city,
        sex=sex,
        nationality="MA",
        address=f"{rng.randint(1, 250)} {rng.choice(MA_STREETS)}, {rng.choice(MA_PLACES)}",
    )


def _qatari(rng: random.Random) -> PersonCreate:
    sex = rng.choice("MF")
    given = rng.choice(QA_MEN if sex == "M" else QA_WOMEN)
    family = rng.choice(QA_FAMILIES)
    birth = _birth(rng)
    century = 2 if birth.year < 2000 else 3
    number = f"{century}{birth.year % 100:02d}634{rng.randint(0, 99999):05d}"
    return PersonCreate(
        national_id=f"QA:{number}",
        given_name_latin=given[0],
        given_name_ar=given[1],
        family_name_latin=family[0],
        family_name_ar=family[1],
        birth_date=birth,
        birth_place=rng.choice(QA_PLACES),
        sex=sex,
        nationality="QA",
        address=(
            f"Zone {rng.randint(1, 98)}, Street {rng.randint(100, 999)}, "
            f"Building {rng.randint(1, 80)}, {rng.choice(QA_DISTRICTS)}"
        ),
    )


# A misspelt Arabic query per country, and whom it must find.
SEARCHES = {"MA": ("فاطمه الزهرا العمرانى", "MAAB123456"), "QA": ("محمد الكوارى", "QA28435612345")}


def register_people(world: World) -> None:
    """Scenario step: seed both registers, then find each documented citizen by a variant."""
    world.step("Population registers: persons in Arabic and Latin script, found across spellings")
    for code, instance in world.instances.items():
        idp = instance.node("idp")
        with idp.session() as session:
            added = seed_people(
                session, country=code, count=DEMO_COUNT, signer=idp.checkpoint_signer(session)
            )
        citizen = DOCUMENTED[code]
        world.say(
            f"{code}: {added} persons registered on the idp node ({DEMO_COUNT + 1} in the demo "
            f"population); documented citizen {citizen['national_id']} "
            f"{citizen['given_name_latin']} {citizen['family_name_latin']}"
        )
    for code, (query, expected) in SEARCHES.items():
        found = _search(world, code, query)
        if not found or found[0]["national_id"] != expected:
            raise RuntimeError(f"{code}: searching {query!r} did not find {expected}")
        first = found[0]
        world.say(
            f"{code}: search «{query}» → {first['national_id_display']} "
            f"{first['given_name_ar']} {first['family_name_ar']} "
            f"({first['given_name_latin']} {first['family_name_latin']}, {first['birth_date']})"
        )


def _search(world: World, code: str, query: str) -> list[dict[str, Any]]:
    """Through the register's HTTP API when the instance is served, else the service."""
    if code in world.running:
        response = httpx.get(
            f"{world.url(code)}/api/identity/persons", params={"q": query}, timeout=10
        )
        response.raise_for_status()
        persons: list[dict[str, Any]] = response.json()["persons"]
        return persons
    from jisr.identity.schemas import PersonRead

    with world.instances[code].node("idp").session() as session:
        found = service.search_persons(session, query)
        return [PersonRead.model_validate(p).model_dump(mode="json") for p in found]
