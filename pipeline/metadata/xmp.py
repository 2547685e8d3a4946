"""The XMP writer and parser: the packet an output carries (rights, creator, the claim) and reading one back.

The writer escapes every value (and drops what XML 1.0 cannot carry), so any owner name round-trips; the
parser uses defusedxml (a file's XMP is untrusted input) and accepts the element and the attribute forms.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET

from pipeline.metadata.claim import CLAIM_PROPS
from pipeline.metadata.text import SOFTWARE, xml_clean
from pipeline.models import Described, Owner
from pipeline.timefmt import iso_utc

#: Our XMP namespace (and prefix) for the signed claim.
NS_URI = "https://catalogmark.dev/ns/1.0/"
NS_PREFIX = "catalogmark"

_NAMESPACES = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "xmpRights": "http://ns.adobe.com/xap/1.0/rights/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "plus": "http://ns.useplus.org/ldf/xmp/1.0/",
    "Iptc4xmpCore": "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/",
    NS_PREFIX: NS_URI,
}
#: Declared only in a packet that uses them (so every other packet stays byte for byte as it was); known to the parser.
_OPTIONAL_NAMESPACES = {"Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"}
_PREFIX_OF = {uri: prefix for prefix, uri in (_NAMESPACES | _OPTIONAL_NAMESPACES).items()}
_RDF = "{" + _NAMESPACES["rdf"] + "}"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


# --------------------------------------------------------------------------------------------------------------
# Writing


def _esc(text: str) -> str:
    """Escape for XML element content; CR as a character reference because XML parsers turn raw CR into LF."""
    return (
        xml_clean(text)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&apos;")
        .replace("\r", "&#13;")
    )


def _li_alt(text: str) -> str:
    return f'<rdf:Alt><rdf:li xml:lang="x-default">{_esc(text)}</rdf:li></rdf:Alt>'


def _kept_props(kept: Described | None) -> list[str]:
    """The photographer's fields an export keeps (``[metadata] keep``): keywords, place, DigitalSourceType."""
    if kept is None:
        return []
    props = []
    if kept.keywords:
        items = "".join(f"<rdf:li>{_esc(k)}</rdf:li>" for k in kept.keywords)
        props.append(f"   <dc:subject><rdf:Bag>{items}</rdf:Bag></dc:subject>")
    for prop, value in (("Iptc4xmpCore:Location", kept.sublocation), ("photoshop:City", kept.city),
                        ("photoshop:State", kept.state), ("photoshop:Country", kept.country),
                        ("Iptc4xmpExt:DigitalSourceType", kept.digital_source_type)):
        if value:
            props.append(f"   <{prop}>{_esc(value)}</{prop}>")
    return props


