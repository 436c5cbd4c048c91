"""Converting a GGUF file into an ordinary transformers model folder.

transformers reads the GGUF (its metadata becomes the config and the tokenizer, its quantized
tensors are dequantized to float), then the weights go into a fresh model built from that
config, with no trace of the GGUF quantizer, which is saved as safetensors with the tokenizer,
the chat template and a generation config. The folder then loads with a plain
``AutoModelForCausalLM.from_pretrained(folder)``.
"""

from __future__ import annotations

from pathlib import Path

from relforge.errors import ModelError
from relforge.logs import get_logger, log_event

log = get_logger("models")
DTYPES = ("float32", "bfloat16")


def convert_gguf(
    gguf_path: Path,
    out_dir: Path,
    *,
    dtype: str = "float32",
    chat_template: str | None = None,
    stop_tokens: tuple[str, ...] = (),
) -> None:
    """Write the model in ``gguf_path`` as a transformers folder at ``out_dir``.

    Args:
        gguf_path: a GGUF file of an architecture transformers reads (llama, gemma3, qwen2, ...).
        out_dir: the folder to write (created; files in it are overwritten).
        dtype: ``float32`` or ``bfloat16``, the dtype of the saved weights.
        chat_template: a Jinja chat template, used only when the GGUF carries none.
        stop_tokens: tokens that also end a turn; their ids join ``eos_token_id`` in the
            generation config.

    Raises:
        ModelError: when the file cannot be read as a causal LM, or its weights do not fit the
            model its metadata describes.

    Example:
        >>> convert_gguf(Path("/tmp/m/model.gguf"), Path("/tmp/m-hf"))     # doctest: +SKIP
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    if dtype not in DTYPES:
        raise ModelError(f'dtype "{dtype}": must be one of {", ".join(DTYPES)}')
    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(
            folder,
            gguf_file=name,
            quantization_config=GgufConfig(gguf_file=name, dequantize=True),
            dtype=torch.float32,
        )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelError(f"{gguf_path}: cannot be read as a causal language model: {exc}") from exc
    if not tokenizer.chat_template:
        if chat_template:
            tokenizer.chat_template = chat_template
        else:
            log_event(log, "no chat template in the GGUF and none given", file=str(gguf_path))

    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    torch_dtype = getattr(torch, dtype)
    model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    try:
        model.load_state_dict(loaded.state_dict(), strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{gguf_path}: the weights do not fit the model its metadata describes: {exc}") from exc
    del loaded
    model.eval()

    gen = model.generation_config
    eos = gen.eos_token_id if gen.eos_token_id is not None else tokenizer.eos_token_id
    eos_ids = list(eos) if isinstance(eos, (list, tuple)) else ([eos] if eos is not None else [])
    for token in stop_tokens:
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == tokenizer.unk_token_id:
            raise ModelError(f'{gguf_path}: stop token "{token}" is not in the vocabulary')
        if token_id not in eos_ids:
            eos_ids.append(token_id)
    if eos_ids:
        gen.eos_token_id = eos_ids if len(eos_ids) > 1 else eos_ids[0]
    if gen.pad_token_id is None and tokenizer.pad_token_id is not None:
        gen.pad_token_id = tokenizer.pad_token_id

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
