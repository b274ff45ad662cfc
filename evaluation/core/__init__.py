"""The evaluation core every task and the report share: the defaults the commands share (`defaults`), model,
image and text plumbing (`common`), the one scoring loop (`scoring`), per-item scores (`items`), the statistics
(`stats`) and what a report knows of a run (`runs`).
"""
