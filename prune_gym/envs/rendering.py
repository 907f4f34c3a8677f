"""The ``render_mode="rgb_array"`` image of an episode, drawn on matplotlib's Agg canvas (no pyplot, no global state)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

if TYPE_CHECKING:
    from prune_gym.state import EpisodeState

DECIDED = "#1f77b4"  # a decided group's bar: its kept fraction
UNDECIDED = "#d9d9d9"  # a group not decided yet: everything kept so far
NEXT = "#ff7f0e"  # outline and marker of the group decided next
WITHIN_BUDGET, OVER_BUDGET = "#2ca02c", "#d62728"


class EpisodeFigure:
    """One figure per environment; a frame redraws only what changes (matplotlib's blitting).

    Left: one bar per group (network order), its kept fraction of channels;
    decided groups in blue, groups not decided yet in grey at 1 (they keep
    everything so far), the group decided next outlined in orange with a
    marker above it. Right: the MACs kept so far as a fraction of the
    original, green within the budget and red over it; the budget is the
    dashed line.
    """

    def __init__(self, state: EpisodeState, width: int = 640, height: int = 360) -> None:
        """The figure for the episodes of ``state``'s network and MACs budget; frames are ``width`` x ``height`` pixels."""
        self.groups = state.network.groups
        figure = Figure(figsize=(width / 100, height / 100), dpi=100)
        figure.subplots_adjust(left=0.09, right=0.98, bottom=0.13, top=0.88, wspace=0.45)
        self.canvas = FigureCanvasAgg(figure)
        groups_axes, macs_axes = figure.subplots(1, 2, width_ratios=[5, 1])
        groups_axes.set(ylim=(0, 1.12), xlim=(-0.6, len(self.groups) - 0.4), xlabel="group", ylabel="kept fraction of channels")
        groups_axes.xaxis.set_major_locator(MaxNLocator(nbins=16, integer=True))
        macs_axes.set(ylim=(0, 1.12), xlim=(-0.6, 0.6), xticks=[], ylabel="kept fraction of MACs")
        macs_axes.set_title(f"budget {state.macs_budget:.0%}", fontsize=9)
        macs_axes.axhline(state.macs_budget, color="black", linestyle="--", linewidth=1.2)
        self.group_bars = groups_axes.bar(np.arange(len(self.groups)), np.ones(len(self.groups)), width=0.8, animated=True)
        (self.next_marker,) = groups_axes.plot([0], [1.06], marker="v", markersize=9, color=NEXT, linestyle="none", animated=True)
        self.title = groups_axes.set_title("", fontsize=10, loc="left", animated=True)
        (self.macs_bar,) = macs_axes.bar([0], [1.0], width=0.6, animated=True)
        self.macs_label = macs_axes.text(0, 1.0, "", ha="center", va="bottom", fontsize=9, animated=True)
        self.canvas.draw()  # everything but the animated artists, once
        self.background = self.canvas.copy_from_bbox(figure.bbox)
        self.figure = figure

    def draw(self, state: EpisodeState) -> np.ndarray:
        """The image of ``state``: a new (height, width, 3) uint8 array."""
        for index, (bar, kept) in enumerate(zip(self.group_bars, state.kept_fractions, strict=True)):
            bar.set_height(kept)
            bar.set_facecolor(DECIDED if index < state.group_index else UNDECIDED)
            bar.set_edgecolor(NEXT if index == state.group_index else "none")
            bar.set_linewidth(2.5 if index == state.group_index else 0)
        self.next_marker.set_visible(not state.done)
        self.next_marker.set_xdata([state.group_index])
        title = f"{state.group_index}/{state.num_groups} groups decided"
        if not state.done:
            upcoming = self.groups[state.group_index]
            name = upcoming.name if len(upcoming.name) <= 24 else "…" + upcoming.name[-23:]
            title += f", next: {name} ({upcoming.num_channels} channels)"
        self.title.set_text(title)
        self.macs_bar.set_height(state.macs_ratio)
        self.macs_bar.set_color(WITHIN_BUDGET if state.budget_met else OVER_BUDGET)
        self.macs_label.set_y(state.macs_ratio)
        self.macs_label.set_text(f"{state.macs_ratio:.0%}")
        self.canvas.restore_region(self.background)
        for artist in [*self.group_bars, self.next_marker, self.title, self.macs_bar, self.macs_label]:
            self.figure.draw_artist(artist)
        return np.asarray(self.canvas.buffer_rgba())[..., :3].copy()
