"""Grid texts of the study tests: tiny runs over synthetic shards (5 steps each)."""

DEFAULTS = '''
[defaults]
preset = "tiny"
batch_size = 8
workers = 0
log_every = 1
shuffle_buffer = 20
max_steps = 5
tasks = ["retrieval", "valse"]
[defaults.eval]
k = 4
workers = 0
batch_size = 8
'''
DET_07 = '''
[[run]]
name = "DET-0.7"
pos = "DET"
ratio = 0.7
'''
GRID = DEFAULTS + '''
[[run]]
name = "none"
pos = "none"
[[run]]
name = "NOUN-0.7"
pos = "NOUN"
ratio = 0.7
[[run]]
name = "albef"
pos = "random"
ratio = 0.15
albef = true
queue_size = 64
'''
