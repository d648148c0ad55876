"""The report run: every notebook executed with papermill, rendered to HTML, and an index."""

from __future__ import annotations

import ast
import html
import inspect
import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .atomic import write_text
from .defaults import default
from .paths import NOTEBOOKS_DIR, REPORTS_DIR
from .quiet_import import STARTUP_NOISE

if TYPE_CHECKING:
    import nbformat
    import pandas as pd
    from pandas.io.formats.style import Styler

__all__ = [
    "KERNEL", "QUIET_KERNEL", "SUMMARY_MIME", "NOTEBOOKS", "report_summary", "show_source",
    "prose_table",
    "report_parameters", "ReportResult", "kernel_name", "REPORT_STYLE", "REPORT_NAV",
    "REFERENCE_DIR", "index_link", "render_html", "notebook_parameters", "check_parameter",
    "OUTPUT_PARAMETERS", "from_caller", "failed_page", "run_notebook",
    "write_index", "run_reports",
]

KERNEL = "fer-kit"
# Kernels log only what is critical: a warning on every start that the kernel talks over
# unencrypted TCP (it listens on loopback only) buried the progress lines of `fer-kit report`,
# and a kernel shut down mid-cell by Ctrl-C logged a traceback when its reply found the socket
# closed. A cell's own error is in the notebook, whatever the level. The kernel imports
# fer_utils first, so that TensorFlow loads quietly (see quiet_import) whichever of the two a
# notebook imports first.
QUIET_KERNEL = ["--IPKernelApp.log_level=CRITICAL", "--IPKernelApp.exec_lines=import fer_utils"]
SUMMARY_MIME = "application/vnd.fer-kit.summary+json"
# Kept in git: the shipped model's training report, which links back to the rendered reports.
REFERENCE_DIR = REPORTS_DIR / "reference"
# Parameters naming a folder a notebook writes to, which need not exist before it runs.
OUTPUT_PARAMETERS = ("out", "runs")
# The notebooks in reading order, each with what a learner takes away from it.
NOTEBOOKS = {
    "01_explore_data": "What the data looks like: classes, splits, average faces, duplicates.",
    "02_train": "How the seed CNN is trained: one step by hand, the schedule, curves, files.",
    "03_evaluate": "How to judge a model honestly: metrics, calibration, mistakes, leakage.",
    "04_analyze_video": "How a video becomes an expression timeline per face, and its limits.",
    "05_cnn_layer_by_layer": "What each layer computes, recomputed by hand and checked.",
    "06_compare_talks": "Many talks in one batch: speaker figures, thirds, talks side by side.",
}


def report_summary(headline: str, data: str, model: str | None = None,
                   runs: Sequence[str | Path] = ()) -> None:
    """Show a notebook's headline result and the run folders it used; the report index reads
    them back from the output."""
    summary = {"headline": headline, "data": data, "model": model, "runs": list(map(str, runs))}
    text = f"**{headline}**\n\n- data: {data}\n- model: {model or 'none'}"
    if runs:
        text += f"\n- run folders: {', '.join(summary['runs'])}"
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display({"text/markdown": text, SUMMARY_MIME: summary}, raw=True)
    else:
        print(text)


def show_source(obj: Callable | type) -> None:
    """Show the library's own source of a function or class in a notebook (no second copy)."""
    from IPython.display import Markdown, display

    display(Markdown(f"```python\n{inspect.getsource(obj)}```"))


def prose_table(table: pd.DataFrame, precision: int = 4) -> Styler:
    """A DataFrame styled for a report: its text columns left-aligned and wrapped, so that
    sentences in cells read as prose; numbers to `precision` decimals, blanks for nulls."""
    text = [c for c in table.columns if table[c].map(lambda v: isinstance(v, str)).any()]
    return table.style.format(precision=precision, na_rep="").set_properties(
        subset=text, **{"text-align": "left", "white-space": "normal"})


