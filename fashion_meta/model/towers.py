"""Two-tower recommender: a customer tower and an article tower whose outputs meet in a dot product.

Why this shape fits cold start and nightly batch scoring:

- An article is represented by its attributes and its text vector (from the pretrained text encoder), never by
  an id embedding, so an article that has never been sold, or a category launched yesterday, still gets a
  vector. Likewise a customer is her numeric features plus a pooled history vector, so a customer of a new
  user group is scored from what is known about her, not from an id.
- The two towers never look at each other: customers and articles are encoded once each
  (``encode_customers`` -> [C, d+1], ``encode_articles`` -> [A, d+1]) and all C x A scores are one matrix
  product. The article bias rides along as the last coordinate (customer side 1, article side b_a), so the
  product already includes it.
- Support evidence (``evidence.py``): after adaptation, the article side also sees how often the support set's
  purchases name the article and its product, weighted by ``head.support_evidence`` (meta-learned from a prior of
  0.5 per log-count; without a support set the evidence is zero, and so is the term). It rides in the bias
  coordinate too, so batch scoring stays one matrix product per (category, parameter set). A new user group's
  adaptation can do without (``ModelConfig.group_evidence = False``: its K purchases spread over every category,
  one or two per article); on the development seed that changed little (RESULTS.md), so the default keeps it.
- Parameters are split by name: ``lower.*`` (the MLP bodies, general-purpose representations) and ``head.*``
  (the last linear maps and the bias). Head-only adaptation (ANIL) and transfer fine-tuning with frozen lower
  layers select parameters by these prefixes; adaptation moves only a few thousand numbers.

Loss: binary cross-entropy on the task rows' labels, optionally plus (``softmax_weight``, off in the product's
defaults) a within-group softmax term in pretraining and in the meta-learners' query loss (``group_softmax_loss``). Task
datasets already contain explicit sampled negatives (same customer, category and day), so BCE uses them directly
and stays well-defined on a support set of a handful of rows (K shots), where a softmax would lose every positive
without negatives (a launch-day purchase has none): the support (inner-loop and fine-tuning) loss stays BCE. The
softmax term trains what the ranking needs, each purchase above the articles it was bought instead of; measured
at weight 1.0 it helped the development seed and hurt the kept seeds (benchmarks/RESULTS.md), so it is off by
default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from .evidence import EVIDENCE_DIM

EVIDENCE_INIT = 0.5

LOWER_PREFIX = "lower."
HEAD_PREFIX = "head."
LOWER_PREFIXES = (LOWER_PREFIX,)
HEAD_PREFIXES = (HEAD_PREFIX,)

Params = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class ModelConfig:
    """Tower shape: hidden widths of the lower MLP, output dimension d, whether articles get a bias."""

    hidden: tuple[int, ...] = (128,)
    dim: int = 32
    bias: bool = True
    evidence: bool = True  # head.support_evidence: weights of the support evidence (evidence.py)
    # also give a new user group's adaptation its support evidence (its K purchases spread over every category)
    group_evidence: bool = True

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelConfig:
        # models saved before support evidence existed have no such weights; models saved before group_evidence
        # existed gave every unit its evidence
        return cls(hidden=tuple(int(h) for h in d["hidden"]), dim=int(d["dim"]), bias=bool(d["bias"]),
                   evidence=bool(d.get("evidence", False)), group_evidence=bool(d.get("group_evidence", True)))

    def uses_evidence(self, *, group_unit: bool) -> bool:
        """Whether adapting to a unit (a new category, or a new user group when ``group_unit``) uses support evidence."""
        return self.evidence and (self.group_evidence or not group_unit)


def _mlp(in_dim: int, hidden: Sequence[int]) -> nn.Module:
    if not hidden:
        return nn.Identity()
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden:
        layers += [nn.Linear(width, h), nn.SiLU()]  # smooth, so second-order MAML terms are informative
        width = h
    return nn.Sequential(*layers)


class TwoTower(nn.Module):
    """Customer and article MLP towers; score = <customer tower, article tower> + article bias."""

    def __init__(self, customer_in: int, article_in: int, config: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        self.customer_in = int(customer_in)
        self.article_in = int(article_in)
        self.config = config
        width_c = config.hidden[-1] if config.hidden else customer_in
        width_a = config.hidden[-1] if config.hidden else article_in
        self.lower = nn.ModuleDict({"customer": _mlp(customer_in, config.hidden),
                                    "article": _mlp(article_in, config.hidden)})
        heads: dict[str, nn.Module] = {"customer": nn.Linear(width_c, config.dim),
                                       "article": nn.Linear(width_a, config.dim)}
        if config.bias:
            heads["article_bias"] = nn.Linear(width_a, 1)
        if config.evidence:
            heads["support_evidence"] = nn.Linear(EVIDENCE_DIM, 1, bias=False)
            # a prior of one log-count per purchase (article and product halves): meta-training moves it, but at the
            # outer learning rate a zero start could not reach the scale of a launch's evidence (measured: ~0.25)
            nn.init.constant_(heads["support_evidence"].weight, EVIDENCE_INIT)
        self.head = nn.ModuleDict(heads)

    @property
    def embedding_dim(self) -> int:
        """Width of encode_customers / encode_articles outputs (d plus the bias coordinate)."""
        return self.config.dim + 1

    def architecture(self) -> dict[str, Any]:
        """Everything needed to rebuild an identical, untrained module."""
        return {"kind": "two_tower/1", "customer_in": self.customer_in, "article_in": self.article_in,
                **self.config.to_dict()}

    @classmethod
    def from_architecture(cls, arch: Mapping[str, Any]) -> TwoTower:
        if arch.get("kind") != "two_tower/1":
            raise ValueError(f"unknown model kind {arch.get('kind')!r}")
        return cls(int(arch["customer_in"]), int(arch["article_in"]), ModelConfig.from_dict(arch))

    def forward(self, customer_x: torch.Tensor, article_x: torch.Tensor,
                evidence: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of row-aligned (customer, article) pairs: [N]; ``evidence`` [N, 2] of a support set, or None."""
        u = self.head["customer"](self.lower["customer"](customer_x))
        h = self.lower["article"](article_x)
        logits = (u * self.head["article"](h)).sum(-1)
        if self.config.bias:
            logits = logits + self.head["article_bias"](h).squeeze(-1)
        if evidence is not None and self.config.evidence:
            logits = logits + self.head["support_evidence"](evidence).squeeze(-1)
        return logits

    def _call(self, path: str, params: Params | None, x: torch.Tensor) -> torch.Tensor:
        module = self.get_submodule(path)
        if params is None:
            return module(x)
        prefix = path + "."
        sub = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}
        return functional_call(module, sub, (x,))

    def encode_customers(self, params: Params | None, x: torch.Tensor) -> torch.Tensor:
        """Customer embeddings [C, d+1] under ``params`` (None: the module's own); last coordinate is 1."""
        u = self._call("head.customer", params, self._call("lower.customer", params, x))
        return torch.cat([u, torch.ones_like(u[:, :1])], dim=1)

    def encode_articles(self, params: Params | None, x: torch.Tensor,
                        evidence: torch.Tensor | None = None) -> torch.Tensor:
        """Article embeddings [A, d+1] under ``params``; last coordinate is the article bias (0 without) plus the
        weighted support evidence [A, 2] when given."""
        h = self._call("lower.article", params, x)
        v = self._call("head.article", params, h)
        b = self._call("head.article_bias", params, h) if self.config.bias else torch.zeros_like(v[:, :1])
        if evidence is not None and self.config.evidence:
            b = b + self._call("head.support_evidence", params, evidence.to(b.dtype))
        return torch.cat([v, b], dim=1)

    def score(self, params: Params | None, customer_x: torch.Tensor, article_x: torch.Tensor,
              evidence: torch.Tensor | None = None) -> torch.Tensor:
        """All-pairs scores [C, A] as one matrix product."""
        return self.encode_customers(params, customer_x) @ self.encode_articles(params, article_x, evidence).T


