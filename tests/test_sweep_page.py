"""Tests of pipeline/sweep/page.py: what listing pages say (canonical URL, title, seller, image candidates)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.sweep.page import MAX_CANDIDATES, largest_in_srcset, parse_srcset, read_listing
from tests.listing_server import aliexpress_page, amazon_page, ebay_page

BASE = "https://www.example-shop.com/item/1.html"


def _urls(html: str, base: str | None = BASE) -> list[str]:
    return [c.url for c in read_listing(html, base).images]


# -- srcset ----------------------------------------------------------------------------------------------------------

def test_srcset_w_descriptors_pick_the_widest() -> None:
    assert largest_in_srcset("a_220.jpg 220w, a_960.jpg 960w, a_640.jpg 640w") == ("a_960.jpg", 960)


def test_srcset_x_descriptors_and_none() -> None:
    assert largest_in_srcset("a.jpg, a@2x.jpg 2x, a@1.5x.jpg 1.5x") == ("a@2x.jpg", None)
    assert largest_in_srcset("only.jpg") == ("only.jpg", None)
    assert largest_in_srcset("") is None
    assert largest_in_srcset("  ,  , ") is None


def test_srcset_urls_with_commas() -> None:
    """Cloudinary-style URLs hold commas; a URL ends at whitespace, not at a comma."""
    srcset = ("https://res.example.com/image/upload/w_400,h_400,c_fill/p.jpg 400w, "
              "https://res.example.com/image/upload/w_1200,h_1200,c_fill/p.jpg 1200w")
    assert parse_srcset(srcset) == [
        ("https://res.example.com/image/upload/w_400,h_400,c_fill/p.jpg", 400.0, None),
        ("https://res.example.com/image/upload/w_1200,h_1200,c_fill/p.jpg", 1200.0, None),
    ]


def test_srcset_w_beats_x_and_bad_descriptors_are_ignored() -> None:
    assert largest_in_srcset("a.jpg 3x, b.jpg 500w, c.jpg 100w") == ("b.jpg", 500)
    assert parse_srcset("a.jpg 12qw, b.jpg -2x, c.jpg nanx") == [("a.jpg", None, None), ("b.jpg", None, None),
                                                                  ("c.jpg", None, None)]


@given(st.text(max_size=300))
def test_srcset_never_raises(text: str) -> None:
    for url, width, density in parse_srcset(text):
        assert url and not any(ch.isspace() for ch in url)
        assert width is None or width > 0
        assert density is None or density > 0


# -- realistic pages -------------------------------------------------------------------------------------------------

def test_aliexpress_like_page() -> None:
    html = aliexpress_page(
        title="LED Desk Lamp Foldable", seller="Bright Home Store",
        og_image="https://ae01.alicdn.com/kf/Smain.jpg",
        jsonld_images=["https://ae01.alicdn.com/kf/Smain.jpg", "https://ae01.alicdn.com/kf/Sextra.jpg"],
        gallery=[[("/kf/Sa.jpg_220x220.jpg", 220), ("/kf/Sa.jpg_960x960.jpg", 960)],
                 [("/kf/Sb.jpg_220x220.jpg", 220), ("/kf/Sb.jpg_960x960.jpg", 960)]])
    listing = read_listing(html.encode("utf-8"), "https://www.aliexpress.us/item/1005006123456789.html")
    assert listing.canonical_url == "https://www.aliexpress.com/item/1005006123456789.html"
    assert listing.title == "LED Desk Lamp Foldable"  # JSON-LD Product name, not the og:title with its suffix
    assert listing.site_name == "AliExpress"
    assert listing.seller == "Bright Home Store"
    assert [(c.url, c.source, c.width) for c in listing.images] == [
        ("https://ae01.alicdn.com/kf/Smain.jpg", "og:image", 800),
        ("https://ae01.alicdn.com/kf/Sextra.jpg", "json-ld", None),
        ("https://www.aliexpress.us/kf/Sa.jpg_960x960.jpg", "img", 960),  # the largest srcset rendition
        ("https://www.aliexpress.us/kf/Sb.jpg_960x960.jpg", "img", 960),
    ]  # no logo.svg, no 1x1 tracking pixel, no data: URI, no favicon


def test_amazon_like_page_dynamic_image() -> None:
    images = {"https://m.media-amazon.com/images/I/71x._AC_SX300_.jpg": (300, 300),
              "https://m.media-amazon.com/images/I/71x._AC_SL1500_.jpg": (1500, 1500),
              "https://m.media-amazon.com/images/I/71x._AC_SX679_.jpg": (679, 679)}
    listing = read_listing(amazon_page(title="Desk Lamp", images=images), "https://www.amazon.com/dp/B0C1234567")
    assert [(c.url, c.width) for c in listing.images] == [
        ("https://m.media-amazon.com/images/I/71x._AC_SL1500_.jpg", 1500)]
    assert listing.title == "Amazon.com: Desk Lamp"
    assert listing.seller is None and listing.site_name is None


def test_amazon_old_hires_when_no_dynamic_json() -> None:
    html = ('<img src="https://m.media-amazon.com/images/I/s.jpg" '
            'data-old-hires="https://m.media-amazon.com/images/I/big.jpg">')
    assert _urls(html) == ["https://m.media-amazon.com/images/I/big.jpg"]


def test_ebay_like_page() -> None:
    html = ebay_page(title="Vintage Brass Lamp", seller="lamps_and_more_uk",
                     images=["https://i.ebayimg.com/images/g/A/s-l500.jpg", "https://i.ebayimg.com/images/g/B/s-l500.jpg"],
                     zoom=["https://i.ebayimg.com/images/g/A/s-l1600.jpg"])
    listing = read_listing(html, "https://www.ebay.co.uk/itm/2345")
    assert listing.seller == "lamps_and_more_uk"  # a plain string in an AggregateOffer's offers, inside @graph
    assert listing.title == "Vintage Brass Lamp"
    assert listing.canonical_url == "https://www.ebay.co.uk/itm/2345"  # no canonical link: the base
    assert [(c.url, c.source) for c in listing.images] == [
        ("https://i.ebayimg.com/images/g/A/s-l500.jpg", "og:image"),
        ("https://i.ebayimg.com/images/g/B/s-l500.jpg", "twitter:image"),
        ("https://i.ebayimg.com/images/g/A/s-l1600.jpg", "img"),  # the zoom rendition of the first slide
    ]


# -- fields and fallbacks ----------------------------------------------------------------------------------------

def test_title_fallbacks() -> None:
    assert read_listing('<meta property="og:title" content=" Lamp  One "><title>T</title>', BASE).title == "Lamp One"
    assert read_listing("<title>\n  Lamp\n Two </title>", BASE).title == "Lamp Two"
    assert read_listing("<p>no title</p>", BASE).title is None


def test_canonical_fallbacks() -> None:
    assert read_listing('<link rel="canonical" href="/item/9">', BASE).canonical_url == \
        "https://www.example-shop.com/item/9"
    assert read_listing('<meta property="og:url" content="https://s.example/i/2">', BASE).canonical_url == \
        "https://s.example/i/2"
    assert read_listing("<p>x</p>", BASE).canonical_url == BASE
    assert read_listing("<p>x</p>", None).canonical_url is None
    assert read_listing('<link rel="canonical" href="javascript:alert(1)">', BASE).canonical_url == BASE


def test_saved_from_mark() -> None:
    html = "<!-- saved from url=(0042)https://www.ebay.com/itm/123456789012 -->\n<html><body></body></html>"
    listing = read_listing(html, "file:///tmp/Listing.html")
    assert listing.saved_from == "https://www.ebay.com/itm/123456789012"
    assert listing.canonical_url == "https://www.ebay.com/itm/123456789012"


def test_seller_forms() -> None:
    def seller(offers: object) -> str | None:
        doc = {"@context": "https://schema.org", "@type": "Product", "name": "x", "offers": offers}
        return read_listing(f'<script type="application/ld+json">{json.dumps(doc)}</script>', BASE).seller

    assert seller({"@type": "Offer", "seller": {"@type": "Organization", "name": " Shop  A "}}) == "Shop A"
    assert seller([{"@type": "Offer"}, {"@type": "Offer", "seller": "Shop B"}]) == "Shop B"
    assert seller({"@type": "Offer", "seller": [{"name": "Shop C"}]}) == "Shop C"
    assert seller({"@type": "Offer"}) is None
    brand_only = {"@context": "https://schema.org", "@type": "Product", "brand": {"name": "Brandy"}}
    assert read_listing(f'<script type="application/ld+json">{json.dumps(brand_only)}</script>', BASE).seller is None


def test_jsonld_image_forms_and_broken_blocks() -> None:
    doc = {"@context": "https://schema.org", "@graph": [
        {"@type": "WebSite", "image": "https://s.example/site.png"},
        {"@type": ["Product", "Thing"], "name": "Lamp", "image": [
            "https://s.example/1.jpg",
            {"@type": "ImageObject", "url": "https://s.example/2.jpg", "width": "1200"},
            {"@type": "ImageObject", "contentUrl": "/3.jpg"}]}]}
    html = ('<script type="application/ld+json">{ not json </script>'
            f'<script type="application/ld+json">\n<!--\n{json.dumps(doc)}\n-->\n</script>'
            '<script type="application/ld+json">[{"@type": "Product", "image": {"url": "https://s.example/4.jpg"}}]'
            '</script>')
    listing = read_listing(html, BASE)
    assert [(c.url, c.width) for c in listing.images] == [
        ("https://s.example/1.jpg", None), ("https://s.example/2.jpg", 1200),
        ("https://www.example-shop.com/3.jpg", None), ("https://s.example/4.jpg", None)]
    assert listing.title == "Lamp"


def test_jsonld_images_of_a_page_without_a_product() -> None:
    doc = {"@type": "ItemPage", "image": "https://s.example/only.jpg"}
    assert _urls(f'<script type="application/ld+json">{json.dumps(doc)}</script>') == ["https://s.example/only.jpg"]


def test_priority_order_and_deduplication() -> None:
    html = """<html><head>
    <meta property="og:image" content="https://s.example/a.jpg#zoom">
    <meta property="og:image:secure_url" content="https://s.example/a.jpg">
    <meta name="twitter:image" content="https://s.example/b.jpg">
    <link rel="image_src" href="https://s.example/c.jpg">
    </head><body>
    <img src="https://s.example/d.jpg">
    <img src="https://s.example/a.jpg">
    <picture><source type="image/webp" srcset="https://s.example/e-400.webp 400w, https://s.example/e-800.webp 800w">
      <img src="https://s.example/e.jpg"></picture>
    <video><source src="https://s.example/v.mp4"></video>
    </body></html>"""
    listing = read_listing(html, BASE)
    assert [(c.url, c.source) for c in listing.images] == [
        ("https://s.example/a.jpg", "og:image"), ("https://s.example/b.jpg", "twitter:image"),
        ("https://s.example/c.jpg", "link:image_src"), ("https://s.example/d.jpg", "img"),
        ("https://s.example/e-800.webp", "picture"), ("https://s.example/e.jpg", "img")]


def test_one_rendition_per_img() -> None:
    """The srcset's largest, else lazy-loading attributes, else src: never two renditions of one <img>."""
    html = ('<img src="s.jpg" srcset="m.jpg 600w, l.jpg 1200w">'
            '<img src="placeholder.gif" data-src="lazy.jpg">'
            '<img src="plain.jpg" width="640">')
    listing = read_listing(html, BASE)
    assert [(c.url.rsplit("/", 1)[-1], c.width) for c in listing.images] == [("l.jpg", 1200), ("lazy.jpg", None),
                                                                             ("plain.jpg", 640)]


