"""The query writer's prompt, kept as a data file (``prompts/query-writer.yaml``), and its chat messages.

A query-writer prompt is YAML with ``system`` (the instructions), ``user`` (a template with
``{item}``: the item to write a query for), ``style_note`` (a template with ``{queries}``: the
run's own queries shown as a style guide when they have no judged item) and
``default_examples`` (``item`` / ``query`` pairs used when the run has no query at all).

:meth:`QueryPrompt.messages` makes the chat of one request: the system text, each example as
a user turn (its item) and an assistant turn (its query), then the item. :func:`render_chat`
renders such a chat with the model's chat template, so that local and remote generators send
the same text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml
from jinja2 import TemplateError
from pydantic import BaseModel

#: The shipped query-writer prompt's file name (in ``relforge/tiers/prompts/``).
QUERY_WRITER = "query-writer.yaml"


@dataclass(frozen=True)
class Example:
    """One few-shot example: an item's text and a query written for it (``item`` ``None``: a
    query shown only as a style guide)."""

    query: str
    item: str | None = None


class QueryPrompt(BaseModel):
    """A query-writer prompt (see the module docstring)."""

    system: str
    user: str
    style_note: str = "Example queries: {queries}."
    default_examples: list[dict[str, str]] = []

    def messages(self, item: str, examples: Sequence[Example] = ()) -> list[dict[str, str]]:
        """The chat of one request: system, the example turns, then the item.

        Args:
            item: the item text (already cut to its token budget).
            examples: few-shot examples; those with an item become turns, the others a style note.
                Without any, the prompt's ``default_examples`` are the turns.
        """
        paired = [e for e in examples if e.item]
        styles = [e.query for e in examples if not e.item]
        if not examples:
            paired = [Example(d["query"], d["item"]) for d in self.default_examples]
        system = self.system
        if styles:
            system = f"{system}\n\n{self.style_note.format(queries='; '.join(styles))}"
        chat = [{"role": "system", "content": system}]
        for e in paired:
            chat += [{"role": "user", "content": self.user.format(item=e.item)},
                     {"role": "assistant", "content": e.query}]
        chat.append({"role": "user", "content": self.user.format(item=item)})
        return chat


@lru_cache(maxsize=8)
def load_query_prompt(path: str | None = None) -> QueryPrompt:
    """The query-writer prompt at ``path``, else the shipped ``prompts/query-writer.yaml``."""
    if path is not None:
        text = Path(path).read_text(encoding="utf-8")
    else:
        text = (resources.files("relforge.tiers") / "prompts" / QUERY_WRITER).read_text(encoding="utf-8")
    return QueryPrompt.model_validate(yaml.safe_load(text))


def render_chat(tokenizer, messages: list[dict[str, str]]) -> str:
    """A chat as the text the model continues, through the tokenizer's chat template.

    A template without a system role (Gemma) gets the system text folded into the first user
    turn; a tokenizer without a template gets plain text (``Query:`` lines for the assistant
    turns), ending where the query begins.
    """
    if getattr(tokenizer, "chat_template", None):
        try:
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except (TemplateError, ValueError):
            system, rest = messages[0]["content"], [dict(m) for m in messages[1:]]
            rest[0]["content"] = f"{system}\n\n{rest[0]['content']}"
            return tokenizer.apply_chat_template(rest, tokenize=False, add_generation_prompt=True)
    lines = []
    for m in messages:
        lines.append(f"Query: {m['content']}\n" if m["role"] == "assistant" else m["content"])
    return "\n\n".join(lines) + "\nQuery:"


_PREFIX = re.compile(r"^(?:[-*•]\s*|\d+[.)]\s*|(?:search\s+)?query\s*:\s*)+", re.IGNORECASE)


def clean_query(text: str) -> str:
    """The query in a generated text: its first non-empty line, without list markers, a
    ``Query:`` prefix, quotes or a closing full stop, whitespace collapsed.

    Example:
        >>> clean_query('  Query: "red running shoes."\\nAnother one')
        'red running shoes'
    """
    line = next((t.strip() for t in text.splitlines() if t.strip()), "")
    line = _PREFIX.sub("", line).strip()
    line = line.strip("\"'`“”‘’ ").rstrip(".;:, ")
    return " ".join(line.split())
