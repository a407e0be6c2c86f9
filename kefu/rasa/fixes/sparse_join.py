"""Features._combine_sparse_features: two COO matrices joined directly.

DIET's input joins each featurizer's sparse matrix through scipy's generic `bmat`; for two
COO matrices the very same matrix is built directly (bmat's layout: the first block's
entries, then the second's, columns shifted).
"""

from __future__ import annotations

from typing import Any

from kefu.rasa.fixes.base import Patch, RuntimeFix


def combine_sparse_features(self: Any, additional_features: Any) -> None:
    import numpy as np
    import scipy.sparse as sp
    from scipy.sparse._sputils import get_index_dtype, upcast

    a, b = self.features, additional_features.features
    if type(a) is not sp.coo_matrix or type(b) is not sp.coo_matrix or a.shape[0] != b.shape[0]:
        return FIX.patch("_combine_sparse_features").call_original(  # type: ignore[no-any-return]
            self, additional_features
        )
    shape = (a.shape[0], a.shape[1] + b.shape[1])
    index = get_index_dtype(maxval=max(shape))
    data = np.concatenate((a.data, b.data)).astype(upcast(a.dtype, b.dtype), copy=False)
    row = np.concatenate((a.row, b.row)).astype(index, copy=False)
    col = np.concatenate((a.col, b.col + a.shape[1])).astype(index, copy=False)
    self.features = sp.coo_matrix((data, (row, col)), shape=shape)
    self._cached_fingerprint = None
    return None


FIX = RuntimeFix(
    name="sparse_join",
    summary="two sparse COO feature matrices joined without scipy's generic bmat",
    patches=[
        Patch(
            "rasa.shared.nlu.training_data.features:Features",
            "_combine_sparse_features",
            combine_sparse_features,
            fingerprint="9837d864e5983243",
        )
    ],
)
