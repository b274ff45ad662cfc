"""The masking room: the mask spec parsed once from the flags (`spec`), the one vectorised masking op on the
device (`masker`), the fixed number of MLM slots it fills (`capacity`), its counters for metrics.jsonl (`counts`)
and the weights of the three losses (`loss_weights`).
"""
