"""kefu's WeChat crypto against published known answers, and against the fake's own."""

from __future__ import annotations

import pytest

from kefu.desk.channels.crypto import (
    CryptoError,
    MessageCrypto,
    SignatureError,
    aes_key,
    check_signature,
    signature,
)
from kefu.desk.channels.messages import MalformedMessage, build_xml, parse_xml
from tests.fakes.wechat import WeChatAes

# Known answers published with wechatpy's tests (WeCom, receiver = the CorpID).
TOKEN, KEY, CORP = "123456", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "wx49f0ab532d5d035a"
ENCRYPTED = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrs"
    "TyeDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+B"
    "iYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7v"
    "XUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dSh"
    "yqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)
REPLY = """<xml>
<MsgType><![CDATA[text]]></MsgType>
<Content><![CDATA[test]]></Content>
<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>
<ToUserName><![CDATA[messense]]></ToUserName>
<AgentID>1</AgentID>
<CreateTime>1411525903</CreateTime>
</xml>"""
REPLY_ENCRYPTED = (
    "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBq"
    "GsL8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhH"
    "ZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05U"
    "PPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK"
    "2XeFYFMNMpatF9XiKzHo3"
)


def test_known_answers():
    crypto = MessageCrypto(TOKEN, KEY, CORP)
    crypto.check("74d92dfeb87ba7c714f89d98870ae5eb62dff26d", "1411525903", "461056294", ENCRYPTED)
    message = parse_xml(crypto.decrypt(ENCRYPTED))
    assert (message["Content"], message["FromUserName"]) == ("test", "messense")
    sealed = crypto.encrypt(REPLY, random16=b"1234567890123456")
    assert sealed == REPLY_ENCRYPTED
    assert crypto.sign("1411525903", "461056294", sealed) == (
        "407518b7649e86ef23978113f92d27afa9296533"
    )
    echo = (
        "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
    )
    crypto.check("dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374425", echo)
    with pytest.raises(SignatureError):
        crypto.check("dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374424", echo)


def test_round_trip_with_the_fakes_own_implementation():
    key = KEY
    ours, theirs = MessageCrypto("t", key, "wxappid"), WeChatAes(key, "wxappid")
    for text in ("", "a", "中文消息" * 50, "x" * 31, "x" * 32, "<xml>]]></xml>"):
        assert theirs.decrypt(ours.encrypt(text)) == (text, "wxappid")
        assert ours.decrypt(theirs.encrypt(text)) == text


def test_another_accounts_message_and_garbage_are_refused():
    mine, other = MessageCrypto("t", KEY, "wxmine"), WeChatAes(KEY, "wxother")
    with pytest.raises(CryptoError) as refused:
        mine.decrypt(other.encrypt("<xml/>"))
    assert refused.value.status == 403
    for garbage in ("", "not base64!", "QUJD", "A" * 44):
        with pytest.raises(CryptoError) as bad:
            mine.decrypt(garbage)
        assert bad.value.status == 400


def test_url_signature_is_the_sorted_sha1():
    # sha1("1409304348" + "pamtest" + "xxxxxx"), the parts sorted as strings.
    import hashlib

    expected = hashlib.sha1(b"1409304348pamtestxxxxxx").hexdigest()
    assert signature("pamtest", "1409304348", "xxxxxx") == expected
    check_signature(expected, ("pamtest", "1409304348", "xxxxxx"))
    check_signature(expected.upper(), ("pamtest", "1409304348", "xxxxxx"))
    for forged in ("", "0" * 40, expected[:-1] + "0"):
        with pytest.raises(SignatureError):
            check_signature(forged, ("pamtest", "1409304348", "xxxxxx"))


def test_bad_aes_keys_are_refused():
    for bad in ("", "short", KEY + "A", "!" * 43):
        with pytest.raises(ValueError):
            aes_key(bad)


def test_xml_is_read_safely_and_written_with_cdata():
    assert parse_xml("<xml><A><![CDATA[x]]></A><B>2</B></xml>") == {"A": "x", "B": "2"}
    bomb = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><A>&a;</A></xml>'
    for bad in ("", "   ", "not xml", "<other/>", bomb, "<xml><A></xml>"):
        with pytest.raises(MalformedMessage):
            parse_xml(bad)
    built = build_xml({"Content": "a]]>b<c>", "CreateTime": 5})
    assert parse_xml(built) == {"Content": "a]]>b<c>", "CreateTime": "5"}