def test_relative_urls_and_base_href() -> None:
    assert _urls('<img src="../img/a.jpg">') == ["https://www.example-shop.com/img/a.jpg"]
    assert _urls('<img src="//cdn.example.net/a.jpg">') == ["https://cdn.example.net/a.jpg"]
    assert _urls('<base href="https://cdn.example.net/p/"><img src="a.jpg">') == ["https://cdn.example.net/p/a.jpg"]
    assert _urls('<base href="file:///etc/"><img src="passwd">') == ["https://www.example-shop.com/item/passwd"]
    assert _urls('<img src="a.jpg">', base=None) == []
    assert _urls('<img src="https://x.example/a.jpg">', base=None) == ["https://x.example/a.jpg"]


def test_what_is_left_out() -> None:
    html = """
    <img src="data:image/png;base64,iVBORw0KGgo=">
    <img src="javascript:alert(1)">
    <img src="file:///etc/passwd">
    <img src="ftp://files.example/a.jpg">
    <img src="blob:https://s.example/1234">
    <img src="/icons/cart.svg"><img src="/favicon.ico"><img src="/x/Logo.SVG?v=2">
    <img src="/pixel.gif" width="1" height="1"><img src="/spacer.gif" width="2">
    <img src="">
    <img>
    <img src="/real.jpg" width="0px" height="auto">
    <meta property="og:image" content="   ">
    <img src="/ok.jpg">"""
    assert _urls(html) == ["https://www.example-shop.com/ok.jpg"]


