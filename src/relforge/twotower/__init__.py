"""Steps ``train-two-tower`` and ``export-index``: the dense retriever trained on the curriculum,
its index exported, and the exported retriever as a search command and a mining channel.

- :mod:`~relforge.twotower._data`: the curriculum as training rows (test queries refused);
- :mod:`~relforge.twotower._negatives`: the false-negative filter of mined hard negatives;
- :mod:`~relforge.twotower._examples`: each stage's examples in its loss's layout;
- :mod:`~relforge.twotower._losses`: the stage losses (sentence-transformers' classes) and batches;
- :mod:`~relforge.twotower._checkpoints`: examples, checkpoints and stage models kept on the bus;
- :mod:`~relforge.twotower._train`: the stages with ``SentenceTransformerTrainer``, resumable;
- :mod:`~relforge.twotower._step`: step ``train-two-tower`` (``models/two-tower``);
- :mod:`~relforge.twotower._export`: step ``export-index`` (``export/``, ``retrieval``);
- :mod:`~relforge.twotower._retriever`: the exported retriever, loaded (``relforge search``);
- :mod:`~relforge.twotower._channel`: the ``two_tower`` mining channel (second round).

Example:
    >>> from relforge.twotower import Retriever
    >>> ids, scores = Retriever.from_bus(bus, cache_dir).search(["red shoes"], 10)   # doctest: +SKIP
"""

from relforge._lazy import lazy_exports

_EXPORTS = {
    "CHANNEL": "relforge.twotower._channel",
    "EXPORT": "relforge.twotower._retriever",
    "MODEL": "relforge.twotower._model",
    "NO_DUPLICATE_LOSSES": "relforge.twotower._losses",
    "RETRIEVAL": "relforge.twotower._export",
    "Retriever": "relforge.twotower._retriever",
    "StageStore": "relforge.twotower._checkpoints",
    "TrainingRows": "relforge.twotower._data",
    "TwoTowerChannel": "relforge.twotower._channel",
    "build_loss": "relforge.twotower._losses",
    "choose_negatives": "relforge.twotower._negatives",
    "false_negative_filter": "relforge.twotower._negatives",
    "graded_targets": "relforge.twotower._data",
    "load_training_rows": "relforge.twotower._data",
    "read_descriptor": "relforge.twotower._model",
    "read_export": "relforge.twotower._retriever",
    "recall_qps_tradeoff": "relforge.twotower._export",
    "register_two_tower_channel": "relforge.twotower._channel",
    "run_export_index": "relforge.twotower._export",
    "run_train_two_tower": "relforge.twotower._step",
    "stage_examples": "relforge.twotower._examples",
    "train_two_tower": "relforge.twotower._train",
}
__all__ = list(_EXPORTS)  # and STEP, EXPORT_STEP, below
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

from relforge.step_spec import Output, Resources, StepSpec

#: Step ``train-two-tower`` (see relforge.steps).
STEP = StepSpec(
    name="train-two-tower",
    run="relforge.twotower._step:run_train_two_tower",
    summary="Train the two-tower retriever from the packaged MiniLM on the curriculum, stage after stage "
    "(in-batch and filtered hard negatives, then a graded loss), resumable from checkpoints on the bus.",
    reads=("curriculum", "catalog", "queries", "packaged-models"),
    writes=("two-tower",),
    section="twotower",
    outputs=(
        Output("model", "Model", "models/two-tower"),
        Output("report", "Markdown", "reports/two-tower.md"),
    ),
    image="gpu",
    resources=Resources(cpu="8", memory="32Gi", gpu=1),
)

#: Step ``export-index`` (see relforge.steps).
EXPORT_STEP = StepSpec(
    name="export-index",
    run="relforge.twotower._export:run_export_index",
    summary="Encode the catalog with the trained model, build the index (exact or ANN by size), measure its "
    "recall@10 against exact search, refuse one under the minimum, publish index, item ids, query encoder and "
    "manifest, and search the test queries into `retrieval`.",
    reads=("two-tower", "catalog", "queries"),
    writes=("index", "retrieval"),
    section="export",
    outputs=(
        Output("index", "Model", "export"),
        Output("report", "Markdown", "reports/index.md"),
        Output("metrics", "Metrics", "reports/index-metrics.json"),
    ),
    image="gpu",
    resources=Resources(cpu="8", memory="32Gi", gpu=1),
)
