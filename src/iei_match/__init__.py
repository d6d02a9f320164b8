"""iei-match: match enterprise talent needs with college programs, in Chinese and English.

The engine is a plain library: load tables with :mod:`iei_match.io`, fit a
:class:`~iei_match.matcher.Matcher`, rank in either direction, save and load it with
:mod:`iei_match.artifacts`.
"""

from .errors import IeiMatchError
from .matcher import Match, Matcher

__version__ = "0.1.0"

__all__ = ["Matcher", "Match", "IeiMatchError", "__version__"]
