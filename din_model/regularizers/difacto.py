"""DiFacto-style frequency-adaptive L2, a comparison row of the DIN paper.

DiFacto (Li, Liu, Smola, Wang, WSDM 2016) regularises the embedding V_i of
feature i with a per-feature strength mu_i in (1/2) * sum_i mu_i ||V_i||^2,
"a frequency adaptive regularization, which places large penalties for more
frequent features" (DiFacto documentation, dmlc/wormhole learn/difacto). Its
SGD updater realises this by adding mu * V_i to the gradient of V_i each time
feature i occurs in a mini-batch (dmlc/difacto, src/sgd/sgd_updater.cc,
UpdateV: g = grad + V_l2 * V), so over an epoch a feature is regularised in
proportion to the number of batches it appears in.

Implemented here with the same per-batch form:

    penalty_m = (lambda / 2) * sum over ids j present in B_m of ||w_j||^2

i.e. MBA without MBA's 1/n_j: frequent ids are regularised more often (and
so more in total), where MBA scales each step down by their frequency.
"""

from __future__ import annotations

import torch

from din_model.regularizers.mba import FrequencyScaledBatchL2


class DiFactoL2(FrequencyScaledBatchL2):
    name = "difacto"

    def row_scale(self, counts: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(counts, dtype=torch.float32)
