"""The shared character n-gram model: counts by default (the NLU's trained models rely on
it), tf-idf of 1 + log(count) as an option, saved with its idf."""

from __future__ import annotations

import numpy as np

from kefu.domain.char_linear import CharLinearModel

TEXTS = ["请问有什么可以帮您", "您好请问有什么需要", "你自己去问快递", "这个你去找快递"]
LABELS = ["ok", "ok", "shirk", "shirk"]


def test_counts_by_default_and_saved(tmp_path):
    model = CharLinearModel.fit(TEXTS, LABELS, (1, 3), C=1.0, class_weight=None, max_iter=200)
    assert model.vectoriser.transform(["快递快递"]).max() == 2  # a count, not a weight
    model.save(tmp_path, "m")
    loaded = CharLinearModel.load(tmp_path, "m", (1, 3))
    assert np.allclose(loaded.probabilities(TEXTS), model.probabilities(TEXTS))


def test_sublinear_tf_idf_is_the_same_as_sklearns_and_saved_without_pickle(tmp_path):
    from sklearn.feature_extraction.text import TfidfVectorizer

    model = CharLinearModel.fit(
        TEXTS,
        LABELS,
        (1, 3),
        C=10.0,
        class_weight="balanced",
        max_iter=200,
        sublinear_tf=True,
        solver="sag",
    )
    row = model.features(["快递快递"])
    assert abs(np.sqrt(row.multiply(row).sum()) - 1) < 1e-5  # unit length
    reference = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
    reference.fit(TEXTS)
    expected = reference.transform(TEXTS).toarray()
    order = [
        reference.vocabulary_[k]
        for k in sorted(model.vectoriser.vocabulary_, key=model.vectoriser.vocabulary_.get)
    ]
    assert np.allclose(model.features(TEXTS).toarray(), expected[:, order], atol=1e-5)
    assert model.classes[int(np.argmax(model.probabilities(["你去问快递"])[0]))] == "shirk"
    model.save(tmp_path, "m")
    loaded = CharLinearModel.load(tmp_path, "m", (1, 3))
    assert np.allclose(loaded.probabilities(TEXTS), model.probabilities(TEXTS))
