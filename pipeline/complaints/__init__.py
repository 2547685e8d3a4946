"""Complaint drafts per channel, ready to paste: AliExpress IPP, Amazon, eBay VeRO, a DMCA notice.

``draft(channel, ctx)`` builds one :class:`Draft` (fields in the form's order, the text, what is still to fill
in; ``.text()`` and ``.as_json()``); ``write_drafts(ctx, out_dir, channels)`` writes ``case-<id>-<channel>.txt``
and ``.json``. A draft says only what the owner profile, the ledger record and the case hold, escapes every value
to one line (a seller's name from a page cannot forge a line), and never signs: the signature is the person's.
"""

from pipeline.complaints.channels import CHANNELS, DESTINATIONS, channel_label, check_channel, default_channel
from pipeline.complaints.draft import EBAY_MESSAGE_CHARS, Draft, draft
from pipeline.complaints.facts import ComplaintContext, amazon_asin, ebay_item_number
from pipeline.complaints.write import draft_names, write_drafts

__all__ = ["CHANNELS", "DESTINATIONS", "EBAY_MESSAGE_CHARS", "ComplaintContext", "Draft", "amazon_asin",
           "channel_label", "check_channel", "default_channel", "draft", "draft_names", "ebay_item_number",
           "write_drafts"]