def build_xmp(claim: dict[str, Any], signature: str, public_key_b64: str, owner: Owner, *, desc: str,
              timestamp: datetime, title: str = "", date_created: datetime | None = None,
              kept: Described | None = None) -> bytes:
    """A complete XMP packet (x:xmpmeta/rdf:RDF), every value escaped; deterministic for the same inputs.

    ``title`` is dc:title (the SKU, or the photographer's title when kept: the same as IPTC ObjectName, as MWG
    pairs them); ``date_created`` the capture date (photoshop:DateCreated), when the preset keeps it; ``kept``
    the photographer's other fields the export keeps (its caption is part of ``desc``).
    """
    extra = _kept_props(kept)
    used = {p: u for p, u in _OPTIONAL_NAMESPACES.items() if any(f"<{p}:" in line for line in extra)}
    ns = "\n".join(f'    xmlns:{p}="{u}"' for p, u in (_NAMESPACES | used).items() if p not in ("x", "rdf"))
    props = [
        f"   <dc:creator><rdf:Seq><rdf:li>{_esc(owner.name)}</rdf:li></rdf:Seq></dc:creator>",
        f"   <dc:rights>{_li_alt(owner.copyright)}</dc:rights>",
        f"   <dc:description>{_li_alt(desc)}</dc:description>",
    ]
    if title:
        props.append(f"   <dc:title>{_li_alt(title)}</dc:title>")
    if date_created is not None:
        props.append(f"   <photoshop:DateCreated>{date_created.isoformat()}</photoshop:DateCreated>")
    props += extra
    props.append("   <xmpRights:Marked>True</xmpRights:Marked>")
    if owner.url:
        props.append(f"   <xmpRights:WebStatement>{_esc(owner.url)}</xmpRights:WebStatement>")
        props.append("   <Iptc4xmpCore:CreatorContactInfo rdf:parseType=\"Resource\">"
                     f"<Iptc4xmpCore:CiUrlWork>{_esc(owner.url)}</Iptc4xmpCore:CiUrlWork>"
                     "</Iptc4xmpCore:CreatorContactInfo>")
    props += [
        f"   <xmpRights:UsageTerms>{_li_alt(owner.copyright)}</xmpRights:UsageTerms>",
        f"   <photoshop:Credit>{_esc(owner.name)}</photoshop:Credit>",
        f"   <xmp:CreatorTool>{_esc(SOFTWARE)}</xmp:CreatorTool>",
        f"   <xmp:MetadataDate>{iso_utc(timestamp)}</xmp:MetadataDate>",
        "   <plus:CopyrightOwner><rdf:Seq><rdf:li rdf:parseType=\"Resource\">"
        f"<plus:CopyrightOwnerName>{_esc(owner.name)}</plus:CopyrightOwnerName>"
        "</rdf:li></rdf:Seq></plus:CopyrightOwner>",
    ]
    if owner.url:
        props.append(
            "   <plus:Licensor><rdf:Seq><rdf:li rdf:parseType=\"Resource\">"
            f"<plus:LicensorName>{_esc(owner.name)}</plus:LicensorName>"
            f"<plus:LicensorURL>{_esc(owner.url)}</plus:LicensorURL>"
            "</rdf:li></rdf:Seq></plus:Licensor>"
        )
    for claim_key, prop in CLAIM_PROPS:
        value = claim.get(claim_key)
        if value is None:
            continue
        props.append(f"   <{NS_PREFIX}:{prop}>{_esc(str(value))}</{NS_PREFIX}:{prop}>")
    props.append(f"   <{NS_PREFIX}:Signature>{signature}</{NS_PREFIX}:Signature>")
    props.append(f"   <{NS_PREFIX}:PublicKey>{public_key_b64}</{NS_PREFIX}:PublicKey>")
    packet = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        f"{ns}>\n" + "\n".join(props) + "\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    )
    return packet.encode("utf-8")


# --------------------------------------------------------------------------------------------------------------
# Parsing


def _text(el: Element) -> str:
    return el.text or ""


def _qname(tag: str) -> str:
    """'{uri}Local' -> 'prefix:Local' for namespaces we know, else unchanged."""
    if tag.startswith("{"):
        uri, local = tag[1:].split("}", 1)
        prefix = _PREFIX_OF.get(uri)
        if prefix:
            return f"{prefix}:{local}"
    return tag


def _xmp_value(el: Element) -> Any:
    """A property element's value: text, list (Seq/Bag), x-default text (Alt), or a dict (struct)."""
    for container in el:
        if container.tag in (_RDF + "Seq", _RDF + "Bag"):
            return [_xmp_value(li) if len(li) else _text(li) for li in container if li.tag == _RDF + "li"]
        if container.tag == _RDF + "Alt":
            items = [li for li in container if li.tag == _RDF + "li"]
            chosen = next((li for li in items if li.get(_XML_LANG) == "x-default"), items[0] if items else None)
            return "" if chosen is None else _text(chosen)
    resource = el.get(_RDF + "resource")
    if resource is not None and not len(el) and not (el.text or "").strip():
        return resource  # a URI value written as a resource (e.g. Iptc4xmpExt:DigitalSourceType)
    if len(el) or el.get(_RDF + "parseType") == "Resource":
        struct_el = el[0] if len(el) == 1 and el[0].tag == _RDF + "Description" else el
        out: dict[str, Any] = {_qname(k): v for k, v in struct_el.attrib.items() if not k.startswith(_RDF)}
        for child in struct_el:
            out[_qname(child.tag)] = _xmp_value(child)
        return out
    return _text(el)


def parse_xmp(packet: bytes | str) -> dict[str, Any]:
    """XMP properties as {'prefix:Name': value}; accepts element and attribute forms. Raises ValueError if bad."""
    raw = packet.encode("utf-8") if isinstance(packet, str) else packet
    raw = raw.strip(b"\x00 \t\r\n")
    try:
        root = SafeET.fromstring(raw)
    except Exception as exc:  # defusedxml raises ParseError or its own DefusedXmlException subclasses
        raise ValueError(f"XMP is not well-formed XML ({type(exc).__name__}: {exc})") from exc
    props: dict[str, Any] = {}
    for desc in root.iter(_RDF + "Description"):
        for k, v in desc.attrib.items():
            if not k.startswith(_RDF):
                props.setdefault(_qname(k), v)
        for child in desc:
            props.setdefault(_qname(child.tag), _xmp_value(child))
    return props
