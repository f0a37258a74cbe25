"""The fully connected tower shared by every deep model and by DIN's activation unit."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from din_model.layers.activations import apply_activation, make_activation


class DenseBlock(nn.Module):
    """Linear -> optional BatchNorm -> activation -> optional dropout.

    BatchNorm is off by default: in the official DIN code a BatchNorm fed its batch
    statistics at test time leaked the label (official repo #76). When on, it takes
    2-D input only, so it can never see the padded positions of a sequence.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: str,
        *,
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.norm = nn.BatchNorm1d(out_features) if batch_norm else None
        self.activation = make_activation(activation, out_features)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        x = self.linear(x)
        if self.norm is not None:
            x = self.norm(x)
        x = apply_activation(self.activation, x, mask)
        if self.dropout is not None:
            x = self.dropout(x)
        return x


class MLP(nn.Module):
    """A stack of :class:`DenseBlock` plus an optional final linear layer (no activation).

    ``mask`` is passed to every activation, so Dice inside DIN's activation unit computes
    its statistics over the valid positions of a (B, L, H) input only.
    """

    def __init__(
        self,
        in_features: int,
        hidden_units: Sequence[int],
        activation: str = "relu",
        *,
        dropout: float = 0.0,
        batch_norm: bool = False,
        output_dim: int | None = None,
    ) -> None:
        super().__init__()
        blocks = []
        width = in_features
        for units in hidden_units:
            blocks.append(
                DenseBlock(width, units, activation, dropout=dropout, batch_norm=batch_norm)
            )
            width = units
        self.blocks = nn.ModuleList(blocks)
        self.output = nn.Linear(width, output_dim) if output_dim is not None else None
        self.out_features = output_dim if output_dim is not None else width

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        for block in self.blocks:
            x = block(x, mask)
        if self.output is not None:
            x = self.output(x)
        return x
