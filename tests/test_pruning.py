"""The pruning core: groups, masked vs compact vs exported networks, analytic MACs, importance."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import prune_gym
from prune_gym.pruning import PrunableNetwork, count_macs_params, filter_importance, list_importance_criteria, recalibrate_batchnorm
from prune_gym.pruning.compact import CompactNetwork
from prune_gym.pruning.evaluation import MaskEvaluator
from prune_gym.tasks import evaluate
from prune_gym.tasks.data import load_dataset


def random_keep(network: PrunableNetwork, seed: int, keep_probability: float = 0.5) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    keep = []
    for group in network.groups:
        mask = rng.random(group.num_channels) < keep_probability
        mask[rng.integers(group.num_channels)] = True
        keep.append(mask)
    return keep


@pytest.fixture(scope="module")
def images() -> dict[str, torch.Tensor]:
    """Real images: MNIST-shaped digits (always present), CIFAR-10 subset images and MNIST scenes (from ../shared/data)."""
    digits = load_dataset("digits").x_test[:64]
    try:
        cifar = load_dataset("cifar10-subset").x_test[:32]
        scenes = load_dataset("mnist-scenes").x_test[:32]
    except prune_gym.errors.DatasetUnavailableError as error:
        pytest.skip(f"CIFAR-10 subset or MNIST not available: {error}")
    return {"lenet5": digits, "fcn": scenes, "cifar": cifar}


def model_and_input(name: str, images: dict[str, torch.Tensor]) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = prune_gym.build_model(name, num_classes=11 if name == "fcn" else 10).eval()
    by_shape = {(1, 28, 28): images["lenet5"], (1, 32, 32): images["fcn"], (3, 32, 32): images["cifar"]}
    return model, by_shape[prune_gym.tasks.default_input_shape(name)]


@pytest.mark.parametrize("name", ["lenet5", "resnet20", "vgg16", "fcn"])
def test_masked_compact_and_exported_logits_agree(name, images):
    model, x = model_and_input(name, images)
    network = PrunableNetwork(model, x)
    compact = CompactNetwork(network)
    reference = {k: v.clone() for k, v in model.state_dict().items()}
    for seed in range(2):
        keep = random_keep(network, seed)
        network.apply_masks(keep)
        with torch.inference_mode():
            masked = model(x)
        network.remove_masks()
        exported = network.export(keep)
        with torch.inference_mode():
            physical = exported(x)
            narrow = compact.load(keep)(x)
        torch.testing.assert_close(masked, physical, atol=1e-4, rtol=0)
        torch.testing.assert_close(narrow, physical, atol=1e-4, rtol=0)
    for key, value in model.state_dict().items():
        assert torch.equal(value, reference[key]), f"{key} changed: masking/export must not touch the original"


@pytest.mark.parametrize("name", prune_gym.list_models())
def test_analytic_macs_equal_flop_counter_on_exported(name, images):
    model, x = model_and_input(name, images)
    network = PrunableNetwork(model, x[:1])
    assert (network.original_macs, network.original_params) == count_macs_params(model, network.input_shape)
    for seed in range(2):
        keep = random_keep(network, seed, keep_probability=0.3 + 0.3 * seed)
        exported = network.export(keep)
        counter = FlopCounterMode(display=False)
        with counter, torch.inference_mode():
            exported(x[:1])
        macs, params = network.macs_params(keep)
        assert macs == counter.get_total_flops() // 2
        shuffled = [np.random.default_rng(seed).permutation(mask) for mask in keep]
        assert network.macs_params(shuffled) == (macs, params), "MACs depend on how many channels a group keeps, not which"
        assert params == sum(p.numel() for p in exported.parameters())
        assert macs < network.original_macs


def test_resnet_groups_couple_residual_convs_and_skip_classifier(images):
    model, x = model_and_input("resnet20", images)
    network = PrunableNetwork(model, x[:1])
    member_counts = [sum(1 for name in g.members if isinstance(dict(model.named_modules())[name], nn.Conv2d)) for g in network.groups]
    assert max(member_counts) >= 4, "a stage's residual convs must form one group"
    classifier = prune_gym.pruning.output_layer(model)
    names = {m: n for n, m in model.named_modules()}
    assert all(names[classifier] not in g.members for g in network.groups)
    assert [g.index for g in network.groups] == list(range(network.num_groups))


def test_depthwise_groups_prune_expansion_and_depthwise_together(images):
    model, x = model_and_input("mobilenetv2", images)
    network = PrunableNetwork(model, x[:1])
    kinds = [{layer.kind for layer in network.layers if layer.name in g.members} for g in network.groups]
    assert any("depthwise" in k and "conv" in k for k in kinds)


def test_a_group_must_keep_a_channel(images):
    model, x = model_and_input("lenet5", images)
    network = PrunableNetwork(model, x[:1])
    keep = network.full_mask()
    keep[1][:] = False
    with pytest.raises(ValueError, match="at least one channel"):
        network.macs_params(network.check_mask(keep))
    with pytest.raises(ValueError, match="2 groups"):
        network.check_mask([keep[0]])


def test_masked_and_compact_evaluation_give_the_same_accuracy(images):
    model, x = model_and_input("resnet20", images)
    y = torch.arange(len(x)) % 10
    network = PrunableNetwork(model, x[:1])
    compact = MaskEvaluator(network, x, y, batch_size=7, method="compact")
    masked = MaskEvaluator(network, x, y, batch_size=32, method="masked")
    for seed in range(3):
        keep = random_keep(network, seed)
        assert compact.score(keep) == masked.score(keep)


def test_recalibrated_evaluation_agrees_across_methods_and_leaves_the_model_unchanged(images):
    model, x = model_and_input("resnet20", images)
    y = torch.arange(len(x)) % 10
    network = PrunableNetwork(model, x[:1])
    state = {k: v.clone() for k, v in model.state_dict().items()}
    calibration = load_dataset("cifar10-subset").x_train[:64]
    compact = MaskEvaluator(network, x, y, batch_size=7, method="compact", recalibration_x=calibration)
    masked = MaskEvaluator(network, x, y, batch_size=32, method="masked", recalibration_x=calibration)
    for seed in range(3):
        keep = random_keep(network, seed)
        assert compact.score(keep) == masked.score(keep)
        exported = network.export(keep)
        recalibrate_batchnorm(exported, calibration)
        assert evaluate(exported, x, y) == compact.score(keep)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[name]), name
    with pytest.raises(ValueError, match="no BatchNorm"):
        lenet, digits = model_and_input("lenet5", images)
        MaskEvaluator(PrunableNetwork(lenet, digits[:1]), digits, torch.zeros(len(digits), dtype=torch.long), recalibration_x=digits)


def test_evaluation_cache_hits_return_the_fresh_value(images):
    model, x = model_and_input("lenet5", images)
    y = torch.zeros(len(x), dtype=torch.long)
    network = PrunableNetwork(model, x[:1])
    evaluator = MaskEvaluator(network, x, y, cache_size=2)
    masks = [random_keep(network, seed) for seed in range(3)]
    fresh = [evaluator.score(m) for m in masks]
    assert evaluator.hits == 0 and evaluator.misses == 3
    assert evaluator.score(masks[2]) == fresh[2] and evaluator.hits == 1
    assert evaluator.score(masks[0]) == fresh[0] and evaluator.misses == 4, "the bound evicted the oldest mask"
    uncached = MaskEvaluator(network, x, y, cache_size=0)
    assert [uncached.score(m) for m in masks] == fresh


def test_importance_criteria(images):
    model, x = model_and_input("lenet5", images)
    conv = model.get_submodule(PrunableNetwork(model, x[:1]).groups[0].name)
    with torch.no_grad():
        conv.weight[1] = conv.weight[0]
        conv.weight[2] = conv.weight[0] * 1.001
    network = PrunableNetwork(model, x[:1])
    group = network.groups[0]
    weights = conv.weight.detach().flatten(1)
    np.testing.assert_allclose(filter_importance(group, "std"), weights.std(dim=1, unbiased=False).double().numpy(), rtol=1e-5)
    np.testing.assert_allclose(filter_importance(group, "l1"), weights.abs().sum(1).double().numpy(), rtol=1e-5)
    redundancy = filter_importance(group, "cluster")
    assert set(np.argsort(redundancy)[:3]) == {0, 1, 2}, "near-identical filters are the most redundant"
    for criterion in list_importance_criteria():
        if criterion == "bn-scale":
            with pytest.raises(ValueError, match="bn-scale"):
                filter_importance(group, criterion)
            continue
        assert filter_importance(group, criterion).shape == (group.num_channels,)
    random_scores = filter_importance(group, "random")
    np.testing.assert_array_equal(random_scores, filter_importance(network.groups[0], "random"))
    assert not np.array_equal(np.argsort(random_scores), np.argsort(filter_importance(network.groups[1], "random")[:6]))
    with pytest.raises(ValueError, match="unknown importance criterion"):
        filter_importance(group, "magic")
    vgg, vx = model_and_input("vgg16", images)
    vgg_group = PrunableNetwork(vgg, vx[:1]).groups[0]
    bn = vgg.get_submodule([name for name in vgg_group.members if isinstance(vgg.get_submodule(name), nn.BatchNorm2d)][0])
    np.testing.assert_allclose(filter_importance(vgg_group, "bn-scale"), bn.weight.detach().abs().double().numpy(), rtol=1e-5)


def test_cluster_criterion_keeps_one_representative_per_cluster_at_the_decided_width():
    """CISAI 2022: the rate decides the cluster dimension k; each of the k clusters keeps its filter nearest the centroid."""
    from prune_gym.pruning import ImportanceRanking
    from prune_gym.pruning.importance import group_filters

    torch.manual_seed(0)
    model = prune_gym.build_model("lenet5").eval()
    with torch.no_grad():  # 6 filters in two tight families of 3: clustering into 2 keeps one of each family
        base = torch.randn(2, 1, 5, 5)
        model.features[0].weight.copy_(torch.cat([base[0:1] + 0.01 * torch.randn(3, 1, 5, 5), base[1:2] + 0.01 * torch.randn(3, 1, 5, 5)]))
    ranking = ImportanceRanking(PrunableNetwork(model, torch.zeros(1, 1, 28, 28)))
    keep = ranking.keep_most_important(0, 2, "cluster")
    assert keep.sum() == 2 and keep[:3].sum() == 1 and keep[3:].sum() == 1
    among = np.array([False, True, True, True, True, True])
    assert not ranking.keep_most_important(0, 2, "cluster", among=among)[0]
    assert group_filters(ranking.network.groups[0]).shape == (6, 25)
