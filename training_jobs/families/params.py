"""The parameters of each model family: one pydantic model per family, the only place that
declares a parameter's default, bounds and meaning.

Every way a parameter arrives goes through its family's model, so each is validated the same
way: the ``AIRPARADIS_TRAIN_RNN_*`` and ``AIRPARADIS_TRAIN_TRANSFORMER_*`` variables (nested
fields of `training_jobs.settings.TrainingSettings`), explicit parameters, Optuna trials, and
what MLflow logs (the validated dump). The models live here, apart from the family modules,
because the settings read them at start-up and the family modules load their frameworks'
helpers (scikit-learn, Keras, torch); the transformer's GPU entry point, which has no pydantic,
receives their dump as JSON (`training_jobs.remote_gpu prepare` writes it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from airparadis.text import Normalisation

RnnCell = Literal["rnn", "gru", "lstm"]
Side = Literal["pre", "post"]
Pooling = Literal["max", "last"]
RnnQuantization = Literal["none", "dynamic", "float16"]
RnnEmbedding = Literal["learned", "word2vec", "fasttext", "minilm"]
RnnEmbeddingMode = Literal["fine-tuned", "frozen"]
TransformerMode = Literal["frozen", "finetune"]
TransformerQuantization = Literal["none", "int8"]


class FamilyParams(BaseModel):
    """Unknown parameter names are refused, so a typo is an error rather than a silent default."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TfidfLrParams(FamilyParams):
    """TF-IDF over word (and optionally character) n-grams, then logistic regression."""

    ngram_max: int = Field(default=3, ge=1, le=5, description="Longest word n-gram.")
    min_df: int = Field(default=2, ge=1, description="Fewest tweets an n-gram must appear in.")
    max_features: int | None = Field(
        default=None, ge=1, description="Most word n-grams kept (by frequency); unset keeps all."
    )
    sublinear_tf: bool = Field(default=True, description="1 + log(tf) instead of raw counts.")
    char_ngram_max: int = Field(
        default=0, ge=0, le=8, description="Longest character n-gram; 0 adds none."
    )
    char_min_df: int = Field(default=3, ge=1, description="Fewest tweets a character n-gram needs.")
    C: float = Field(default=2.0, gt=0, description="Inverse regularisation strength.")
    class_weight: Literal["balanced"] | None = Field(
        default=None, description="balanced: weight classes by inverse frequency."
    )
    neutral_tokens: list[str] = Field(
        default=["xxuser", "xxurl"],
        description="Placeholder tokens trained with, then given a zero weight.",
    )
    normalisation: Normalisation = Field(
        default="none", description="Token normalisation after cleaning: none, stem or lemma."
    )


class RnnParams(FamilyParams):
    """Embedding, (bidirectional) recurrent layer and dense head, exported to TFLite."""

    cell: RnnCell = Field(default="gru", description="Recurrent cell: rnn, gru or lstm.")
    bidirectional: bool = Field(default=True, description="Wrap the cell in Bidirectional.")
    max_len: int = Field(default=32, ge=4, le=256, description="Fixed sequence length.")
    padding: Side = Field(default="pre", description="Pad short tweets before or after.")
    truncating: Side = Field(default="post", description="Cut long tweets at the start/end.")
    vocab_size: int = Field(default=40_000, ge=100, description="Most frequent train tokens.")
    min_count: int = Field(
        default=2, ge=1, description="Fewest training occurrences of a vocabulary token."
    )
    embedding_dim: int = Field(
        default=128, ge=4, description="Word embedding size (minilm: at most 384, its width)."
    )
    embedding: RnnEmbedding = Field(
        default="learned",
        description="Initial word vectors: learned (random), word2vec or fasttext (gensim, "
        "trained on the training split), minilm (MiniLM's word-piece embeddings).",
    )
    embedding_mode: RnnEmbeddingMode = Field(
        default="fine-tuned",
        description="fine-tuned: the word vectors train with the network; frozen: they stay.",
    )
    embedding_epochs: int = Field(
        default=5, ge=1, description="Epochs of the gensim word2vec/fasttext vectors."
    )
    units: int = Field(default=64, ge=2, description="Units of the recurrent layer.")
    pooling: Pooling = Field(
        default="max", description="max: max over all steps; last: the last state only."
    )
    dense_units: int = Field(default=64, ge=1, description="Units of the dense layer.")
    dropout: float = Field(
        default=0.3, ge=0, lt=1, description="Dropout before the output (half of it on the "
        "embeddings).",
    )  # fmt: skip
    epochs: int = Field(default=4, ge=1, description="Most epochs (the best one is kept).")
    batch_size: int = Field(default=256, ge=1, description="Training batch size.")
    learning_rate: float = Field(default=2e-3, gt=0, description="Adam learning rate.")
    restore_best: bool = Field(
        default=True, description="Keep the weights of the best validation epoch."
    )
    quantization: RnnQuantization = Field(
        default="dynamic", description="Post-training quantization of the TFLite model."
    )
    threads: int = Field(default=2, ge=1, description="TFLite interpreter threads.")
    normalisation: Normalisation = Field(
        default="none", description="Token normalisation after cleaning: none, stem or lemma."
    )


