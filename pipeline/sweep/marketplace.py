"""Which marketplace a URL belongs to: the canonical lowercase name from the host (image CDNs included), else
the page's own ``og:site_name``; and the display name of each for reports.

Two tables, no network: :data:`_CDN_HOSTS` maps registrable domains that do not spell the brand
(``alicdn.com``, ``ebayimg.com``, ``m.media-amazon.com``, ...) to their marketplace, and a host whose brand
label is followed only by a public suffix (``amazon.co.uk``, ``ebay.de``, ``mercadolibre.com.mx``,
``aliexpress.us``) is that brand. A look-alike host (``amazon.evil.example``, ``notamazon.com``) is nobody.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

#: Canonical name → display name (reports, complaint drafts).
DISPLAY_NAMES: dict[str, str] = {
    "aliexpress": "AliExpress",
    "alibaba": "Alibaba",
    "amazon": "Amazon",
    "ebay": "eBay",
    "etsy": "Etsy",
    "shopify": "Shopify",
    "temu": "Temu",
    "walmart": "Walmart",
    "shein": "SHEIN",
    "wish": "Wish",
    "mercadolibre": "Mercado Libre",
    "lazada": "Lazada",
    "shopee": "Shopee",
    "zalando": "Zalando",
    "otto": "OTTO",
    "allegro": "Allegro",
    "emag": "eMAG",
    "newegg": "Newegg",
    "rakuten": "Rakuten",
    "bol": "bol.com",
    "cdiscount": "Cdiscount",
    "flipkart": "Flipkart",
    "jd": "JD.com",
    "taobao": "Taobao",
    "tmall": "Tmall",
    "dhgate": "DHgate",
    "banggood": "Banggood",
    "google": "Google",
    "facebook": "Facebook",
    "instagram": "Instagram",
    "pinterest": "Pinterest",
}

#: Registrable domains (and host suffixes) that belong to a marketplace without spelling its brand label:
#: image CDNs and sister domains. Matched on whole labels from the right (``x.alicdn.com`` is alicdn.com).
_CDN_HOSTS: dict[str, str] = {
    "alicdn.com": "aliexpress",
    "aliexpress-media.com": "aliexpress",
    "aliimg.com": "alibaba",
    "1688.com": "alibaba",
    "media-amazon.com": "amazon",
    "images-amazon.com": "amazon",
    "ssl-images-amazon.com": "amazon",
    "amazon-adsystem.com": "amazon",
    "ebayimg.com": "ebay",
    "ebaystatic.com": "ebay",
    "ebaydesc.com": "ebay",
    "etsystatic.com": "etsy",
    "cdn.shopify.com": "shopify",
    "myshopify.com": "shopify",
    "shopifycdn.com": "shopify",
    "shopifycdn.net": "shopify",
    "kwcdn.com": "temu",
    "walmartimages.com": "walmart",
    "wmtstatic.com": "walmart",
    "ltwebstatic.com": "shein",
    "contextlogic.com": "wish",
    "mlstatic.com": "mercadolibre",
    "mercadolivre.com.br": "mercadolibre",
    "mercadolivre.com": "mercadolibre",
    "lazcdn.com": "lazada",
    "slatic.net": "lazada",
    "susercontent.com": "shopee",
    "ztat.net": "zalando",
    "allegroimg.com": "allegro",
    "allegrostatic.com": "allegro",
    "emagst.net": "emag",
    "neweggimages.com": "newegg",
    "rakuten.co.jp": "rakuten",
    "r10s.jp": "rakuten",
    "s-bol.com": "bol",
    "flixcart.com": "flipkart",
    "360buyimg.com": "jd",
    "dhresource.com": "dhgate",
    "googleusercontent.com": "google",
    "gstatic.com": "google",
    "ggpht.com": "google",
    "cdninstagram.com": "instagram",
    "fbcdn.net": "facebook",
    "fb.com": "facebook",
    "fbsbx.com": "facebook",
    "pinimg.com": "pinterest",
}

#: Host labels that name a marketplace when followed only by a public suffix (``ebay.co.uk``, ``otto.de``).
_BRAND_LABELS: dict[str, str] = {name: name for name in DISPLAY_NAMES} | {
    "mercadolivre": "mercadolibre",
    "1688": "alibaba",
}

#: Second-level labels of country-code public suffixes (``co.uk``, ``com.mx``, ``com.au``, ``ne.jp``, ...).
_SECOND_LEVEL = frozenset({"co", "com", "net", "org", "ne", "or", "ac", "gob", "gov", "in"})
#: Generic top-level domains a marketplace lives under (every two-letter country code is accepted too).
_GENERIC_TLDS = frozenset({"com", "net", "org", "shop", "store", "biz", "info", "global", "online"})


def _is_public_suffix(labels: list[str]) -> bool:
    """Whether ``labels`` (one or two) look like a public suffix: ``com``, ``de``, ``co.uk``, ``com.mx``."""
    if not labels or len(labels) > 2:
        return False
    tld = labels[-1]
    if not (tld in _GENERIC_TLDS or (len(tld) == 2 and tld.isascii() and tld.isalpha())):
        return False
    return len(labels) == 1 or labels[0] in _SECOND_LEVEL


def _host_of(url: str) -> str | None:
    """The lowercase host of a URL (or of a bare host name such as ``amazon.de``), without a trailing dot."""
    text = url.strip()
    if not text:
        return None
    try:
        parts = urlsplit(text if "//" in text else "//" + text)
        host = parts.hostname
    except ValueError:
        return None
    if not host:
        return None
    return host.rstrip(".").lower() or None


def marketplace_of_host(host: str) -> str | None:
    """The marketplace a host belongs to, or None (an IP address, localhost, an unknown shop)."""
    host = host.rstrip(".").lower()
    try:
        ipaddress.ip_address(host.strip("[]"))
        return None
    except ValueError:
        pass
    labels = [label for label in host.split(".") if label]
    for i in range(len(labels)):
        suffix = ".".join(labels[i:])
        if suffix in _CDN_HOSTS:
            return _CDN_HOSTS[suffix]
    # the brand label nearest the top-level domain wins: "ebay.amazon.com" is amazon
    for i in range(len(labels) - 2, -1, -1):
        brand = _BRAND_LABELS.get(labels[i])
        if brand is not None and _is_public_suffix(labels[i + 1:]):
            return brand
    return None


def _from_site_name(site_name: str) -> str | None:
    """The marketplace a page's ``og:site_name`` names: "AliExpress", "Amazon.com", "eBay", "Mercado Libre";
    an unknown name comes back lowercased with its spaces collapsed ("joe's shop")."""
    text = " ".join(site_name.split()).strip()
    if not text:
        return None
    if "." in text and " " not in text:
        found = marketplace_of_host(text)
        if found is not None:
            return found
    compact = "".join(ch for ch in text.lower() if ch.isalnum())
    for name, display in DISPLAY_NAMES.items():
        if compact in (name, "".join(ch for ch in display.lower() if ch.isalnum())):
            return name
    first = text.split()[0].lower().rstrip(":,")
    if "." in first:  # "Amazon.com: Online Shopping"
        found = marketplace_of_host(first)
        if found is not None:
            return found
    return text.lower()[:100]


def marketplace_of(url: str | None, site_name: str | None = None) -> str | None:
    """Canonical lowercase marketplace name of ``url``'s host (``https://ae01.alicdn.com/kf/x.jpg`` →
    "aliexpress"); when the host says nothing (127.0.0.1, an unknown shop), the page's ``site_name``; None if
    neither says."""
    host = _host_of(url) if url else None
    if host is not None:
        found = marketplace_of_host(host)
        if found is not None:
            return found
    if site_name:
        return _from_site_name(site_name)
    return None


def display_name(marketplace: str | None) -> str:
    """A marketplace as a report writes it: "AliExpress", "Amazon", "eBay"; others as they are."""
    if marketplace is None:
        return ""
    return DISPLAY_NAMES.get(marketplace, marketplace)
