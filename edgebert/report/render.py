"""report.json, report.md and a self-contained report.html (inline CSS, SVG and JS:
no network), from the rows `collect` gathers."""

from __future__ import annotations

import html
from pathlib import Path

from edgebert.artifact import write_json
from edgebert.metrics import CORRELATIONS, metric_name, metric_text
from edgebert.report.collect import (collect, missed, pareto, points_phrase, recommend,
                                     weak_teacher)

COLUMNS = [("artifact", "artifact"), ("format", "format"), ("precision", "precision"),
           ("target", "target"), ("params", "params"), ("size_mb", "size MB"),
           ("accuracy", "accuracy"), ("delta_vs_teacher", "Δ vs teacher (pts)"),
           ("delta_se", "± SE"),
           ("p50_ms", "p50 ms"), ("p90_ms", "p90 ms"), ("p99_ms", "p99 ms"),
           ("throughput_seq_s", "seq/s"), ("peak_rss_mb", "peak MB"),
           ("speedup_vs_teacher", "speedup"),
           ("texts_p50_ms", "p50 ms, texts"), ("texts_speedup_vs_teacher", "speedup, texts"),
           ("size_ratio_vs_teacher", "smaller"),
           ("latency_source", "latency from")]
"""(row key, header); the "accuracy" key holds the task's own metric, whatever it is, and
its header is that metric's name (`columns`)."""


def task_metric(report: dict) -> str | None:
    """The metric the report's rows are scored in (one task per run): "accuracy",
    "pearson", "entity_f1"..."""
    return next((r["metric"] for r in report["rows"] if r.get("metric")), None)


def columns(metric: str | None) -> list[tuple[str, str]]:
    """COLUMNS with the score's header named after the task's metric.

    >>> dict(columns("pearson"))["accuracy"]
    'Pearson'
    """
    return [(k, metric_name(metric) if k == "accuracy" and metric else h) for k, h in COLUMNS]


def scored_on(metric: str | None) -> str:
    """What the score column holds, for the notes above the table."""
    name = metric_name(metric) if metric else "accuracy"
    if metric in CORRELATIONS:
        return f"{name} on the test split (Δ in points: 1 point = 0.01 of {name})"
    return f"{name} on the test split"


def cell(key: str, value, metric: str | None = None) -> str:
    if value is None:
        return "–"
    if key == "params":
        return f"{value / 1e6:.2f} M"
    if key == "accuracy":
        return metric_text(value, metric)
    if key == "delta_vs_teacher":
        return f"{value:+.2f}"
    if key == "delta_se":
        return f"±{value:.2f}"
    if key in ("speedup_vs_teacher", "texts_speedup_vs_teacher", "size_ratio_vs_teacher"):
        return f"{value:.2f}×"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def setting(report: dict) -> str:
    """Batch and sequence length of the latency columns, and the input shape where an
    example is several sequences (multiple choice: one per choice)."""
    s = report["setting"]
    text = f"batch {s['batch']}, sequence {s['seq']}"
    shape = s.get("input_shape") or [s["batch"], s["seq"]]
    if len(shape) > 2:
        text += f" (inputs {' x '.join(map(str, shape))}: {shape[1]} sequences per example)"
    return text


def none_line(target: str, m: dict) -> str:
    return (f"No artifact for {target} within {points_phrase(m['budget_points'])} of the "
            f"teacher: the most accurate, {m['best']}, is {m['delta_vs_teacher']:+.2f} points"
            + (f" (± {m['delta_se']:.2f} SE)." if m.get("delta_se") is not None else "."))


def weak_line(m: dict) -> str:
    return (f"Warning: {m['artifact']} is {m['delta_vs_teacher']:+.2f} points over its teacher, "
            f"more than the budget: the teacher looks undertrained, so the budget is measured "
            f"against a weak reference. Train it longer (--set teacher.train.epochs=N, "
            f"teacher.train.lr, teacher.train.head_lr) or start from a stronger checkpoint.")