class TransformerParams(FamilyParams):
    """all-MiniLM-L6-v2 with a linear head, exported to ONNX."""

    mode: TransformerMode = Field(
        default="frozen", description="frozen: train the head only; finetune: whole network."
    )
    max_len: int = Field(default=64, ge=8, le=512, description="Token cap per tweet.")
    epochs: int = Field(default=2, ge=0, description="Fine-tuning epochs.")
    batch_size: int = Field(default=32, ge=1, description="Training batch size.")
    learning_rate: float = Field(
        default=5e-5, gt=0, description="Learning rate of the encoder (fine-tuning)."
    )
    weight_decay: float = Field(default=0.01, ge=0, description="AdamW weight decay.")
    warmup_ratio: float = Field(
        default=0.06, ge=0, lt=1, description="Share of fine-tuning steps of linear warm-up."
    )
    dropout: float = Field(default=0.1, ge=0, lt=1, description="Dropout before the head.")
    evals_per_epoch: int = Field(
        default=2, ge=1, description="Validation scorings per fine-tuning epoch (best kept)."
    )
    max_seconds: float | None = Field(
        default=None, gt=0, description="Stop fine-tuning after this long; unset: no limit."
    )
    head_epochs: int = Field(default=20, ge=0, description="Epochs of the head (frozen mode).")
    head_learning_rate: float = Field(
        default=1e-3, gt=0, description="Learning rate of the classification head."
    )
    quantization: TransformerQuantization = Field(
        default="int8", description="int8 dynamic quantization of the ONNX graph."
    )
    int8_max_drop: float = Field(
        default=0.005,
        ge=0,
        description="Largest validation-accuracy loss int8 may cost; beyond it fp32 ships.",
    )
    checkpoint: Path | None = Field(
        default=None,
        description="Weights fine-tuned elsewhere (a GPU run); with epochs=0 training is skipped.",
    )
    device: str = Field(
        default="auto", description="torch device; auto: the GPU when torch sees one."
    )
    threads: int = Field(default=2, ge=1, description="ONNX Runtime threads when serving.")
    encoder_dir: str | None = Field(
        default=None, description="MiniLM folder; unset: the one shipped in site-packages."
    )


PARAMS_MODELS: dict[str, type[FamilyParams]] = {
    "tfidf_lr": TfidfLrParams,
    "rnn": RnnParams,
    "transformer": TransformerParams,
}


class ParamsError(ValueError):
    """Parameters a family refuses; the message names each one and why."""


def validate_params(family: str, params: dict[str, Any]) -> dict[str, Any]:
    """`params` over the family's defaults, validated, as plain JSON values (what fit, MLflow
    and the bundle receive)."""
    try:
        return PARAMS_MODELS[family].model_validate(params).model_dump(mode="json")
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise ParamsError(f"invalid {family} parameters: {problems}") from exc
