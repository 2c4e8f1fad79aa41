"""The chat screen and the only modules that take it: its actions, grouped by what they act on."""
