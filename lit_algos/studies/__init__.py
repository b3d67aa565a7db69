"""Studies: one file per paper question (recipes/studies/*.yaml), expanded into sweep run specs."""
