"""Zero-shot VALSE with the ITM head (thesis Table 4.2): the task (`evaluate`) and its scores in two
conventions (`metric`).
"""
