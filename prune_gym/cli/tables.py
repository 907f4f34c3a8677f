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
    totals = Table(show_header=True)
    for column in ("", "before", "after", "after / before"):
        totals.add_column(column, justify="right")
    totals.add_row("MACs", f"{summary['original_macs']:,}", f"{best['macs']:,}", f"{best['macs_ratio']:.3f}")
    totals.add_row("params", f"{summary['original_params']:,}", f"{best['params']:,}", f"{best['params_ratio']:.3f}")
    totals.add_row(f"reward-split {summary['metric']}", f"{summary['score_before']:.4f}", f"{best['score']:.4f}",
                   ratio(best["score"], summary["score_before"]))
    console.print(totals)
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
