"""Sharpness-Aware Minimization (Foret et al., "Sharpness-Aware Minimization for
Efficiently Improving Generalization", ICLR 2021).

Why: forgery detectors overfit to the artefacts of the manipulations they were
trained on; SAM prefers flat minima, which tend to transfer better. Each step
takes the gradient g at w, moves to the nearby worst case w + rho * g / ||g||,
takes the gradient there, returns to w, and lets the base optimizer (SGD or
AdamW) apply that second gradient. Twice the forward/backward cost per step.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch


class SAM(torch.optim.Optimizer):
    """SAM around a base optimizer class; `step(closure)` needs a closure that zeroes
    the gradients, recomputes the loss at the current (perturbed) weights, calls
    backward and returns the loss. The gradients at w must be there already."""

    def __init__(self, params, base: type[torch.optim.Optimizer], rho: float = 0.05, **base_kwargs):
        if rho <= 0:
            raise ValueError(f"SAM's rho must be > 0, got {rho}")
        super().__init__(params, dict(rho=rho, **base_kwargs))
        self.base = base(self.param_groups, **base_kwargs)
        # One list of groups for both, so LR schedulers acting on SAM reach the base.
        self.param_groups = self.base.param_groups
        self.defaults.update(self.base.defaults)
        self._perturbation: dict[torch.Tensor, torch.Tensor] = {}

    @torch.no_grad()
    def _grad_norm(self) -> torch.Tensor:
        norms = [p.grad.detach().float().norm(2) for g in self.param_groups for p in g["params"] if p.grad is not None]
        if not norms:
            return torch.tensor(0.0)
        device = norms[0].device
        return torch.stack([n.to(device) for n in norms]).norm(2)

    @torch.no_grad()
    def first_step(self) -> None:
        """Move to w + e(w), e = rho * g / ||g||."""
        grad_norm = self._grad_norm()
        for group in self.param_groups:
            scale = group["rho"] / (grad_norm + 1e-12)
            for p in group["params"]:
                if p.grad is None:
                    continue
                e = (p.grad * scale.to(p.device)).to(p.dtype)
                p.add_(e)
                self._perturbation[p] = e

    @torch.no_grad()
    def second_step(self) -> None:
        """Back to w, then the base optimizer's update with the gradient taken at w + e(w)."""
        for p, e in self._perturbation.items():
            p.sub_(e)
        self._perturbation = {}
        self.base.step()

    def step(self, closure: Optional[Callable[[], torch.Tensor]] = None):
        if closure is None:
            raise RuntimeError("SAM.step needs a closure that recomputes the loss and its gradients")
        self.first_step()
        with torch.enable_grad():
            loss = closure()
        self.second_step()
        return loss

    def state_dict(self):
        return self.base.state_dict()

    def load_state_dict(self, state_dict) -> None:
        self.base.load_state_dict(state_dict)
        self.param_groups = self.base.param_groups
