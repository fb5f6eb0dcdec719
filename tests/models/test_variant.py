"""ModelVariant: the one place a variant is checked, named and built."""

import pytest

from helpers import reference
from tfresnet.models.variant import ModelVariant


def test_mobilenet_variant_names_and_builds_itself():
    v = ModelVariant("mobilenet_v1", 0.75, 160).check()
    assert v.stem == "mobilenet_v1_0.75_160" and v.side == 160
    assert v.builder_kwargs() == v.model_kwargs() == {"alpha": 0.75, "res": 160}
    model = v.build(classes=1000)
    assert model.input_shape == (None, 160, 160, 3)
    # The published 0.75 count (REFERENCE.md): alpha reached the builder.
    assert model.count_params() == sum(reference.MOBILENET_PARAMS[0.75])


def test_fixed_side_variant_takes_its_side_as_input_shape():
    v = ModelVariant("resnet20", None, 16)
    assert v.stem == "resnet20_16"
    assert v.builder_kwargs() == {"input_shape": (16, 16, 3)} and v.model_kwargs() == {}
    assert v.build(classes=5).input_shape == (None, 16, 16, 3)


@pytest.mark.parametrize("variant, text", [
    (ModelVariant("mobilenet_v1", 0.0, 160), r"^alpha .*Received: alpha=0\.0$"),
    (ModelVariant("mobilenet_v1", 0.5, 150), r"^res .*Received: res=150$"),
    (ModelVariant("mobilenet_v1", 0.5, 10**6), r"cannot fit.*Received: res=1000000"),  # before allocating
    (ModelVariant("resnet20", 0.5, 32), r"^alpha applies to .*Received: model=resnet20, alpha=0\.5$"),
])
def test_check_says_the_api_words(variant, text):
    """The library names its settings (``Received: alpha=0``), never a command's flags."""
    with pytest.raises(ValueError, match=text) as err:
        variant.check(classes=10)
    assert "--" not in str(err.value)


def test_the_res_helps_state_the_rule_mobilenet_builds_with():
    """MobileNet's side rule is its five stride-2 layers; the TF-free --res helps read it."""
    from experiments.command import build_parser as experiments_parser
    from tfresnet.models.families import mobilenet
    from tfresnet.models.profile_command import build_parser as profile_parser
    from tfresnet.models.registry import model_info
    from tfresnet.training.command import build_parser as train_parser
    multiple = model_info("mobilenet_v1").multipliers.res_multiple
    halvings = sum(stride == 2 for _, stride, _ in mobilenet.MOBILENET_V1_SPEC)
    assert multiple == 2 ** halvings == 32
    rule = f"a multiple of {multiple}, at least {multiple}"
    helps = [profile_parser().format_help(), train_parser().format_help(),
             experiments_parser()._subparsers._group_actions[0].choices["multipliers"]
             .format_help()]
    assert all(rule in " ".join(text.split()) for text in helps)


def test_the_builder_and_the_variant_refuse_alpha_and_res_in_one_sentence():
    """One rule, one message (Multipliers.check_alpha / check_res), each caller's name."""
    from tfresnet.models.registry import get_model
    rule = ("must be a number >= 1/32 (the first layer keeps a channel); the paper uses "
            "1.0, 0.75, 0.5, 0.25. Received: ")
    with pytest.raises(ValueError) as built:
        get_model("mobilenet_v1", alpha=0.01)
    with pytest.raises(ValueError) as checked:
        ModelVariant("mobilenet_v1", 0.01, 160).check()
    assert str(built.value) == f"alpha {rule}alpha=0.01"
    assert str(checked.value) == str(built.value)
    with pytest.raises(ValueError, match=r"^res must be a multiple of 32 and at least 32 "
                       r"\(the paper uses 224, 192, 160, 128\)\. Received: res=150$"):
        get_model("mobilenet_v1", res=150)
    with pytest.raises(ValueError, match=r"^res must be a multiple of 32 and at least 32 "
                       r"for mobilenet_v1 .*Received: res=150$"):
        ModelVariant("mobilenet_v1", None, 150).check()
