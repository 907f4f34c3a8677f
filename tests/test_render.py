"""render_mode="rgb_array": images through Stable-Baselines3 and gymnasium's RecordVideo, and what they show."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.wrappers import RecordVideo
from moviepy.video.io.VideoFileClip import VideoFileClip
from stable_baselines3.common.env_util import make_vec_env

import prune_gym  # noqa: F401 (registers the environment ids)
from prune_gym.envs.rendering import DECIDED, NEXT, OVER_BUDGET, UNDECIDED, WITHIN_BUDGET

DIGITS = dict(task="lenet5-digits", reward_samples=100)
SHAPE = (360, 640, 3)
# the first group of lenet5-digits (6 filters) keeps 3 of them under LayerRate's 0.5 and 2 under FilterSelect's mask
FIRST_ACTIONS = {"LayerRate-v0": np.array([0.5], dtype=np.float32),
                 "FilterSelect-v0": np.array([1, 1] + [0] * 14, dtype=np.int8)}


def rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.uint8)


def bar_rows(image: np.ndarray, colour: str) -> int:
    """Height in pixels of what is drawn in ``colour``: rows with at least 20 pixels of exactly it (bars, not text)."""
    return int(np.count_nonzero(np.all(image == rgb(colour), axis=-1).sum(axis=1) >= 20))


def marker_column(image: np.ndarray) -> float | None:
    """Mean column of the pixels in the colour marking the group decided next (None when there are none)."""
    _, columns = np.nonzero(np.all(image == rgb(NEXT), axis=-1))
    return float(columns.mean()) if len(columns) else None


def test_stable_baselines3_make_vec_env_renders_images():
    """make_vec_env asks for render_mode="rgb_array" itself; the images follow the episode."""
    vec_env = make_vec_env("LayerRate-v0", n_envs=1, seed=0, env_kwargs=DIGITS)
    assert vec_env.render_mode == "rgb_array"
    vec_env.reset()
    first = vec_env.render()
    assert first.shape == SHAPE and first.dtype == np.uint8
    [image] = vec_env.get_images()
    np.testing.assert_array_equal(image, first)
    vec_env.step(np.array([[0.5]], dtype=np.float32))
    after_step = vec_env.render()
    assert after_step.shape == SHAPE and not np.array_equal(after_step, first)
    vec_env.close()


@pytest.mark.parametrize("env_id", ["LayerRate-v0", "FilterSelect-v0"])
def test_record_video_writes_one_frame_per_decision_at_render_fps(env_id, tmp_path):
    folder = tmp_path / "videos"
    env = RecordVideo(gym.make(env_id, render_mode="rgb_array", **DIGITS), str(folder), episode_trigger=lambda _: True,
                      name_prefix=env_id)
    env.reset(seed=0)
    done = False
    while not done:
        _, _, done, _, _ = env.step(env.action_space.sample())
    env.close()
    [video] = folder.glob("*.mp4")
    assert video.name == f"{env_id}-episode-0.mp4" and video.stat().st_size > 0
    frames = env.unwrapped.network.num_groups + 1  # after reset, then after each decision
    with VideoFileClip(str(video)) as clip:
        assert tuple(clip.size) == (SHAPE[1], SHAPE[0])
        assert clip.fps == env.unwrapped.metadata["render_fps"] == 4
        assert clip.duration == pytest.approx(frames / 4, abs=0.05)


@pytest.mark.parametrize("env_id", ["LayerRate-v0", "FilterSelect-v0"])
def test_images_show_kept_fractions_macs_and_the_next_group(env_id):
    env = gym.make(env_id, render_mode="rgb_array", macs_budget=1.0, **DIGITS)
    env.reset(seed=0)
    start = env.render()
    full = bar_rows(start, UNDECIDED)  # every group is grey at 1 before the first decision
    assert bar_rows(start, DECIDED) == 0 and full > 200
    assert bar_rows(start, WITHIN_BUDGET) == pytest.approx(full, abs=2)  # MACs at 100% of the original, the budget
    _, _, _, _, info = env.step(FIRST_ACTIONS[env_id])
    first = env.render()
    kept = info["kept"] / env.unwrapped.network.groups[0].num_channels
    assert kept == {"LayerRate-v0": 3 / 6, "FilterSelect-v0": 2 / 6}[env_id]
    assert bar_rows(first, DECIDED) / full == pytest.approx(kept, abs=0.02)
    assert bar_rows(first, WITHIN_BUDGET) / full == pytest.approx(info["macs_ratio"], abs=0.02)
    assert marker_column(first) > marker_column(start)  # the mark moved right, to group 1
    _, _, done, _, info = env.step(env.action_space.sample())
    last = env.render()
    assert done and marker_column(last) is None and bar_rows(last, UNDECIDED) == 0
    assert bar_rows(last, WITHIN_BUDGET) / full == pytest.approx(info["macs_ratio"], abs=0.02)


def test_a_network_over_its_budget_has_a_red_macs_bar():
    env = gym.make("LayerRate-v0", render_mode="rgb_array", macs_budget=0.3, enforce_budget=False, **DIGITS)
    env.reset(seed=0)
    image = env.render()
    assert bar_rows(image, OVER_BUDGET) > 200 and bar_rows(image, WITHIN_BUDGET) == 0


def test_gymnasium_checker_accepts_every_render_mode():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(gym.make("LayerRate-v0", render_mode="rgb_array", **DIGITS).unwrapped)  # also builds one per render mode
    assert not [str(w.message) for w in caught if "render" in str(w.message).lower()]


def test_human_render_mode_is_gymnasiums_window_over_rgb_array_frames():
    env = gym.make("LayerRate-v0", render_mode="human", **DIGITS)
    assert env.render_mode == "human" and env.unwrapped.render_mode == "rgb_array"


def test_a_bad_render_mode_is_a_one_line_error_listing_the_choices():
    with pytest.raises(ValueError) as error:
        gym.make("FilterSelect-v0", render_mode="rgb", **DIGITS)
    message = str(error.value)
    assert "\n" not in message
    for word in ["render_mode='rgb'", "'ansi'", "'rgb_array'", "None", "human"]:
        assert word in message
