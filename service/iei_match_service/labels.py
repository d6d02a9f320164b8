"""Partnership outcomes and the graded labels retraining learns from.

Events go ``viewed → contacted → visited → agreement_signed → students_placed → hired``;
``rejected`` ends a partnership. The grade (0-3, as in the engine's links) is the strongest
stage reached since the last rejection: contacted or visited 1, agreement signed 2,
students placed or hired 3, rejected 0. A pair only viewed has no label.
"""

from __future__ import annotations

from collections.abc import Sequence

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
