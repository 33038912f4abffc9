"""The code the pipeline's stages run (dvc.yaml): prepare, train, evaluate with the component
audit, and their helpers. Imports nothing, so that each stage depends only on what it runs."""
