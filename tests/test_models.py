"""The model zoo matches the published MACs/params and is traceable by torch-pruning."""

import pytest
import torch
import torch_pruning as tp
from torch import nn

import prune_gym
from prune_gym.pruning import count_macs_params, output_layer
from prune_gym.tasks.models import default_input_shape

PUBLISHED = {  # (MACs, params): Li et al. 2017 for VGG-16 and ResNet-56/110; He et al. 2016 for ResNet-20
    "vgg16": (3.13e8, 1.5e7),
    "resnet56": (1.25e8, 8.5e5),
    "resnet110": (2.53e8, 1.72e6),
    "resnet20": (4.1e7, 2.7e5),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_macs_and_params_match_published_within_2_percent(name):
    macs, params = count_macs_params(prune_gym.build_model(name), default_input_shape(name))
    published_macs, published_params = PUBLISHED[name]
    assert macs == pytest.approx(published_macs, rel=0.02)
    assert params == pytest.approx(published_params, rel=0.02)


@pytest.mark.parametrize("name", prune_gym.list_models())
@pytest.mark.parametrize("num_classes", [10, 100])
def test_every_model_builds_with_its_output_layer_last(name, num_classes):
    model = prune_gym.build_model(name, num_classes=num_classes).eval()
    shape = default_input_shape(name)
    with torch.no_grad():
        logits = model(torch.randn(2, *shape))
    output = output_layer(model)
    if isinstance(output, nn.Linear):
        assert logits.shape == (2, num_classes) and output.out_features == num_classes
    else:  # fully convolutional: per-pixel logits from the last conv
        assert logits.shape == (2, num_classes, *shape[1:]) and output.out_channels == num_classes


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ValueError, match="resnet56"):
        prune_gym.build_model("resnet57")


@pytest.mark.parametrize("name", prune_gym.list_models())
def test_torch_pruning_traces_every_model(name):
    model = prune_gym.build_model(name).eval()
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=torch.randn(1, *default_input_shape(name)))
    groups = list(graph.get_all_groups(ignored_layers=[output_layer(model)], root_module_types=[nn.Conv2d]))
    assert groups
    if name == "resnet20":
        coupled = max(sum(isinstance(item.dep.target.module, nn.Conv2d) and graph.is_out_channel_pruning_fn(item.dep.handler)
                          for item in group) for group in groups)
        assert coupled > 3, "residual adds couple the convs of a stage"