def report_parameters(data: str | None = None, out: str | Path = REPORTS_DIR) -> dict[str, dict]:
    """The values the report run injects into each notebook (stored defaults are tiny)."""
    from .paths import SHIPPED_MODEL
    from .sources import find_fer2013

    found = find_fer2013(data)
    real = found is not None
    data_value = str(found.resolve()) if real else None  # the notebooks run in notebooks/
    # Every run folder goes under out/runs, named by its settings and data: a second report
    # run on the same data reuses it, other data gets folders of its own.
    runs = str(Path(out).resolve() / "runs")
    return {
        "01_explore_data": {"data": data_value},
        # On real FER-2013 the quick profile trains on a 6,000-image sample to stay in budget.
        "02_train": {"data": data_value, "profile": "quick", "epochs": None,
                     "max_train_images": 6000 if real else None, "out": None, "runs": runs},
        # The shipped model on the final test split; `reference_model` is filled in with
        # the demonstration model 02 trained (see run_reports).
        "03_evaluate": {"data": data_value, "model": str(SHIPPED_MODEL),
                        "reference_model": None, "tta": "flip", "frames_per_class": 100,
                        "fer_own_path": True,
                        "leakage_images": default("leakage", "leakage_lesson.images")
                        if real else 2000,
                        "leakage_epochs": default("leakage", "leakage_lesson.epochs"),
                        "out": None, "runs": runs},
        "04_analyze_video": {"video": None, "model": str(SHIPPED_MODEL), "max_seconds": None,
                             "out": None, "runs": runs},
        "05_cnn_layer_by_layer": {"model": str(SHIPPED_MODEL)},
        # The whole sample clips at four frames a second: about 20 s on 2 cores.
        "06_compare_talks": {"videos": None, "model": str(SHIPPED_MODEL), "fps": 4.0,
                             "max_seconds": None, "out": None, "runs": runs},
    }


@dataclass
class ReportResult:
    """One notebook's run: where it went, how long it took, what it said or why it failed."""

    name: str
    parameters: dict
    seconds: float = 0.0
    summary: dict = field(default_factory=dict)
    error: str | None = None
    html: Path | None = None


def kernel_name() -> str:
    """The kit's kernel, registered inside the running environment when it is missing."""
    from jupyter_client.kernelspec import find_kernel_specs

    if KERNEL not in find_kernel_specs():
        from ipykernel.kernelspec import install

        install(kernel_name=KERNEL, display_name="Python (fer-kit)", prefix=sys.prefix)
    return KERNEL


def _summary(notebook) -> dict:
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if SUMMARY_MIME in output.get("data", {}):
                return dict(output["data"][SUMMARY_MIME])
    return {}


def _failure(notebook, error: Exception) -> str:
    """Which cell failed (numbered as stored, from 0) and why, from the executed notebook."""
    added = {"injected-parameters", "papermill-error-cell-tag"}
    stored = [c for c in notebook.cells if not added & set(c.get("metadata", {}).get("tags", []))]
    for index, cell in enumerate(stored):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                first = cell.source.strip().splitlines()[0][:60]
                return f"cell {index} ({first}): {output['ename']}: {output['evalue']}"[:500]
    return f"{type(error).__name__}: {error}"[:500]


# TensorFlow's C++ lines (absl/oneDNN start-up, errors logged at run time), which reach the
# kernel's stderr unasked, and progress bars (a percentage and a bar, or a rate per second).
_NOISE = re.compile(rf"{STARTUP_NOISE.pattern}|^(E\d{{4}} |\s*$)|\d+%\||it/s\]|s/it\]")

REPORT_STYLE = """<style>
.fer-nav{position:sticky;top:0;z-index:10;background:#fff;border-bottom:1px solid #ddd;
padding:.5em 1em;font:14px system-ui,sans-serif;display:flex;gap:1.5em;align-items:center}
body:not(.fer-show-code) .jp-CodeCell .jp-Cell-inputWrapper{display:none}
.jp-RenderedImage img,.jp-RenderedHTMLCommon img{max-width:100%;height:auto}
</style>"""

REPORT_NAV = """<nav class="fer-nav"><a href="{index}">&larr; all reports</a>
<label><input type="checkbox" onchange="document.body.classList.toggle('fer-show-code',
this.checked)"> show the code</label></nav>"""


def index_link(page: Path) -> str:
    """Where a report page's "all reports" link points: the index in its own folder, or the
    rendered reports' index for a page kept in the reference folder."""
    if page.parent.resolve() == REFERENCE_DIR.resolve():
        return os.path.relpath(REPORTS_DIR / "index.html", page.parent)
    return "index.html"


