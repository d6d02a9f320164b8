"""Request and response bodies of the API (pydantic), with every size bounded."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from iei_match.taxonomy import LEVELS
from iei_match.text import normalize

from .db.tables import COLLEGE_TYPES, EVENTS, ORG_KINDS, ROLES

# C0 and C1 controls but tab and newline; bidirectional overrides, embeddings, isolates and
# marks (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C), which can make a text read
# differently from what it holds; invisible zero-width space, word joiner and BOM (U+200B,
# U+2060, U+FEFF). The joiners U+200C/U+200D stay: several scripts and emoji need them.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f"
                      "\u202a-\u202e\u2060\u2066-\u2069\ufeff]")


def _drop_controls(value: str) -> str:
    r"""Control, bidirectional and invisible characters are removed from text; a carriage
    return becomes a newline (CR LF one newline).

    Examples
    --------
    >>> _drop_controls("a\r\nb\rc\u202e\u200bd\x85e\u2066f\tg")
    'a\nb\ncdef\tg'
    """
    return _CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


def _clean(value: str) -> str:
    return _drop_controls(value).strip()


def _not_empty(value: str) -> str:
    if not value:
        raise ValueError("must contain text, not only spaces or control characters")
    return value


def text(max_length: int, *, strip: bool = True, required: bool = False):
    """A string type whose length limits apply to what the client sent (as the API document
    says), and which is then cleaned: control characters dropped and, with ``strip``,
    surrounding spaces; ``required`` text must not be empty after cleaning."""
    parts: list = [StringConstraints(min_length=1 if required else None,
                                     max_length=max_length),
                   AfterValidator(_clean if strip else _drop_controls)]
    if required:
        parts.append(AfterValidator(_not_empty))
    return Annotated[(str, *parts)]  # type: ignore[return-value]


Title = text(200, required=True)
Text = text(20_000, strip=False)
Place = text(50)
Short = text(100)
Code = text(32)
Note = text(2000, strip=False)
OptionalTitle = text(200)
Level = Literal[LEVELS + ("",)]  # type: ignore[valid-type]
Items = Annotated[list[Short], Field(max_length=50)]
Count = Annotated[int, Field(ge=0, le=1_000_000)]
MAX_ID = 2**31 - 1  # ids are 32-bit integers on every database
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class Strict(BaseModel):
    """A request body: no unknown fields, and JSON types as documented (``false`` is not
    the number 0, nor ``0`` a boolean, nor ``"3"`` a number). File imports, whose cells
    are all text, validate with ``strict=False``."""

    model_config = ConfigDict(extra="forbid", str_max_length=20_000, strict=True)


def _clean_items(values: list[str]) -> list[str]:
    out, seen = [], set()
    for v in values:
        v = v.strip()
        if v and normalize(v) not in seen:
            seen.add(normalize(v))
            out.append(v)
    return out


class NeedFields(Strict):
    title: Title
    description: Text = ""
    skills: Items = []
    certificates: Items = Field(default=[], description="certificates a candidate must hold")
    industry: Short = ""
    code: Code = Field(default="", description="occupation code, if known (e.g. 6-12-03-00)")
    headcount: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    level: Level = ""
    province: Place = ""
    city: Place = ""

    _items = field_validator("skills", "certificates")(_clean_items)


class NeedIn(NeedFields):
    org_id: Id | None = Field(default=None, description="owner (coordinator or admin keys)")


class NeedPatch(Strict):
    title: Title | None = None
    description: Text | None = None
    skills: Items | None = None
    certificates: Items | None = None
    industry: Short | None = None
    code: Code | None = None
    headcount: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    level: Level | None = None
    province: Place | None = None
    city: Place | None = None


class NeedOut(NeedFields):
    model_config = ConfigDict(from_attributes=True, strict=False)
    id: int
    org_id: int
    created_at: datetime
    updated_at: datetime


class ProgramFields(Strict):
    code: Code = Field(default="", description="catalog code of the major, e.g. 490208")
    title: Title
    description: Text = ""
    certificates: Items = Field(default=[], description="certificates the program prepares for")
    level: Level = ""
    province: Place = ""
    city: Place = ""
    graduates_per_year: Count | None = None

    _items = field_validator("certificates")(_clean_items)


class ProgramIn(ProgramFields):
    org_id: Id | None = None


class ProgramPatch(Strict):
    code: Code | None = None
    title: Title | None = None
    description: Text | None = None
    certificates: Items | None = None
    level: Level | None = None
    province: Place | None = None
    city: Place | None = None
    graduates_per_year: Count | None = None


class ProgramOut(ProgramFields):
    model_config = ConfigDict(from_attributes=True, strict=False)
    id: int
    org_id: int
    created_at: datetime
    updated_at: datetime


class BaseFields(Strict):
    name: Title
    description: Text = ""
    industry: Short = ""
    equipment: Items = []
    province: Place = ""
    city: Place = ""
    capacity: Count | None = None


class BaseIn(BaseFields):
    org_id: Id | None = None


class BasePatch(Strict):
    name: Title | None = None
    description: Text | None = None
    industry: Short | None = None
    equipment: Items | None = None
    province: Place | None = None
    city: Place | None = None
    capacity: Count | None = None


class BaseOut(BaseFields):
    model_config = ConfigDict(from_attributes=True, strict=False)
    id: int
    org_id: int
    created_at: datetime
    updated_at: datetime


class OrgIn(Strict):
    kind: Literal[ORG_KINDS]  # type: ignore[valid-type]
    name: Title
    college_type: Literal[COLLEGE_TYPES] | None = None  # type: ignore[valid-type]
    province: Place = ""
    city: Place = ""
    alliance_id: Id | None = Field(default=None, description="alliance to join")


class OrgOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: str
    name: str
    college_type: str | None
    province: str
    city: str


class KeyIn(Strict):
    org_id: Id
    role: Literal[ROLES]  # type: ignore[valid-type]


class KeyOut(BaseModel):
    key: str = Field(description="shown once; only its hash is stored")
    role: str
    org_id: int


class MeOut(BaseModel):
    role: str
    org: OrgOut
    alliances: list[OrgOut]


class MatchIn(Strict):
    title: OptionalTitle = ""
    description: Text = ""
    skills: Items = []
    certificates: Items = []
    industry: Short = ""
    code: Code = ""
    headcount: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    level: Level = ""
    province: Place = ""
    city: Place = ""
    k: Annotated[int, Field(ge=1, le=100)] = 10
    near: Literal["anywhere", "province", "city"] = "anywhere"
    include_low: bool = Field(False, description="also list programs whose fit is low")

    _items = field_validator("skills", "certificates")(_clean_items)


class Factor(BaseModel):
    feature: str
    label: str
    label_zh: str
    contribution: float


class Explanation(BaseModel):
    matched_terms: list[str]
    matched_via: dict[str, str] = Field(
        {}, description="matched terms the need does not write, each with what it wrote: "
        "the catalog's form of a short form in its title (驾驶员 for 司机) or the Chinese "
        "term of an English need's trade (数控 for CNC)")
    missing_skills: list[str]
    factors: list[Factor]


class OrgBrief(BaseModel):
    id: int
    name: str
    province: str
    city: str


class BaseBrief(BaseModel):
    id: int
    name: str
    province: str
    city: str
    capacity: int | None


class ProgramHit(BaseModel):
    id: int
    rank: int
    score: float
    fit: float = Field(description="calibrated probability (0-1) that the pair is a real "
                       "partnership; the same whatever else is ranked with it")
    fit_level: Literal["high", "medium", "low"]
    explanation: Explanation
    program: ProgramOut
    college: OrgBrief
    training_bases: list[BaseBrief]


class NeedHit(BaseModel):
    id: int
    rank: int
    score: float
    fit: float = Field(description="calibrated probability (0-1) that the pair is a real "
                       "partnership; the same whatever else is ranked with it")
    fit_level: Literal["high", "medium", "low"]
    explanation: Explanation
    need: NeedOut
    enterprise: OrgBrief


class ReferenceMajor(BaseModel):
    code: str = Field(description="the major's code in the national catalog")
    title: str
    level: str
    fit: float
    fit_level: Literal["high", "medium", "low"]
    group: str = Field(description="its group (专业类), e.g. 4607")
    group_name: str = Field(description="the group's name, e.g. 汽车制造类")
    offered_in_alliance: bool = Field(description="a program of the alliance has this code")


class Ranked(BaseModel):
    model_version: str
    include_low: bool = Field(description="whether items of low fit are listed (they are "
                              "left out unless asked for)")
    items: list


class ProgramHits(Ranked):
    items: list[ProgramHit]
    language: Literal["zh", "en", ""] = Field(
        "", description="the language the need is written in (zh, en; empty when neither)")
    warnings: list[str] = Field(
        [], description="why the list may not rest on what the need says, e.g. an English "
                        "need in a Chinese alliance with no trade term the bridge knows")
    reference_majors: list[ReferenceMajor] = Field(
        description="the national catalog's majors that fit the need best, whatever the "
                    "alliance offers: what to look for when no program of the alliance fits")


class SkillGap(BaseModel):
    skill: str = Field(description="a skill the fitting needs ask for (as they spell it most "
                       "often; synonyms such as PLC and 可编程控制器 are one entry)")
    needs: int = Field(description="how many of the listed fitting needs ask for it")
    headcount: int = Field(description="the headcount those needs ask for in all")


class NeedHits(Ranked):
    items: list[NeedHit]
    skill_gaps: list[SkillGap] = Field(
        description="skills that the listed needs of fit_level high or medium ask for and "
        "the program's profile does not cover, most asked first")


class OutcomeIn(Strict):
    need_id: Id
    program_id: Id
    event: Literal[EVENTS]  # type: ignore[valid-type]
    note: Note = ""


class OutcomeOut(BaseModel):
    partnership_id: int
    need_id: int
    program_id: int
    stage: str
    grade: int | None
    event_id: int


class PartnershipOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    need_id: int
    program_id: int
    stage: str
    grade: int | None
    updated_at: datetime


class RetrainIn(Strict):
    force: bool = False


class BatchIn(Strict):
    """A batch job over the alliance's stored needs and programs."""

    top_k: int = Field(10, ge=1, le=100, description="programs per need, and needs per program")
    allocate: bool = Field(True, description="also plan who serves whom under the capacities")
    min_score: float | None = Field(None, ge=-1e6, le=1e6,
                                    description="pairs scoring lower are not allocated")
    min_fit: float | None = Field(None, ge=0, le=1, description="pairs whose fit is lower are "
                                  "not allocated (default: pairs of low fit_level are not; 0 "
                                  "lets them in)")
    max_partners_per_college: int | None = Field(
        None, ge=1, le=100_000, description="needs one college may serve at most")


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: str
    state: str
    progress: float
    message: str
    result: dict
    created_at: datetime
    updated_at: datetime


class ImportReport(BaseModel):
    kind: str
    created: int
    ids: list[int]
