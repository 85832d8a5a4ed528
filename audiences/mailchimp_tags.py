"""Segment tags on Mailchimp members, set in bulk through the static segments that tags are in the API.

``POST /lists/{id}/segments/{segment_id}`` adds and removes up to 500 members (by email) per call, where the
per-member tags endpoint takes one call per member. A tag that does not exist yet is created as an empty
static segment first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import as_completed
from dataclasses import dataclass, field

from audiences.mailchimp_client import MailchimpClient, MailchimpError, worker_pool

log = logging.getLogger(__name__)
SEGMENT_BATCH = 500  # members_to_add and members_to_remove: at most 500 each per call


@dataclass
class TagChanges:
    """Per tag, the emails to tag and to untag; ``keys`` maps each email back to its record key."""

    add: dict[str, list[str]] = field(default_factory=dict)
    remove: dict[str, list[str]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)

    def set(self, key: str, email: str, added: set[str], removed: set[str]) -> None:
        self.keys[email.lower()] = key
        for tag in added:
            self.add.setdefault(tag, []).append(email)
        for tag in removed:
            self.remove.setdefault(tag, []).append(email)

    def without(self, keys: set[str] | dict[str, object]) -> TagChanges:
        """The same changes but for the records ``keys`` (e.g. members that could not be written)."""
        kept = TagChanges()
        for tag, emails in self.add.items():
            for email in emails:
                if self.keys[email.lower()] not in keys:
                    kept.set(self.keys[email.lower()], email, {tag}, set())
        for tag, emails in self.remove.items():
            for email in emails:
                if self.keys[email.lower()] not in keys:
                    kept.set(self.keys[email.lower()], email, set(), {tag})
        return kept

    @property
    def additions(self) -> int:
        return sum(map(len, self.add.values()))

    @property
    def removals(self) -> int:
        return sum(map(len, self.remove.values()))

    @property
    def operations(self) -> int:
        return self.additions + self.removals

    def calls(self) -> Iterator[tuple[str, list[str], list[str]]]:
        """(tag, emails to add, emails to remove), at most 500 of each per call."""
        for tag in sorted(set(self.add) | set(self.remove)):
            adds, removes = sorted(self.add.get(tag, [])), sorted(self.remove.get(tag, []))
            for start in range(0, max(len(adds), len(removes)), SEGMENT_BATCH):
                yield tag, adds[start : start + SEGMENT_BATCH], removes[start : start + SEGMENT_BATCH]


def apply_tag_changes(
    client: MailchimpClient,
    list_id: str,
    changes: TagChanges,
    max_connections: int,
    on_applied: Callable[[str, list[str], list[str]], None] = lambda tag, added, removed: None,
) -> dict[str, str]:
    """Apply ``changes``; returns record key -> why its tags could not be set (nothing for success).
    ``on_applied(tag, keys tagged, keys untagged)`` is told each call's successes as it is answered (on the
    calling thread), so a caller can record them before the next answer."""
    failed: dict[str, str] = {}
    calls = list(changes.calls())
    if not calls:
        return failed
    segments = {s["name"].lower(): int(s["id"]) for s in client.static_segments(list_id)}
    for tag in sorted({tag for tag, adds, _ in calls if adds}):
        if tag.lower() not in segments:
            segments[tag.lower()] = int(client.create_static_segment(list_id, tag)["id"])
            log.info("created Mailchimp tag %s", tag)

    def send(call: tuple[str, list[str], list[str]]) -> dict[str, str]:
        tag, adds, removes = call
        segment = segments.get(tag.lower())
        if segment is None:  # removing a tag that no longer exists: nobody carries it
            return {}
        try:
            answer = client.update_segment_members(list_id, segment, add=adds, remove=removes)
        except MailchimpError as exc:
            if exc.status in (401, 403):
                raise
            return {changes.keys[e.lower()]: f"tag {tag}: {exc.reason}" for e in adds + removes}
        except Exception as exc:  # timeouts and resets that outlived the retries
            reason = f"tag {tag}: transient: {type(exc).__name__}: {exc}"[:500]
            return {changes.keys[e.lower()]: reason for e in adds + removes}
        out: dict[str, str] = {}
        adding = {e.lower() for e in adds}
        for error in answer.get("errors") or []:
            for email in error.get("email_addresses") or []:
                key = changes.keys.get(str(email).lower())
                # Untagging someone who is no longer a member (deleted, forgotten at Mailchimp) has nothing left
                # to do; tagging someone who is not a member is a failure, retried next run.
                if key is not None and str(email).lower() in adding:
                    out[key] = f"tag {tag}: {error.get('error', 'refused')}"
        return out

    with worker_pool(max_connections) as pool:
        futures = {pool.submit(send, call): call for call in calls}
        for future in as_completed(futures):
            tag, adds, removes = futures[future]
            outcome = future.result()
            for key, reason in outcome.items():
                failed.setdefault(key, reason)
            keys = changes.keys
            on_applied(
                tag,
                [keys[e.lower()] for e in adds if keys[e.lower()] not in outcome],
                [keys[e.lower()] for e in removes if keys[e.lower()] not in outcome],
            )
    return failed
