"""Checkpoints: a state_dict plus the plain data needed to rebuild and use the model.

Saved with ``torch.save`` as a dict of tensors, strings, numbers and lists only, and
loaded with ``torch.load(weights_only=True)`` — never a pickled module (the authors' code
pickled whole modules). The architecture JSON document travels inside, so a checkpoint
alone rebuilds the model: ``load_checkpoint(path).model``.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from emodarts_nni.common.errors import ArchitectureError, ConfigError, EmodartsError
from emodarts_nni.common.files import atomic_path
from emodarts_nni.space.architecture import ArchitectureFile, freeze, read_architecture

CHECKPOINT_FORMAT = "emodarts-checkpoint/1"


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (eval mode) and what it needs at inference time."""

    model: nn.Module
    architecture: ArchitectureFile | None  # None for a hand-designed baseline
    class_names: list[str]
    features: dict[str, Any]
    normalisation: dict[str, list[float]] | None
    extra: dict[str, Any] = field(default_factory=dict)

    def normalise(
        self, x: torch.Tensor, speaker: dict[str, list[float]] | None = None
    ) -> torch.Tensor:
        """Apply the feature normalisation (if any) to ``(B, n_mfcc, T)`` maps.

        ``features.normalisation: speaker`` models were trained on maps z-scored with each
        speaker's own statistics: pass that speaker's ``{"mean": [...], "std": [...]}``
        (:func:`emodarts_nni.data.features.fit_normalisation` over the speaker's
        utterances) as ``speaker``; without it the stored training statistics are the
        fallback. ``speaker`` is ignored for the other modes."""
        stats = self.normalisation
        if speaker is not None and self.features.get("normalisation") == "speaker":
            stats = speaker
        if not stats:
            return x
        mean = torch.tensor(stats["mean"], dtype=x.dtype).view(1, -1, 1)
        std = torch.tensor(stats["std"], dtype=x.dtype).view(1, -1, 1)
        return (x - mean) / std


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    architecture: ArchitectureFile | None,
    *,
    baseline: dict[str, Any] | None = None,
    class_names: list[str],
    features: dict[str, Any],
    normalisation: dict[str, list[float]] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (temp file + rename).

    The model is described by ``architecture`` (a searched model) or ``baseline``
    (``{"name": ..., **build_baseline kwargs}`` for a hand-designed one).
    """
    if (architecture is None) == (baseline is None):
        raise ValueError("give exactly one of architecture and baseline")
    path = Path(path)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "architecture": architecture.to_dict() if architecture is not None else None,
        "baseline": dict(baseline) if baseline is not None else None,
        "class_names": list(class_names),
        "features": dict(features),
        "normalisation": normalisation,
        "extra": dict(extra or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> Checkpoint:
    """Load a checkpoint safely (``weights_only=True``) and rebuild its model."""
    path = Path(path)
    if not path.is_file():
        raise EmodartsError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt file, or a pickle with code in it
        raise EmodartsError(
            f"{path}: not a readable emodarts checkpoint ({type(exc).__name__}: {_reason(exc)})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise EmodartsError(
            f"{path}: not an emodarts checkpoint (format {CHECKPOINT_FORMAT!r} expected)"
        )
    _validate_payload(payload, path)
    for name, tensor in payload["state_dict"].items():  # NaN weights predict "neutral", nan
        if (
            torch.is_tensor(tensor)
            and tensor.is_floating_point()
            and not bool(torch.isfinite(tensor).all())
        ):
            raise EmodartsError(f"{path}: non-finite weights in {name}")
    class_names = list(payload["class_names"])
    if payload.get("architecture") is not None:
        try:
            architecture = read_architecture(payload["architecture"])
        except ArchitectureError as exc:
            raise EmodartsError(f"{path}: {exc}") from None
        classes_of_model = architecture.space["n_classes"]
        if classes_of_model != len(class_names):
            raise EmodartsError(
                f"{path}: the architecture has n_classes {classes_of_model} "
                f"but the checkpoint names {len(class_names)} classes"
            )
        model = freeze(architecture.space, architecture.architecture)
    else:
        from emodarts_nni.training.baselines import build_baseline

        architecture = None
        spec = dict(payload["baseline"])
        if spec.get("n_classes") != len(class_names):
            raise EmodartsError(
                f"{path}: the baseline has n_classes {spec.get('n_classes')!r} "
                f"but the checkpoint names {len(class_names)} classes"
            )
        try:
            model = build_baseline(spec.pop("name"), **spec)
        except ConfigError as exc:
            raise EmodartsError(f"{path}: {exc}") from None
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        message = " ".join(str(exc).split())[:500]  # torch lists mismatches on many lines
        raise EmodartsError(
            f"{path}: weights do not match the architecture inside it: {message}"
        ) from None
    model.eval()
    return Checkpoint(
        model=model,
        architecture=architecture,
        class_names=class_names,
        features=dict(payload["features"]),
        normalisation=payload.get("normalisation"),
        extra=dict(payload.get("extra") or {}),
    )


def _validate_payload(payload: dict[str, Any], path: Path) -> None:
    """Check every field's type before anything is built; one-line errors naming it."""

    def fail(field_name: str, expected: str) -> EmodartsError:
        got = type(payload.get(field_name)).__name__
        return EmodartsError(f"{path}: field {field_name!r} must be {expected}, got {got}")

    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise fail("state_dict", "a mapping of parameter names to tensors")
    names = payload.get("class_names")
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(n, str) for n in names)
        or len(set(names)) != len(names)
    ):
        raise fail("class_names", "a non-empty list of distinct class names")
    if not isinstance(payload.get("features"), dict):
        raise fail("features", "a mapping of feature settings")
    normalisation = payload.get("normalisation")
    if normalisation is not None and not (
        isinstance(normalisation, dict)
        and all(_numbers(normalisation.get(key)) for key in ("mean", "std"))
        and len(normalisation["mean"]) == len(normalisation["std"])
    ):
        raise fail("normalisation", "null or {mean: [numbers], std: [numbers]} of equal length")
    if payload.get("extra") is not None and not isinstance(payload["extra"], dict):
        raise fail("extra", "a mapping")
    architecture, baseline = payload.get("architecture"), payload.get("baseline")
    if architecture is not None and not isinstance(architecture, dict):
        raise fail("architecture", "an architecture JSON object")
    if architecture is None:
        if baseline is None:
            raise EmodartsError(f"{path}: holds neither an architecture nor a baseline")
        if not isinstance(baseline, dict) or not isinstance(baseline.get("name"), str):
            raise fail("baseline", "a mapping with a baseline 'name'")
        from emodarts_nni.training.baselines import build_baseline

        allowed = set(inspect.signature(build_baseline).parameters)
        unknown = sorted(str(key)[:40] for key in baseline if key not in allowed)
        if unknown:
            raise EmodartsError(f"{path}: field 'baseline' has unknown key(s) {unknown[:5]}")


def _reason(exc: BaseException) -> str:
    """The gist of a ``torch.load`` failure on one line (torch's own text runs to a page)."""
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:  # skip the weights_only migration notice around the actual reason
        text = text.split(marker, 1)[1].split("Check the documentation", 1)[0]
    return " ".join(text.split())[:300]


def _numbers(values: Any) -> bool:
    return isinstance(values, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
    )
