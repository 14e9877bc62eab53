"""Evaluation of text-to-motion models: a retrieval evaluator, metrics, baselines and behaviour checks.

torch and numpy only (never bpy); the add-on does not use this package. ``python -m temos_blender.evaluate``
writes docs/EVALUATION.md.
"""
