import os

# Tests run offline: a request for pretrained weights must fail at once, not retry for a minute.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

#: A tiny model configuration shared by the tests (all variant switches at their defaults).
TINY = dict(frames=9, width=32, depth=2, heads=2, context_dim=16, slot_dim=16, spatial_heads=3,
            temporal_heads=3, temporal_radius=4, prompt_length=4, text_tokens=2, drop_path=0.0)


@pytest.fixture
def tiny_cfg():
    return dict(TINY)


@pytest.fixture
def clip_batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, TINY["frames"], 17, 3, generator=g) * 0.3
    x[..., 2] = 1.0
    return x


def tiny_params() -> dict:
    """The packaged default configuration at a size that trains in seconds on a CPU (two variants,
    two seeds). Tests never read the project's live params.yaml (a preset may be active there)."""
    from poseprompt.config.params import default_params
    params = default_params()
    params["data"]["synthetic"].update(subjects_train=3, subjects_test=1, shift_subjects=1, speeds=[1.0],
                                       frames_per_sequence=40, cameras=1, motions=["walk", "squat", "wave"],
                                       shifts=["camera"], shift_strengths=[0.5, 1.0])
    params["data"]["val"] = {"by": "subject", "fraction": 0.34}
    params["model"].update(frames=9, width=16, depth=1, heads=2, context_dim=8, slot_dim=8, spatial_heads=2,
                           temporal_heads=2, temporal_radius=4, prompt_length=3, text_tokens=1)
    params["variants"] = {"gatfun": {"prompt": "none"}, "full": {}}
    params["seeds"] = [0, 1]
    params["train"].update(epochs=2, batch_size=8, stride=9, warmup_steps=0, progress=False)
    params["evaluate"].update(batch_size=32, suites={"occlusion": {"strengths": [0.2], "mode": "limbs"},
                                                     "occlusion-gap": {"kind": "occlusion", "strengths": [0.2],
                                                                       "mode": "all", "span": [2, 4]},
                                                     "speed": {"strengths": [2.0]}})
    return params


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory):
    """A whole tiny run (prepare, train two variants, evaluate) in a temporary project folder,
    through the same Python functions the notebooks call. Returns (root, params)."""
    from poseprompt.stages import evaluate, train
    from poseprompt.stages.prepare import prepare
    root = tmp_path_factory.mktemp("pipeline")
    params = tiny_params()
    prepare(params["data"], root / params["data"]["out_dir"], params["seed"])
    for variant in params["variants"]:
        train.run_variant(params, variant, root)
        evaluate.run_variant(params, variant, root, log=lambda *a: None)
    return root, params
