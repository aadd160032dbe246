"""freqtrade's data-file format (names and columns of its feather files)."""
