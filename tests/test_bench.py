"""The benchmark suite in tiny mode: every section runs, and its figures hang together."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from fer_utils.bench import box_overlap, peak_rss_mb, run_benchmarks
from fer_utils.framing import DETECTORS

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("bench")]  # one tiny run

SECTIONS = ["load", "train_input", "inference", "video", "memory", "batch", "framing"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, samples) -> tuple[dict, str]:
    """The figures of one tiny run, as returned, and its bench.md."""
    out = tmp_path_factory.mktemp("bench")
    figures = run_benchmarks(out, tiny=True)
    assert json.loads((out / "bench.json").read_text()) == figures
    assert not (out / "bench.partial.json").exists()  # finished: no partial figures left
    return figures, (out / "bench.md").read_text()


def test_every_section_runs_in_tiny_mode(tiny):
    figures, report = tiny
    assert list(figures) == ["mode", "machine", *SECTIONS] and figures["mode"] == "tiny"
    assert figures["machine"]["cpus"] == os.cpu_count()
    assert report.startswith(f"# Benchmarks (tiny mode, {os.cpu_count()} CPUs)")
    assert [line[3:] for line in report.splitlines() if line.startswith("## ")] == SECTIONS
    assert f"| ratio | {figures['train_input']['ratio']} |" in report


def test_ratios_are_the_ratios_of_the_figures(tiny):
    load, train, memory, batch = (tiny[0][s] for s in ("load", "train_input", "memory", "batch"))
    assert load["ratio_vs_pandas"] == pytest.approx(load["pandas_s"] / load["kit_s"], rel=0.02)
    assert train["ratio"] == pytest.approx(train["pipeline_s"] / train["in_memory_s"], rel=0.02)
    assert memory["ratio_10x"] == pytest.approx(memory["peak_mb_10x"] / memory["peak_mb_1x"],
                                                rel=0.02)
    assert batch["ratio"] == pytest.approx(batch["videos_per_min_2"] / batch["videos_per_min_1"],
                                           abs=0.006)  # rounded to two decimals
    spread = load["kit_spread"]
    assert spread["min_s"] <= spread["median_s"] == load["kit_s"] <= spread["max_s"]
    assert train["pipeline_spread_s"][0] == train["pipeline_s"] <= train["pipeline_spread_s"][1]
    assert train["steps"] == 3 and load["cached_s"] > 0


def test_inference_and_video_figures_are_plausible(tiny):
    inference, video, memory = (tiny[0][s] for s in ("inference", "video", "memory"))
    assert 0 < inference["faces"] <= 64
    for runner in ("keras", "tflite", "tflite_dynamic_range"):
        assert all(inference[f"{runner}_faces_per_s_batch{b}"] > 0 for b in (1, 32, 256))
        assert inference[f"{runner}_latency_ms"] > 0
    # The float TFLite file is the Keras model converted: the same labels, the same numbers.
    assert inference["tflite_label_agreement"] == 1.0 and inference["tflite_max_abs_diff"] < 1e-3
    assert 0 <= inference["tflite_dynamic_range_label_agreement"] <= 1
    # Two seconds of the 24 fps clip, every frame.
    assert video["frames"] == 48 and video["fps_kit_spread"][0] <= video["fps_kit"]
    assert video["fps_kit_haar"] > 0 and video["tilted_frames"] == 48
    assert 0 <= video["tilted_frames_with_face_haar"] <= video["tilted_frames_with_face_default"]
    assert 0 < video["reference_frames_with_face"] <= video["frames"]
    assert 0 <= video["detection_agreement"] <= 1
    assert 0 < video["box_iou_vs_every_frame_p10"] <= video["box_iou_vs_every_frame"] <= 1
    assert video["fps_fer"] is None and video["ratio_vs_fer"] is None
    assert "tiny mode" in video["fer_skipped"]
    # Frames stream through the analysis: ten times the video, not ten times the memory; and
    # a high-resolution video twice as long, annotated, takes no more either.
    assert memory["ratio_10x"] < 1.5
    assert memory["high_ratio_last_doubling"] == pytest.approx(
        memory["high_peak_mb_2x"] / memory["high_peak_mb_1x"], rel=0.02)
    assert memory["high_ratio_last_doubling"] < 1.5


def test_framing_figures_hang_together(tiny):
    framing, report = tiny[0]["framing"], tiny[1]
    assert "tiny mode" in framing["fer_path"] and 0 < framing["faces"] <= 21
    assert [(r["detector"], r["tta"]) for r in framing["in_frame"]] == [
        (detector, tta) for detector in DETECTORS for tta in ("none", "scales")]
    assert {r["detector"] for r in framing["best_margins"]} == set(DETECTORS)
    for best in framing["best_margins"]:
        column = f"shipped {best['detector']}"
        curve = {r["margin"]: r[column] for r in framing["margin_curve"]}
        assert curve[best["best_margin"]] == max(curve.values())
    grid = {r["framing"]: r["shipped"] for r in framing["grid"]}
    assert grid["grid mean - single crop"] == pytest.approx(
        grid["grid mean"] - grid["single crop"], abs=2e-4)  # each rounded to 4 decimals
    # Tables go into bench.md as tables.
    assert f"| fps_kit_spread | {tiny[0]['video']['fps_kit_spread']} |" in report  # a figure
    assert "### in_frame" in report and "### grid" in report and "| framing | shipped |" in report


def test_a_child_reports_its_own_peak_memory_not_its_parent_s():
    ballast = np.ones(300 * 2**20, np.uint8)  # 300 MB resident in this process
    code = "from fer_utils.bench import peak_rss_mb; print(peak_rss_mb())"
    child = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True).stdout)
    assert peak_rss_mb() > ballast.nbytes / 2**20 > child  # importing numpy is far below 300 MB


def _boxes(rows: list[list[int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["frame", "x", "y", "w", "h"])


def test_box_overlap_pairs_each_face_with_its_best_match_in_the_same_frame():
    reference = _boxes([[0, 0, 0, 10, 10], [0, 50, 50, 10, 10], [1, 0, 0, 10, 10]])
    # Frame 0: one face exact, one shifted by half its width (IoU 5*10 / 150 = 1/3); frame 1
    # exact; frame 2 is not in the reference and does not count.
    frames = _boxes([[0, 0, 0, 10, 10], [0, 55, 50, 10, 10], [1, 0, 0, 10, 10], [2, 0, 0, 9, 9]])
    overlap = box_overlap(frames, reference)
    assert overlap["mean"] == pytest.approx((1 + 1 / 3 + 1) / 3, abs=1e-3)
    assert overlap["p10"] == pytest.approx(1 / 3 + 0.2 * (1 - 1 / 3), abs=1e-3)
    assert box_overlap(frames.iloc[3:], reference) == {"mean": None, "p10": None}
