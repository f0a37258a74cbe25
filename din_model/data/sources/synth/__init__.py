"""Synthetic data in the owners' file formats, for scale tests where the real files are missing.

The generated directories are read by the real adapters unchanged; a
``SYNTHETIC.json`` file in them marks everything built from them as synthetic.
"""

from din_model.data.sources.synth.amazon import (
    ELECTRONICS,
    AmazonSynthParams,
    SynthAmazon,
    SynthSizes,
    generate_amazon,
    sizes_for_scale,
    write_synthetic_amazon,
)

SYNTHETIC_MARKER = "SYNTHETIC.json"

__all__ = [
    "ELECTRONICS",
    "SYNTHETIC_MARKER",
    "AmazonSynthParams",
    "SynthAmazon",
    "SynthSizes",
    "generate_amazon",
    "sizes_for_scale",
    "write_synthetic_amazon",
]
