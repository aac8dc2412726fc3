"""Tiny real BERT models for reader mechanics tests (no hub, sub-second).

`wired_model` builds a BERT with no transformer layers whose QA head reads one embedding dimension for
"start" and one for "end": tokens listed in `start_ids` get a high start logit, `end_ids` a high end
logit, every other token 0. The reader's answer is then known in advance, which lets the tests check
chunking, offsets and ranking exactly, not just "something came out".
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertForQuestionAnswering, PreTrainedTokenizerFast

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]


def small_vocab_tokenizer(corpus: str) -> PreTrainedTokenizerFast:
    """A WordPiece tokenizer whose vocabulary is the words and characters of `corpus`."""
    words = sorted(set(re.findall(r"\w+|[^\w\s]", corpus.lower())) | set(corpus.lower()) - {" ", "\n"})
    vocab = {tok: i for i, tok in enumerate(SPECIALS + [w for w in words if w not in SPECIALS])}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=False)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        model_max_length=512,
    )


def random_model(
    vocab_size: int, layers: int = 2, seed: int = 0, positions: int = 512
) -> BertForQuestionAnswering:
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=positions,
    )
    return BertForQuestionAnswering(cfg).eval()


def wired_model(
    vocab_size: int, start_ids: set[int], end_ids: set[int], cls_id: int | None = None, strength: float = 10.0
) -> BertForQuestionAnswering:
    cfg = BertConfig(
        vocab_size=vocab_size,
        hidden_size=8,
        num_hidden_layers=0,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=512,
    )
    model = BertForQuestionAnswering(cfg).eval()
    with torch.no_grad():
        emb = model.bert.embeddings
        words = emb.word_embeddings.weight
        words.zero_()
        words[:, 2:] = torch.tensor(
            [1.0, -1.0, 1.0, -1.0, 1.0, -1.0]
        )  # zero mean: LayerNorm keeps dims 0/1 at 0
        for t in start_ids:
            words[t, 0] = 5.0
        for t in end_ids:
            words[t, 1] = 5.0
        if cls_id is not None:  # a model that believes no passage answers
            words[cls_id, 0] = words[cls_id, 1] = 50.0
        emb.position_embeddings.weight.zero_()
        emb.token_type_embeddings.weight.zero_()
        emb.LayerNorm.weight.fill_(1.0)
        emb.LayerNorm.bias.zero_()
        model.qa_outputs.weight.zero_()
        model.qa_outputs.bias.zero_()
        model.qa_outputs.weight[0, 0] = strength
        model.qa_outputs.weight[1, 1] = strength
    return model


def xlmr_tokenizer(tmp: Path) -> PreTrainedTokenizerFast:
    """The real multilingual-e5-small (XLM-R) tokenizer, from the registry package."""
    from transformers import AutoTokenizer

    from qa_engine.offline_build import TOKENIZER_FILE, TOKENIZER_PACKAGE, package_file

    tmp.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(package_file(TOKENIZER_PACKAGE, TOKENIZER_FILE), tmp / "tokenizer.json")
    (tmp / "tokenizer_config.json").write_text(
        '{"model_max_length": 512, "tokenizer_class": "XLMRobertaTokenizer"}'
    )
    return AutoTokenizer.from_pretrained(tmp)


def token_ids_at(tokenizer: object, question: str, text: str, start: int, end: int) -> tuple[int, int]:
    """Ids of the first and last context tokens overlapping text[start:end] (asserted unique in the
    passage, so a wired model can only point at this span)."""
    enc = tokenizer(question, text, return_offsets_mapping=True)
    seq = enc.sequence_ids(0)
    inside = [i for i, (s, e) in enumerate(enc["offset_mapping"]) if seq[i] == 1 and s < end and e > start]
    first, last = enc["input_ids"][inside[0]], enc["input_ids"][inside[-1]]
    context_ids = [t for t, s in zip(enc["input_ids"], seq, strict=True) if s == 1]
    assert context_ids.count(first) == 1 and context_ids.count(last) == 1, (
        "pick a span with unique edge tokens"
    )
    return first, last


def tiny_model_folder(folder: Path, words: str, seed: int = 0) -> Path:
    """A one-layer random model with a tokenizer of `words`, saved in `folder` (as a ranker or a reader)."""
    tok = small_vocab_tokenizer(words)
    random_model(len(tok), layers=1, seed=seed).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
