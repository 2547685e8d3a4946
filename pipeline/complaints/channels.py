"""The complaint channels: their ids, names, where each draft is pasted, and the channel a marketplace takes."""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.errors import ConfigError

ALIEXPRESS = "aliexpress-ipp"
AMAZON = "amazon"
EBAY = "ebay-vero"
DMCA = "dmca"

#: Every channel, in the order drafts are listed.
CHANNELS: tuple[str, ...] = (ALIEXPRESS, AMAZON, EBAY, DMCA)

_LABELS = {
    ALIEXPRESS: "AliExpress / Alibaba IPP complaint (copyright)",
    AMAZON: "Amazon Report Infringement form (copyright)",
    EBAY: "eBay VeRO Notice of Claimed Infringement (copyright in listing content)",
    DMCA: "DMCA notice, 17 U.S.C. 512(c)(3)(A) (Etsy, Shopify and other hosts)",
}

#: Where each draft goes, in one line (the form's address, or who the notice is sent to).
DESTINATIONS = {
    ALIEXPRESS: "https://ipp.alibabagroup.com - sign in to your IPP account; the copyright IPR must be submitted "
                "and verified there first (3-5 business days), then file a complaint that links the product "
                "URLs below to that IPR",
    AMAZON: "https://www.amazon.com/report/infringement - Amazon's Report Infringement form (Brand Registry "
            "members: Report a Violation); the form shows the listing's images: tick the infringing ones",
    EBAY: "eBay VeRO (https://pages.ebay.com/seller-center/listing-and-marketing/verified-rights-owner-program"
          ".html) - the VeRO reporting tool, or this Notice of Claimed Infringement as plain text in the body of "
          "an email to eBay's VeRO team (a typed signature is accepted)",
    DMCA: "the host's designated DMCA agent - Etsy and Shopify take notices through their own intellectual "
          "property report forms; any US service provider's agent is listed in the US Copyright Office's DMCA "
          "Designated Agent Directory (https://www.copyright.gov/dmca-directory/)",
}

#: Marketplaces (sweep.models.Found.marketplace) that have a channel of their own; the rest take a DMCA notice.
_BY_MARKETPLACE = {"aliexpress": ALIEXPRESS, "alibaba": ALIEXPRESS, "amazon": AMAZON, "ebay": EBAY}


def default_channel(marketplace: str | None) -> str:
    """The channel for a copy found on ``marketplace``: aliexpress / alibaba → "aliexpress-ipp", amazon →
    "amazon", ebay → "ebay-vero", anything else (Etsy, Shopify, a shop of its own, unknown) → "dmca"."""
    return _BY_MARKETPLACE.get((marketplace or "").strip().lower(), DMCA)


def channel_label(channel: str) -> str:
    """The channel's name for a reader, e.g. "eBay VeRO Notice of Claimed Infringement (...)"."""
    return _LABELS[check_channel(channel)]


def check_channel(channel: str) -> str:
    """``channel`` if it is one of :data:`CHANNELS`, else ConfigError listing the known ones."""
    if channel not in CHANNELS:
        raise ConfigError(f"unknown complaint channel {channel!r} (known: {', '.join(CHANNELS)})")
    return channel


def check_channels(channels: Iterable[str]) -> tuple[str, ...]:
    """The channels asked for, each once, in the order given; ConfigError for the first unknown one."""
    return tuple(dict.fromkeys(check_channel(c) for c in channels))
