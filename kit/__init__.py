"""The kit's shared machinery: episode batches, submission loading, training and evaluation.

The training script, the grader and the notebooks all import from here, so there is one
sampler, one `train_step` and one `evaluate` in the whole project.
"""