def build_model(customer_in: int, article_in: int, config: ModelConfig = ModelConfig(), *,
                seed: int = 0) -> TwoTower:
    """A freshly initialised model; the initialisation is a function of ``seed`` only."""
    devices = []  # fork_rng without touching CUDA state
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return TwoTower(customer_in, article_in, config)


def parameter_names(model: nn.Module, which: str | Sequence[str] = "all") -> list[str]:
    """Names of the parameters to adapt: "all", "head", "lower", or explicit name prefixes."""
    names = [n for n, _ in model.named_parameters()]
    if which == "all":
        return names
    if isinstance(which, str):
        prefixes = {"head": HEAD_PREFIXES, "lower": LOWER_PREFIXES}.get(which)
        if prefixes is None:
            raise ValueError(f"unknown parameter selection {which!r} (all, head, lower or prefixes)")
    else:
        prefixes = tuple(which)
    selected = [n for n in names if n.startswith(tuple(prefixes))]
    if not selected:
        raise ValueError(f"no parameters match {which!r}")
    return selected


def pair_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of pair logits against 0/1 labels."""
    return F.binary_cross_entropy_with_logits(logits, labels)


def training_loss(logits: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor | None,
                  softmax_weight: float = 0.0) -> torch.Tensor:
    """The loss pretraining and the meta-learners' query minimise: ``pair_loss`` plus ``softmax_weight`` times
    ``group_softmax_loss`` (``groups`` is needed only when the weight is not 0)."""
    loss = pair_loss(logits, labels)
    if softmax_weight:
        if groups is None:
            raise ValueError("the softmax term needs each row's (customer, day) group")
        loss = loss + softmax_weight * group_softmax_loss(logits, labels, groups)
    return loss


def check_softmax_weight(weight: float) -> None:
    """Refuse a softmax weight that is negative or not a finite number (ValueError)."""
    if not (weight >= 0 and math.isfinite(weight)):
        raise ValueError(f"softmax_weight must be a finite number >= 0, got {weight!r}")


def group_softmax_loss(logits: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Mean over purchases of -log softmax of the purchase against the negatives of its group.

    ``groups`` [N] int64: a row's (customer, day) group (``Batch.groups``). Each positive competes with its group's
    negatives only (not with the other purchases of the group); a positive whose group has no negative (a launch-day
    purchase) has nothing to rank against and is left out. Zero, still connected to ``logits``, when no positive has
    a negative. Twice differentiable (exp, log and scatter-add), so it serves as a second-order MAML outer loss.
    """
    if logits.numel() == 0:
        return logits.sum()
    n_groups = int(groups.max().item()) + 1
    positive = labels > 0.5
    # per-group shift for stability (a constant per group: it leaves the loss and its gradients unchanged)
    shift = torch.full((n_groups,), -torch.inf, dtype=logits.dtype, device=logits.device).scatter_reduce(
        0, groups, logits.detach(), reduce="amax")
    shifted = logits - shift[groups]
    negatives = torch.zeros(n_groups, dtype=logits.dtype, device=logits.device).index_add(
        0, groups, torch.where(positive, torch.zeros_like(shifted), shifted.exp()))
    # rivals by count, not by the sum: a negative far below its group's best row can underflow to 0 yet be there
    n_negatives = torch.zeros(n_groups, dtype=torch.int64, device=logits.device).index_add(
        0, groups, (~positive).to(torch.int64))
    has_rival = positive & (n_negatives[groups] > 0)
    if not bool(has_rival.any()):
        return (logits * 0.0).sum()
    pos_shifted = shifted[has_rival]
    rivals = negatives[groups[has_rival]]
    return (torch.log(pos_shifted.exp() + rivals) - pos_shifted).mean()
