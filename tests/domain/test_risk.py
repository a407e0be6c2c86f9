"""Risk read from the visitor's own words (kefu.domain.risk with policy/risk.yml)."""

from __future__ import annotations

import pytest

from kefu.domain import risk


@pytest.fixture(scope="module")
def reader(policy):
    return risk.Reader(policy.risk)


def reasons(reader, text):
    return reader.read(text).reasons


@pytest.mark.parametrize(
    "text, reason",
    [
        # buried in the third sentence of a message about something else
        ("快递拖了五天才到。包装也压扁了。插上充电才十分钟充电器就冒烟了，吓我一跳", "safety"),
        # plain words, no keyword
        ("这个暖手宝用着用着手心麻麻的，像有电流一样", "safety"),
        ("面膜敷了十分钟脸上起了一片小红点，又痒又疼", "safety"),
        ("吃了你们的牛肉干，晚上吐了好几次，肚子一直疼", "safety"),
        ("娃把积木上的小零件放进嘴里了，不知道咽没咽下去", "safety"),
        ("充電寶充著充著就鼓起來了，還發燙", "safety"),  # 繁體
        ("再不处理我就打12315", "legal_media"),
        ("我已经联系了本地电视台的记者", "legal_media"),
        ("你们这帮傻 逼客服", "abuse"),  # spaced
        ("你是不是sb啊", "abuse"),  # pinyin abbreviation
        ("垃圾客服，一问三不知", "abuse"),  # aimed at the agent
        ("你们必须赔偿我的损失", "compensation"),
        ("维修费你们来出", "compensation"),
        ("叫你们经理出来跟我说", "supervisor"),
        ("zhuan ren gong", "customer_request"),
        ("個暖風機插頭燒燶咗，成屋燶味", "safety"),  # Cantonese 燶
        ("书架倒下来压在我女儿腿上了", "safety"),
        ("你们售后是不是全2b啊，换货单填了三次都提交不上", "abuse"),
        ("转二线吧，一线解决不了的", "supervisor"),
        ("柜门掉下来差点砸到孩子，吓死我了", "safety"),
        ("月饼吃了两口才发现发霉了", "safety"),
        ("我已经约了报社的记者", "legal_media"),
        ("我要在PTT发文讲这件事", "legal_media"),
        ("你们这帮人脑子被门夹了吧", "abuse"),
        ("垃*圾店铺", "abuse"),  # masked inside the word
        ("搬运费加上误工损失你们出", "compensation"),
        ("请你们主管回电给我", "supervisor"),
        ("要rg", "customer_request"),
    ],
)
def test_each_reason_is_read_from_the_words(reader, text, reason):
    assert reason in reasons(reader, text)


@pytest.mark.parametrize(
    "text",
    [
        "这个充电宝会不会爆炸？安全吗",  # a question before buying
        "我真是个猪脑子，尺码表都没看就下单了，能换大一码吗",  # at oneself
        "宝宝咬了一口包装袋，袋子没破，什么都没吃进去。这个印刷是食品级的吗",  # nothing swallowed
        "面包发霉了，仅退款可以吗？再寄回去我自己看着都觉得恶心",  # disgust, not nausea
        "发顺丰吗？路上磕坏了是包赔的吧",  # what the shop's promise covers
        "质量太垃圾了，洗一次就掉色",  # about the product, not aimed at anyone
        "我是敏感肌，这款面霜能用吗",
        "你们家的炸鸡锅是爆款吗",
        "人工客服几点上班",
        "刻字是人工刻的吗",
        "请问延迟发货有没有补偿的规则",
        "被闺蜜安利中毒了，这个色号还有吗",
        "手机屏幕上有一道划痕，能换吗",
        "老板在吗，这款还有货吗",
        "我就是个傻子，颜色选错了，能改吗",  # at oneself
        "卧槽这也太好吃了吧",
        "这款相机有曝光补偿吗",
        "烟雾报警器要装电池吗",
        "笑到我想报警哈哈",
        "运费是我出还是你们出",
        "我不是要找经理，就想问下发票",
        "气得我手都在抖，又发错货了",
        "吓死我了，一看扣了两笔钱，原来有一笔是运费险",
        "这批月饼收到就发霉了，照片发你们看看",
        "2B铅笔有没有十支装的",
        "寄到我单位吧，市场监督管理局三楼，收件人写小刘",
    ],
)
def test_near_misses_are_not_read_as_risk(reader, text):
    assert reasons(reader, text) == ()


