"""The app's state as plain Python, no Textual: requests, the generation queue, the chosen preset, the
model shelf, the history keeper, the context meter, the backend's state, the slash syntax."""
