"""Robustness suites (``evaluate.suites``): one kind under several names, options, errors."""
import numpy as np
import pytest

from conftest import tiny_params
from poseprompt.config.sections import ConfigError
from poseprompt.data import synthetic
from poseprompt.data.perturb import perturb_sequences
from poseprompt.stages.evaluate import EvalConfig, resolve_suites


def test_a_suite_names_its_kind_and_gets_the_kinds_defaults():
    suites = resolve_suites({
        "occlusion": {"strengths": [0.1, 0.4], "mode": "limbs"},
        "occlusion-gap": {"kind": "occlusion", "strengths": [0.25], "mode": "all", "span": [2, 6]},
        "speed": {"strengths": [0.5, 2.0]},
    })
    assert list(suites) == ["occlusion", "occlusion-gap", "speed"]
    gap = suites["occlusion-gap"]
    assert gap.kind == "occlusion" and gap.perturb_kwargs() == {"occlusion_mode": "all", "occlusion_span": (2, 6)}
    assert suites["occlusion"].spec() == {"kind": "occlusion", "mode": "limbs", "span": [5, 30],
                                          "strengths": [0.1, 0.4]}
    assert suites["speed"].spec() == {"kind": "speed", "strengths": [0.5, 2.0]}
    assert EvalConfig().suite_list()[0].name == "occlusion"


def test_suite_apply_is_the_evaluations_perturbation():
    split = synthetic.build_splits({**tiny_params()["data"]["synthetic"], "shift_subjects": 0}, 0)["test"]
    gap = resolve_suites({"gap": {"kind": "occlusion", "strengths": [0.2], "mode": "all", "span": [2, 4]}})["gap"]
    out = gap.apply(split, 0.2, seed=3)
    same = perturb_sequences(split, "occlusion", 0.2, 3, occlusion_mode="all", occlusion_span=(2, 4))
    assert np.array_equal(out.conf, same.conf)
    gaps = ((out.conf == 0) & (split.conf > 0)).any(1)                         # frames the suite hid
    assert gaps.any() and np.all(out.conf[gaps] == 0)                          # whole frames
    assert np.array_equal(out.conf[~gaps], split.conf[~gaps])


@pytest.mark.parametrize("suites, message", [
    ({"occlusion-side": {"strengths": [0.1], "mode": "side"}},
     r"evaluate.suites.occlusion-side: unknown kind 'occlusion-side' \(the key is the kind unless the entry "
     r"names one with 'kind:'\); known kinds: \['drop', 'jitter', 'noise', 'occlusion', 'speed'\]"),
    ({"x": {"kind": "blur", "strengths": [1]}}, r"evaluate.suites.x: unknown kind 'blur'"),
    ({"occlusion": {"strengths": [0.1], "modes": "side"}},
     r"evaluate.suites.occlusion: unknown keys \['modes'\] for kind 'occlusion'; known keys: "
     r"\['kind', 'mode', 'span', 'strengths'\]"),
    ({"speed": {"strengths": [2.0], "mode": "limbs"}}, r"unknown keys \['mode'\] for kind 'speed'"),
    ({"occlusion": {"strengths": [0.1], "mode": "arms"}}, r"evaluate.suites.occlusion.mode = 'arms'; expected one of"),
    ({"occlusion": {"strengths": [0.1], "span": [6, 2]}}, r"evaluate.suites.occlusion.span = \[6, 2\]"),
    ({"occlusion": {"strengths": [1.5]}}, r"evaluate.suites.occlusion.strengths: hidden fractions must lie in"),
    ({"drop": {"strengths": []}}, r"evaluate.suites.drop: expected a mapping with a non-empty list 'strengths'"),
    ({"drop": {"strengths": ["a"]}}, r"evaluate.suites.drop.strengths: expected a list of numbers"),
])
def test_bad_suites_are_explained(suites, message):
    with pytest.raises(ConfigError, match=message):
        EvalConfig.from_dict({"suites": suites})