def markdown(report: dict) -> str:
    metric = task_metric(report)
    cols = columns(metric)
    lines = [f"# EdgeBERT report: {report['run']}", "",
             f"Teacher: `{report['teacher']}`. Latency at {setting(report)}; "
             f"{scored_on(metric)}. ± SE: the standard error of Δ, a paired bootstrap over "
             f"the test examples (the two models scored on the same ones); a Δ within about "
             f"two of them is not told from noise.", "",
             "| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    for r in report["rows"]:
        lines.append("| " + " | ".join(cell(k, r.get(k), metric) for k, _ in cols) + " |")
    for target, name in report.get("recommended", {}).items():
        row = next(r for r in report["rows"] if r["artifact"] == name)
        lines.append(f"\n**Recommended for {target}: `{name}`**: {row['recommended']}.")
    lines += [f"\n{none_line(target, m)}" for target, m in
              report.get("none_within_budget", {}).items()]
    if report.get("weak_teacher"):
        lines.append(f"\n**{weak_line(report['weak_teacher'])}**")
    for m in report["machines"]:
        lines.append(f"\nMeasured on: {m.get('cpu')} ({m.get('machine')}), flags "
                     f"{', '.join(m.get('flags', [])) or 'none'}, {m.get('cores')} cores, "
                     f"{m.get('threads')} threads.")
    return "\n".join(lines) + "\n"


CHAR_W, LINE_H = 6.2, 13.0  # px of an 11 px sans-serif character and line, roughly


def place_labels(anchors: list[tuple[float, float]], labels: list[str], width: float,
                 height: float) -> list[tuple[float, float, float, float]]:
    """A text box (x, baseline y, width, height) per point whose labels do not overlap:
    right of the point where free, else the nearest free slot above or below, else left.
    Greedy, left to right; nearby points (an export and its ORT twin) get stacked labels."""
    placed: list[tuple[float, float, float, float]] = []

    def free(box):
        x, y, w, h = box
        inside = 0 <= x and x + w <= width and h <= y <= height
        return inside and all(x + w <= bx or bx + bw <= x or y <= by - bh or by <= y - h
                              for bx, by, bw, bh in placed)

    order = sorted(range(len(anchors)), key=lambda i: anchors[i])
    result: list = [None] * len(anchors)
    for i in order:
        (x, y), w = anchors[i], CHAR_W * len(labels[i])
        shifts = [0.0] + [s * LINE_H * k for k in range(1, 12) for s in (-1, 1)]
        slots = [(x + 8, y - 6 + d, w, LINE_H) for d in shifts]
        slots += [(x - 8 - w, y - 6 + d, w, LINE_H) for d in shifts]
        box = next((b for b in slots if free(b)), slots[0])
        placed.append(box)
        result[i] = box
    return result


def svg_plot(rows: list[dict], width: int = 640, height: int = 360,
             metric: str | None = None) -> str:
    pts = [r for r in rows if r.get("p50_ms") and r.get("accuracy") is not None]
    if not pts:
        return "<p>No latency measured yet: run <code>edgebert bench</code> into bench/.</p>"
    front = set(pareto(rows))
    xs, ys = [r["p50_ms"] for r in pts], [100 * r["accuracy"] for r in pts]
    x0, x1 = 0.0, max(xs) * 1.1
    y0, y1 = min(ys) - 1.0, max(ys) + 1.0
    pad = 50

    def sx(x):
        return pad + (x - x0) / (x1 - x0) * (width - 2 * pad)

    def sy(y):
        return height - pad - (y - y0) / (y1 - y0) * (height - 2 * pad)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="{metric_name(metric or "accuracy")} against latency">',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
             f'stroke="#444"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" '
             f'stroke="#444"/>',
             f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle">p50 latency (ms)'
             f'</text><text x="14" y="{height / 2}" transform="rotate(-90 14 {height / 2})" '
             f'text-anchor="middle">test {metric_name(metric or "accuracy")} '
             f'({"x 100" if metric in CORRELATIONS else "%"})</text>']
    for i in range(5):
        xv, yv = x0 + i * (x1 - x0) / 4, y0 + i * (y1 - y0) / 4
        parts.append(f'<text x="{sx(xv):.0f}" y="{height - pad + 16}" text-anchor="middle" '
                     f'font-size="11">{xv:.1f}</text><text x="{pad - 6}" y="{sy(yv) + 4:.0f}" '
                     f'text-anchor="end" font-size="11">{yv:.1f}</text>')
    line = sorted((r for r in pts if r["artifact"] in front), key=lambda r: r["p50_ms"])
    if len(line) > 1:
        d = " ".join(f"{sx(r['p50_ms']):.1f},{sy(100 * r['accuracy']):.1f}" for r in line)
        parts.append(f'<polyline points="{d}" fill="none" stroke="#d62728" '
                     f'stroke-dasharray="4 3"/>')
    anchors = [(sx(r["p50_ms"]), sy(100 * r["accuracy"])) for r in pts]
    boxes = place_labels(anchors, [r["artifact"] for r in pts], width, height)
    for r, (x, y), (lx, ly, _, _) in zip(pts, anchors, boxes):
        on = r["artifact"] in front
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{6 if on else 4}" '
                     f'fill="{"#d62728" if on else "#1f77b4"}">'
                     f'<title>{html.escape(r["artifact"])}</title></circle>')
        if (lx, ly) != (x + 8, y - 6):  # moved off its point: a thin line leads back
            parts.append(f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{lx:.1f}" y2="{ly - 4:.1f}" '
                         f'stroke="#999" stroke-width="0.6"/>')
        parts.append(f'<text x="{lx:.1f}" y="{ly:.1f}" font-size="11">'
                     f'{html.escape(r["artifact"])}</text>')
    parts.append("</svg>")
    return "".join(parts)


STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ccc;padding:4px 8px;
text-align:right}td:first-child,th:first-child{text-align:left}th{cursor:pointer;background:#f3f3f3}
tr.front td:first-child{font-weight:bold;color:#d62728}tr.rec{background:#eaf6ea}.note{color:#555;font-size:13px}"""

SORT = """document.querySelectorAll('th').forEach(function(th, i){th.addEventListener('click',
function(){var t=th.closest('table'),b=t.tBodies[0],rows=Array.from(b.rows),
asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';rows.sort(function(a,c){
var x=a.cells[i].dataset.v,y=c.cells[i].dataset.v,nx=parseFloat(x),ny=parseFloat(y);
var r=(isNaN(nx)||isNaN(ny))?String(x).localeCompare(String(y)):nx-ny;return asc?r:-r;});
rows.forEach(function(r){b.appendChild(r);});});});"""


def page(report: dict) -> str:
    front = set(pareto(report["rows"]))
    metric = task_metric(report)
    cols = columns(metric)
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h in cols)
    body = []
    for r in report["rows"]:
        cells = "".join(f'<td data-v="{html.escape(str(r.get(k) if r.get(k) is not None else ""))}">'
                        f"{html.escape(cell(k, r.get(k), metric))}</td>" for k, _ in cols)
        cls = ("front " if r["artifact"] in front else "") + ("rec" if r.get("recommended") else "")
        body.append(f'<tr class="{cls.strip()}">{cells}</tr>')
    machines = "".join(f"<li>{html.escape(m.get('cpu') or '?')} ({html.escape(str(m.get('machine')))}),"
                       f" flags {html.escape(', '.join(m.get('flags', [])) or 'none')}, "
                       f"{m.get('cores')} cores, {m.get('threads')} threads</li>"
                       for m in report["machines"])
    recommended = "".join(
        f"<p><b>Recommended for {html.escape(t)}:</b> <code>{html.escape(n)}</code> "
        f"({html.escape(next(r for r in report['rows'] if r['artifact'] == n)['recommended'])})"
        f"</p>" for t, n in report.get("recommended", {}).items()) + "".join(
        f"<p>{html.escape(none_line(t, m))}</p>"
        for t, m in report.get("none_within_budget", {}).items()) + (
        f"<p><b>{html.escape(weak_line(report['weak_teacher']))}</b></p>"
        if report.get("weak_teacher") else "")
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>EdgeBERT report</title><style>{STYLE}</style></head><body>
<h1>EdgeBERT report</h1>
<p class="note">Run <code>{html.escape(report['run'])}</code>; teacher
<code>{html.escape(str(report['teacher']))}</code>. Latency at {html.escape(setting(report))};
{html.escape(scored_on(metric))}. Red: the Pareto front (no other
artifact is both better scored and faster). Emulated runs never give a latency: arm64 shows
"not measured" unless results from a device were imported.</p>
{recommended}
{svg_plot(report['rows'], metric=metric)}
<h2>Artifacts</h2><p class="note">Click a column to sort.</p>
<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>
<h2>Machines</h2><ul>{machines or '<li>no latency measured</li>'}</ul>
<script>{SORT}</script></body></html>"""


def write_report(run: Path, teacher: str | None = None, budget: float | None = None,
                 workload: str = "texts") -> dict:
    """Write report.json/.md/.html; with `budget` (points), mark the recommended artifacts,
    the fastest on `workload` (collect.WORKLOADS)."""
    report = collect(Path(run), teacher)
    report["pareto"] = pareto(report["rows"])
    if budget is not None:
        report["budget_points"] = budget
        report["workload"] = workload
        report["recommended"] = recommend(report["rows"], budget, workload)
        report["none_within_budget"] = missed(report["rows"], budget, report["recommended"])
        report["weak_teacher"] = weak_teacher(report["rows"], budget)
    write_json(Path(run) / "report.json", report)
    (Path(run) / "report.md").write_text(markdown(report))
    (Path(run) / "report.html").write_text(page(report))
    return report
