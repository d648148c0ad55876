"""Notebooks stay clean and runnable; the report run renders them and marks failures."""

import json
import logging
import re
import warnings
from pathlib import Path

import nbformat
import pytest

from fer_utils import reports
from fer_utils.paths import NOTEBOOKS_DIR, REPORTS_DIR, SHIPPED_MODEL

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
SOLUTION = "<details><summary>Solution</summary>"


def test_every_notebook_is_in_the_report_run():
    assert [p.stem for p in NOTEBOOKS] == list(reports.NOTEBOOKS)


def test_the_index_speaks_of_expressions_not_emotions(tmp_path):
    results = [reports.ReportResult(name, {}) for name in reports.NOTEBOOKS]
    index = reports.write_index(results, tmp_path).read_text().lower()
    assert "expression timeline" in index and "emotion" not in index


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_clean_with_one_typed_parameters_cell(path: Path):
    notebook = json.loads(path.read_text())
    cells = notebook["cells"]
    assert not any(c.get("outputs") or c.get("execution_count") for c in cells), \
        f"{path.name} is stored with outputs: clear them before committing"
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    for line in "".join(tagged[0]["source"]).splitlines():
        assert ":" in line.split("=")[0] and "#" in line, f"untyped or uncommented: {line}"
    assert cells[0]["cell_type"] == "markdown" and "Runs in" in "".join(cells[0]["source"])
    assert any("report_summary(headline=" in "".join(c["source"]) for c in cells), \
        f"{path.name} shows no headline for the report index"
    assert notebook["metadata"]["kernelspec"]["name"] == reports.KERNEL


def _notebook(path: Path, code: str) -> Path:
    cells = [nbformat.v4.new_markdown_cell("# test"), nbformat.v4.new_code_cell("x: int = 1  # x")]
    cells[1].metadata["tags"] = ["parameters"]
    cells.append(nbformat.v4.new_code_cell(code))
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {
        "name": reports.KERNEL, "display_name": "Python (fer-kit)", "language": "python"}}), path)
    return path


def test_a_failing_notebook_is_marked_and_the_others_still_render(tmp_path):
    source = tmp_path / "notebooks"
    source.mkdir()
    _notebook(source / "good.ipynb", "from fer_utils.reports import report_summary\n"
              "report_summary(headline=f'x is {x}', data='none')")
    _notebook(source / "bad.ipynb", "raise RuntimeError('broken on purpose')")
    out = tmp_path / "out"
    out.mkdir()
    results = [reports.run_notebook(name, {"x": 3}, out, notebooks=source)
               for name in ("bad", "good")]
    index = reports.write_index(results, out).read_text()
    assert results[0].error and "cell 2" in results[0].error and "broken on purpose" in \
        results[0].error
    assert results[1].error is None and results[1].summary["headline"] == "x is 3"
    assert (out / "good.html").exists() and results[0].html == out / "bad.failed.html"
    assert "FAILED" in index and "bad" in index and "x is 3" in index


def test_a_failed_run_keeps_the_last_good_page_and_puts_its_own_beside_it(tmp_path):
    source = tmp_path / "notebooks"
    source.mkdir()
    _notebook(source / "nb.ipynb", "assert x < 5, f'x is {x}'")
    out = tmp_path / "out"
    out.mkdir()
    good = reports.run_notebook("nb", {"x": 1}, out, notebooks=source)
    kept = {name: (out / name).read_bytes() for name in ("nb.html", "nb.ipynb")}
    failed = reports.run_notebook("nb", {"x": 9}, out, notebooks=source)
    assert good.error is None and "AssertionError: x is 9" in failed.error
    assert {name: (out / name).read_bytes() for name in kept} == kept
    assert failed.html == out / "nb.failed.html" and (out / "nb.failed.ipynb").exists()
    assert "the last good page" in reports.write_index([failed], out).read_text()
    reports.run_notebook("nb", {"x": 2}, out, notebooks=source)  # good again: no failed page
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "nb.html", "nb.ipynb"]


