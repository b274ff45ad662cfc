"""Pre-training, in rooms: `masking/` (the mask spec, the one masking op, its counters, the loss weights), `model/`
(the fused model, blocks, image encoder, objective, losses, ALBEF, precision), `data/` (the shard stream,
transforms, device decoding) and `engine/` (the one run engine every training loop uses). At the top: the typed
config (`config`), the run-folder contract (`run_dir`), the pre-training loop (`train`), `posmask pretrain` (`cli`)
and the tiny preset's supervised image-encoder start (`vision_init`, `cli_vision_init`).
"""
