"""Tests of pipeline/sweep/marketplace.py: marketplaces from hosts (CDNs, country domains) and site names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.sweep.marketplace import DISPLAY_NAMES, display_name, marketplace_of, marketplace_of_host


@pytest.mark.parametrize(("url", "expected"), [
    ("https://www.aliexpress.com/item/1005006123456789.html", "aliexpress"),
    ("https://aliexpress.us/item/3256805.html", "aliexpress"),
    ("https://de.aliexpress.com/item/1.html", "aliexpress"),
    ("https://ae01.alicdn.com/kf/Sa1b2c3.jpg_960x960.jpg", "aliexpress"),
    ("https://www.alibaba.com/product-detail/x.html", "alibaba"),
    ("https://www.amazon.com/dp/B0C1234567", "amazon"),
    ("https://www.amazon.co.uk/dp/B0C1234567", "amazon"),
    ("https://www.amazon.de/dp/B0C1234567", "amazon"),
    ("https://www.amazon.com.mx/dp/B0C1234567", "amazon"),
    ("https://www.amazon.co.jp/dp/B0C1234567", "amazon"),
    ("https://m.media-amazon.com/images/I/71abc._AC_SL1500_.jpg", "amazon"),
    ("https://images-na.ssl-images-amazon.com/images/I/71abc.jpg", "amazon"),
    ("https://ecx.images-amazon.com/images/I/71abc.jpg", "amazon"),
    ("https://www.ebay.com/itm/1234", "ebay"),
    ("https://www.ebay.de/itm/1234", "ebay"),
    ("https://www.ebay.co.uk/itm/1234", "ebay"),
    ("https://i.ebayimg.com/images/g/abc/s-l1600.jpg", "ebay"),
    ("https://www.etsy.com/listing/1/x", "etsy"),
    ("https://i.etsystatic.com/1/r/il/abc/1.jpg", "etsy"),
    ("https://cdn.shopify.com/s/files/1/0/products/a.jpg", "shopify"),
    ("https://joes-lamps.myshopify.com/products/lamp", "shopify"),
    ("https://img.kwcdn.com/product/a.jpg", "temu"),
    ("https://www.temu.com/goods.html", "temu"),
    ("https://i5.walmartimages.com/asr/a.jpeg", "walmart"),
    ("https://www.walmart.ca/en/ip/1", "walmart"),
    ("https://img.ltwebstatic.com/images3/a.jpg", "shein"),
    ("https://us.shein.com/x-p-1.html", "shein"),
    ("https://www.wish.com/product/1", "wish"),
    ("https://articulo.mercadolibre.com.mx/MLM-1", "mercadolibre"),
    ("https://produto.mercadolivre.com.br/MLB-1", "mercadolibre"),
    ("https://http2.mlstatic.com/D_NQ_NP_1.webp", "mercadolibre"),
    ("https://www.lazada.sg/products/1.html", "lazada"),
    ("https://shopee.co.id/product/1/2", "shopee"),
    ("https://down-id.img.susercontent.com/file/abc", "shopee"),
    ("https://www.zalando.de/x.html", "zalando"),
    ("https://img01.ztat.net/article/a.jpg", "zalando"),
    ("https://www.otto.de/p/1", "otto"),
    ("https://allegro.pl/oferta/1", "allegro"),
    ("https://www.emag.ro/x/pd/1", "emag"),
    ("https://www.newegg.com/p/1", "newegg"),
    ("https://lh3.googleusercontent.com/abc", "google"),
    ("https://www.google.com/search?q=x", "google"),
    ("https://scontent.xx.fbcdn.net/v/t1/1.jpg", "facebook"),
    ("https://www.facebook.com/marketplace/item/1", "facebook"),
    ("https://www.instagram.com/p/abc/", "instagram"),
    ("HTTPS://WWW.AMAZON.COM./dp/1", "amazon"),  # case and the trailing dot of a fully qualified name
    ("amazon.de", "amazon"),  # a bare host name
])
def test_known_hosts(url: str, expected: str) -> None:
    assert marketplace_of(url) == expected


@pytest.mark.parametrize("url", [
    "https://amazon.evil.example/dp/1",  # the brand label followed by something that is no public suffix
    "https://notamazon.com/dp/1",
    "https://amazon-deals.shop.example/x",
    "https://ebay.phish.net.evil/x",
    "http://127.0.0.1:8080/item/1.html",
    "http://[::1]/x",
    "http://localhost/x",
    "https://www.joes-lamps.com/products/lamp",
    "not a url at all",
    "",
])
def test_unknown_hosts_are_nobody(url: str) -> None:
    assert marketplace_of(url) is None


def test_the_brand_nearest_the_top_level_domain_wins() -> None:
    assert marketplace_of_host("ebay.amazon.com") == "amazon"


@pytest.mark.parametrize(("site_name", "expected"), [
    ("AliExpress", "aliexpress"),
    ("aliexpress.com", "aliexpress"),
    ("Amazon.com", "amazon"),
    ("Amazon.co.uk", "amazon"),
    ("Amazon.com: Online Shopping", "amazon"),
    ("eBay", "ebay"),
    ("Mercado Libre", "mercadolibre"),
    ("  OTTO ", "otto"),
    ("Joe's   Lamp Shop", "joe's lamp shop"),  # unknown: the page's own name, lowercased
])
def test_site_name_fallback_for_an_unknown_host(site_name: str, expected: str) -> None:
    assert marketplace_of("http://127.0.0.1:5000/item/1.html", site_name) == expected
    assert marketplace_of(None, site_name) == expected


def test_the_host_wins_over_the_site_name() -> None:
    assert marketplace_of("https://www.ebay.com/itm/1", "AliExpress") == "ebay"


def test_nothing_says() -> None:
    assert marketplace_of(None) is None
    assert marketplace_of("http://127.0.0.1/x", None) is None
    assert marketplace_of("http://127.0.0.1/x", "   ") is None


def test_display_names() -> None:
    assert display_name("aliexpress") == "AliExpress"
    assert display_name("amazon") == "Amazon"
    assert display_name("ebay") == "eBay"
    assert display_name("joe's lamp shop") == "joe's lamp shop"
    assert display_name(None) == ""
    required = {"aliexpress", "alibaba", "amazon", "ebay", "etsy", "shopify", "temu", "walmart", "shein", "wish",
                "mercadolibre", "lazada", "shopee", "zalando", "otto", "allegro", "emag", "newegg", "google",
                "facebook", "instagram"}
    assert required <= set(DISPLAY_NAMES)
    assert all(name == name.lower() for name in DISPLAY_NAMES)


@given(st.text(max_size=200), st.one_of(st.none(), st.text(max_size=100)))
def test_never_raises(url: str, site_name: str | None) -> None:
    out = marketplace_of(url, site_name)
    assert out is None or (isinstance(out, str) and out == out.lower() and out)
