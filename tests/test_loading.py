"""The per-process model cache."""

from fer_utils.loading import ModelSpec, cached_classifier


def test_the_model_cache_loads_a_rewritten_file_again(tmp_path):
    import keras
    import numpy as np

    from fer_utils.model import build_seed_cnn

    spec = ModelSpec(str(tmp_path / "model.keras"))
    keras.utils.set_random_seed(0)
    build_seed_cnn().save(spec.path)
    first = cached_classifier(spec)
    assert cached_classifier(spec) is first  # once per process
    keras.utils.set_random_seed(1)
    build_seed_cnn().save(spec.path)  # retrained into the same path
    second = cached_classifier(spec)
    assert second is not first
    assert not np.array_equal(first.model.get_weights()[0], second.model.get_weights()[0])
