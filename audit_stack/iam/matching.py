"""Wildcard matching of actions, resources and ARNs as IAM does it.

https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html
``*`` matches any run of characters and ``?`` any one; actions compare case-insensitively,
resources and ARN conditions case-sensitively, and ``ArnLike`` matches each of the six
colon-separated parts of the ARN on its own (a wildcard does not cross a ``:`` before the
resource part).
"""

from __future__ import annotations

import functools
import re


@functools.lru_cache(maxsize=4096)
def _pattern(glob: str, ignore_case: bool) -> re.Pattern[str]:
    parts = (".*" if char == "*" else "." if char == "?" else re.escape(char) for char in glob)
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob_matches(glob: str, text: str, *, ignore_case: bool = False) -> bool:
    """``text`` matches ``glob`` (``*`` and ``?`` wildcards) as a whole."""
    return _pattern(glob, ignore_case).fullmatch(text) is not None


def action_matches(pattern: str, action: str) -> bool:
    """An Action element entry against ``service:Operation`` (case-insensitive)."""
    return glob_matches(pattern, action, ignore_case=True)


def arn_matches(actual: str, pattern: str) -> bool:
    """``ArnEquals``/``ArnLike`` and Resource: part by part, the resource part with its colons."""
    if pattern == "*":
        return True
    actual_parts = actual.split(":", 5)
    pattern_parts = pattern.split(":", 5)
    if len(actual_parts) != 6 or len(pattern_parts) != 6:
        return glob_matches(pattern, actual)
    return all(glob_matches(p, a) for p, a in zip(pattern_parts, actual_parts, strict=True))