@pytest.mark.parametrize(
    "text, lifted",
    [
        # a matter from the past, settled: words before the settling words are taken back
        ("上次那个12315的事已经解决了哈 这次想问有没有满减券", "legal_media"),
        ("我是去年打过12315的那个顾客，后来你们处理得挺好，所以这次又来买", "legal_media"),
        ("上个月那个鼓包的充电宝你们已经给我换了新的，新的用着很好。", "safety"),
        # a joke owned up to, in the same sentence or the next one
        ("老公说穿坏了就找你们老板赔他一双，开玩笑的，再来一双44的", "supervisor"),
        ("法院的传票能放你们的快递柜吗？开个玩笑。自提码多久失效", "legal_media"),
    ],
)
def test_words_taken_back_by_what_follows_do_not_count(reader, text, lifted):
    reading = reader.read(text)
    assert reading.reasons == () and lifted in reading.lifted


@pytest.mark.parametrize(
    "text, reason",
    [
        # what comes after the settling words still counts
        ("充电宝鼓包你们已经给我换了新的，结果新的也鼓包了", "safety"),
        # the joke is the shop's, asked about, not the visitor's own
        ("我要打12315。你们是在开玩笑吗", "legal_media"),
        ("上次的事解决了吗？我要打12315", "legal_media"),
    ],
)
def test_settling_words_do_not_take_back_what_follows_them(reader, text, reason):
    assert reason in reasons(reader, text)


@pytest.mark.parametrize(
    "text, lifted",
    [
        # quoted: a slogan on a product, a line of a film
        ("那件印着“律师函警告”的恶搞T恤还有XL吗", "legal_media"),
        ("李云龙那句「你他娘的真是个天才」的冰箱贴有卖吗", "abuse"),
        # someone else's story that the sentence does not tie to the shop
        ("同事上个月电动车在楼道里充电，半夜烧起来了。你们这款户外充电柜防雨吗", "safety"),
        ("邻居说再吵就报警，所以想买个无线耳机", "legal_media"),
        ("之前在别家买的那个烧干了直接冒烟，所以这次想挑个好一点的", "safety"),
        # a household's story told to explain a purchase
        ("我爸上个月在浴室摔了一跤，人没大事，想给他装个扶手，这款能打在瓷砖墙上吗", "safety"),
        ("我妈住院了，想给她买个护颈枕，能直接寄到医院吗", "safety"),
    ],
)
def test_words_that_are_not_the_visitors_own_matter_do_not_count(reader, text, lifted):
    reading = reader.read(text)
    assert reading.reasons == () and lifted in reading.lifted


@pytest.mark.parametrize(
    "text, reason",
    [
        # the someone else used what the shop sold, or was told about this matter
        ("同事用了你们的充电宝，半夜烧起来了", "safety"),
        ("我同学在市场监管局上班，我已经把情况跟他说了", "legal_media"),
        ("我有个朋友在报社当记者，她对这种事情很感兴趣", "legal_media"),
        # a purchase asked about in the same message does not hide a report about what was bought
        ("想给我妈也买一个。上周买的充电热水袋裂开了，我爸大腿烫红了一大片，起了泡", "safety"),
        ("你家那空气炸锅刚才冒烟了，有没有别的款推荐", "safety"),
        # quoted words of a promise still claimed
        ("详情页那行「假一赔十」还挂着呢，就按这个来，赔我十倍", "compensation"),
    ],
)
def test_someone_elses_words_tied_to_the_shop_still_count(reader, text, reason):
    assert reason in reasons(reader, text)


def test_words_in_a_story_are_outweighed_by_a_confident_shop_question(reader, policy):
    story = policy.escalation.story
    text = "我舅舅当了三十年律师，下个月生日，这套文房四宝适合送他吗"
    reading = reader.read(text)
    assert reading.reasons == ("legal_media",)
    shop_question = {"name": "faq", "confidence": 0.82}
    outweighed = risk.outweighed(reading, shop_question, story)
    assert outweighed.reasons == () and "legal_media" in outweighed.lifted
    # a doubtful reading of the whole, or an intent that can carry a threat: the words count
    assert risk.outweighed(reading, {"name": "faq", "confidence": 0.3}, story) is reading
    assert risk.outweighed(reading, {"name": "complain", "confidence": 0.9}, story) is reading


def test_safety_words_count_whatever_the_classifier_reads(reader, policy):
    text = "用了一次充电器就冒烟了，这款还有别的颜色吗"
    reading = risk.outweighed(
        reader.read(text), {"name": "faq", "confidence": 0.95}, policy.escalation.story
    )
    assert "safety" in reading.reasons


