"""Prompts for the LLM tiers, kept as data files (one per grade scale) in ``prompts/``.

A prompt file is YAML with ``system``, ``user`` (a template with ``{grades}``, ``{query}`` and
``{item}``), ``grade_line`` (how one grade is described, with ``{token}`` and ``{name}``) and
``grade_tokens`` (one string per grade, worst first). The model's answer is a single grade
token; its next-token probabilities over the grade tokens are the tier's probabilities.

The shipped prompts put the fixed instructions and the grades first and the query and the
item last, so every prompt of a tier starts with the same **prefix** (everything before the
query). :class:`PromptBuilder` splits a rendered prompt there: the prefix's token ids are
computed once (and a local model computes its key/value cache once), and each pair adds its
**suffix**: the query (cut to ``max_query_tokens``) and the item text, cut to the tokens left
under ``max_length`` **by field** (:func:`fit_fields`: the catalog text is ``title | brand |
colour | ... | description``; short fields are kept whole, long ones are cut to an equal
share, the earlier fields first), then the chat template's closing tokens.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml
from jinja2 import TemplateError
from pydantic import BaseModel

from relforge.errors import ModelError
from relforge.grades import GradeScale

#: Separator of the catalog fields joined into ``text`` (see ``relforge.ingest``).
FIELD_SEPARATOR = " | "
_QUERY, _ITEM = "\ue000relforge-query\ue000", "\ue000relforge-item\ue000"


class Prompt(BaseModel):
    """A prompt template for one grade scale."""

    system: str
    user: str
    grade_line: str = "{token} = {name}"
    grade_tokens: list[str]

    def render_user(self, scale: GradeScale, query: str, item: str) -> str:
        if len(self.grade_tokens) != scale.n:
            raise ModelError(
                f"prompt has {len(self.grade_tokens)} grade tokens, scale `{scale.name}` has {scale.n} grades"
            )
        grades = "\n".join(
            self.grade_line.format(token=t, name=n) for t, n in zip(self.grade_tokens, scale.names)
        )
        return self.user.format(query=query, item=item, grades=grades)


@lru_cache(maxsize=16)
def load_prompt(scale_name: str, path: str | None = None) -> Prompt:
    """The prompt for a grade scale: ``path`` if given, else ``prompts/<scale_name>.yaml``,
    else the generic ``prompts/default.yaml``."""
    if path is not None:
        text = Path(path).read_text(encoding="utf-8")
    else:
        folder = resources.files("relforge.tiers") / "prompts"
        candidate = folder / f"{scale_name}.yaml"
        text = (candidate if candidate.is_file() else folder / "default.yaml").read_text(encoding="utf-8")
    return Prompt.model_validate(yaml.safe_load(text))


def render_prompt(tokenizer, scale: GradeScale, query: str, item: str, prompt: Prompt | None = None) -> str:
    """The full prompt text for one pair, through the tokenizer's chat template when it has one.

    The text ends where the model's answer (one grade token) begins.
    """
    prompt = prompt or load_prompt(scale.name)
    user = prompt.render_user(scale, query, item)
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": prompt.system}, {"role": "user", "content": user}]
        try:
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except (TemplateError, ValueError):  # no system role (e.g. Gemma): fold it into the user turn
            messages = [{"role": "user", "content": f"{prompt.system}\n\n{user}"}]
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return f"{prompt.system}\n\n{user}\nAnswer: "


def grade_token_ids(tokenizer, scale: GradeScale, prompt: Prompt | None = None) -> list[int]:
    """The token id of each grade token, checked to be single and distinct for this tokenizer.

    Raises:
        ModelError: naming the grade token that is not a single token, or the two that collide,
            or when the prompt has not one grade token per grade.
    """
    prompt = prompt or load_prompt(scale.name)
    if len(prompt.grade_tokens) != scale.n:
        raise ModelError(
            f"prompt has {len(prompt.grade_tokens)} grade tokens, scale `{scale.name}` has {scale.n} grades"
        )
    ids = []
    for token, name in zip(prompt.grade_tokens, scale.names):
        encoded = tokenizer.encode(token, add_special_tokens=False)
        if len(encoded) != 1:
            raise ModelError(
                f"grade token {token!r} (grade `{name}`) is {len(encoded)} tokens for this tokenizer, "
                "it must be exactly one; choose other grade_tokens in the prompt file"
            )
        ids.append(encoded[0])
    if len(set(ids)) != len(ids):
        raise ModelError(f"grade tokens {prompt.grade_tokens} map to colliding token ids {ids}")
    return ids


def _adds_bos(tokenizer) -> bool:
    """Whether the tokenizer puts its BOS token in front of a text by itself."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return False
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return bool(ids) and ids[0] == bos


def prompt_token_ids(tokenizer, text: str) -> list[int]:
    """The token ids a model reads for a rendered prompt.

    The chat template's own special tokens are kept as written; the tokenizer's BOS is added
    only where the tokenizer adds one and the text does not already start with it (so a
    template that writes ``<bos>`` does not get two); no EOS is ever appended.
    """
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    bos = getattr(tokenizer, "bos_token_id", None)
    if _adds_bos(tokenizer) and not (ids and ids[0] == bos):
        ids = [bos, *ids]
    return ids


def server_prompt_text(tokenizer, text: str) -> str:
    """The prompt text to send to a server that tokenizes it with special tokens (vLLM, TGI).

    Such a server adds the tokenizer's BOS itself, so a leading BOS written by the chat template
    is removed: the server then reads the same ids as :func:`prompt_token_ids`.
    """
    bos = getattr(tokenizer, "bos_token", None)
    if bos and text.startswith(bos) and _adds_bos(tokenizer):
        return text[len(bos):]
    return text


