"""ModelCardGenerator: a model card (model_card.json, model_card.md) for each trained model."""