def test_file_urls_only_for_a_page_read_from_disk() -> None:
    html = '<img src="./Lamp_files/photo%201.jpg"><img src="file:///etc/passwd">'
    assert _urls(html, base="file:///home/o/Downloads/Lamp.html") == [
        "file:///home/o/Downloads/Lamp_files/photo%201.jpg", "file:///etc/passwd"]  # sources.py checks the folder
    assert _urls(html, base="https://s.example/Lamp.html") == ["https://s.example/Lamp_files/photo%201.jpg"]


def test_candidates_are_capped() -> None:
    html = "".join(f'<img src="/p/{i}.jpg">' for i in range(100))
    assert len(read_listing(html, BASE).images) == MAX_CANDIDATES
    assert len(read_listing(html, BASE, max_images=5).images) == 5


def test_encodings() -> None:
    body = '<meta charset="windows-1252"><title>Caf\xe9 lamp \u2013 new</title>'.encode("cp1252")
    assert read_listing(body, BASE).title == "Caf\xe9 lamp \u2013 new"
    latin = "<title>Lampe \xe0 poser</title>".encode("latin-1")
    assert read_listing(latin, BASE, encoding="ISO-8859-1").title == "Lampe \xe0 poser"
    assert read_listing(latin, BASE, encoding="no-such-codec").title is not None


@pytest.mark.parametrize("html", ["", "<", "<html", "<<<>>>", "\x00\x01\x02", "<img srcset=',,, 5w'>",
                                  '<script type="application/ld+json">' + "[" * 5000 + "</script>",
                                  '<img data-a-dynamic-image="[1,2]">', '<img data-a-dynamic-image=\'{"a": 5}\'>'])
def test_odd_pages(html: str) -> None:
    listing = read_listing(html, BASE)
    assert listing.base_url == BASE


@given(st.binary(max_size=2000))
def test_read_listing_never_raises_on_bytes(data: bytes) -> None:
    listing = read_listing(data, BASE)
    assert all(c.url.startswith(("http://", "https://")) for c in listing.images)


@given(st.text(alphabet=st.sampled_from(list('<>/="\' imgsrcsetwx0123456789,.:-{}[]abchttp')), max_size=400))
def test_read_listing_never_raises_on_tag_soup(text: str) -> None:
    listing = read_listing(text, BASE)
    assert len(listing.images) <= MAX_CANDIDATES
    assert len({c.url for c in listing.images}) == len(listing.images)