def test_a_parameter_of_the_wrong_type_is_refused_before_any_kernel_starts(tmp_path):
    types = reports.notebook_parameters("02_train")
    assert types["epochs"] == (int, type(None)) and types["augment"] == (bool,)
    with pytest.raises(ValueError, match=r"-p epochs: 02_train takes int or None, not 'abc' "
                                         r"\(str\); nothing was run"):
        reports.run_reports(["02_train"], {"epochs": "abc"}, tmp_path / "out")
    with pytest.raises(ValueError, match="-p augment: 02_train takes bool, not 1"):
        reports.run_reports(["02_train"], {"augment": 1}, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # YAML reads 1e-3 as text: a float parameter takes it as the number it spells.
    assert reports.check_parameter("02_train", "learning_rate", "1e-3",
                                   types["learning_rate"]) == 0.001


def test_parameters_no_notebook_declares_are_refused_before_anything_runs(tmp_path):
    assert set(reports.notebook_parameters("04_analyze_video")) == {
        "video", "model", "fps", "smoothing", "max_seconds", "out", "runs"}
    with pytest.raises(ValueError, match="epochz"):
        reports.run_reports(parameters={"epochz": 1}, out=tmp_path)
    source = tmp_path / "notebooks"
    source.mkdir()
    _notebook(source / "good.ipynb", "print(x)")
    with pytest.raises(ValueError, match="no parameter.*y; it takes x"):
        reports.run_notebook("good", {"x": 1, "y": 2}, tmp_path, notebooks=source)
    assert not list(tmp_path.glob("*.html"))


def test_the_report_values_are_parameters_of_their_notebooks():
    for name, values in reports.report_parameters().items():
        assert set(values) <= set(reports.notebook_parameters(name)), name


def test_the_report_run_sets_the_model_02_trained_beside_the_shipped_one(monkeypatch, tmp_path):
    ran = []

    def run_notebook(name, parameters, out):  # what run_reports hands each notebook
        ran.append((name, parameters))
        summary = {"model": "runs/quick/fer_cnn.keras"} if name == "02_train" else {}
        return reports.ReportResult(name, parameters, summary=summary)

    monkeypatch.setattr(reports, "run_notebook", run_notebook)
    reports.run_reports(parameters={"epochs": 1, "max_seconds": 1.0}, out=tmp_path)
    given = dict(ran)
    assert list(given) == list(reports.NOTEBOOKS)
    assert given["03_evaluate"]["reference_model"] == "runs/quick/fer_cnn.keras"  # beside
    assert given["03_evaluate"]["model"] == str(SHIPPED_MODEL)  # the headline
    assert given["02_train"]["epochs"] == 1 and given["04_analyze_video"]["max_seconds"] == 1.0
    assert all("epochs" not in values for name, values in ran if name != "02_train")


@pytest.mark.slow
def test_papermill_renders_a_notebook_with_its_report_values(tmp_path, capfd):
    [result] = reports.run_reports(["01_explore_data"], out=tmp_path)
    assert "IPKernelApp" not in capfd.readouterr().err  # the kernel logs errors only
    assert result.error is None and result.html == tmp_path / "01_explore_data.html"
    assert result.parameters == reports.report_parameters(out=tmp_path)["01_explore_data"]
    assert result.summary["headline"] and "SYNTHETIC" in result.summary["data"]
    assert result.summary["headline"] in (tmp_path / "index.html").read_text()


def exercises(text: str) -> list[str]:
    """The numbered items of a "Try next" cell, each with everything up to the next item."""
    return [item.strip() for item in re.split(r"^\d+\. ", text, flags=re.M)[1:]]


def test_exercises_are_read_item_by_item():
    cell = ("## Try next\n\nIntro.\n\n1. First?\n   <details><summary>Solution</summary>\n\n   Yes."
            "\n   </details>\n2. Second, with 3. inside\n10. Tenth.\n- a bullet is not an item")
    found = exercises(cell)
    assert [e.splitlines()[0] for e in found] == ["First?", "Second, with 3. inside", "Tenth."]
    assert [SOLUTION in e for e in found] == [True, False, False]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_last_cell_sets_three_to_five_exercises_each_with_a_solution(path: Path):
    # Markdown, or a code cell that writes the solutions from the numbers (display(Markdown(...))).
    text = "".join(json.loads(path.read_text())["cells"][-1]["source"])
    assert "## Try next" in text, f"{path.name}: the last cell is not the Try next exercises"
    items = exercises(text[text.index("## Try next"):])
    assert 3 <= len(items) <= 5, f"{path.name}: {len(items)} numbered exercises; CONTRIBUTING " \
        "asks for 3-5"
    for number, item in enumerate(items, 1):
        assert SOLUTION in item and "</details>" in item.split(SOLUTION, 1)[1], \
            f"{path.name}: exercise {number} has no solution in <details> after it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_more_than_two_code_cells_in_a_row(path: Path):
    run = 0
    for index, cell in enumerate(json.loads(path.read_text())["cells"]):
        run = run + 1 if cell["cell_type"] == "code" else 0
        assert run <= 2, f"{path.name}: cell {index} is the third code cell in a row; " \
            "add a Markdown cell that says what to notice"


def test_a_report_has_a_title_alt_text_a_code_toggle_and_no_progress_bars(tmp_path):
    source = tmp_path / "notebooks"
    source.mkdir()
    _notebook(source / "figure.ipynb", "import sys\nfrom fer_utils import plots\n"
              "sys.stderr.write('frames:  50' + '%|####  | 5/10 [00:01<00:01, 4.2i' + 't/s]\\n')\n"
              "plots.accuracy_bars({'a': 0.5}, 'A titled figure');")
    result = reports.run_notebook("figure", {"x": 1}, tmp_path, notebooks=source)
    page = result.html.read_text()
    assert result.error is None
    assert "<title>test</title>" in page and 'href="index.html"' in page
    assert 'alt="A titled figure"' in page and "show the code" in page
    assert "it/s" not in page and "No description has been provided" not in page


def test_prose_tables_wrap_and_left_align_text_but_not_numbers():
    import pandas as pd

    table = pd.DataFrame({"value": [0.123456, None], "meaning": ["a long sentence " * 8, "x"]})
    page = reports.prose_table(table).to_html()
    assert "a long sentence " * 8 in page  # in full, never cut with "..."
    assert "0.1235" in page and "0.123456" not in page and "nan" not in page.lower()
    styled = [rule for rule in page.split("}") if "text-align: left" in rule]
    assert len(styled) == 1 and "white-space: normal" in styled[0]
    assert "_col1" in styled[0] and "_col0" not in styled[0]  # the text column, not the numbers


def test_a_reference_report_links_to_the_rendered_reports_index(tmp_path, monkeypatch):
    source, reports_dir = tmp_path / "notebooks", tmp_path / "reports"
    source.mkdir()
    (reports_dir / "reference").mkdir(parents=True)
    monkeypatch.setattr(reports, "REPORTS_DIR", reports_dir)
    monkeypatch.setattr(reports, "REFERENCE_DIR", reports_dir / "reference")
    _notebook(source / "page.ipynb", "print(x)")
    for out, link in ((reports_dir / "reference", "../index.html"), (reports_dir, "index.html")):
        page = reports.run_notebook("page", {}, out, notebooks=source).html.read_text()
        assert f'<a href="{link}">&larr; all reports</a>' in page
    kept = (REPORTS_DIR / "reference" / "02_train.html").read_text()  # rendered before the fix
    assert '<a href="../index.html">&larr; all reports</a>' in kept


def test_paths_given_to_the_report_run_are_read_from_where_it_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "start.keras").write_bytes(b"")
    assert reports.from_caller("init", "start.keras") == str(tmp_path / "start.keras")
    assert reports.from_caller("out", "runs/new") == str(tmp_path / "runs" / "new")
    assert reports.from_caller("tta", "flip") == "flip"  # not a path: as given
    assert reports.from_caller("epochs", 3) == 3


