import pytest

from kefu.domain.script import detect_script, expand_shorthand, normalise, to_traditional


def test_detects_traditional_text():
    assert detect_script("我的訂單到哪裡了？") == "traditional"


def test_detects_simplified_text():
    assert detect_script("我的订单到哪里了？") == "simplified"


def test_text_without_distinguishing_characters_is_unknown():
    assert detect_script("ok 123 👍") == "unknown"
    assert detect_script("") == "unknown"


def test_normalise_keeps_offsets():
    text = "訂單號JD20231118001，謝謝"
    simplified = normalise(text)
    assert simplified == "订单号JD20231118001，谢谢"
    assert len(simplified) == len(text)
    assert simplified.index("JD") == text.index("JD")


def test_to_traditional_converts_replies():
    assert to_traditional("请问有什么可以帮您？") == "請問有什麼可以幫您？"


def test_traditional_replies_use_the_common_taiwan_hong_kong_forms():
    assert to_traditional("为您服务") == "為您服務"


SHORTHAND = {"tk": "退款", "fh": "发货", "qx": "取消", "yhq": "优惠券"}


@pytest.mark.parametrize(
    "typed, read",
    [
        ("tk几天到账", "退款几天到账"),
        ("还没FH 能qx不", "还没发货 能取消不"),
        ("yhq能叠嘛", "优惠券能叠嘛"),
        # not inside a latin word, nor an order id's letters
        ("thanks tkx", "thanks tkx"),
        ("TK-2025-0412-8831 到哪了", "TK-2025-0412-8831 到哪了"),
        ("TK2025 到哪了", "TK2025 到哪了"),
    ],
)
def test_shorthand_is_written_out_with_the_same_length(typed, read):
    assert expand_shorthand(typed, SHORTHAND) == read
    assert len(expand_shorthand(typed, SHORTHAND)) == len(typed)
