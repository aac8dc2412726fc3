"""Which pages changed, in order, so every action server's in-process index can catch up on just those.

Redis stays the truth; the index (knowledge/live_index.py) is a copy. Every write that changes what a
page contributes to answers (its cached passages, its source's settings, HR's curation) notes the page's
URL here: one counter (`index:version`) and one sorted set (`index:changes`, URL -> the change number
that last touched it). An action server remembers the last number it applied, reads the counter once per
question (one GET), and when it moved, reads the URLs changed since and reloads only those. A URL is
stored once, with its latest number, so the set is bounded by the number of sources ever listed.

`CURATION` stands for "HR hid or showed a passage, demoted or promoted a page": the index re-reads the
curation state and re-filters every page.
"""

from __future__ import annotations

import redis

from .store import DEFAULT_PREFIX, guarded

CURATION = "*curation*"

# One number for the whole batch: the counter and the set move together, atomically.
_NOTE = """
local v = redis.call('INCR', KEYS[1])
for i = 1, #ARGV do redis.call('ZADD', KEYS[2], v, ARGV[i]) end
return v
"""


class ChangeLog:
    def __init__(self, client: redis.Redis, prefix: str = DEFAULT_PREFIX) -> None:
        self.r = client
        self.version_key = f"{prefix}index:version"
        self.changes_key = f"{prefix}index:changes"

    def note(self, *urls: str) -> int:
        """Record that these pages changed; the new change number."""
        with guarded(self.r):
            return int(self.r.eval(_NOTE, 2, self.version_key, self.changes_key, *urls))

    def version(self) -> int:
        with guarded(self.r):
            return int(self.r.get(self.version_key) or 0)

    def since(self, after: int, upto: int, limit: int) -> list[tuple[str, int]]:
        """At most `limit` (URL, change number) noted after `after` and up to `upto`, oldest first."""
        with guarded(self.r):
            found = self.r.zrangebyscore(
                self.changes_key, f"({after}", upto, start=0, num=limit, withscores=True
            )
        return [(url, int(score)) for url, score in found]
