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
        except Exception:  # templates without a system role (e.g. Gemma): fold it into the user turn
            messages = [{"role": "user", "content": f"{prompt.system}\n\n{user}"}]
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return f"{prompt.system}\n\n{user}\nAnswer: "


def grade_token_ids(tokenizer, scale: GradeScale, prompt: Prompt | None = None) -> list[int]:
    """The token id of each grade token, checked to be single and distinct for this tokenizer.

    Raises:
        ModelError: naming the grade token that is not a single token, or the two that collide.
    """
    prompt = prompt or load_prompt(scale.name)
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
