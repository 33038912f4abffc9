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
