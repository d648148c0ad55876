"""The benchmark suite runs in tiny mode and reports every figure the contract names."""

import json
import math

import pytest

from fer_utils.bench import run_benchmarks

pytestmark = pytest.mark.slow

KEYS = {
    "load": ["ratio_vs_pandas", "kit_s", "pandas_s", "kit_peak_mb", "pandas_peak_mb", "cached_s"],
    "train_input": ["ratio", "pipeline_s", "in_memory_s"],
    "inference": ["keras_faces_per_s_batch32", "tflite_faces_per_s_batch32",
                  "tflite_dynamic_range_faces_per_s_batch32", "keras_latency_ms",
                  "tflite_label_agreement"],
    "video": ["fps_kit", "detection_agreement"],
    "memory": ["peak_mb_1x", "peak_mb_10x", "ratio_10x"],
    "batch": ["videos_per_min_1", "videos_per_min_2", "ratio"],
}


def test_tiny_suite_reports_every_figure(tmp_path, samples):
    run_benchmarks(tmp_path, tiny=True)
    figures = json.loads((tmp_path / "bench.json").read_text())
    for section, keys in KEYS.items():
        for key in keys:
            value = figures[section][key]
            assert isinstance(value, float | int) and math.isfinite(value), (section, key)
    video = figures["video"]
    assert video["fps_fer"] is None and "tiny mode" in video["fer_skipped"]
    assert "ratio_vs_fer" in video
    assert (tmp_path / "bench.md").read_text().startswith("# Benchmarks (tiny mode")
