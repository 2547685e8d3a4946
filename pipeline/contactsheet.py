"""The run report: one self-contained HTML contact sheet of a run's outputs and failures."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from PIL import Image

from pipeline.files import write_atomic

THUMB_SIDE = 220
MAX_THUMBS = 600  # beyond this the sheet lists outputs without pictures, to keep the file openable

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2327;background:#f6f7f7}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ccd0d4;padding-bottom:4px}
.meta{color:#50575e;font-size:13px}.meta code{background:#fff;border:1px solid #dcdcde;padding:1px 4px;border-radius:3px}
.counts span{display:inline-block;margin-right:14px;font-weight:600}.ok{color:#00a32a}.bad{color:#d63638}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:12px}
.card{background:#fff;border:1px solid #dcdcde;border-radius:6px;padding:10px}
.card .pic{height:220px;display:flex;align-items:center;justify-content:center;
  background:repeating-conic-gradient(#eee 0 25%,#fff 0 50%) 50%/16px 16px}
.card img{max-width:220px;max-height:220px;box-shadow:0 0 0 1px #c3c4c7}
.card .name{font-weight:600;margin-top:6px;word-break:break-all}.card .small{font-size:12px;color:#50575e;word-break:break-all}
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #dcdcde;padding:4px 8px;text-align:left;font-size:13px}
"""


def _thumb_data_uri(path: str) -> str | None:
    try:
        with Image.open(path) as src:
            src.draft("RGB", (THUMB_SIDE * 2, THUMB_SIDE * 2))
            im = src.convert("RGB")
        im.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=80)
    except OSError:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def render(summary: Any, options: Any) -> str:
    e = html.escape
    outputs = summary.outputs
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>catalogmark run {e(str(summary.run_id))}</title><style>{_CSS}</style></head><body>",
        "<h1>catalogmark run report</h1>",
        f"<div class='meta'>run <code>{e(str(summary.run_id))}</code> &middot; Merkle root "
        f"<code>{e(str(summary.merkle_root))}</code><br>owner {e(options.owner.name)} &middot; key "
        f"<code>{e(options.key.fingerprint)}</code> &middot; ledger <code>{e(str(options.ledger_path))}</code></div>",
        "<p class='counts'>"
        f"<span class='ok'>{summary.processed} processed</span><span>{summary.skipped} skipped</span>"
        f"<span class='{'bad' if summary.failed else 'ok'}'>{summary.failed} failed</span>"
        f"<span>{len(outputs)} outputs</span></p>",
    ]
    if summary.failures:
        parts.append("<h2>Failures</h2><table><tr><th>source</th><th>preset</th><th>stage</th><th>error</th></tr>")
        for f in summary.failures:
            parts.append(f"<tr><td>{e(f.path)}</td><td>{e(f.preset)}</td><td>{e(f.stage)}</td>"
                         f"<td class='bad'>{e(f.error)}</td></tr>")
        parts.append("</table>")
    shown = 0
    for preset in options.presets:
        mine = [o for o in outputs if o["preset"] == preset.name]
        if not mine:
            continue
        parts.append(f"<h2>{e(preset.name)} <span class='meta'>{e(preset.description)} &middot; "
                     f"{len(mine)} outputs &middot; {e(str(Path(options.out_dir) / preset.name))}</span></h2>")
        parts.append("<div class='grid'>")
        for o in mine:
            uri = _thumb_data_uri(o["output"]) if shown < MAX_THUMBS else None
            shown += 1
            pic = f"<img src='{uri}' alt='{e(Path(o['output']).name)}'>" if uri else "<em>no preview</em>"
            parts.append(
                f"<div class='card'><div class='pic'>{pic}</div>"
                f"<div class='name'>{e(Path(o['output']).name)}</div>"
                f"<div class='small'>{e(o['sku'])} &middot; {e(o['role'])} &middot; {o['width']}&times;{o['height']}"
                f" &middot; {(o['bytes'] or 0) / 1024:.0f} KiB</div>"
                f"<div class='small'>record {e(str(o['record_id']))} &middot; payload {e(str(o['payload']))}</div>"
                f"<div class='small'>from {e(o['source'])}</div></div>"
            )
        parts.append("</div>")
    if shown > MAX_THUMBS:
        parts.append(f"<p class='meta'>Previews shown for the first {MAX_THUMBS} outputs only.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: str | Path, summary: Any, options: Any) -> Path:
    path = Path(path)
    write_atomic(path, render(summary, options).encode("utf-8"))
    return path
