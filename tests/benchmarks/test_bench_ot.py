"""Optimal-transport aligners at N = 5,000 pairs of 384-d embeddings (100 anchors, the rest unpaired).
In the default test run (benchmarks disabled) each fits once on 500 pairs."""

import warnings

import numpy as np
import pytest

from extras import needs_extra  # tests/support

needs_extra("ot", "ot")
needs_extra("torch", "encoders")

from alignbench_plugins.aligners.gromov import GromovWassersteinAligner  # noqa: E402
from alignbench_plugins.aligners.ot_riemannian import (  # noqa: E402
    ContrastiveOnly, OTOnly, OTRiemannianAligner, RiemannianOnly)


def spaces(n=5000, dim=384, seed=0):
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, 32))
    x = latent @ rng.standard_normal((32, dim)) + rng.standard_normal((n, dim))
    y = latent @ rng.standard_normal((32, dim)) + rng.standard_normal((n, dim))
    return x.astype(np.float32), y.astype(np.float32)


@pytest.mark.benchmark(group="OT aligners, fit at N = 5,000 (384-d), 150 steps")
@pytest.mark.parametrize("aligner", [OTRiemannianAligner, ContrastiveOnly, OTOnly, RiemannianOnly,
                                     GromovWassersteinAligner],
                         ids=lambda c: c.name)
def test_fit_5000(benchmark, aligner):
    x, y = spaces(5000 if not benchmark.disabled else 500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        benchmark.pedantic(lambda: aligner().fit(x[:100], y[:100], x[100:], y[100:][::-1]), rounds=1, iterations=1)
