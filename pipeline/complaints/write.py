"""Write a case's complaint drafts: ``case-<id>-<channel>.txt`` and ``.json`` per channel, each atomically."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pipeline.complaints.channels import check_channels, default_channel
from pipeline.complaints.draft import draft
from pipeline.complaints.facts import ComplaintContext
from pipeline.errors import ConfigError
from pipeline.files import write_atomic
from pipeline.sweep.models import DraftFile


def draft_names(case_id: int, channel: str) -> tuple[str, str]:
    """The text and JSON file names of one case's draft for one channel."""
    stem = f"case-{case_id}-{channel}"
    return f"{stem}.txt", f"{stem}.json"


def write_drafts(ctx: ComplaintContext, out_dir: Path, channels: Sequence[str] | None = None, *,
                 replace: bool = True) -> list[DraftFile]:
    """Write the case's drafts for ``channels`` (default: the channel of its marketplace, ``default_channel``)
    into ``out_dir`` (created if need be), text and JSON, each file atomically (``files.write_atomic``).

    Every channel is checked before anything is written: an unknown one is a ConfigError listing the known ones;
    with ``replace=False`` a draft file already there is a ConfigError naming it (it may hold the owner's edits).
    """
    wanted = check_channels(channels if channels is not None else (default_channel(ctx.case.marketplace),))
    if not replace:
        there = [out_dir / n for channel in wanted for n in draft_names(ctx.case.case_id, channel)
                 if (out_dir / n).exists()]
        if there:
            raise ConfigError(f"{there[0]} already exists (it may hold your edits): pass --force to write the "
                              "drafts again, or choose another --out")
    out: list[DraftFile] = []
    for channel in wanted:
        d = draft(channel, ctx)
        text_name, json_name = draft_names(ctx.case.case_id, channel)
        text_path, json_path = out_dir / text_name, out_dir / json_name
        write_atomic(text_path, d.text().encode("utf-8"))
        write_atomic(json_path, (json.dumps(d.as_json(), indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
        out.append(DraftFile(case_id=ctx.case.case_id, channel=channel, text_path=text_path, json_path=json_path,
                             missing=d.missing))
    return out
