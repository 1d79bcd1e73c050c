"""Dataset-validation and model-analysis reports of a pipeline run.

One implementation for three front ends: notebooks/data_validation.ipynb,
notebooks/model_analysis.ipynb and `deep-emotion report` (one self-contained offline HTML file).
Each part of a report is a `Section` (render.py) built from the run's artifacts (artifacts.py):
tables are pandas DataFrames, plots are matplotlib figures embedded as PNG, so a notebook shows
exactly what the HTML file shows and nothing needs the internet (TFDV's Facets view does).
"""
