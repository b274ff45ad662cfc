"""The model room: the fused model with its heads, saving and loading (`posmask`), its transformer blocks
(`blocks`), the timm image encoder and its weights (`vision`), the pre-training forward pass (`objective`) and its
losses (`losses`), ALBEF's momentum model and queue (`albef`), and the float32 scoring heads (`precision`).
"""
