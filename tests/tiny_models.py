"""Tiny models the tests build themselves (never downloaded), shared by every test package.

- :func:`tiny_bert_cross_encoder`: a 2-layer BERT sequence classifier with a hand-made WordPiece
  vocabulary, saved as a model folder that sentence-transformers' ``CrossEncoder`` loads; with
  ``head`` given, the folder also gets a ``relforge_tier.json`` descriptor.
- :func:`tiny_llama`: a 2-layer Llama causal LM with a byte-level BPE tokenizer trained by the
  ``tokenizers`` library, whose digits are single tokens, with a ChatML chat template; saved with
  ``save_pretrained`` so that transformers and vLLM both load it.

Both are random (seeded) and small enough to build in about a second. Builders take the target
folder and return it; a session-wide cache (:func:`cached`) avoids rebuilding them per test.

Example:
    >>> folder = tiny_llama(tmp_path / "llm")                       # doctest: +SKIP
    >>> folder = tiny_bert_cross_encoder(tmp_path / "ce", n_grades=4, head="ordinal")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from relforge.grades import ESCI, GradeScale

#: Words the tiny tokenizers know: product-search vocabulary plus the words of the shipped
#: prompt files, so that a rendered prompt tokenizes into real tokens rather than bytes/[UNK].
WORDS = (  # noqa: SIM905 - a word list reads better as text
    "a an the and or of for with to in on is are it this that by from as at be not no yes query "
    "document product item grade grades answer digit only relevant relevance irrelevant partial "
    "exact complement substitute judge search shop online decide how well matches match you your "
    "are given shopping red blue green black white shoes shoe running trail boots men women kids "
    "phone case charger usb cable laptop bag wireless headphones coffee maker mug water bottle "
    "steel glass kitchen knife set chair desk lamp led light battery pack camera lens tripod book "
    "novel paper pen pencil notebook toy car doll game puzzle shirt cotton jacket rain winter "
    "summer size small medium large brand color category price cheap best new system user "
    "assistant"
).split()

#: Training text for the Llama tokenizer: sentences that use every word and every digit.
CORPUS = [
    "Query: red running shoes\n\nProduct: trail running shoes for men, red\n\nGrades:\n0 = Irrelevant",
    (
        "You are a relevance judge for an online shop. Given a shopping query and a product, you "
        "decide how well the product matches the query."
    ),
    (
        "You are a search relevance judge. Given a query and a document, you decide how relevant "
        "the document is to the query."
    ),
    "Answer with the grade's digit only. 0 = Irrelevant 1 = Complement 2 = Substitute 3 = Exact",
    "0 1 2 3 4 5 6 7 8 9 10 42 2024 1.5 0.25",
    "usb cable charger for phone, wireless headphones, coffee maker with steel mug",
    " ".join(WORDS),
]

#: ChatML, as used by SmolLM2 and Qwen; the generation prompt ends right before the answer.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def word_vocab() -> dict[str, int]:
    """The hand-made WordPiece vocabulary of the tiny BERT: specials, digits, punctuation, words."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    symbols = list("0123456789.,:;!?'\"-=()/&%+")
    pieces = ["##s", "##es", "##ing", "##ed", "##er"]
    tokens = specials + symbols + sorted(set(WORDS)) + pieces
    return {tok: i for i, tok in enumerate(tokens)}


def tiny_bert_cross_encoder(
    folder: str | Path,
    n_grades: int = 4,
    head: str | None = "softmax",
    scale: GradeScale | None = None,
    seed: int = 0,
    hidden_size: int = 32,
    num_layers: int = 2,
) -> Path:
    """Save a tiny random BERT sequence classifier that ``CrossEncoder`` loads.

    Args:
        folder: where to save (created).
        n_grades: grades on the scale.
        head: ``"softmax"`` (``n_grades`` outputs), ``"ordinal"`` (``n_grades - 1`` cumulative
            logits), or ``None`` for a plain 1-output cross-encoder without a descriptor.
        scale: the grade scale written into the descriptor (default: ESCI when ``n_grades`` is 4,
            else ``GradeScale.from_names``).
        seed: torch seed for the random weights.
        hidden_size, num_layers: model size.

    Returns:
        The folder.
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    num_labels = {"softmax": n_grades, "ordinal": n_grades - 1, None: 1}[head]
    vocab = word_vocab()
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=512,
        num_labels=num_labels,
        initializer_range=0.2,  # ten times the default, so that outputs differ visibly per pair
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(folder)
    BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=512).save_pretrained(folder)
    if head is not None:
        from relforge.tiers import TierDescriptor

        if scale is None:
            scale = ESCI if n_grades == 4 else GradeScale.from_names([f"g{i}" for i in range(n_grades)])
        TierDescriptor(backend="cross-encoder", head=head, grade_scale=scale, base_model="tiny-bert").save(folder)
    return folder


def train_bpe_tokenizer(vocab_size: int = 600, chat_template: str | None = CHAT_TEMPLATE):
    """A byte-level BPE tokenizer (digits split one per token) wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 3, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=512,
    )
    if chat_template is not None:
        wrapped.chat_template = chat_template
    return wrapped


