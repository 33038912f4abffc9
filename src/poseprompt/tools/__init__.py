"""Command lines around the pipeline: inference on a video (infer), the equal-budget study (study),
cost and speed (plan, bench, cost, smoke), multi-GPU training (parallel) and the stage
dependencies of dvc.yaml (deps). Imports nothing."""
