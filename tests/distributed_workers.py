"""What each process of a spawned Gloo group runs in tests/test_distributed.py (importable by the
spawned children, unlike a test module's functions). Each worker writes its outcome as JSON to
``<out>/rank-<r>.json``."""

from __future__ import annotations

import datetime
import json
import time
import traceback
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Dataset

from inception_score.errors import ImageDecodeError
from inception_score.network.weights import LoadedWeights

NUM_CLASSES = 1008


class PixelProjection:
    """A stand-in for the Inception network with what ``inception_score(..., scorer=)`` reads. Its
    logits are exact by construction: each is a sum of 48 products of a 4x4 average of uint8 pixels
    (an integer over 16) and a matrix entry (an integer in [-64, 64] over 8192), at most 25
    significant bits, so float64 holds every partial sum exactly in any order, on any kernel and any
    thread count, and the one rounding to float32 at the end gives the same bits everywhere. Batches,
    shards and process counts cannot change them. What the distributed path combines then differs
    from one process's only by the order of the float64 sums of each split's statistics (a few dozen
    terms: relative error below 1e-14), so the tests hold the scores to 1e-12 relative, far inside
    the 1e-6 that float32 logits of the real network are allowed (tests/test_distributed_cli.py)."""

    def __init__(self) -> None:
        self.device = torch.device("cpu")
        self.dtype = "float32"
        self.weights = LoadedWeights(state_dict={}, path=Path("projection"), sha256="0" * 64, verified=False)
        numerators = torch.randint(-64, 65, (3 * 4 * 4, NUM_CLASSES), generator=torch.Generator().manual_seed(3))
        self.matrix = numerators.double() / 8192

    def logits(self, batch) -> torch.Tensor:
        if isinstance(batch, list):
            batch = torch.stack(batch)
        rows = [torch.nn.functional.adaptive_avg_pool2d(image.double().contiguous()[None], 4).flatten() @ self.matrix
                for image in batch]
        return torch.stack(rows).float() if rows else torch.empty(0, NUM_CLASSES)


