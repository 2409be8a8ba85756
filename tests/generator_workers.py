"""What each process of a spawned Gloo group runs in tests/test_generator.py: the workers of
tests/distributed_workers.py (its group set-up and outcome files) with the generator's scenarios added."""

from __future__ import annotations

import torch

import distributed_workers as workers


def linear_generator(z_dim: int, seed: int = 1):
    """A batch-independent generator: ``(B, z_dim)`` -> ``(B, 3, 4, 4)`` in [-1, 1], computed in float64 per
    sample, so that batching cannot change an image."""
    weight = torch.randn(z_dim, 3 * 4 * 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)

    def generate(z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z.double() @ weight).float().view(-1, 3, 4, 4)

    return generate


def score(rank: int, world: int, params: dict) -> dict:
    from inception_score.generator import LatentDraw, LatentSpec, score_generator

    seen: list[torch.Tensor] = []
    base = linear_generator(params["z_dim"])

    def generate(z: torch.Tensor) -> torch.Tensor:
        seen.append(z.clone())
        return base(z)

    result = score_generator(generate, params["count"], z_dim=params["z_dim"], z_distribution=params["distribution"],
                             seed=params["seed"], batch_size=params["batch_size"], splits=params["splits"],
                             scorer=workers.PixelProjection())
    z = torch.cat(seen) if seen else torch.zeros(0, params["z_dim"])
    return {**workers.result_fields(result), "z": z.tolist(), "generator": result.generator}


def worker(rank: int, world: int, rendezvous: str, out: str, scenario: str, params: dict) -> None:
    workers.SCENARIOS["generator_score"] = score
    workers.worker(rank, world, rendezvous, out, scenario, params)
