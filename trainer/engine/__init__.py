"""The one run engine every training loop uses (pre-training, vision-init, the VQA fine-tune, the
captioner's stages): the optimiser, schedule and update (`engine`), checkpoints with exact resume (`checkpoint`),
process groups and collectives (`distributed`), the torchrun relaunch (`launch`), metrics.jsonl and its window
(`metrics`), the loss curves (`plots`) and the count of host syncs a step makes (`host_sync`). It imports the
run-folder contract (`trainer.run_dir`) and nothing else of the trainer.
"""
