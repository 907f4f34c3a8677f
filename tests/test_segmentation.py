"""Segmentation: a task carries its metric (mean IoU), and both environments, export and fine-tuning work on it."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import prune_gym
from prune_gym.tasks import evaluate, get_metric
from prune_gym.tasks.data import compose_scenes

SCENES = dict(task="fcn-mnist-scenes", reward_samples=200)


def test_mean_iou_matches_a_hand_computed_case():
    targets = torch.tensor([[[0, 0], [1, 2]]])  # 1 x 2 x 2 pixels, 3 classes
    predicted = torch.tensor([[[0, 1], [1, 2]]])
    logits = torch.nn.functional.one_hot(predicted, 3).permute(0, 3, 1, 2).float()
    metric = get_metric("mean-iou")
    # class 0: I=1, U=2; class 1: I=1, U=2; class 2: I=1, U=1
    assert metric.final(metric.statistics(logits, targets)) == pytest.approx((0.5 + 0.5 + 1.0) / 3)
    halves = metric.statistics(logits[:, :, :1], targets[:, :1]) + metric.statistics(logits[:, :, 1:], targets[:, 1:])
    assert metric.final(halves) == pytest.approx((0.5 + 0.5 + 1.0) / 3), "statistics add up across batches"


def test_scenes_label_digit_pixels_with_their_class():
    digits = torch.zeros(2, 1, 28, 28)
    digits[0, 0, 4:24, 10:18] = 1.0  # a bright bar
    images, targets = compose_scenes(digits, torch.tensor([7, 3]), count=4, seed=0, per_scene=1)
    assert images.shape == (4, 1, 32, 32) and targets.shape == (4, 32, 32)
    for image, target in zip(images, targets):
        assert set(target.unique().tolist()) <= {0, 8, 4}
        assert torch.equal(target > 0, image[0] > 0.5)


@pytest.mark.parametrize("env_id", ["LayerRate-v0", "FilterSelect-v0"])
def test_both_environments_score_prune_and_export_a_segmentation_network(env_id, fcn_scenes_checkpoint):
    env = gym.make(env_id, **SCENES)
    base = env.unwrapped
    assert base.task.metric == "mean-iou" and 0.1 < base.score_before <= 1.0
    check_env(gym.make(env_id, **SCENES).unwrapped, skip_render_check=True)
    env.reset(seed=0)
    done, rng = False, np.random.default_rng(0)
    while not done:
        _, reward, done, _, info = env.step(rng.random(env.action_space.shape).astype(np.float32) > 0.3
                                            if env_id == "FilterSelect-v0" else np.array([0.4], np.float32))
    assert info["budget_met"] and 0.0 <= info["score"] <= 1.0 and reward == pytest.approx(info["score"] - 1.0)
    exported = base.export()
    assert prune_gym.count_macs_params(exported, base.network.input_shape)[0] == info["macs"]
    splits = base.task.splits()
    assert evaluate(exported, splits.reward_x[:200], splits.reward_y[:200], "mean-iou") == pytest.approx(info["score"])


def test_fine_tuning_recovers_a_pruned_segmentation_network(fcn_scenes_checkpoint):
    env = gym.make("LayerRate-v0", enforce_budget=False, bn_recalibration=200, **SCENES).unwrapped
    env.reset(seed=0)
    for _ in range(env.network.num_groups):
        env.step(np.array([0.3], np.float32))
    keep = env.last_keep_mask
    pruned = env.evaluator.score(keep)
    assert env.recover(keep, steps=100) > pruned + 0.05  # measured: 0.17 -> 0.30 (2-epoch checkpoint)
