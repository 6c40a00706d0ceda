"""Synthetic people: names, national IDs, phones, addresses, sex and date of birth.

Faker is slow per call, so each locale's names and streets are drawn once from a seeded
`Faker(locale)` into pools, and people are then assembled from the pools with a seeded
`random.Random`. Pools depend on the seed and on the installed Faker version only.
"""

from __future__ import annotations

import dataclasses
import string
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from random import Random

from faker import Faker

from medspace.model import Address, Identity, Sex
from medspace.synth.geography import (
    CN_DISTRICTS,
    CN_EMAIL_DOMAINS,
    CN_MOBILE_PREFIXES,
    CN_STREETS,
    US_CITIES,
    US_EMAIL_DOMAINS,
    CnDistrict,
    UsCity,
)
from medspace.synth.ids import make_resident_id
from medspace.synth.randomness import subseed

ZH = "zh_CN"
EN = "en_US"
LOCALES = (ZH, EN)

CN_RID = "CN-RID"
US_SSN = "US-SSN"

#: Ages (completed years on this date) of the generated population.
AGE_REFERENCE_DATE = date(2024, 1, 1)
_AGE_MEAN, _AGE_SD, _AGE_MIN, _AGE_MAX = 58.0, 16.0, 18, 101
_POOL_SIZE = 1500
_P_EMAIL = {ZH: 0.15, EN: 0.35}
_P_NO_ID = 0.01
_P_NO_PHONE = 0.02

# Characters of Chinese given names that are commonly mistyped for one another.
_ZH_LOOKALIKE = dict(
    zip(
        "伟玮丽俐军君明铭华桦静婧杰洁芳方敏民磊垒洋阳勇永艳燕涛滔斌彬辉晖建健平萍刚钢英瑛玉钰红虹云芸文雯",
        "玮伟俐丽君军铭明桦华婧静洁杰方芳民敏垒磊阳洋永勇燕艳滔涛彬斌晖辉健建萍平钢刚瑛英钰玉虹红芸云雯文",
        strict=True,
    )
)


@dataclass(frozen=True, slots=True)
class Pools:
    """Names and streets of one locale, drawn once from a seeded Faker."""

    family: tuple[str, ...]
    given_male: tuple[str, ...]
    given_female: tuple[str, ...]
    streets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Person:
    """One synthetic person as their home locale would record them (no hospital MRN yet)."""

    locale: str
    sex: Sex
    birth_date: date
    identity: Identity

    @property
    def full_name(self) -> str:
        """The name as written in the locale: 张伟 or John Smith."""
        family = self.identity.family_name or ""
        given = self.identity.given_name or ""
        return family + given if self.locale == ZH else f"{given} {family}"


def age_on(birth_date: date, day: date) -> int:
    """Completed years of age on `day`."""
    before_birthday = (day.month, day.day) < (birth_date.month, birth_date.day)
    return day.year - birth_date.year - int(before_birthday)


@lru_cache(maxsize=8)
def pools(locale: str, seed: int) -> Pools:
    """The name and street pools of `locale` for a run seed (cached per process)."""
    fake = Faker(locale)
    fake.seed_instance(subseed(seed, "pools", locale))
    family = tuple(fake.last_name() for _ in range(_POOL_SIZE))
    male = tuple(fake.first_name_male() for _ in range(_POOL_SIZE))
    female = tuple(fake.first_name_female() for _ in range(_POOL_SIZE))
    if locale == ZH:
        faker_streets = tuple(fake.city_name() + "路" for _ in range(100))
        streets = CN_STREETS + faker_streets
    else:
        streets = tuple(fake.street_name() for _ in range(_POOL_SIZE // 3))
    return Pools(family, male, female, streets)


def birth_date_for(rng: Random) -> date:
    """A date of birth giving ages around 58 +- 16 years (18-101) on AGE_REFERENCE_DATE."""
    age = min(_AGE_MAX, max(_AGE_MIN, int(rng.gauss(_AGE_MEAN, _AGE_SD))))
    latest = AGE_REFERENCE_DATE.replace(year=AGE_REFERENCE_DATE.year - age)
    return latest - timedelta(days=rng.randrange(365))


def make_person(rng: Random, locale: str, pool: Pools) -> Person:
    """Draw one person of `locale` from its pools."""
    sex: Sex = "male" if rng.random() < 0.5 else "female"
    birth = birth_date_for(rng)
    family = rng.choice(pool.family)
    given = rng.choice(pool.given_male if sex == "male" else pool.given_female)
    if locale == ZH:
        identity = _zh_identity(rng, pool, family, given, sex, birth)
    else:
        identity = _en_identity(rng, pool, family, given)
    if rng.random() < _P_NO_ID:
        identity = dataclasses.replace(identity, national_id=None)
    if rng.random() < _P_NO_PHONE:
        identity = dataclasses.replace(identity, phone=None)
    return Person(locale, sex, birth, identity)


def _zh_identity(
    rng: Random, pool: Pools, family: str, given: str, sex: Sex, birth: date
) -> Identity:
    birthplace = rng.choice(CN_DISTRICTS)
    sequence = rng.randrange(500) * 2 + (1 if sex == "male" else 0)
    phone = rng.choice(CN_MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
    email = None
    if rng.random() < _P_EMAIL[ZH]:
        if rng.random() < 0.5:
            email = f"{rng.randint(10_000_000, 3_999_999_999)}@qq.com"
        else:
            name = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 8)))
            email = f"{name}{rng.randint(1, 999)}@{rng.choice(CN_EMAIL_DOMAINS)}"
    return Identity(
        family_name=family,
        given_name=given,
        national_id=make_resident_id(birthplace.division, birth, sequence),
        national_id_system=CN_RID,
        phone=phone,
        email=email,
        address=zh_address(rng, pool, birthplace if rng.random() < 0.7 else None),
    )


