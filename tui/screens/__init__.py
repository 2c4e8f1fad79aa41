"""The screens pushed over the chat: token cursor, attention, model inspector, history."""
