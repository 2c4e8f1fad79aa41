"""How the terminal talks to the app: keys, raw pastes, the user's editor."""
