"""Rows to (prompt text, completion text): the chat template for conversations, plain text otherwise.

TRL's conventions decide which rows are conversations:

- ``prompt``/``completion`` strings are used exactly as written (no template), whatever the
  tokenizer: the completion follows the prompt directly.
- ``messages`` (a list of ``{"role", "content"}``), or ``prompt``/``completion`` given as such
  lists, are conversations: the prompt is every message before the last assistant turn, rendered
  with ``tokenizer.apply_chat_template(..., add_generation_prompt=True)``; the completion is what
  the template adds for that assistant turn (the full rendering minus the prompt's), without a
  trailing EOS text, because training appends the tokenizer's EOS token to every completion and
  sampling stops at it. A template whose full rendering does not extend the prompt's (some rewrite
  earlier turns) falls back to the assistant message's content. A conversation whose last message
  is not the assistant's is a prompt only (for RL and the probe).

``chat_template="always"`` (``data.chat_template``, ``probe --chat-template``) also templates plain
``prompt``/``completion`` string rows, as a one-turn conversation (the prompt as the user's message, the
completion as the assistant's): for an instruct model whose data was written without its template. It
needs a tokenizer with a chat template.

Loss masks: the prompt/completion split is all that training needs; ``SequenceStore`` masks every
prompt token, so only completion tokens (and the EOS) carry loss.

A tokenizer that adds BOS itself would get a second one from a template that writes the BOS text
(Llama's do): the rendered prompt's leading BOS text is removed in that case.
"""

from __future__ import annotations

from dataclasses import dataclass

CHAT_TEMPLATE_MODES = ("auto", "always")


class FormatError(ValueError):
    """A row that cannot be rendered with this tokenizer (one line, naming file, row and field)."""


@dataclass(frozen=True)
class Rendered:
    prompt: str
    completion: str | None  # None: the row has no completion (a prompt for RL or the probe)


def is_conversation(value) -> bool:
    return isinstance(value, list)


def split_conversation(row: dict) -> tuple[list[dict], dict | None]:
    """(prompt messages, the completion's assistant message or None) of a conversational row."""
    if "messages" in row:
        msgs = list(row["messages"])
        if msgs[-1]["role"] == "assistant":
            return msgs[:-1], msgs[-1]
        return msgs, None
    completion = row.get("completion")
    return list(row["prompt"]), (completion[-1] if completion else None)


class Formatter:
    """Renders validated rows (``tasks.dataset``) for one tokenizer (or none: plain rows only)."""

    def __init__(self, tokenizer=None, chat_template: str = "auto"):
        if chat_template not in CHAT_TEMPLATE_MODES:
            raise FormatError(f"chat_template must be one of {CHAT_TEMPLATE_MODES}, got {chat_template!r}")
        self.tokenizer = tokenizer
        self.has_template = bool(getattr(tokenizer, "chat_template", None))
        if chat_template == "always" and tokenizer is not None and not self.has_template:
            raise FormatError("chat_template 'always' templates every row, but the tokenizer has no chat template "
                              "(use 'auto': plain prompt/completion rows are then used as written)")
        self.always = chat_template == "always" and tokenizer is not None
        self._bos_text = None
        if tokenizer is not None and tokenizer.bos_token:
            ids = tokenizer("", add_special_tokens=True)["input_ids"]
            if ids and ids[0] == tokenizer.bos_token_id:  # encode_prompts will add BOS itself
                self._bos_text = tokenizer.bos_token

    def render(self, row: dict, where: str) -> Rendered:
        """`where` is 'file:row N', for errors."""
        if not is_conversation(row.get("messages", row.get("prompt"))):
            if not self.always:
                return Rendered(row["prompt"], row.get("completion"))
            row = {"messages": [{"role": "user", "content": row["prompt"]}]
                   + ([{"role": "assistant", "content": row["completion"]}] if row.get("completion") is not None
                      else [])}
        field = "messages" if "messages" in row else "prompt"
        if self.tokenizer is None:
            raise FormatError(f"{where}: field '{field}' is a conversation; rendering it needs the model's tokenizer")
        if not self.has_template:
            raise FormatError(
                f"{where}: field '{field}' is a conversation, but the tokenizer has no chat template; "
                "write prompt/completion strings instead, or use a tokenizer with a chat_template"
            )
        prompt_msgs, answer = split_conversation(row)
        prompt = self._apply(prompt_msgs, where, field, generation_prompt=True)
        completion = None if answer is None else self._completion(prompt_msgs, answer, prompt, where, field)
        if self._bos_text and prompt.startswith(self._bos_text):
            prompt = prompt[len(self._bos_text):]
        return Rendered(prompt, completion)

    def _apply(self, messages, where: str, field: str, *, generation_prompt: bool) -> str:
        try:
            return self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=generation_prompt
            )
        except Exception as exc:  # jinja errors, templates that reject a role order, ...
            raise FormatError(f"{where}: field '{field}': the chat template failed: {exc}") from None

    def _completion(self, prompt_msgs, answer: dict, prompt: str, where: str, field: str) -> str:
        full = self._apply(prompt_msgs + [answer], where, field, generation_prompt=False)
        if not full.startswith(prompt):
            return answer["content"]
        completion = full[len(prompt):]
        eos = self.tokenizer.eos_token
        tail = completion.rstrip()
        if eos and tail.endswith(eos):
            completion = tail[: -len(eos)]
        return completion
