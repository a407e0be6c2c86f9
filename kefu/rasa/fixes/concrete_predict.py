"""RasaModel._rasa_predict through the one concrete function of its tf.function.

Calling DIET's (and TED's) `tf.function` matched the inputs against its signature in
Python on every call, about a third of the TensorFlow time. The signature is fixed (Rasa
builds it with dynamic shapes), so the concrete function is called directly: the same
graph and the same outputs; anything that does not match goes to Rasa's own call.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

from kefu.rasa.fixes.base import Patch, RuntimeFix


def rasa_predict(self: Any, batch_in: Tuple[Any, ...]) -> Dict[str, Any]:
    original = FIX.patch("_rasa_predict").call_original
    if self._run_eagerly or not self.prepared_for_prediction or self._tf_predict_step is None:
        return original(self, batch_in)  # type: ignore[no-any-return]
    import tensorflow as tf
    from keras.utils import tf_utils
    from rasa.shared.constants import DIAGNOSTIC_DATA

    cached = self.__dict__.get("_kefu_concrete_predict")
    if cached is None:
        concrete = self._tf_predict_step.get_concrete_function()
        cached = (concrete, concrete.structured_input_signature[0][0])
        self.__dict__["_kefu_concrete_predict"] = cached
    concrete, spec = cached
    flat = [tf.convert_to_tensor(tensor) for tensor in batch_in]
    if len(flat) != len(spec) or not all(
        t.dtype == s.dtype and s.shape.is_compatible_with(t.shape)
        for t, s in zip(flat, spec, strict=True)
    ):
        return original(self, batch_in)  # type: ignore[no-any-return]
    outputs = tf_utils.sync_to_numpy_or_python_type(
        concrete._call_flat(flat, concrete.captured_inputs)
    )
    if DIAGNOSTIC_DATA in outputs:
        outputs[DIAGNOSTIC_DATA] = self._empty_lists_to_none_in_dict(outputs[DIAGNOSTIC_DATA])
    return outputs  # type: ignore[no-any-return]


FIX = RuntimeFix(
    name="concrete_predict",
    summary="DIET's and TED's predictions call their concrete TensorFlow function directly",
    patches=[
        Patch(
            "rasa.utils.tensorflow.models:RasaModel",
            "_rasa_predict",
            rasa_predict,
            fingerprint="7f745b0f9cb647c9",
        )
    ],
)
