"""`flowservice secrets rotate`: re-seal every sealed value in the store with the current secret key.

Rotating the key is three steps, because servers and workers keep running meanwhile:

1. Set the new key as `FLOWSERVICE_SECRET_KEY` and the old one in `FLOWSERVICE_PREVIOUS_SECRET_KEYS`,
   and restart every process. Each now seals with the new key and opens with either.
2. `flowservice secrets rotate` re-seals what was sealed with an old key. It walks each table by
   primary key, one bounded batch per transaction, and replaces a value only if it is unchanged since
   it was read (a concurrent PATCH already sealed it with the new key), so it can run beside live
   servers, be interrupted, and be run again: a value already under the current key is left as it
   is, so a second run re-seals nothing and reports so.
3. Once it reports no value left under an old key, drop the previous keys and restart. Access tokens,
   continuation tokens and UI sessions signed with an old key stop working then (they are not stored,
   so they cannot be re-signed): wait `token_ttl_seconds` first if clients should not notice.

Rows no key can open are counted and named, never changed: they need their secrets entered again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flowservice.services.context import Services
from flowservice.store.repos import sealed as repo

DEFAULT_BATCH = 500
MAX_NAMED = 20  # unreadable row ids listed in a report; the count is always whole


@dataclass
class Counts:
    """What one kind of sealed value looked like to the rotation."""

    examined: int = 0
    resealed: int = 0  # were under a previous key, now under the current one
    current: int = 0  # were under the current key already
    changed: int = 0  # changed by someone else between read and write (already current)
    unreadable: int = 0  # no key opens them
    unreadable_ids: list[str] = field(default_factory=list)

    def wire(self) -> dict[str, object]:
        return {
            "examined": self.examined,
            "resealed": self.resealed,
            "current": self.current,
            "changedMeanwhile": self.changed,
            "unreadable": self.unreadable,
            "unreadableIds": self.unreadable_ids,
        }


@dataclass
class Report:
    kinds: dict[str, Counts]
    dry_run: bool

    @property
    def unreadable(self) -> int:
        return sum(c.unreadable for c in self.kinds.values())

    @property
    def resealed(self) -> int:
        return sum(c.resealed for c in self.kinds.values())

    def wire(self) -> dict[str, object]:
        return {"dryRun": self.dry_run, **{kind: counts.wire() for kind, counts in self.kinds.items()}}


def rotate(services: Services, *, batch: int = DEFAULT_BATCH, dry_run: bool = False) -> Report:
    """Re-seal, with the current key, every sealed value that an older key sealed.

    `dry_run` reads and counts without writing (what a rotation would do now).
    """
    if batch < 1:
        raise ValueError("the batch size must be at least 1")
    box = services.box
    report = Report({kind: Counts() for kind in repo.KINDS}, dry_run)
    for kind in repo.KINDS:
        counts = report.kinds[kind]
        after = ""
        while True:
            with services.db.reader() if dry_run else services.db.transaction() as session:
                rows = repo.page(session, kind, after, batch)
                for row in rows:
                    counts.examined += 1
                    try:
                        fresh = box.reseal(row.token)
                    except ValueError:
                        counts.unreadable += 1
                        if len(counts.unreadable_ids) < MAX_NAMED:
                            counts.unreadable_ids.append(row.id)
                        continue
                    if fresh is None:
                        counts.current += 1
                    elif dry_run or repo.replace(session, kind, row.id, row.token, fresh):
                        counts.resealed += 1
                    else:
                        counts.changed += 1
            if not rows:
                break
            after = rows[-1].id
    return report
