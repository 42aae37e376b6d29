"""The demo lab: a synthetic fine-tuning world (world.py) and its tiny base model
(base_model.py). Importing this package imports neither torch nor transformers."""
