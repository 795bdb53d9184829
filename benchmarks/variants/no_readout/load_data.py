"""The reference's DataGenerator, unchanged (the variant changes only the model)."""

from kit.submission import load_submission

DataGenerator = load_submission("solutions").load_data.DataGenerator
