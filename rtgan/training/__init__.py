"""Training: one loop (:mod:`.loop`) for every model, driven by the recipe in the model's file
(:class:`rtgan.models.recipe.Recipe`); configs and presets, data, frozen networks, resumable checkpoints."""
