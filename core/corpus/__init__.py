"""The training text a model learned from, indexed to ask what of a text it copies (`tfchat overlap`)."""
