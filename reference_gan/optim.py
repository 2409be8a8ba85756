"""The optimiser of the original code (openai/improved-gan's ``nn.adam_updates``), which differs from
``torch.optim.Adam`` in where its epsilon goes."""

from __future__ import annotations

import torch


class Adam(torch.optim.Optimizer):
    """Adam as the original code's ``adam_updates``: ``p -= lr * m_hat / sqrt(v_hat + 1e-8)``.

    The epsilon sits inside the square root, so parameters with tiny gradients move much less than
    with ``torch.optim.Adam`` (whose epsilon is added after it); measured to matter here (MNIST).
    """

    def __init__(self, params, lr: float, betas: tuple[float, float]) -> None:
        super().__init__(params, {"lr": lr, "betas": betas})

    @torch.no_grad()
    def step(self) -> None:  # type: ignore[override]
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p in params:
                if not self.state[p]:
                    self.state[p].update(step=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                self.state[p]["step"] += 1
            grads = [p.grad for p in params]
            m = [self.state[p]["m"] for p in params]
            v = [self.state[p]["v"] for p in params]
            t = self.state[params[0]]["step"]  # all parameters of a group step together
            torch._foreach_lerp_(m, grads, 1 - beta1)  # m <- beta1 m + (1 - beta1) g
            torch._foreach_mul_(v, beta2)
            torch._foreach_addcmul_(v, grads, grads, value=1 - beta2)
            denominator = torch._foreach_div(v, 1 - beta2**t)
            torch._foreach_add_(denominator, 1e-8)
            torch._foreach_sqrt_(denominator)
            torch._foreach_addcdiv_(params, m, denominator, value=-group["lr"] / (1 - beta1**t))
