"""Helpers shared by several test modules (fixtures live in conftest.py): the CLI as a subprocess, ledger reads."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_images"


def cm(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The real ``catalogmark`` CLI (``python -m pipeline``) run from this checkout."""
    full_env = os.environ.copy() | {"PYTHONPATH": str(REPO)} | (env or {})
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=600)


def ledger_records(ledger: Any, *, run_id: str | None = None) -> list[dict[str, Any]]:
    """Every record (of one run, if given) in seq order, read through ``ledger export``'s JSON Lines: the stored
    columns without ``fmt``, dict columns as objects."""
    buf = io.StringIO()
    ledger.export_jsonl(buf)
    docs = [json.loads(line) for line in buf.getvalue().splitlines()]
    return [{k: v for k, v in doc.items() if k not in ("type", "fmt")} for doc in docs
            if doc["type"] == "record" and (run_id is None or doc["run_id"] == run_id)]


#: What ``photographer_jpeg`` writes into its XMP: the fields a preset or profile may keep.
PHOTOGRAPHER = {
    "keywords": ["ceramic mug", "espresso", "café"],
    "title": "Blue espresso mug",
    "caption": "Hand-glazed stoneware mug, shot on white",
    "sublocation": "Alfama",
    "city": "Lisboa",
    "state": "Lisboa District",
    "country": "Portugal",
    "digital_source_type": "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
}
#: Text of the source that must never reach an output (GPS, serials, a struct with coordinates, the thumbnail).
NEVER_CARRIED = ("GPS", "SN-XMP-999", "SN-EXIF-4242", "LSN-777", "Secret Quay", "ThumbnailImage")


def photographer_xmp() -> bytes:
    """An XMP packet as a DAM or an AI image generator writes one: the photographer's fields (``PHOTOGRAPHER``),
    some as attributes, plus GPS, a camera serial and a LocationShown struct with coordinates."""
    p = PHOTOGRAPHER
    keywords = "".join(f"<rdf:li>{k}</rdf:li>" for k in p["keywords"])
    return f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"
    xmlns:Iptc4xmpCore="http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/"
    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
    xmlns:exif="http://ns.adobe.com/exif/1.0/"
    xmlns:aux="http://ns.adobe.com/exif/1.0/aux/"
    photoshop:City="{p['city']}"
    exif:GPSLatitude="38,42.6N" exif:GPSLongitude="9,8.4W"
    aux:SerialNumber="SN-XMP-999">
   <dc:subject><rdf:Bag>{keywords}</rdf:Bag></dc:subject>
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{p['title']}</rdf:li></rdf:Alt></dc:title>
   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">{p['caption']}</rdf:li></rdf:Alt></dc:description>
   <photoshop:State>{p['state']}</photoshop:State>
   <photoshop:Country>{p['country']}</photoshop:Country>
   <Iptc4xmpCore:Location>{p['sublocation']}</Iptc4xmpCore:Location>
   <Iptc4xmpExt:DigitalSourceType>{p['digital_source_type']}</Iptc4xmpExt:DigitalSourceType>
   <Iptc4xmpExt:LocationShown><rdf:Bag><rdf:li rdf:parseType="Resource">
    <Iptc4xmpExt:City>Secret Quay</Iptc4xmpExt:City><exif:GPSLatitude>38,42.7N</exif:GPSLatitude>
   </rdf:li></rdf:Bag></Iptc4xmpExt:LocationShown>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>""".encode()


def photographer_jpeg(path: Path, size: tuple[int, int] = (1000, 800), *, xmp: bytes | None = None) -> Path:
    """A product shot on white with the photographer's XMP (``photographer_xmp``) and a camera's EXIF: GPS, body
    and lens serials, an embedded thumbnail."""
    import piexif
    from PIL import Image

    from tests.conftest import product_on_white

    thumb = io.BytesIO()
    Image.fromarray(product_on_white((80, 64), seed=5)).save(thumb, "JPEG", quality=80)
    exif = piexif.dump({
        "0th": {piexif.ImageIFD.Make: b"Canon", piexif.ImageIFD.Model: b"EOS R5"},
        "Exif": {piexif.ExifIFD.BodySerialNumber: b"SN-EXIF-4242", piexif.ExifIFD.LensSerialNumber: b"LSN-777"},
        "GPS": {piexif.GPSIFD.GPSLatitudeRef: b"N", piexif.GPSIFD.GPSLatitude: ((38, 1), (42, 1), (36, 1)),
                piexif.GPSIFD.GPSLongitudeRef: b"W", piexif.GPSIFD.GPSLongitude: ((9, 1), (8, 1), (24, 1))},
        "1st": {piexif.ImageIFD.JPEGInterchangeFormat: 0, piexif.ImageIFD.JPEGInterchangeFormatLength: 0},
        "thumbnail": thumb.getvalue(),
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(product_on_white(size, seed=4)).save(path, "JPEG", quality=90, exif=exif,
                                                         xmp=photographer_xmp() if xmp is None else xmp)
    return path


def child_processes(pid: int, *, cmdline_has: bytes | None = None) -> list[int]:
    """The child processes of ``pid`` (read from /proc), only those whose command line contains ``cmdline_has``
    when given (b"popen_loky_posix": joblib's loky workers)."""
    kids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes() if cmdline_has is not None else b""
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and (cmdline_has is None or cmdline_has in cmdline):
            kids.append(int(entry.name))
    return kids
