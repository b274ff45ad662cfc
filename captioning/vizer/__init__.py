"""ViZer (`posmask vizer`): zero-label caption enhancement of the probe's captioner. The mapper (`mapper`),
the LoRA stage (`lora`), both stages on the run engine (`stages`), the chain (`pipeline`), its metrics and
grounding (`metrics`, `grounding`), the shuffled-caption control (`control`), the report (`report`) and the
command (`cli`).
"""
