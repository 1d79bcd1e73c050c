"""DeepEmotionExampleGen: FER2013-family CSVs and CK+48 / JAFFE / FERG image folders -> canonical
tf.Examples, split train/eval/test (component.py; `deep-emotion ingest` runs it alone, ingest.py).

Kept free of imports so that `deep-emotion ingest --help` does not load TFX.
"""
