"""How far one cell's numbers may move from one CPU to another (see tests/test_cross_cpu.py).

With ties counted by the float32 tie rule and graphs built on distinct points, what still moves is
a query whose best competitor sits within rounding of its relevant item: measured at 0 of 600
items in the emulated check. The bound is one percent of the queries for a rate (and 1% of a rank
or an error), which a shifted cell (a method that changed) exceeds by far.
"""

CROSS_CPU_TOLERANCE = 0.01
