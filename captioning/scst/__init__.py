"""The SCST probe (`posmask probe-scst`): which captions does a pre-trained run reward? The SCST stage
(`probe`), a run as a caption scorer (`reward`), the evaluation of every captioner (`evaluate`), the report in the
seed's layout (`report`) and the command (`cli`).
"""