def test_safety_comes_first_and_evidence_points_into_the_text(reader, policy):
    text = "你们这什么破店！我要投诉到12315！孩子用了你们的护手霜，手上起了一片红疹"
    reading = reader.read(text)
    assert set(reading.reasons) >= {"safety", "legal_media"}
    for evidence in reading.evidence:
        start, end = evidence.start, evidence.end
        assert text[start:end] == evidence.match and evidence.match in evidence.sentence
    priority = {c: r.priority for c, r in policy.escalation.reasons.items()}
    assert max(reading.reasons, key=priority.get) == "safety"


def test_masked_swear_words_are_mapped_back_to_what_was_typed(reader):
    text = "你个傻*，听不懂人话吗"
    [evidence] = [e for e in reader.read(text).evidence if e.reason == "abuse"]
    assert text[evidence.start : evidence.end] == evidence.match and "*" in evidence.match


def test_a_worry_about_what_happened_counts_even_as_a_question(reader):
    assert "safety" in reasons(reader, "会不会被他吞下去了？我现在腿都软了")
    assert "safety" in reasons(reader, "宝宝吃完吐了两次，要不要去医院看看")


def test_the_intent_follows_the_words_unless_the_classifier_already_escalated(policy, reader):
    reason_of = {i: c for c, r in policy.escalation.reasons.items() for i in r.intents}
    priority = {c: r.priority for c, r in policy.escalation.reasons.items()}
    floor = policy.escalation.intent_min_confidence

    def revised(text, intent, confidence=0.9, ranking=()):
        return risk.revised_intent(
            {"name": intent, "confidence": confidence},
            list(ranking),
            reader.read(text),
            reason_of,
            priority,
            floor,
        )

    long_message = "快递慢就算了。东西到了一插电就冒烟，我要退货"
    assert revised(long_message, "request_return") == {"name": "report_safety", "confidence": 1.0}
    assert revised("充电器冒烟了，叫你们经理来", "report_safety") is None  # already the top
    # A low-confidence escalation guess with nothing in the words behind it gives way.
    ranking = [{"name": "ask_human", "confidence": 0.3}, {"name": "faq", "confidence": 0.25}]
    assert revised("刻字要另外收费吗", "ask_human", 0.3, ranking) == {
        "name": "faq",
        "confidence": 0.25,
    }
    assert revised("转人工", "ask_human", 0.3, ranking) is None
    # A confident guess the words explain away (a near-miss of its reason) gives way too.
    ranking = [{"name": "ask_human", "confidence": 0.8}, {"name": "faq", "confidence": 0.2}]
    assert revised("安装的人工费怎么算", "ask_human", 0.8, ranking) == {
        "name": "faq",
        "confidence": 0.2,
    }
    # A low-confidence guess does not outrank what the words show.
    assert revised("tmd你们会不会做事", "threaten", 0.3) == {"name": "insult", "confidence": 1.0}


@pytest.mark.parametrize(
    "text, grounded",
    [
        # an ordinary complaint the classifier may read as a safety report: nothing at risk
        ("书架到了，五金包少了一袋，现在装到一半卡住了", False),
        ("T恤洗了一次缩成童装了，我自己穿不上了，哭笑不得", False),
        ("行李箱第一趟出门轮子就掉了一个，这个能修还是能换？", False),
        # safety told in plain words names a body, a symptom, a hazard or who is at risk
        ("宝宝一喝完就吐，一天拉了七八次", True),
        ("窗帘拉绳绕到脖子上勒出一圈红印", True),
        ("充电座底部黑乎乎的，插头那里一股胶味，我不敢再插了", True),
        ("坐上去屁股底下一阵一阵地发木", True),
        ("燃气灶关了以后还是有股臭味，家里老人说头有点晕", True),
    ],
)
def test_a_classifier_safety_reading_needs_grounds_in_the_words(reader, policy, text, grounded):
    reason_of = {i: c for c, r in policy.escalation.reasons.items() for i in r.intents}
    sentence = [{"intent": "report_safety", "confidence": 0.95, "span": (0, len(text))}]
    classifier = risk.from_classifier(sentence, reason_of, 0.5, original=text)
    reading = reader.read(text, classifier)
    assert ("safety" in reading.reasons) is grounded
    assert ("safety" in reading.lifted) is not grounded
    # the top intent is doubted the same way: the best other intent is taken instead
    priority = {c: r.priority for c, r in policy.escalation.reasons.items()}
    ranking = [
        {"name": "report_safety", "confidence": 0.95},
        {"name": "complain", "confidence": 0.03},
    ]
    revised = risk.revised_intent(
        {"name": "report_safety", "confidence": 0.95},
        ranking,
        reader.read(text),
        reason_of,
        priority,
        policy.escalation.intent_min_confidence,
    )
    assert revised == (None if grounded else {"name": "complain", "confidence": 0.03})