class PixelFeatures(PixelProjection):
    """:class:`PixelProjection` with the features of FID, sFID, KID and precision/recall from the same
    call: ``device_outputs(batch, outputs)`` gives the logits, pool_3 ``(B, 2048)`` and spatial ``(B, 2023)``
    features, each a fixed projection of the 48 pooled pixel values made as the logits are (integer
    numerators over 8192: exact in float64, one rounding to float32), so that they too are the same bits
    on any batch, shard or process count. ``images_through`` counts the images it was given and
    ``calls`` the output tuples asked for, one per call: a second pass over an image would show."""

    def __init__(self) -> None:
        super().__init__()
        from inception_score.network.outputs import FEATURE_DIM, SPATIAL_DIM

        self.pool3_matrix = torch.randint(-64, 65, (48, FEATURE_DIM), generator=torch.Generator().manual_seed(4)).double() / 8192
        self.spatial_matrix = torch.randint(-64, 65, (48, SPATIAL_DIM), generator=torch.Generator().manual_seed(5)).double() / 8192
        self.images_through = 0
        self.calls: list[tuple[str, ...]] = []

    def pooled(self, batch) -> torch.Tensor:
        """``(B, 48)`` float64: each image's 4x4 averages of its uint8 pixels (exact for sides that are
        multiples of 4: sums of integers divided by a power of 2), the whole batch in one call."""
        if isinstance(batch, list):
            batch = torch.stack(batch) if batch else torch.empty(0, 3, 4, 4, dtype=torch.uint8)
        return torch.nn.functional.adaptive_avg_pool2d(batch.double(), 4).flatten(1)

    def device_outputs(self, batch, outputs="logits_unbiased"):
        from inception_score.network.outputs import Output, requested_outputs

        asked, single = requested_outputs(outputs)
        self.images_through += len(batch)
        self.calls.append(tuple(o.value for o in asked))
        pooled = self.pooled(batch)
        matrices = {Output.LOGITS_UNBIASED: self.matrix, Output.POOL3: self.pool3_matrix,
                    Output.SPATIAL: self.spatial_matrix}
        values = tuple((pooled @ matrices[o]).float() for o in asked)
        return (values[0] if single else values), None

    def logits(self, batch) -> torch.Tensor:
        return self.device_outputs(batch)[0]

    def features(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """pool_3 ``(N, 2048)`` and spatial ``(N, 2023)`` float32 of ``(N, H, W, 3)`` uint8 pixels, written
        out here without the scoring run: the tests' independent features."""
        pooled = self.pooled(torch.from_numpy(pixels).permute(0, 3, 1, 2))
        return (pooled @ self.pool3_matrix).float().numpy(), (pooled @ self.spatial_matrix).float().numpy()


def naive_split_scores(pixels: np.ndarray, splits: int) -> np.ndarray:
    """exp(E_x KL(p(y|x) || p(y))) per contiguous split (``np.array_split``: the paper's split rule),
    written out in float64 from the stand-in's logits: the tests' independent reference."""
    logits = PixelProjection().logits(torch.from_numpy(pixels).permute(0, 3, 1, 2)).double().numpy()
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(axis=0)
        scores.append(np.exp(np.mean(np.sum(part * (np.log(part) - np.log(marginal)), axis=1))))
    return np.array(scores)


def images(count: int, seed: int = 0) -> np.ndarray:
    """``(count, 16, 16, 3)`` uint8, each image a different mix of a few colour patterns."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, 16, 16, 3), dtype=np.uint8)


def save_arrays(folder, counts: dict[str, int]):
    """``{name: count}`` -> ``folder/name`` holding :func:`images` of that count (seeds 1, 2, ... in order);
    returns ``folder``."""
    for seed, (name, count) in enumerate(counts.items(), start=1):
        np.save(folder / name, images(count, seed=seed))
    return folder


class RecordingImages(Dataset):
    """Images by index, recording which indices this process read; ``bad`` raises like a corrupt file."""

    def __init__(self, pixels: np.ndarray, bad: int | None = None) -> None:
        self.pixels = pixels
        self.bad = bad
        self.read: list[int] = []

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, index: int) -> torch.Tensor:
        self.read.append(int(index))
        if index == self.bad:
            raise ImageDecodeError(f"image-{index}.png is truncated (corrupt file read by this process only)")
        return torch.from_numpy(self.pixels[index]).permute(2, 0, 1)


def result_fields(result) -> dict:
    return {"mean": result.mean, "std": result.std, "split_scores": list(result.split_scores),
            "num_images": result.num_images, "order": result.order, "processes": result.processes,
            "exchanged_bytes": result.exchanged_bytes, "split_size": result.split_size,
            "is_infinity": result.is_infinity, "is_n": [list(point) for point in result.is_n]}


def worker(rank: int, world: int, rendezvous: str, out: str, scenario: str, params: dict) -> None:
    """Join the group, run ``scenario``, write its outcome (or its error) for this rank."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    outcome: dict = {"rank": rank}
    begin = time.perf_counter()
    try:
        outcome.update(SCENARIOS[scenario](rank, world, params))
    except Exception as error:  # noqa: BLE001 - the test reads it
        outcome["error"] = f"{type(error).__name__}: {error}"
        outcome["traceback"] = traceback.format_exc()
    outcome["seconds"] = time.perf_counter() - begin
    Path(out, f"rank-{rank}.json").write_text(json.dumps(outcome))
    # Tear down only when every rank is done with the group: a rank closing its Gloo connections while
    # a peer's last messages are still in flight can abort that peer (SIGABRT, "terminate called
    # without an active exception"). A rank whose peers are gone stops waiting after the timeout.
    try:
        dist.monitored_barrier(timeout=datetime.timedelta(seconds=60))
    except RuntimeError:
        pass
    dist.destroy_process_group()


def api(rank: int, world: int, params: dict) -> dict:
    from inception_score import inception_score

    data = RecordingImages(images(params["count"]), params.get("bad"))
    result = inception_score(data, splits=params.get("splits"), split_size=params.get("split_size"),
                             batch_size=params["batch_size"], shuffle=params.get("shuffle", False),
                             scorer=PixelProjection(), infinity=params.get("infinity", False))
    return {**result_fields(result), "read": sorted(data.read)}


def api_array(rank: int, world: int, params: dict) -> dict:
    from inception_score import inception_score

    result = inception_score(images(params["count"]), splits=params["splits"], batch_size=params["batch_size"],
                             shuffle=params.get("shuffle", False), scorer=PixelProjection())
    return result_fields(result)


def metric_sampler(rank: int, world: int, params: dict) -> dict:
    """A DistributedSampler loop (its padding included) feeding the metric object with indices."""
    from torch.utils.data import DataLoader, DistributedSampler

    from inception_score import InceptionScore

    pixels = images(params["count"])
    sampler = DistributedSampler(range(len(pixels)), num_replicas=world, rank=rank,
                                 shuffle=params.get("sampler_shuffle", False), seed=5)
    metric = InceptionScore(splits=params.get("splits"), split_size=params.get("split_size"), num_images=len(pixels),
                            shuffle=params.get("shuffle", False), scorer=PixelProjection(), batch_size=3,
                            infinity=params.get("infinity", False))
    seen = []
    for batch in DataLoader(list(sampler), batch_size=params["batch_size"]):
        indices = batch.numpy()
        seen += indices.tolist()
        metric.update(pixels[indices], indices=indices)
    return {**result_fields(metric.compute()), "sampled": seen}


def metric_rank_major(rank: int, world: int, params: dict) -> dict:
    """No indices: each rank feeds its own images; the order is rank-major."""
    from inception_score import InceptionScore

    pixels = images(params["counts"][rank], seed=100 + rank)
    metric = InceptionScore(splits=params.get("splits"), split_size=params.get("split_size"), scorer=PixelProjection(),
                            shuffle=params.get("shuffle", False))
    for start in range(0, len(pixels), 4):
        metric.update(pixels[start : start + 4])
    return result_fields(metric.compute())


def torchmetrics_adapter(rank: int, world: int, params: dict) -> dict:
    """The torchmetrics adapter in a DistributedSampler loop: torchmetrics syncs its sum states. Then a
    second epoch (other images) without reset(), and one after reset()."""
    from torch.utils.data import DistributedSampler

    from inception_score.errors import InputError
    from inception_score.torchmetrics_adapter import InceptionScoreMetric

    sampler = list(DistributedSampler(range(params["count"]), num_replicas=world, rank=rank, shuffle=False))
    metric = InceptionScoreMetric(splits=params["splits"], num_images=params["count"], scorer=PixelProjection())

    def epoch(seed: int) -> None:
        pixels = images(params["count"], seed)
        for start in range(0, len(sampler), 4):
            metric.update(torch.from_numpy(pixels[np.array(sampler[start : start + 4])]))

    epoch(0)
    outcome = {"mean": float(metric.compute()), "std": metric.result.std, "processes": metric.result.processes,
               "state_bytes": metric.state_bytes()}
    epoch(1)
    try:
        metric.compute()
    except InputError as error:
        outcome["without_reset"] = str(error)
    metric.reset()
    epoch(1)
    outcome["after_reset"] = float(metric.compute())
    return outcome


def metric_two_epochs(rank: int, world: int, params: dict) -> dict:
    """The metric object given a second epoch without reset(): with a DistributedSampler's indices, then
    without indices but with num_images announced. What compute() raised in each case."""
    from torch.utils.data import DistributedSampler

    from inception_score import InceptionScore

    pixels = images(params["count"])
    sampler = np.array(list(DistributedSampler(range(len(pixels)), num_replicas=world, rank=rank, shuffle=False)))
    raised = {}
    for indices in (True, False):
        metric = InceptionScore(splits=10, num_images=len(pixels), scorer=PixelProjection())
        for _ in range(2):
            if indices:
                metric.update(pixels[sampler], indices=sampler)
            else:
                metric.update(pixels[rank::world])  # each image once, no padding
        try:
            metric.compute()
        except Exception as error:  # noqa: BLE001 - the test reads it
            raised["indices" if indices else "plain"] = f"{type(error).__name__}: {error}"
    return raised


def evaluation_fields(result) -> dict:
    """The evaluation's numbers, KID's std and the counts, as JSON."""
    evaluation = result.evaluation
    return {"fid": evaluation.fid, "sfid": evaluation.sfid, "kid": evaluation.kid.mean, "kid_std": evaluation.kid.std,
            "precision": evaluation.precision, "recall": evaluation.recall, "sample_count": evaluation.sample_count,
            "reference_count": evaluation.reference_count, "cached": evaluation.reference.get("cached"),
            "mean": result.mean, "split_scores": list(result.split_scores), "processes": result.processes}


def evaluation(rank: int, world: int, params: dict) -> dict:
    """Every metric against a reference of images, shared out like the samples: the samples' features saved
    by rank 0, the reference's cached (in ``params["cache"]``) and read back by a second call."""
    import os
    import warnings

    from inception_score import inception_score

    os.environ["INCEPTION_SCORE_CACHE"] = params["cache"]
    scorer = PixelFeatures()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the few-images notes: in the result
        first = inception_score(images(params["count"], seed=1), reference=images(params["reference"], seed=2),
                                splits=params["splits"], kid_subsets=params["kid_subsets"],
                                kid_subset_size=params["kid_subset_size"], batch_size=params["batch_size"],
                                scorer=scorer, save_features=params["save_features"])
        again = inception_score(images(params["count"], seed=1), reference=images(params["reference"], seed=2),
                                splits=params["splits"], kid_subsets=params["kid_subsets"],
                                kid_subset_size=params["kid_subset_size"], batch_size=params["batch_size"],
                                scorer=scorer)
    return {**evaluation_fields(first), "again": evaluation_fields(again), "through": scorer.images_through}


SCENARIOS = {"evaluation": evaluation, "api": api, "api_array": api_array, "metric_sampler": metric_sampler,
             "metric_rank_major": metric_rank_major, "torchmetrics_adapter": torchmetrics_adapter,
             "metric_two_epochs": metric_two_epochs}
