"""Charts as inline SVG drawn on the server: no script, no network, the same in an export.

Colours come from CSS classes (dashboard.css), text is escaped, every mark carries a <title>
so hovering shows its figure.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from dockyard.config.spans import describe

from dockyard.release.ui.model import MetricsView


def _svg(width: int, height: int, label: str, body: list[str]) -> Markup:
    return Markup(f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
                  f'role="img" aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
                  + "".join(body) + "</svg>")


def weekly_bars(m: MetricsView, *, width: int = 360, height: int = 140) -> Markup:
    """Promotions per week (failed ones in red at the foot of each bar), oldest week on the left."""
    top, bottom, left, right = 18, 22, 26, 6
    plot_h, plot_w = height - top - bottom, width - left - right
    peak = max([w.deployments for w in m.weeks] + [1])
    step = plot_w / max(len(m.weeks), 1)
    body = [f'<text class="axis" x="{left - 4}" y="{top + 4}" text-anchor="end">{peak}</text>',
            f'<text class="axis" x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>',
            f'<line class="baseline" x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}"/>']
    for i, week in enumerate(m.weeks):
        x = left + i * step + step * 0.15
        w = step * 0.7
        total_h = plot_h * week.deployments / peak
        fail_h = plot_h * week.failures / peak
        title = (f"week of {week.start}: {week.deployments} deployment{'s' if week.deployments != 1 else ''}"
                 f", {week.failures} failed")
        body.append(f'<g><title>{escape(title)}</title>'
                    f'<rect class="bar ok" x="{x:.1f}" y="{top + plot_h - total_h:.1f}" width="{w:.1f}" '
                    f'height="{max(total_h - fail_h, 0):.1f}"/>'
                    f'<rect class="bar fail" x="{x:.1f}" y="{top + plot_h - fail_h:.1f}" width="{w:.1f}" '
                    f'height="{fail_h:.1f}"/></g>')
    if m.weeks:
        body.append(f'<text class="axis" x="{left}" y="{height - 6}">{escape(m.weeks[0].start)}</text>')
        body.append(f'<text class="axis" x="{width - right}" y="{height - 6}" text-anchor="end">'
                    f'{escape(m.weeks[-1].start)}</text>')
    body.append(f'<text class="chart-title" x="{left}" y="12">{escape(m.env)}: {m.figures.per_day * 7:.1f} per week '
                f'over {m.figures.days:.0f} days</text>')
    return _svg(width, height, f"{m.env}: deployments per week", body)


def hbars(rows: Sequence[tuple[str, float | None, str]], *, label: str, width: int = 360,
          bad_above: float | None = None) -> Markup:
    """One horizontal bar per environment: (environment, value or None for no data, the value as text)."""
    row_h, left, right = 26, 70, 90
    height = max(len(rows), 1) * row_h + 8
    peak = max([v for _, v, _ in rows if v is not None] + [0]) or 1
    body = []
    for i, (env, value, text) in enumerate(rows):
        y = 4 + i * row_h
        body.append(f'<text class="axis" x="{left - 6}" y="{y + 16}" text-anchor="end">{escape(env)}</text>')
        if value is None:
            body.append(f'<text class="axis muted" x="{left}" y="{y + 16}">no data</text>')
            continue
        w = (width - left - right) * value / peak
        kind = "fail" if bad_above is not None and value > bad_above else "ok"
        body.append(f'<g><title>{escape(f"{env}: {text}")}</title>'
                    f'<rect class="bar {kind}" x="{left}" y="{y + 4}" width="{max(w, 2):.1f}" height="{row_h - 10}"/>'
                    f'<text class="value" x="{left + max(w, 2) + 6:.1f}" y="{y + 16}">{escape(text)}</text></g>')
    return _svg(width, height, label, body)


def figure(metrics: Sequence[MetricsView], which: str) -> Markup:
    """The bar chart of one figure across environments: lead_time, change_failure_rate or time_to_restore."""
    if which == "change_failure_rate":
        rows = [(m.env, m.figures.failure_rate, "-" if m.figures.failure_rate is None
                 else f"{m.figures.failure_rate:.0%} ({m.figures.failed} of {m.figures.deployments})")
                for m in metrics]
        return hbars(rows, label="change failure rate", bad_above=0.15)
    figures = [(m.env, m.figures.lead_time if which == "lead_time" else m.figures.restore) for m in metrics]
    return hbars([(env, None, "-") if f.median is None else (env, f.median.total_seconds(), describe(f.median))
                  for env, f in figures], label=which.replace("_", " "))
