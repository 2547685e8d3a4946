"""Tests of pipeline/sweep/addresses.py: which addresses count as local (the connect-time check is tested through
the real Fetcher in tests/test_sweep_fetch.py, against a server on 127.0.0.1)."""

from __future__ import annotations


def test_peer_is_global() -> None:
    import httpx

    from pipeline.sweep.addresses import peer_is_global

    class Stream:
        def __init__(self, addr: tuple[str, int] | None) -> None:
            self.addr = addr

        def get_extra_info(self, name: str) -> object:
            return self.addr if name == "server_addr" else None

    def response(addr: tuple[str, int] | None) -> httpx.Response:
        return httpx.Response(200, extensions={"network_stream": Stream(addr)})

    assert peer_is_global(response(("93.184.215.14", 443))) is True
    assert peer_is_global(response(("2606:2800:21f:cb07:6820:80da:af6b:8b2c", 443))) is True
    assert peer_is_global(response(("127.0.0.1", 80))) is False
    assert peer_is_global(response(("fe80::1%eth0", 80))) is False
    assert peer_is_global(response(None)) is False
    assert peer_is_global(httpx.Response(200)) is False


def test_is_local_address_without_lookups() -> None:
    from pipeline.sweep.addresses import is_local_address

    assert is_local_address("http://127.0.0.1:8000/", resolve=False) is True
    assert is_local_address("http://printer.localhost/", resolve=False) is True
    assert is_local_address("http://[fe80::1]/", resolve=False) is True
    assert is_local_address("http://100.64.0.1/", resolve=False) is True  # carrier-grade NAT
    assert is_local_address("https://93.184.215.14/", resolve=False) is False
    assert is_local_address("https://www.aliexpress.com/", resolve=False) is None  # a name: not looked up
