"""Zero-shot image-text retrieval (thesis Tables 4.1, 4.4): the task (`evaluate`) and Recall@k with its tie
rule (`metric`).
"""