def test_a_notebook_importing_tensorflow_before_the_kit_renders_quietly(tmp_path, capfd):
    source = tmp_path / "notebooks"
    source.mkdir()
    _notebook(source / "nb.ipynb", "import keras\nimport tensorflow as tf\nprint(tf.constant(x))")
    out = tmp_path / "out"
    out.mkdir()
    assert reports.run_notebook("nb", {"x": 2}, out, notebooks=source).error is None
    printed = capfd.readouterr()
    assert "oneDNN" not in printed.err and "absl" not in printed.err, printed.err
    assert "tf.Tensor(2" in (out / "nb.html").read_text()


def test_a_dead_kernel_is_left_to_the_report_s_error_not_shown_around_an_interrupt():
    from nbclient.exceptions import DeadKernelError

    def record(logger: str, message: str, error: BaseException | None = None):
        info = (type(error), error, None) if error else None
        return logging.LogRecord(logger, logging.ERROR, "", 0, message, None, info)

    assert not reports._not_dead_kernel(record("papermill", "Kernel died while waiting for "
                                                             "execute reply."))
    assert not reports._not_dead_kernel(record("asyncio", "Task exception was never retrieved",
                                               DeadKernelError("Kernel died")))
    assert reports._not_dead_kernel(record("asyncio", "Task exception was never retrieved",
                                           RuntimeError("something else")))
    assert reports._not_dead_kernel(record("papermill", "Executing notebook with kernel: x"))

    with warnings.catch_warnings(record=True) as shown:
        reports._quiet_kernel_teardown()
        warnings.warn("coroutine 'NotebookClient._async_poll_kernel_alive' was never awaited",
                      RuntimeWarning, stacklevel=1)
        warnings.warn("coroutine 'elsewhere' was never awaited", RuntimeWarning, stacklevel=1)
    assert [str(w.message) for w in shown] == ["coroutine 'elsewhere' was never awaited"]
