import re

from flowservice.domain import etags


def test_cosmos_shape_with_hex_of_updated_seconds() -> None:
    etag = etags.new_etag(1596656113526)
    assert re.fullmatch(r'"[0-9a-f]{8}-0000-0200-0000-5f2b09f10000"', etag)


def test_if_match_accepts_quoted_unquoted_weak_escaped_and_star() -> None:
    etag = etags.new_etag(1596656113526)
    bare = etag.strip('"')
    for sent in (etag, bare, f"W/{etag}", etag.replace('"', '\\"'), "*", f'"other", {etag}'):
        assert etags.matches(sent, etag), sent
    assert not etags.matches('"00000000-0000-0200-0000-5f2b09f10000"', etag)
    assert not etags.matches("", etag)


def test_every_write_gets_a_new_etag() -> None:
    assert len({etags.new_etag(1_700_000_000_000) for _ in range(100)}) == 100