def _tokens(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _water_level(lengths: list[int], budget: int) -> int:
    """The largest cap ``c`` with ``sum(min(l, c)) <= budget``."""
    low, high = 0, max(lengths, default=0)
    while low < high:
        mid = (low + high + 1) // 2
        if sum(min(n, mid) for n in lengths) <= budget:
            low = mid
        else:
            high = mid - 1
    return low


def fit_fields(tokenizer, text: str, budget: int, separator: str = FIELD_SEPARATOR) -> str:
    """``text`` cut to at most about ``budget`` tokens, field by field.

    The text is split at ``separator`` into fields (the catalog's ``title | brand | colour |
    ... | description``). Fields that fit their share are kept whole; the long ones are cut to
    an equal share (the "water level"), and the tokens left over go to the earlier fields
    first, so a long description never pushes the title, brand or colour out.

    Example:
        >>> fit_fields(tok, "Red shoe | Acme | " + "long words " * 200, 20)   # doctest: +SKIP
        'Red shoe | Acme | long words long words long ...'
    """
    if budget <= 0:
        return ""
    fields = [f for f in text.split(separator) if f.strip()]
    ids = [_tokens(tokenizer, f) for f in fields]
    sep_cost = len(_tokens(tokenizer, separator))
    if sum(map(len, ids)) + sep_cost * max(0, len(ids) - 1) <= budget:
        return text
    while ids and budget - sep_cost * (len(ids) - 1) < len(ids):  # not even a token per field: drop the last
        ids.pop()
        fields.pop()
    if not ids:
        return ""
    avail = budget - sep_cost * (len(ids) - 1)
    cap = _water_level([len(x) for x in ids], avail)
    spare = avail - sum(min(len(x), cap) for x in ids)
    kept = []
    for field, tokens in zip(fields, ids):
        n = min(len(tokens), cap)
        if len(tokens) > n and spare > 0:
            n, spare = n + 1, spare - 1
        kept.append(field if n == len(tokens) else tokenizer.decode(tokens[:n]).strip())
    return separator.join(k for k in kept if k)


class PromptBuilder:
    """One tier's prompts: the shared prefix once, and each pair's suffix fitted to ``max_length``.

    Args:
        tokenizer: the model's tokenizer (its chat template renders the prompt).
        scale: the grade scale.
        prompt: the prompt (default: the scale's shipped prompt).
        max_length: tokens per prompt, prefix included.
        max_query_tokens: a query longer than this is cut (a query is never allowed to crowd
            out the item).

    Raises:
        ModelError: the prompt file does not put ``{query}`` before ``{item}``, or the prefix
            alone does not leave room for a query and an item.

    Example:
        >>> b = PromptBuilder(tokenizer, ESCI, max_length=192)                # doctest: +SKIP
        >>> ids = b.prefix_ids + b.suffix_ids("red shoes", "Trail running shoe | Acme | red")  # doctest: +SKIP
    """

    def __init__(self, tokenizer, scale: GradeScale, prompt: Prompt | None = None, max_length: int = 256,
                 max_query_tokens: int = 32):
        self.tokenizer, self.scale = tokenizer, scale
        self.prompt = prompt or load_prompt(scale.name)
        self.max_length, self.max_query_tokens = max_length, max_query_tokens
        full = render_prompt(tokenizer, scale, _QUERY, _ITEM, self.prompt)
        q, i = full.find(_QUERY), full.find(_ITEM)
        if q < 0 or i < 0 or i < q:
            raise ModelError("the prompt must contain {query} before {item} (the shared prefix ends at the query)")
        cut = len(full[:q].rstrip(" "))  # a space before the query belongs to the query's first token
        self.prefix_text = full[:cut]
        self._suffix = full[cut:]
        self.prefix_ids = prompt_token_ids(tokenizer, self.prefix_text)
        self._bare = len(_tokens(tokenizer, self._render("", "")))
        if len(self.prefix_ids) + self._bare + 8 > max_length:
            raise ModelError(
                f"the prompt's fixed part is {len(self.prefix_ids) + self._bare} tokens, which leaves no room for a "
                f"query and an item under max_length={max_length}"
            )

    def _render(self, query: str, item: str) -> str:
        return self._suffix.replace(_QUERY, query).replace(_ITEM, item)

    def suffix_text(self, query: str, item: str) -> str:
        """The pair's suffix: the query and the item cut to fit, then the template's end."""
        q_ids = _tokens(self.tokenizer, query)
        if len(q_ids) > self.max_query_tokens:
            query = self.tokenizer.decode(q_ids[: self.max_query_tokens]).strip()
            q_ids = _tokens(self.tokenizer, query)
        budget = self.max_length - len(self.prefix_ids) - self._bare - len(q_ids) - 1
        for _ in range(4):  # cutting can change merges at the cut: re-check a few times
            text = self._render(query, fit_fields(self.tokenizer, item, budget))
            over = len(self.prefix_ids) + len(_tokens(self.tokenizer, text)) - self.max_length
            if over <= 0:
                return text
            budget -= over
        raise ModelError(f"the prompt for query {query[:60]!r} does not fit max_length={self.max_length}")

    def suffix_ids(self, query: str, item: str) -> list[int]:
        """The token ids of :meth:`suffix_text` (to follow :attr:`prefix_ids`)."""
        return _tokens(self.tokenizer, self.suffix_text(query, item))

    def text(self, query: str, item: str) -> str:
        """The whole prompt as text (what a server is sent, after :func:`server_prompt_text`)."""
        return self.prefix_text + self.suffix_text(query, item)

    def ids(self, query: str, item: str) -> list[int]:
        """The whole prompt's token ids (prefix and suffix)."""
        return self.prefix_ids + self.suffix_ids(query, item)