def zh_address(rng: Random, pool: Pools, district: CnDistrict | None = None) -> Address:
    """A Chinese address; in `district` when given, else in a random district."""
    home = district if district is not None else rng.choice(CN_DISTRICTS)
    line = f"{rng.choice(pool.streets)}{rng.randint(1, 399)}号"
    if rng.random() < 0.6:
        building, unit = rng.randint(1, 30), rng.randint(1, 6)
        line += f"{building}栋{unit}单元{rng.randint(1, 30)}{rng.randint(1, 4):02d}室"
    return Address(
        line=line,
        district=home.district,
        city=home.city,
        state=home.province,
        postal_code=home.postal_code,
        country="CN",
    )


def _en_identity(rng: Random, pool: Pools, family: str, given: str) -> Identity:
    # SSA rules: area 001-899 but not 666, group 01-99, serial 0001-9999.
    area = rng.randint(1, 898)
    area = area + 1 if area >= 666 else area
    ssn = f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
    address = en_address(rng, pool)
    city = next(c for c in US_CITIES if c.city == address.city)
    exchange = rng.randint(200, 999)
    exchange = exchange + 1 if exchange % 100 == 11 else exchange  # N11 codes are services
    email = None
    if rng.random() < _P_EMAIL[EN]:
        local = f"{given}.{family}".lower().replace(" ", "").replace("'", "")
        email = f"{local}{rng.randint(1, 99)}@{rng.choice(US_EMAIL_DOMAINS)}"
    return Identity(
        family_name=family,
        given_name=given,
        national_id=ssn,
        national_id_system=US_SSN,
        phone=f"{city.area_code}-{exchange}-{rng.randrange(10000):04d}",
        email=email,
        address=address,
    )


def en_address(rng: Random, pool: Pools, city: UsCity | None = None) -> Address:
    """A US street address with city, state and ZIP; in `city` when given."""
    home = city if city is not None else rng.choice(US_CITIES)
    line = f"{rng.randint(1, 9999)} {rng.choice(pool.streets)}"
    if rng.random() < 0.25:
        line += f" Apt {rng.randint(1, 40)}"
    return Address(
        line=line,
        city=home.city,
        state=home.state,
        postal_code=f"{int(home.zip_code) + rng.randrange(8):05d}",
        country="US",
    )


def new_address(rng: Random, person: Person, pool: Pools) -> Person:
    """The same person after a move: a different address of their locale."""
    old = person.identity.address
    for _ in range(20):
        address = zh_address(rng, pool) if person.locale == ZH else en_address(rng, pool)
        if address != old:
            break
    return dataclasses.replace(
        person, identity=dataclasses.replace(person.identity, address=address)
    )


def name_typo(rng: Random, person: Person) -> tuple[Person, str]:
    """The same person with one typing error in a name; returns (person, field changed)."""
    identity = person.identity
    if person.locale == ZH:
        given = identity.given_name or ""
        changed = _zh_typo(rng, given)
        return (
            dataclasses.replace(person, identity=dataclasses.replace(identity, given_name=changed)),
            "given_name",
        )
    if rng.random() < 0.5:
        typo = dataclasses.replace(identity, family_name=_en_typo(rng, identity.family_name or ""))
        return dataclasses.replace(person, identity=typo), "family_name"
    typo = dataclasses.replace(identity, given_name=_en_typo(rng, identity.given_name or ""))
    return dataclasses.replace(person, identity=typo), "given_name"


def _zh_typo(rng: Random, given: str) -> str:
    positions = [i for i, ch in enumerate(given) if ch in _ZH_LOOKALIKE]
    if positions:
        i = rng.choice(positions)
        return given[:i] + _ZH_LOOKALIKE[given[i]] + given[i + 1 :]
    # No look-alike character in the name: the last character is replaced.
    substitute = rng.choice([ch for ch in _ZH_LOOKALIKE if ch != given[-1:]])
    return given[:-1] + substitute


def _en_typo(rng: Random, name: str) -> str:
    if len(name) < 3:
        return name + name[-1:]
    i = rng.randrange(1, len(name) - 1)
    operation = rng.randrange(3)
    if operation == 0 and name[i] != name[i + 1]:  # swap two neighbours
        return name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    if operation == 1:  # drop a letter
        return name[:i] + name[i + 1 :]
    return name[:i] + name[i] + name[i:]  # double a letter