def _without_noise(text: str) -> str:
    """Stream text without library start-up lines and progress bars (carriage returns too)."""
    lines = [line.rsplit("\r", 1)[-1] for line in text.replace("\r\n", "\n").split("\n")]
    return "\n".join(line for line in lines if not _NOISE.search(line))


def _with_alt_text(output) -> None:
    """A PNG output that carries alt text (see plots) becomes an <img> with that alt text."""
    alt = output.get("metadata", {}).get("image/png", {}).get("alt")
    if alt and "image/png" in output.get("data", {}):
        png = output["data"]["image/png"].strip()
        output["data"]["text/html"] = (f'<img src="data:image/png;base64,{png}" '
                                       f'alt="{html.escape(alt)}">')


def _tidy_outputs(notebook) -> None:
    """Drop library start-up lines and progress bars; give figures their alt text."""
    for cell in notebook.cells:
        merged = []  # consecutive stream outputs of one name become one
        for output in cell.get("outputs", []):
            previous = merged[-1] if merged else {}
            if output.get("output_type") == "stream" and previous.get("name") == output["name"]:
                previous["text"] += output["text"]
            else:
                merged.append(output)
        kept = []
        for output in merged:
            if output.get("output_type") == "stream":
                output["text"] = _without_noise(output["text"])
                if not output["text"].strip():
                    continue
            _with_alt_text(output)
            kept.append(output)
        cell["outputs"] = kept


def _title(notebook) -> str:
    """The notebook's first Markdown heading, for the browser tab."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return "FER kit report"


def render_html(notebook: nbformat.NotebookNode, path: Path) -> Path:
    """The executed notebook as an HTML report: code folded away behind a toggle, a link back
    to the index, the notebook's heading as the page title."""
    from nbconvert import HTMLExporter

    _tidy_outputs(notebook)
    notebook.metadata["title"] = _title(notebook)
    exporter = HTMLExporter(exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(notebook)
    body = body.replace("</head>", REPORT_STYLE + "\n</head>", 1)
    nav = REPORT_NAV.format(index=html.escape(index_link(path)))
    body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + "\n" + nav, body, count=1)
    return write_text(path, body)


# The types a parameters cell's annotations name, as Python reads them.
_TYPES = {"str": str, "int": int, "float": float, "bool": bool, "None": type(None)}


def _annotation_types(annotation: ast.expr | None) -> tuple[type, ...]:
    """The types an annotation like `int | None` allows; () when it names none the kit knows."""
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        return _annotation_types(annotation.left) + _annotation_types(annotation.right)
    name = annotation.id if isinstance(annotation, ast.Name) else \
        "None" if isinstance(annotation, ast.Constant) and annotation.value is None else ""
    return (_TYPES[name],) if name in _TYPES else ()


