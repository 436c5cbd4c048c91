"""Prompts for the LLM tiers, kept as data files (one per grade scale) in ``prompts/``.

A prompt file is YAML with ``system``, ``user`` (a template with ``{query}``, ``{item}`` and
``{grades}``), ``grade_line`` (how one grade is described, with ``{token}`` and ``{name}``)
and ``grade_tokens`` (one string per grade, worst first). The model's answer is a single
grade token; its next-token probabilities over the grade tokens are the tier's probabilities.
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


def fit_prompt(
    tokenizer,
    scale: GradeScale,
    query: str,
    item: str,
    prompt: Prompt | None = None,
    max_length: int | None = None,
) -> str:
    """:func:`render_prompt`, with the item text cut (in tokens) so the prompt fits ``max_length``.

    Raises:
        ModelError: when the prompt is too long even with an empty item text.
    """
    text = render_prompt(tokenizer, scale, query, item, prompt)
    if max_length is None:
        return text
    item_ids = tokenizer(item, add_special_tokens=False)["input_ids"]
    for _ in range(4):  # cutting can change merges at the cut: re-check a few times
        overflow = len(prompt_token_ids(tokenizer, text)) - max_length
        if overflow <= 0:
            return text
        if not item_ids:
            break
        item_ids = item_ids[: max(0, len(item_ids) - overflow - 1)]
        text = render_prompt(tokenizer, scale, query, tokenizer.decode(item_ids), prompt)
    raise ModelError(
        f"the prompt for query {query[:60]!r} is {len(prompt_token_ids(tokenizer, text))} tokens "
        f"even with the item text cut, more than max_length={max_length}"
    )