def tiny_llama(
    folder: str | Path,
    seed: int = 0,
    chat_template: str | None = CHAT_TEMPLATE,
    hidden_size: int = 128,
    num_layers: int = 2,
    vocab_size: int = 600,
) -> Path:
    """Save a tiny random Llama causal LM and its tokenizer (loadable by transformers and vLLM).

    The head dimension is 64 (``hidden_size / 2`` heads), which vLLM's CPU attention supports.

    Args:
        folder: where to save (created).
        seed: torch seed for the random weights.
        chat_template: the tokenizer's chat template (``None``: none, prompts render as plain text).
        hidden_size, num_layers, vocab_size: model size.

    Returns:
        The folder.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = train_bpe_tokenizer(vocab_size, chat_template)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=hidden_size // 64,
        num_key_value_heads=hidden_size // 64,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # a spread-out output layer, so that next-token distributions are not flat
        model.lm_head.weight.normal_(0.0, 0.5)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    if chat_template is not None and not (folder / "chat_template.jinja").exists():
        cfg_path = folder / "tokenizer_config.json"
        cfg = json.loads(cfg_path.read_text())
        cfg.setdefault("chat_template", chat_template)
        cfg_path.write_text(json.dumps(cfg, indent=2))
    return folder


def tiny_gemma3(folder: str | Path, seed: int = 0, num_layers: int = 4, sliding_window: int = 16) -> Path:
    """Save a tiny random Gemma-3 text model (sliding-window and global layers, scaled
    embeddings, logit soft-capping) with the BPE tokenizer and a template without a system role.

    Its sliding window is shorter than the test prompts, so a prefix cache that mishandles
    sliding-window layers would show.
    """
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gemma_like = (
        "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}"
        "<start>{{ m['role'] }}\n{{ m['content'] | trim }}<end>\n{% endfor %}"
        "{% if add_generation_prompt %}<start>model\n{% endif %}"
    )
    tokenizer = train_bpe_tokenizer(600, gemma_like)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=num_layers,
        num_attention_heads=2, num_key_value_heads=1, head_dim=32, sliding_window=sliding_window,
        max_position_embeddings=1024, final_logit_softcapping=30.0,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Gemma3ForCausalLM(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    cfg_path = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.setdefault("chat_template", gemma_like)
    cfg_path.write_text(json.dumps(cfg, indent=2))
    return folder


_CACHE: dict[tuple[str, str, str, str], Path] = {}


def cached(root: Path, builder: Callable[..., Path], name: str, **kwargs) -> Path:
    """``builder(root / name, **kwargs)`` once per process (for session-scoped fixtures)."""
    key = (str(root), builder.__name__, name, repr(sorted(kwargs.items(), key=lambda kv: kv[0])))
    if key not in _CACHE or not _CACHE[key].exists():
        _CACHE[key] = builder(Path(root) / name, **kwargs)
    return _CACHE[key]


def tiny_bi_encoder(folder: str | Path, seed: int = 0, hidden_size: int = 32) -> Path:
    """Save a tiny random sentence-transformers bi-encoder (the tiny BERT with mean pooling).

    Returns:
        The folder, loadable by ``SentenceTransformer`` (and :func:`relforge.tiers.load_encoder`).
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    folder = Path(folder)
    bert = tiny_bert_cross_encoder(folder.with_name(folder.name + "-bert"), head="softmax", seed=seed,
                                   hidden_size=hidden_size)
    word = Transformer(str(bert), max_seq_length=64)
    pooling = Pooling(word.get_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[word, pooling], device="cpu").save(str(folder))
    return folder