def notebook_parameters(name: str, notebooks: Path = NOTEBOOKS_DIR) -> dict[str, tuple[type, ...]]:
    """The names a notebook's `parameters` cell assigns, each with the types its annotation
    allows (none for an unannotated name)."""
    import nbformat

    notebook = nbformat.read(notebooks / f"{name}.ipynb", as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    names = {}
    for node in ast.parse(cell.source).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = _annotation_types(node.annotation)
        elif isinstance(node, ast.Assign):
            names |= {t.id: () for t in node.targets if isinstance(t, ast.Name)}
    return names


def check_parameter(notebook: str, name: str, value: object, types: tuple[type, ...]) -> object:
    """`value` as the notebook's parameter takes it (an int or a number written as text where
    a float is wanted becomes one), or ValueError naming the parameter and its type."""
    if not types or (type(value) in types) or (float in types and type(value) is int):
        return float(value) if float in types and type(value) is int else value
    if float in types and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    wanted = " or ".join("None" if t is type(None) else t.__name__ for t in types)
    raise ValueError(f"-p {name}: {notebook} takes {wanted}, not {value!r} "
                     f"({type(value).__name__}); nothing was run")


def from_caller(name: str, value: object) -> object:
    """A parameter as the notebooks, which run in notebooks/, must see it: a file or folder
    named relative to where the report run was started (one that exists, or an output folder
    of OUTPUT_PARAMETERS) made absolute; any other value unchanged."""
    if isinstance(value, str) and (name in OUTPUT_PARAMETERS or Path(value).exists()):
        return str(Path(value).resolve())
    return value


def failed_page(name: str, out: Path) -> Path:
    """Where the page of a notebook's failed run goes, beside its last good one."""
    return out / f"{name}.failed.html"


def _not_papermill_unknown_parameter(record: logging.LogRecord) -> bool:
    # papermill cannot read `str | None` annotations and calls every such parameter unknown;
    # run_notebook checks the names itself.
    return not record.getMessage().startswith("Passed unknown parameter")


def _not_dead_kernel(record: logging.LogRecord) -> bool:
    error = record.exc_info[1] if record.exc_info else None
    return not (record.getMessage().startswith("Kernel died")
                or type(error).__name__ == "DeadKernelError")


def _quiet_kernel_teardown() -> None:
    """Keep an interrupted run to its one line. Interrupted, nbclient shuts the kernel down
    under a cell still waiting for it: it and asyncio log the kernel's death, and Python warns
    at exit of nbclient coroutines never awaited. A kernel that dies otherwise fails its
    notebook, and the report says so."""
    for logger in ("papermill", "asyncio"):  # nbclient logs through papermill's logger
        logging.getLogger(logger).addFilter(_not_dead_kernel)
    warnings.filterwarnings("ignore", r"coroutine 'NotebookClient\.", RuntimeWarning)


def run_notebook(name: str, parameters: dict, out: Path,
                 notebooks: Path = NOTEBOOKS_DIR) -> ReportResult:
    """Execute one notebook with papermill and render it. A failing cell is recorded, not
    raised, and its page goes beside the last good one (see failed_page), which is kept; a
    parameter the notebook does not take, or of the wrong type, raises ValueError before
    anything runs."""
    import nbformat
    import papermill

    declared = notebook_parameters(name, notebooks)
    unknown = set(parameters) - set(declared)
    if unknown:
        raise ValueError(f"{name} has no parameter(s) {', '.join(sorted(unknown))}; "
                         f"it takes {', '.join(sorted(declared))}")
    parameters = {key: check_parameter(name, key, value, declared[key])
                  for key, value in parameters.items()}
    logging.getLogger("papermill").addFilter(_not_papermill_unknown_parameter)
    _quiet_kernel_teardown()
    result = ReportResult(name=name, parameters=parameters)
    running = out / f".{name}.running.ipynb"
    started = time.perf_counter()
    try:
        papermill.execute_notebook(notebooks / f"{name}.ipynb", running, parameters=parameters,
                                   kernel_name=kernel_name(), cwd=str(notebooks),
                                   progress_bar=False, extra_arguments=QUIET_KERNEL)
    except Exception as e:  # papermill raises for any failing cell; keep going
        result.error = str(e)
    except BaseException:  # interrupted: nothing of this run is kept
        running.unlink(missing_ok=True)
        raise
    result.seconds = round(time.perf_counter() - started, 1)
    if running.exists():
        notebook = nbformat.read(running, as_version=4)
        if result.error:
            result.error = _failure(notebook, Exception(result.error))
        result.summary = _summary(notebook)
        page = failed_page(name, out) if result.error else out / f"{name}.html"
        result.html = render_html(notebook, page)
        os.replace(running, page.with_suffix(".ipynb"))
        if not result.error:  # a good page replaces the failed one of an earlier run
            for stale in (failed_page(name, out), failed_page(name, out).with_suffix(".ipynb")):
                stale.unlink(missing_ok=True)
    return result


def _short(value: object, out: Path) -> str:
    """A parameter value for the index: a path relative to the reports folder, or its last
    two parts when it lies far from it."""
    text = str(value)
    if text.startswith("/"):
        relative = os.path.relpath(text, out)
        return relative if relative.count("..") <= 2 else str(Path(*Path(text).parts[-2:]))
    return text


def _run_folders(summary: dict, out: Path) -> str:
    """Links to the run folders a report used, relative to the index."""
    folders = [os.path.relpath(folder, out) for folder in summary.get("runs", [])]
    return "".join(f'<br><a href="{html.escape(f)}/">{html.escape(Path(f).name)}</a>'
                   for f in folders)


def _index_row(r: ReportResult, out: Path) -> str:
    """One report's row of the index."""
    link = f'<a href="{r.html.name}">{r.name}</a>' if r.html else r.name
    status = (f'<span class="failed">FAILED</span> {html.escape(r.error)}' if r.error
              else html.escape(r.summary.get("headline", "")))
    if r.error and (out / f"{r.name}.html").exists():
        status += f' (<a href="{r.name}.html">the last good page</a> is kept)'
    params = ", ".join(f"{k}={_short(v, out)}" for k, v in r.parameters.items()
                       if v is not None and k not in ("data", "runs"))
    model = _short(r.summary["model"], out) if r.summary.get("model") else ""
    return (f"<tr><td>{link}<br><small>{html.escape(NOTEBOOKS.get(r.name, ''))}</small></td>"
            f"<td>{status}</td><td>{html.escape(model)}{_run_folders(r.summary, out)}</td>"
            f"<td>{r.seconds:.0f} s</td><td><code>{html.escape(params)}</code></td></tr>")


def write_index(results: list[ReportResult], out: Path) -> Path:
    """reports/index.html: every report with what it teaches, headline, model, outputs,
    runtime and compact parameters; the data once above the table."""
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    data = next((r.summary["data"] for r in results if r.summary.get("data")), "")
    reference = os.path.relpath(REFERENCE_DIR, out)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>FER kit reports</title>
<style>body{{font-family:system-ui,sans-serif;margin:1.5em;max-width:76em}}
table{{border-collapse:collapse;width:100%;table-layout:fixed}}
td,th{{border:1px solid #ccc;padding:.4em .6em;vertical-align:top;text-align:left;
overflow-wrap:break-word}}small{{color:#555}}code{{font-size:.8em}}
.failed{{color:#b00;font-weight:bold}}</style></head><body>
<h1>FER kit reports</h1>
<p>Rendered {date}. {sum(r.error is None for r in results)} of {len(results)} notebooks ran.
Data: {html.escape(str(data))}.</p>
<p>The training report of the shipped model is in
<a href="{html.escape(reference)}/02_train.html">reference/02_train.html</a>.</p>
<table><colgroup><col style="width:24%"><col style="width:26%"><col style="width:17%">
<col style="width:9%"><col style="width:24%"></colgroup>
<tr><th>report</th><th>headline</th><th>model, run folders</th><th>runtime</th>
<th>parameters</th></tr>
{chr(10).join(_index_row(r, out) for r in results)}
</table></body></html>
"""
    return write_text(out / "index.html", page)


def run_reports(names: list[str] | None = None, parameters: dict | None = None,
                out: str | Path = REPORTS_DIR, data: str | None = None) -> list[ReportResult]:
    """Run the notebooks in order into `out`; `parameters` override the values of every
    named notebook that takes them."""
    out = Path(out)
    plan = report_parameters(data, out)
    names = list(names or NOTEBOOKS)
    unknown = set(names) - set(NOTEBOOKS)
    if unknown:
        raise ValueError(f"unknown notebook(s) {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(NOTEBOOKS)}")
    declared = {name: notebook_parameters(name) for name in names}
    stray = set(parameters or {}) - set().union(*map(set, declared.values()))
    if stray:
        raise ValueError(f"no notebook takes the parameter(s) {', '.join(sorted(stray))}; "
                         f"see the parameters cell at the top of each notebook")
    overrides = {name: {k: from_caller(k, check_parameter(name, k, v, declared[name][k]))
                        for k, v in (parameters or {}).items() if k in declared[name]}
                 for name in names}  # every value checked before any kernel starts
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in names:
        values = {**plan[name], **overrides[name]}
        trained = next((r.summary.get("model") for r in results
                        if r.name == "02_train" and not r.error), None)
        if name == "03_evaluate" and trained and "reference_model" not in (parameters or {}):
            values["reference_model"] = trained
        print(f"running {name} ...", flush=True)
        result = run_notebook(name, values, out)
        print(f"  {'FAILED' if result.error else 'ok'} ({result.seconds:.0f} s) -> "
              f"{result.html}", flush=True)
        results.append(result)
        write_index(results, out)
    return results
