"""How much one organisation may store: needs, programs and training bases each up to
``max_rows_per_org`` (a flood of junk rows would otherwise become training data for the
model every alliance is served)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .errors import Invalid


def check_quota(session: Session, model, new_per_org: Counter | dict, limit: int,
                what: str) -> None:
    """Refuse (422 ``quota_exceeded``) when adding ``new_per_org`` rows of ``model`` would
    take an organisation past ``limit``; nothing is written."""
    if not new_per_org:
        return
    held = dict(session.execute(select(model.org_id, func.count()).where(
        model.org_id.in_(list(new_per_org))).group_by(model.org_id)).all())
    for org, new in sorted(new_per_org.items()):
        if held.get(org, 0) + new > limit:
            raise Invalid(f"organisation {org} holds {held.get(org, 0)} {what}s; {new} more "
                          f"would pass its quota of {limit} (IEI_MATCH_MAX_ROWS_PER_ORG)",
                          code="quota_exceeded")
