"""VQA v2 (thesis Tables 4.3, 4.5): the fine-tune on the run engine and the prediction (`finetune`), the
official files and answer vocabulary (`data`) and the official accuracy (`metric`).
"""
