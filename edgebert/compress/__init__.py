"""`edgebert compress`: the recipe, and every stage of it in order, resumable."""
