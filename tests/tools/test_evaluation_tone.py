"""The tone model's grouped cross-validation: folds, rates and the threshold it picks."""

from __future__ import annotations

import numpy as np

from kefu.tools.evaluation_tone import (
    Replies,
    by_file,
    lowest_threshold,
    out_of_fold,
    rates,
    within,
)

OK = ["您好，请问有什么可以帮您？", "好的，我马上为您查询物流。", "已经帮您提交退款申请了。"]
BAD = ["这个你自己去问快递。", "跟我们没关系，找平台去。", "别问我，问售后。"]


def replies() -> Replies:
    texts = (OK + BAD) * 5
    labels = (["ok"] * 3 + ["shirk"] * 3) * 5
    files = np.array([f"f{i // 6}" for i in range(30)])
    ruled = np.array([t == BAD[2] for t in texts])  # a listed rule catches one wording
    return Replies(texts, labels, files, ruled, ["感谢您的耐心等待。"])


def test_every_reply_is_held_out_exactly_once():
    r = replies()
    for folds in (list(by_file(r)), list(within(r, k=3, seed=1))):
        held = np.concatenate([h for _, _, h in folds])
        assert sorted(held) == list(range(30))
        assert all(not set(t) & set(h) for _, t, h in folds)


def test_rates_count_rules_and_model_together():
    r = replies()
    scores = np.array([0.9 if t == BAD[0] else 0.1 for t in r.texts])
    assert rates(r, scores, 0.5) == {"recall": round(10 / 15, 4), "false_positive_rate": 0.0}
    assert rates(r, np.full(30, 0.6), 0.5)["false_positive_rate"] == 1.0
    assert lowest_threshold(r, [scores], 0.0) == 0.11


def test_out_of_fold_scores_every_reply(policy):
    r = replies()
    scores = out_of_fold(policy.tone_model, r, by_file(r))
    assert not np.isnan(scores).any()
    assert scores[3] > scores[0]  # a shirk it never saw reads worse than a greeting
