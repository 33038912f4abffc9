"""Data sources (synthetic, BVH, Human3.6M, MPI-INF-3DHP, HumanEva-I), the prepared format,
windows, augmentation and the perturbations of the evaluation suites. Imports nothing."""
