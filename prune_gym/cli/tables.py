"""What the ``prune-gym`` commands print: rich tables and a console that never wraps when piped."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


def print_summary(summary: dict[str, Any]) -> None:
    from rich.table import Table

    console = make_console()
    best = summary.get("best")
    if best is None:
        console.print(f"no episode finished; run folder {summary['run_dir']}")
        return
    table = Table(title=f"best episode {best['episode']} of {summary['episodes_done']} "
                        f"({summary['agent']} on {summary['env']}, {summary['task']})")
    table.add_column("group")
    table.add_column("kept / channels", justify="right")
    for group, kept in zip(summary["groups"], best["kept_channels"]):
        table.add_row(group["name"], f"{kept} / {group['channels']}")
    console.print(table)
    uniform = summary.get("uniform")  # absent in summaries written before it was measured
    totals = Table(show_header=True)
    columns = ["", "unpruned", "best episode", "best / unpruned"]
    if uniform:
        columns.append(f"uniform {uniform['criterion']} (rate {uniform['rate']:.2f})")
    for column in columns:
        totals.add_column(column, justify="right")
    rows = [("MACs", "original_macs", "macs", "{:,}"), ("params", "original_params", "params", "{:,}"),
            (f"reward-split {summary['metric']}", "score_before", "score", "{:.4f}")]
    for label, original_key, key, form in rows:
        cells = [label, form.format(summary[original_key]), form.format(best[key]), ratio(best[key], summary[original_key])]
        totals.add_row(*cells, *([form.format(uniform[key])] if uniform else []))
    console.print(totals)
    if uniform:
        gain = best["score"] - uniform["score"]
        verdict = "beats" if gain > 0 else "does not beat"
        console.print(f"the best episode {verdict} uniform {uniform['criterion']} pruning at the same budget "
                      f"({gain:+.4f} reward-split {summary['metric']})")
    state = f"interrupted: resume with `prune-gym search --resume {summary['run_dir']}`" if summary["interrupted"] else "done"
    console.print(f"budget {summary['macs_budget']} (MACs kept) {'met' if best['budget_met'] else 'NOT met'}; {state}")
    console.print(f"run folder and plots: {summary['run_dir']}/learning_curve.png, score_vs_macs.png (and .pdf)")


def ratio(after: float, before: float) -> str:
    """``after / before`` to three decimals; "-" where ``before`` is 0 (an unpruned score of 0 has no ratio)."""
    return f"{after / before:.3f}" if before else "-"


def make_console() -> Console:
    """A rich console that never wraps when piped: rows and paths stay whole for grep and copy-paste."""
    from rich.console import Console

    console = Console(soft_wrap=True)
    if not console.is_terminal:
        console.width = 100_000
    return console
