"""The answer's JSON Schema, enforced token by token on the embedded model
with llguidance (``pip install llguidance``, a wheel; part of the ``local``
extra).

llama-cpp-python's own grammar sampler checks every token of the vocabulary
against the grammar at every step: with Gemma's 262,144 tokens that costs
three quarters of the machine (12.6 tokens/s against 45 unconstrained, same
prompts, same run).  llguidance computes the set of allowed tokens with a
lexer/parser split in tens of microseconds, and its mask is applied as a
logits processor: 43 tokens/s, 0.96x unconstrained, every answer valid
(``make bench``: ``local``).  xgrammar and outlines-core are the other
engines made for this; llguidance was chosen for being a plain wheel with a
llama.cpp tokenizer bridge, and for its JSON Schema coverage.

A ``Guide`` is one generation's: it consumes each token the model produced
and masks every token the schema does not allow next.  The tokenizer bridge
is built once per model (about two seconds for Gemma's vocabulary) and each
schema is compiled once.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..errors import UsageError

# JSON spelled as the worked examples of the prompt spell it, and no other
# white space: a base model given room for it pads the answer with blank
# lines until max_tokens.
JSON_OPTIONS = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


class Guides:
    """Compiled schemas for one model's vocabulary."""

    def __init__(self, llama: Any):
        try:
            import llguidance
        except ImportError:
            raise UsageError(
                "the local model needs llguidance: run `make install`, or"
                " `pip install 'rolebatch[local]'`"
            ) from None
        self._llguidance = llguidance
        self._tokenizer = _tokenizer(llguidance, llama)
        self._vocab = llama.n_vocab()
        self._grammars: dict[str, str] = {}

    def guide(self, schema: dict[str, Any]) -> Guide:
        """A fresh guide for one generation under ``schema``."""
        key = json.dumps(schema, sort_keys=True)
        grammar = self._grammars.get(key)
        if grammar is None:
            grammar = self._llguidance.LLMatcher.grammar_from_json_schema(
                key, overrides=JSON_OPTIONS
            )
            problem = self._llguidance.LLMatcher.validate_grammar(grammar, self._tokenizer)
            if problem:
                raise UsageError(f"the local model cannot follow the response schema: {problem}")
            self._grammars[key] = grammar
        matcher = self._llguidance.LLMatcher(self._tokenizer, grammar, log_level=0)
        return Guide(matcher, self._vocab)


class Guide:
    """A llama-cpp-python logits processor: the schema's next allowed tokens."""

    def __init__(self, matcher: Any, vocab: int):
        self.matcher = matcher
        self._vocab = vocab
        self._seen: int | None = None  # tokens of the prompt and answer consumed
        words = (vocab + 31) // 32
        self._mask = np.full(words, -1, dtype=np.int32)

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self._seen is None:
            self._seen = len(input_ids)  # the prompt: not the grammar's business
        elif len(input_ids) > self._seen:
            self.matcher.consume_tokens([int(t) for t in input_ids[self._seen :]])
            self._seen = len(input_ids)
        self.matcher.unsafe_compute_mask_ptr(self._mask.ctypes.data, self._mask.nbytes)
        allowed = np.unpackbits(self._mask.view(np.uint8), bitorder="little")[: len(scores)]
        scores[allowed == 0] = -np.inf
        return scores

    @property
    def complete(self) -> bool:
        """Whether what was generated is a whole answer the schema accepts."""
        return self.matcher.is_accepting() and not self.matcher.is_error()


def _tokenizer(llguidance: Any, llama: Any) -> Any:
    """llguidance's view of the model's vocabulary: every token's bytes, the
    control tokens marked (a 0xFF byte first) so that no JSON can contain them,
    and llama.cpp's own tokenizer for the strings a grammar holds."""
    import ctypes

    import llama_cpp

    vocab = llama._model.vocab
    size = 1024
    buffer = ctypes.create_string_buffer(size)
    control = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL
    pieces = []
    for token in range(llama_cpp.llama_vocab_n_tokens(vocab)):
        length = llama_cpp.llama_token_to_piece(vocab, token, buffer, size, 0, True)
        if length < 0:
            raise UsageError(f"the local model's token {token} is longer than {size} bytes")
        piece = buffer.raw[:length]
        attributes = llama_cpp.llama_vocab_get_attr(vocab, token)
        user_control = (
            attributes & llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
            and piece.startswith(b"<")
            and piece.endswith(b">")
        )
        if attributes & control or user_control:
            piece = b"\xff" + piece
        pieces.append(piece)
    tokenize = ctypes.cast(llama_cpp.llama_cpp._lib.llama_tokenize, ctypes.c_void_p).value
    return llguidance.LLTokenizer.from_llamacpp(
        tokens=pieces,
        vocab_ptr=vocab,
        tokenize_fptr=tokenize,
        eos_token=llama_cpp.llama_vocab_eos(vocab),
    )
