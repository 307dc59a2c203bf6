import itertools

import numpy as np
import pytest
import torch

from napari_mscgm.core.bridge import BrownianBridge

TOL = 1e-4


@pytest.fixture(scope="module")
def bridge():
    return BrownianBridge(num_timesteps=1000, max_var=1.0)


def test_schedule_reference_values(bridge):
    m = bridge.m.float()
    var = bridge.variance.float()
    expected = {
        0: (0.001, 0.001998),
        1: (0.001998999, 0.003990006),
        499: (0.4995005005, 0.4999995010),
        999: (0.999, 0.001998),
    }
    for t, (m_ref, var_ref) in expected.items():
        assert abs(m[t].item() - m_ref) < TOL
        assert abs(var[t].item() - var_ref) < TOL
    assert len(m) == 1000


def test_step_lists(bridge):
    assert bridge.timesteps(5) == [999, 666, 333, 1, 0]
    steps200 = bridge.timesteps(200)
    assert len(steps200) == 200
    assert steps200[:5] == [999, 993, 988, 983, 978]
    assert steps200[-5:] == [15, 10, 5, 1, 0]
    assert bridge.timesteps(20)[:6] == [999, 943, 888, 832, 777, 721]


@pytest.mark.parametrize("steps", [1, 2, 3, 7, 20, 200, 501, 502, 999, 1000])
def test_step_count_equals_evaluations(bridge, steps):
    schedule = bridge.timesteps(steps)
    assert len(schedule) == steps
    assert schedule[0] == 999
    assert all(a > b for a, b in itertools.pairwise(schedule))


def test_step_coefficients_reference(bridge):
    c = bridge.step_coefficients(999, 993)
    assert abs(c.x_t - 0.994000006) < TOL
    assert abs(c.x0_hat - 0.005999994) < TOL
    assert abs(c.sigma - 0.1091607) < TOL
    assert abs(c.y) < TOL
    c = bridge.step_coefficients(1, 0)
    assert abs(c.x_t - 0.5002504) < TOL
    assert abs(c.x0_hat - 0.4997496) < TOL
    assert abs(c.sigma - 0.0316149) < TOL


@pytest.mark.parametrize("t,n", [(999, 500), (700, 10), (50, 49)])
def test_closed_form(bridge, t, n):
    m = bridge.m.numpy()
    c = bridge.step_coefficients(t, n)
    assert c.x_t == pytest.approx(m[n] / m[t], abs=1e-9)
    assert c.x0_hat == pytest.approx(1 - m[n] / m[t], abs=1e-9)
    assert c.sigma**2 == pytest.approx(2 * m[n] * (m[t] - m[n]) / m[t], abs=1e-9)


def test_forward_marginals(bridge):
    x0 = torch.zeros(20000)
    y = torch.ones(20000)
    t = torch.full((20000,), 499)
    xt = bridge.q_sample(
        x0[:, None],
        y[:, None],
        t,
        torch.randn(20000, 1, generator=torch.Generator().manual_seed(0)),
    )
    assert xt.mean().item() == pytest.approx(0.4995, abs=0.02)
    assert xt.var().item() == pytest.approx(0.5, abs=0.02)
    target = bridge.training_target(x0[:, None], xt)
    assert torch.equal(target, xt - x0[:, None])
    assert bridge.loss(target, target).item() == 0


def test_sampler_starts_at_y_and_uses_oracle(bridge):
    x0 = torch.linspace(-1, 1, 64).reshape(1, 1, 8, 8)
    y = x0.flip(-1)
    seen = []

    def oracle(x_t, t):
        seen.append((t[0].item(), x_t.clone()))
        return x_t - x0  # the exact "grad" target

    out = bridge.sample(oracle, y, steps=10, eta=0.0)
    assert torch.equal(seen[0][1], y)  # x_T = y exactly, no noise
    assert [s[0] for s in seen] == bridge.timesteps(10)
    assert torch.allclose(out, x0, atol=1e-6)


def test_sampler_noise_and_eta(bridge):
    y = torch.zeros(1, 1, 4, 4)
    gen = torch.Generator().manual_seed(0)
    noises = [torch.randn(1, 1, 4, 4, generator=gen) for _ in range(10)]

    def zero(x_t, t):
        return torch.zeros_like(x_t)

    a = bridge.sample(zero, y, steps=10, eta=1.0, noise=lambda i: noises[i])
    b = bridge.sample(zero, y, steps=10, eta=1.0, noise=lambda i: noises[i])
    c = bridge.sample(zero, y, steps=10, eta=0.0)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(c, y)
    with pytest.raises(ValueError, match="noise"):
        bridge.sample(zero, y, steps=3, eta=1.0)


def test_one_step_predicts_from_y(bridge):
    y = torch.ones(1, 1, 2, 2)
    out = bridge.sample(
        lambda x_t, t: torch.full_like(x_t, float(t[0])), y, steps=1, eta=1.0, noise=lambda i: 0 * y
    )
    assert torch.equal(out, y - 999)


def test_invalid_arguments(bridge):
    with pytest.raises(ValueError):
        bridge.timesteps(0)
    with pytest.raises(ValueError):
        bridge.step_coefficients(5, 5)
    with pytest.raises(ValueError):
        BrownianBridge(max_var=0)
    assert np.all(np.diff(bridge.m.numpy()) > 0)
