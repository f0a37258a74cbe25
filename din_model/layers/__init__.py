"""Building blocks shared by every CTR model: embeddings, pooling, MLP, activations, attention."""

from din_model.layers.activations import ACTIVATIONS, PReLU, make_activation
from din_model.layers.attention import (
    ATTENTION_INPUTS,
    AttentionPooling,
    DiffProductInput,
    LocalActivationUnit,
    OuterProductInput,
    masked_softmax,
)
from din_model.layers.dice import Dice
from din_model.layers.embedding import EmbeddedBatch, FeatureEmbedding, resolve_embedding_dims
from din_model.layers.interactions import InnerProduct, OuterProduct, fm_second_order
from din_model.layers.linear import LINEAR_POOLING_MODES, LinearTerm
from din_model.layers.mlp import MLP, DenseBlock
from din_model.layers.pooling import (
    POOLING_MODES,
    SequencePooling,
    masked_max,
    masked_mean,
    masked_sum,
    sequence_mask,
    weighted_sum,
)

__all__ = [
    "ACTIVATIONS",
    "ATTENTION_INPUTS",
    "LINEAR_POOLING_MODES",
    "MLP",
    "POOLING_MODES",
    "AttentionPooling",
    "DenseBlock",
    "Dice",
    "DiffProductInput",
    "EmbeddedBatch",
    "FeatureEmbedding",
    "InnerProduct",
    "LinearTerm",
    "LocalActivationUnit",
    "OuterProduct",
    "OuterProductInput",
    "PReLU",
    "SequencePooling",
    "fm_second_order",
    "make_activation",
    "masked_max",
    "masked_mean",
    "masked_softmax",
    "masked_sum",
    "resolve_embedding_dims",
    "sequence_mask",
    "weighted_sum",
]
