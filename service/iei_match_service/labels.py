"""Partnership outcomes and the graded labels retraining learns from.

Events go ``viewed → contacted → visited → agreement_signed → students_placed → hired``;
``rejected`` ends a partnership. The grade (0-3, as in the engine's links) is the strongest
stage reached since the last rejection: contacted or visited 1, agreement signed 2,
students placed or hired 3, rejected 0. A pair only viewed has no label.

Each party records its own side (:func:`grade_of_sides`): a ``rejected`` undoes the stages
recorded before it by the rejecting party and by the alliance's stewards (coordinators,
admins, who record on behalf of both), never the stages the other party recorded itself,
so that a college cannot turn an enterprise's signed agreement into 0 (nor the reverse).
The pair's grade is the strongest stage left.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

STAGE_GRADE: dict[str, int | None] = {"viewed": None, "contacted": 1, "visited": 1,
                                      "agreement_signed": 2, "students_placed": 3, "hired": 3,
                                      "rejected": 0}


def grade_of(events: Sequence[str]) -> int | None:
    """The label of a partnership from its events, oldest first.

    Examples
    --------
    >>> grade_of(["viewed", "contacted", "agreement_signed"])
    2
    >>> grade_of(["contacted", "rejected"])
    0
    >>> grade_of(["viewed"]) is None
    True
    """
    grade: int | None = None
    for event in events:
        value = STAGE_GRADE[event]
        if event == "rejected":
            grade = 0
        elif value is not None:
            grade = value if grade is None else max(grade, value)
    return grade


def grade_of_sides(events: Iterable[tuple[str, int | None]], enterprise: int,
                   college: int) -> int | None:
    """The label of a partnership from ``(event, actor organisation)`` pairs, oldest first:
    a rejection undoes its own party's and the stewards' stages, not the other party's.

    Examples
    --------
    >>> grade_of_sides([("agreement_signed", 1), ("rejected", 2)], enterprise=1, college=2)
    2
    >>> grade_of_sides([("agreement_signed", 1), ("rejected", 1)], enterprise=1, college=2)
    0
    >>> grade_of_sides([("visited", 2), ("agreement_signed", 9), ("rejected", 1)],
    ...                enterprise=1, college=2)
    1
    """
    grades: dict[str, int | None] = {"enterprise": None, "college": None, "steward": None}
    for event, actor in events:
        side = ("enterprise" if actor == enterprise else "college" if actor == college
                else "steward")
        if event == "rejected":
            undone = grades if side == "steward" else (side, "steward")
            for name in undone:
                grades[name] = 0
            continue
        value = STAGE_GRADE[event]
        if value is not None:
            grades[side] = value if grades[side] is None else max(grades[side], value)
    known = [g for g in grades.values() if g is not None]
    return max(known) if known else None
